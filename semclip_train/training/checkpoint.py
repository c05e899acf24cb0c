"""Atomic checkpoints that resume a run exactly, and the final `save_pretrained` model.

A checkpoint is a folder `checkpoints/step-<N>/` with
  - `model.safetensors`: the unwrapped model (CLIP + any learnable loss parameters), no pickle;
  - `state.pt`: optimizer state, step, epoch position, samples seen, config and the RNG states
    (python, numpy, torch, cuda), all plain tensors and containers, read with
    `torch.load(weights_only=True)` so a checkpoint from elsewhere cannot run code.
The folder is written under a temporary name and renamed (`semclip_core.files.atomic_folder`, with the
umask's permissions); then `checkpoints/latest` (a text file, also replaced atomically) is pointed at
it. A crash at any moment leaves the previous checkpoint usable; its temporary folder is removed by
the next run of the same folder. There is no scheduler object (the learning rate is `lr_at(step)`) and no gradient scaler
(bf16 needs none), so the step is their whole state.
"""

from __future__ import annotations

import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semclip_core.files import atomic_folder, write_text_atomic
from semclip_train.errors import SemClipError

LATEST = "latest"
KEEP = 2  # checkpoints kept on disk; older ones are removed after a new one is complete
CHECKPOINT_NAME = re.compile(r"step-(\d{8,})")
STATE_KEYS = ("step", "epoch", "step_in_epoch", "samples_seen", "optimizer", "rng")


def rng_state() -> dict[str, Any]:
    """Every generator a run draws from, as tensors and plain containers (weights_only-safe)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos,
                  "has_gauss": has_gauss, "gauss": gauss},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoint_state(config: Any, optimizer, step: int, samples_seen: int, position) -> dict[str, Any]:
    """`state.pt`: where the run is (step, epoch position, samples) and what it needs to go on exactly."""
    epoch, step_in_epoch = position
    return {
        "step": step, "epoch": epoch, "step_in_epoch": step_in_epoch, "samples_seen": samples_seen,
        "optimizer": optimizer.state_dict(), "scaler": None, "scheduler": {"step": step},
        "config": config.model_dump(mode="json"), "rng": rng_state(),
    }


def save_checkpoint(run_dir: Path, module: torch.nn.Module, state: dict[str, Any]) -> Path:
    """Write checkpoint `step-<state['step']>` and point `latest` at it (call on rank 0 only)."""
    from safetensors.torch import save_file

    folder = run_dir / "checkpoints"
    name = f"step-{state['step']:08d}"
    tensors = {key: value.detach().cpu().contiguous() for key, value in module.state_dict().items()}
    with atomic_folder(folder / name) as tmp:
        save_file(_untie(tensors), str(tmp / "model.safetensors"))
        torch.save(state, tmp / "state.pt")
    final = folder / name
    write_text_atomic(folder / LATEST, name)
    for old in sorted(p for p in folder.glob("step-*") if p.is_dir())[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _untie(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """safetensors refuses tensors sharing storage; copy the second of any shared pair."""
    seen: set[int] = set()
    out = {}
    for key, tensor in tensors.items():
        pointer = tensor.untyped_storage().data_ptr()
        out[key] = tensor.clone() if pointer in seen and tensor.numel() else tensor
        seen.add(pointer)
    return out


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The folder `checkpoints/latest` names: a `step-<N>` folder of this run, never a path that
    leads out of `checkpoints/` (a tampered pointer or a planted link)."""
    checkpoints = run_dir / "checkpoints"
    pointer = checkpoints / LATEST
    if not pointer.is_file():
        return None
    name = pointer.read_text(errors="replace").strip()
    if not CHECKPOINT_NAME.fullmatch(name):
        raise SemClipError(f"{pointer} names {name[:80]!r}, not a checkpoint folder of this run (step-<N>); "
                           f"point it at one of the step-* folders in {checkpoints}")
    folder = checkpoints / name
    if folder.is_symlink() or not Path(os.path.realpath(folder)).is_relative_to(os.path.realpath(checkpoints)):
        raise SemClipError(f"{pointer} names {folder}, a link out of {checkpoints}; a run resumes only from its "
                           "own checkpoints")
    if not (folder / "state.pt").is_file():
        raise SemClipError(f"{pointer} names {folder.name}, which is incomplete or missing")
    return folder


def load_checkpoint(folder: Path, module: torch.nn.Module) -> dict[str, Any]:
    """Restore the model weights in place and return the checked training state (no unpickling)."""
    from safetensors.torch import load_file

    try:
        weights = load_file(str(folder / "model.safetensors"))
        state = torch.load(folder / "state.pt", map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: the user's to fix, not a bug here
        raise SemClipError(f"cannot read checkpoint {folder}: {str(exc).splitlines()[0]}") from exc
    expected = module.state_dict()
    unexpected = [key for key in weights if key not in expected]
    if unexpected:
        raise SemClipError(f"checkpoint {folder} does not match the model ({len(unexpected)} unexpected keys, "
                           f"e.g. {unexpected[0]})")
    missing = [key for key in expected if key not in weights]
    if missing:
        raise SemClipError(f"checkpoint {folder} lacks {len(missing)} model tensors, e.g. {missing[0]}")
    for key, tensor in weights.items():
        if tensor.shape != expected[key].shape:
            raise SemClipError(f"checkpoint {folder} does not match the model: {key} has shape "
                               f"{list(tensor.shape)}, the model's is {list(expected[key].shape)}")
    module.load_state_dict(weights, strict=False)
    check_state(state, folder)
    return state


def check_state(state: Any, folder: Path) -> None:
    """A resumed state is input like any other: the counters the run continues from are
    non-negative integers, and the step is the one the folder is named after."""
    if not isinstance(state, dict) or not all(key in state for key in STATE_KEYS):
        raise SemClipError(f"checkpoint {folder}: state.pt lacks the training state ({', '.join(STATE_KEYS)})")
    for key in ("step", "epoch", "step_in_epoch", "samples_seen"):
        value = state[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise SemClipError(f"checkpoint {folder}: state.pt has {key} {value!r}, not a count (an integer >= 0)")
    named = int(CHECKPOINT_NAME.fullmatch(folder.name)[1])
    if state["step"] != named:
        raise SemClipError(f"checkpoint {folder}: state.pt says step {state['step']}, its folder step {named}; "
                           "the checkpoint was altered")


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: Any, folder: Path) -> None:
    """The optimizer's moments, refused when they do not fit this run's parameters (another model,
    another set of frozen towers), which AdamW would only find at its first step, as a traceback."""
    try:
        optimizer.load_state_dict(state)
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise SemClipError(f"checkpoint {folder}: its optimizer state does not fit this run "
                           f"({' '.join(str(exc).split())[:200]})") from None
    for group in optimizer.param_groups:
        for parameter in group["params"]:
            for name, value in optimizer.state.get(parameter, {}).items():
                if torch.is_tensor(value) and value.ndim > 0 and value.shape != parameter.shape:
                    raise SemClipError(f"checkpoint {folder}: optimizer tensor {name} has shape {list(value.shape)} "
                                       f"for a parameter of shape {list(parameter.shape)}; the checkpoint belongs "
                                       "to another model or settings")


def restore_rng_state(state: Any, folder: Path) -> None:
    try:
        set_rng_state(state)
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
        raise SemClipError(f"checkpoint {folder}: its random-number state is damaged ({type(exc).__name__})") from None


def save_final(run_dir: Path, clip: Any, processor: Any, card: str | None = None) -> Path:
    """`run_dir/final`: `CLIPModel.from_pretrained(run_dir / "final")` and its processor load it;
    `card` becomes its README.md (the model card)."""
    final = run_dir / "final"
    with atomic_folder(final) as tmp:
        clip.save_pretrained(tmp, safe_serialization=True)
        processor.save_pretrained(tmp)
        if card is not None:
            (tmp / "README.md").write_text(card, encoding="utf-8")
    return final
