"""A full disk is one line naming the path and the free space, never a traceback, in every command
that writes; the temporary files are gone, the inputs unchanged, and generate resumes once there
is room. Each test writes to a real small tmpfs (mounting needs root, as in CI; elsewhere they skip).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from semclip_core.cli_errors import Command
from semclip_core.disk_full import DiskFull
from semclip_core.files import atomic_path
from triplegen.cli import app

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "captions.parquet"
COCO = REPO / "examples" / "coco"
CAPTIONS_JSON = COCO / "annotations" / "captions_val2017.json"
runner = CliRunner()


@pytest.fixture
def small_disk(tmp_path):
    """`small_disk(size, full=False)`: a fresh tmpfs of `size` (e.g. "48k"), filled up when `full`;
    every one is unmounted when the test ends."""
    mounts: list[Path] = []

    def mount(size: str, full: bool = False) -> Path:
        if os.geteuid() != 0:
            pytest.skip("a small tmpfs to fill needs root to mount (CI runs the tests as root)")
        point = tmp_path / f"disk{len(mounts)}"
        point.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounts.append(point)
        if full:
            fill(point)
        return point

    yield mount
    for point in reversed(mounts):
        if subprocess.run(["umount", str(point)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(point)], capture_output=True)


def fill(folder: Path) -> None:
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)


def invoke(*args, target=app):
    return runner.invoke(target, [str(a) for a in args])


def disk_full_line(result, path: Path) -> str:
    """The result is exit 2 and exactly one line: no space, the path, the free space there."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"error: no space left on device writing {path}"), lines[0]
    assert "free on " in lines[0] and lines[0].endswith("free some space and rerun the same command"), lines[0]
    return lines[0]


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_generate_on_a_full_disk_is_one_line_and_the_same_command_resumes(small_disk, tmp_path):
    disk = small_disk("48k")
    args = ["generate", EXAMPLE, "-o", disk / "t", "--chunk-size", 50, "-q"]
    line = disk_full_line(invoke(*args), disk / "t" / "triples.parquet.parts" / "chunk-")
    assert "0 B free on" in line or "kB free on" in line
    parts = disk / "t" / "triples.parquet.parts"
    assert (parts / "chunk-000000.done").exists() and not leftovers(disk)  # finished chunks kept
    subprocess.run(["mount", "-o", "remount,size=8m", str(disk)], check=True)
    assert invoke(*args).exit_code == 0
    fresh = tmp_path / "fresh"
    assert invoke("generate", EXAMPLE, "-o", fresh, "--chunk-size", 50, "-q").exit_code == 0
    for name in ("triples.parquet", "rejects.parquet"):
        assert pq.read_table(disk / "t" / name).equals(pq.read_table(fresh / name))
    assert not parts.exists()


def test_generate_lock_write_on_a_full_disk_is_one_line(small_disk):
    disk = small_disk("16k", full=True)
    disk_full_line(invoke("generate", EXAMPLE, "-o", disk / "t.parquet", "-q"), disk / ".t.parquet.lock")
    assert not (disk / ".t.parquet.lock").exists()


@pytest.mark.parametrize("command", ["validate --write-clean", "coco -o", "merge -o", "view -o"])
def test_each_writing_command_on_a_full_disk_is_one_line(command, small_disk, tmp_path):
    triples = tmp_path / "t"
    assert invoke("generate", EXAMPLE, "-o", triples, "-q").exit_code == 0
    inputs = [triples / "triples.parquet", triples / "rejects.parquet", CAPTIONS_JSON]
    before = [digest(path) for path in inputs]
    disk = small_disk("16k", full=True)
    target = disk / ("out.html" if command == "view -o" else "out.parquet")
    args = {"validate --write-clean": ["validate", triples, "--write-clean", target],
            "coco -o": ["coco", CAPTIONS_JSON, "-o", target],
            "merge -o": ["merge", triples / "triples.parquet", "-o", target],
            "view -o": ["view", triples, "-o", target]}[command]
    disk_full_line(invoke(*args), target)
    assert not target.exists() and not leftovers(disk)
    assert [digest(path) for path in inputs] == before


def test_a_write_outside_triplegen_files_that_fills_the_disk_is_one_line_at_the_entry(small_disk):
    disk = small_disk("16k", full=True)
    tool = typer.Typer()

    @tool.command(cls=Command)
    def log(path: Path) -> None:  # a library appending on its own, as a log or tracker does
        with open(path, "a") as handle:
            handle.write("x" * 100_000)

    result = runner.invoke(tool, [str(disk / "log.txt")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.startswith("error: no space left on device") and result.output.count("\n") == 1


# semclip-train and semclip-eval (the train extra)

@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    pytest.importorskip("torch", reason="semclip-train and semclip-eval need the train extra")
    from semclip_train.training.cli import app as train_app

    root = tmp_path_factory.mktemp("trained")
    triples = root / "coco"
    assert invoke("coco", CAPTIONS_JSON, "-o", root / "c.parquet", "--image-prefix", "val2017/").exit_code == 0
    assert invoke("generate", root / "c.parquet", "-o", triples, "-q").exit_code == 0
    run = root / "run"
    assert invoke(*train_args(triples, run, steps=2), target=train_app).exit_code == 0
    return {"triples": triples, "model": run / "final"}


def train_args(triples: Path, output: Path, steps: int) -> list:
    return ["--triples", triples, "--image-root", COCO, "--model-config", REPO / "examples" / "tiny-clip",
            "--output", output, "--max-steps", steps, "--batch-size", 8, "--val-fraction", 0, "--lr", "1e-3",
            "--workers", 0]


def test_a_training_checkpoint_on_a_full_disk_is_one_line(trained, small_disk):
    from semclip_train.training.cli import app as train_app

    disk = small_disk("200k")
    result = invoke(*train_args(trained["triples"], disk / "run", steps=20), target=train_app)
    disk_full_line(result, disk / "run" / "checkpoints" / "step-")
    assert not leftovers(disk)


@pytest.mark.parametrize("option", ["--json", "--cache-dir"])
def test_evaluation_outputs_on_a_full_disk_are_one_line(option, trained, small_disk):
    from semclip_train.evaluation.eval_cli import app as eval_app

    disk = small_disk("16k", full=True)
    target = disk / ("e.json" if option == "--json" else "cache")
    result = invoke("negbench", "--model", trained["model"], "--data", COCO / "negbench_mcq.csv", "--image-root",
                    COCO, option, target, target=eval_app)
    disk_full_line(result, target)
    assert not leftovers(disk)


def test_torch_save_that_fills_the_disk_is_disk_full(small_disk):
    torch = pytest.importorskip("torch", reason="torch.save is what training checkpoints use")
    disk = small_disk("64k")
    with pytest.raises(DiskFull, match=f"no space left on device writing {disk / 'state.pt'}"):
        with atomic_path(disk / "state.pt") as temp:
            torch.save({"weights": torch.zeros(100_000)}, temp)
    assert not list(disk.iterdir())
