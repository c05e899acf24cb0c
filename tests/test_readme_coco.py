"""The README's COCO path, run exactly as written: COCO files -> triples with absent-object rows ->
a trained model -> NegBench multiple choice, on the bundled example, in a scratch folder."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import polars as pl
import pytest

REPO = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    """The indented command block after "From COCO to a model", continuation lines joined."""
    text = (REPO / "README.md").read_text()
    block = re.search(r"\n\n((?:    .*\n)+)", text[text.index("From COCO to a model"):]).group(1)
    commands, current = [], ""
    for line in block.splitlines():
        current += line.strip().removesuffix("\\").strip() + " "
        if not line.rstrip().endswith("\\"):
            commands.append(current.strip())
            current = ""
    return commands


@pytest.mark.slow
def test_readme_coco_path_runs_as_written(tmp_path):
    pytest.importorskip("torch")
    commands = readme_commands()
    assert [c.split()[:2] for c in commands] == [["triplegen", "coco"], ["triplegen", "generate"],
                                                 ["semclip-train", "--triples"], ["semclip-eval", "negbench"]]
    (tmp_path / "examples").symlink_to(REPO / "examples")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    outputs = []
    for command in commands:
        done = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        outputs.append(done.stdout)

    triples = pl.read_parquet(tmp_path / "out" / "coco" / "triples" / "triples.parquet")
    assert "configs:" in (tmp_path / "out" / "coco" / "triples" / "README.md").read_text()
    absent = triples.filter(pl.col("kind") != "caption")
    assert triples.filter(pl.col("kind") == "caption").height == 24
    assert absent.height == 16  # no plausible absence in the example's cat, dog, kitchen and giraffe scenes
    assert set(absent["kind"]) == {"absent-assert", "absent-swap"}
    assert (tmp_path / "runs" / "coco-demo" / "final" / "config.json").is_file()
    assert "| steps | 20 |" in (tmp_path / "runs" / "coco-demo" / "final" / "README.md").read_text()
    assert "affirmation" in outputs[-1] and "hybrid" in outputs[-1]
