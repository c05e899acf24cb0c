"""`triplegen merge`: join shard outputs (and their rejects) with a proof that no id is lost or doubled."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


EXAMPLES = """\
Examples:

  triplegen merge parts/0 parts/1 parts/2 -o out/triples --input caps.parquet

  triplegen merge part0.parquet part1.parquet -o triples.parquet

Each part is a dataset folder written by generate -o DIR --shard i/N, or a triples file; its rejects
are taken from beside it (rejects.parquet, or <stem>.rejects.parquet). The merged folder gets a
dataset card (README.md) with the summed counts, so load_dataset(folder) reads it. The parts must be
shards of one run (only --shard may differ). The same merge run again leaves a finished output as it is.
"""


def merge(
    parts: Annotated[list[Path], typer.Argument(help="Shard outputs written by generate --shard i/N (folders or "
                                                     "triples files).", show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="Merged dataset folder, or a file ending in .parquet.",
                                         show_default=False)],
    rejects: Annotated[Path | None, typer.Option(help="Merged rejects (default: rejects.parquet in the folder, or "
                                                      "<output stem>.rejects.parquet).", show_default=False)] = None,
    input: Annotated[Path | None, typer.Option(help="The original input: prove that every id is in a part.",
                                               show_default=False)] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing merged output.")] = False,
) -> None:
    """Join shard outputs; refuse doubled ids, and missing ones when --input is given."""
    from triplegen.orchestration.merge import merge_shards

    summary = merge_shards(parts, output, rejects=rejects, input=input, overwrite=overwrite)
    for note in summary.notes:
        typer.echo(f"note: {note}", err=True)
    proof = f"all {summary.ids:,} input ids present once" if summary.checked_against_input else (
        f"{summary.ids:,} ids, none doubled (pass --input to prove none is missing)")
    done = " already complete (merged from the same parts), nothing rewritten;" if summary.complete else ""
    typer.echo(f"{summary.output.path}:{done} {summary.output.rows:,} rows, {summary.rejects.path}: "
               f"{summary.rejects.rows:,} rejects from {len(summary.parts)} parts; {proof}"
               + (f"; card {summary.card}" if summary.card else ""))


merge.__doc__ = f"{merge.__doc__}\n\n{EXAMPLES}"
