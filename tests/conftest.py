"""Shared test helpers.

Tests that need an optional heavy component (vLLM, the SmolLM2 package, the MiniLM package) skip
with a clear reason where it is absent; CI sets SEMCLIP_REQUIRE_VLLM=1 so those skips become
failures and the real engine is always exercised there.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SUGARCREPE_DIR = SHARED_DATA / "sugarcrepe_pp"


def require(module: str, why: str) -> None:
    """Skip (or fail under SEMCLIP_REQUIRE_VLLM=1) when `module` cannot be imported."""
    if importlib.util.find_spec(module) is not None:
        return
    message = f"{module} is not installed: {why}"
    if os.environ.get("SEMCLIP_REQUIRE_VLLM") == "1":
        pytest.fail(message + " (SEMCLIP_REQUIRE_VLLM=1 turns this skip into a failure)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def sugarcrepe_dir() -> Path:
    """The SugarCrepe++ JSON files from ../shared, or a skip where this checkout has none."""
    if not (SUGARCREPE_DIR / "replace_att.json").exists():
        pytest.skip(f"SugarCrepe++ data not found at {SUGARCREPE_DIR}")
    return SUGARCREPE_DIR


@contextlib.contextmanager
def lock_held_elsewhere(lock: Path):
    """Another process holding a run's lock file (`triplegen.files.RunLock`); yields its pid, then
    kills it with SIGKILL, as a crash would."""
    holder = subprocess.Popen([sys.executable, "-c", (
        "import time; from pathlib import Path; from triplegen.files import RunLock\n"
        f"with RunLock(Path({str(lock)!r}), 'x'):\n"
        "    print('locked', flush=True); time.sleep(300)")],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield holder.pid
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
