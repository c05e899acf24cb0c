"""The README's `--blind-model` commands, run exactly as written on the bundled captions, with SmolLM2
prepared where the README says (`models/smollm2`) in a scratch folder."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEADING = "### Negations a text-only model cannot see through"


def readme_commands() -> list[str]:
    """The first indented command block of the blind-check subsection."""
    text = (REPO / "README.md").read_text()
    block = re.search(r"\n\n((?:    .*\n)+)", text[text.index(HEADING):]).group(1)
    return [line.strip() for line in block.splitlines()]


@pytest.mark.slow
def test_readme_blind_commands_run_as_written(tmp_path, smollm2_model):
    commands = readme_commands()
    assert [c.split()[:2] for c in commands] == [["triplegen", "generate"], ["triplegen", "validate"]]
    assert all("--blind-model models/smollm2" in c for c in commands)
    (tmp_path / "examples").symlink_to(REPO / "examples")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "smollm2").symlink_to(smollm2_model)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}  # this environment's triplegen
    for command in commands:
        done = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    assert "## Blind check" in (tmp_path / "out" / "blind" / "README.md").read_text()
    kinds = json.loads((tmp_path / "out" / "blind-report.json").read_text())["blind"]["kinds"]
    assert kinds["caption"]["scored"] > 0 and 0 <= kinds["caption"]["share_prefers_true"] <= 1
