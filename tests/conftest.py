"""Shared test helpers.

Tests that need an optional heavy component (vLLM, the SmolLM2 package, the MiniLM package) skip
with a clear reason where it is absent; CI sets SEMCLIP_REQUIRE_VLLM=1 so those skips become
failures and the real engine is always exercised there.
"""

from __future__ import annotations

import importlib.util
import os
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
def sugarcrepe_dir() -> Path:
    """The SugarCrepe++ JSON files (a data folder beside the checkout), or a skip where there are none."""
    if not (SUGARCREPE_DIR / "replace_att.json").exists():
        pytest.skip(f"SugarCrepe++ data not found at {SUGARCREPE_DIR}")
    return SUGARCREPE_DIR
