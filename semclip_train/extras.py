"""The optional packages that `semclip-train` and `semclip-eval` need beyond the core install.

The core (`triplegen` with the rules and openai backends) needs no torch, so `pip install semclip`
gives these commands without PyTorch and transformers. Each command checks for them before any
work, so a missing package is one line with the install command (and how to get PyTorch's CPU
build, which pip does not choose on its own) instead of a traceback from deep inside.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any, Callable

from semclip_train.errors import SemClipError

TRAIN_PACKAGES = ("torch", "transformers")
CPU_TORCH = "pip install torch --index-url https://download.pytorch.org/whl/cpu"


def require_train_extra(command: str) -> None:
    """Refuse to start `command` without torch and transformers (the `train` extra)."""
    for module in TRAIN_PACKAGES:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise SemClipError(
                f"{command} needs PyTorch and transformers ({module} cannot be imported: {exc}): "
                f"pip install 'semclip[train]' (on a machine without a GPU, first {CPU_TORCH} "
                "for PyTorch's CPU build)") from None


def needs_train_extra(command: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A Typer command that checks for the `train` extra after its options are parsed (so `--help`
    works without it) and before its body imports torch."""

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)  # Typer reads the options from the wrapped signature
        def run(*args: Any, **kwargs: Any) -> Any:
            require_train_extra(command)
            return function(*args, **kwargs)

        return run

    return decorate


def require_matplotlib() -> None:
    """`--plot` needs matplotlib: checked before the evaluation, not after it."""
    try:
        importlib.import_module("matplotlib.figure")
    except ImportError:
        raise SemClipError("--plot needs matplotlib: pip install 'semclip[plot]'") from None
