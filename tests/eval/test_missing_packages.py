"""The installed commands, run where an optional package cannot be imported: one line with the
install command before any work, never a traceback or a failure after the whole evaluation.

The packages are hidden from a real subprocess of the real console script by a `sitecustomize`
that makes their import fail, as on a machine where they were never installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.eval.test_eval_safety import save_model

REPO = Path(__file__).resolve().parents[2]
BLOCKER = '''\
import os, sys

BLOCKED = set(os.environ["SEMCLIP_TEST_UNINSTALLED"].split(","))


class Uninstalled:
    """Every import of a blocked package fails as if it were not installed."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, Uninstalled())
'''


def command(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert found, f"the {name} console script is not installed (pip install -e .)"
    return found


def run_without(tmp_path: Path, packages: str, *args: str) -> subprocess.CompletedProcess:
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(BLOCKER)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "SEMCLIP_TEST_UNINSTALLED": packages,
           "PYTHONPATH": os.pathsep.join([str(site), str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([command(args[0]), *args[1:]], capture_output=True, text=True, env=env, timeout=300,
                          cwd=tmp_path)


def one_line(done: subprocess.CompletedProcess, message: str) -> str:
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], done.stderr
    return lines[0]


def test_the_blocker_really_hides_the_package(tmp_path):
    done = run_without(tmp_path, "torch", sys.executable, "-c", "import torch")
    assert done.returncode == 1 and "No module named 'torch'" in done.stderr


@pytest.mark.parametrize("args", [
    ["semclip-train", "--triples", "t.parquet", "--model-config", "tiny", "-o", "run"],
    ["semclip-eval", "synthetic", "--model", "m"],
    ["semclip-eval", "ccneg-convert", "ccneg.pt", "-o", "ccneg.parquet"],
])
def test_the_commands_without_the_train_extra_say_how_to_install_it(tmp_path, args):
    done = run_without(tmp_path, "torch,transformers", *args)
    line = one_line(done, "needs PyTorch and transformers (torch cannot be imported")
    assert "pip install 'semclip[train]'" in line and "https://download.pytorch.org/whl/cpu" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]  # nothing written
    subcommand = [arg for arg in args[1:2] if not arg.startswith("-")]
    assert run_without(tmp_path, "torch,transformers", args[0], *subcommand, "--help").returncode == 0


def test_plot_without_matplotlib_fails_before_the_evaluation(tmp_path, tiny_model):
    done = run_without(tmp_path, "matplotlib", "semclip-eval", "synthetic", "--model", str(tiny_model),
                       "--count", "8", "--plot", str(tmp_path / "p.png"), "--json", str(tmp_path / "r.json"))
    one_line(done, "--plot needs matplotlib: pip install 'semclip[plot]'")
    assert done.stdout == "" and not (tmp_path / "r.json").exists()  # no table, no results: nothing was evaluated


def test_piped_output_starts_with_the_results_not_blank_lines(tmp_path, tiny_model):
    done = run_without(tmp_path, "nothing", "semclip-eval", "synthetic", "--model", str(tiny_model), "--count", "8")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].strip().startswith("synthetic:"), repr(done.stdout[:200])
    assert done.stderr.strip() == "", done.stderr  # no progress bar off a terminal


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return save_model(tmp_path_factory.mktemp("tiny") / "model")
