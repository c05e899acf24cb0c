"""Where the benchmarks and tests find SugarCrepe++ (benchmarks/sugarcrepe_data.py): one documented way
(`--data-dir`, else SEMCLIP_SUGARCREPE_PP_DIR), and one line with exit code 2 when it is not there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FILES = ("replace_att", "replace_obj", "replace_rel", "swap_att", "swap_obj")

# Every benchmark that reads SugarCrepe++, with the other arguments it requires.
BENCHMARKS = {"checks_on_sugarcrepe.py": [], "rules_quality.py": [], "rules_open_vocabulary.py": [],
              "absent_quality.py": [], "blind_thresholds.py": ["--model", "models/smollm2"],
              "llm_backends.py": [], "llm_quality.py": [], "absent_llm.py": ["--model-dir", "models/smollm2"]}


def _run(script: str, *args: str, **environment: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), **environment}
    return subprocess.run([sys.executable, str(REPO / "benchmarks" / script), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def _tiny_sugarcrepe(folder: Path) -> Path:
    folder.mkdir()
    for name in FILES:
        items = [{"id": i, "filename": f"{i}.jpg", "caption": "A dog runs on a beach.",
                  "caption2": "On a beach, a dog is running.", "negative_caption": "A cat runs on a beach."}
                 for i in range(2)]
        (folder / f"{name}.json").write_text(json.dumps(items))
    return folder


def test_every_benchmark_that_reads_sugarcrepe_is_listed_here():
    readers = {p.name for p in (REPO / "benchmarks").glob("*.py") if "sugarcrepe_files" in p.read_text()
               and p.name != "sugarcrepe_data.py"}
    assert readers == set(BENCHMARKS)


@pytest.mark.parametrize("script", list(BENCHMARKS))
def test_a_benchmark_without_sugarcrepe_stops_with_one_line_and_exit_2(script, tmp_path):
    done = _run(script, "--data-dir", str(tmp_path / "nowhere"), *BENCHMARKS[script])
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done
    assert lines[0].startswith(f"error: no SugarCrepe++ JSON files in {tmp_path / 'nowhere'}")
    assert "github.com/Sri-Harsha/scpp" in lines[0] and "SEMCLIP_SUGARCREPE_PP_DIR" in lines[0]


def test_a_partial_folder_names_the_missing_files(tmp_path):
    folder = _tiny_sugarcrepe(tmp_path / "scpp")
    (folder / "swap_obj.json").unlink()
    done = _run("checks_on_sugarcrepe.py", "--data", str(folder))  # --data: the option's earlier name
    assert done.returncode == 2 and done.stderr.startswith(f"error: SugarCrepe++ in {folder} lacks swap_obj.json;")


def test_the_environment_variable_points_benchmarks_and_tests_at_the_data(tmp_path):
    folder = _tiny_sugarcrepe(tmp_path / "scpp")
    done = _run("checks_on_sugarcrepe.py", SEMCLIP_SUGARCREPE_PP_DIR=str(folder))
    assert done.returncode == 0, done
    assert "| human paraphrases (10) | hard negatives: replace_att (2) |" in done.stdout
    found = subprocess.run([sys.executable, "-c", "from tests.conftest import SUGARCREPE_DIR; print(SUGARCREPE_DIR)"],
                           cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO), "SEMCLIP_SUGARCREPE_PP_DIR": str(folder)},
                           capture_output=True, text=True)
    assert found.stdout.strip() == str(folder), found
