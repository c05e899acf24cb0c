"""Resume state: finished chunks are kept, a run with other settings is refused."""

from __future__ import annotations

import re

import pytest

from triplegen.errors import TripleGenError
from triplegen.orchestration.records import ChunkSummary
from triplegen.orchestration.resume import WorkFolder

FINGERPRINT = {"prompt_hash": "abc", "model": "rules", "backend": "rules", "seed": 0, "input": {"files": []}}


def test_finished_chunks_survive_a_restart_with_the_same_settings(tmp_path):
    folder = WorkFolder(tmp_path / "out.parquet")
    assert folder.open(FINGERPRINT, overwrite=False) == 0
    folder.mark_done(0, ChunkSummary(chunk=0, rows=3, accepted=3, rejected=0))
    folder.mark_done(2, ChunkSummary(chunk=2, rows=2, accepted=1, rejected=1))
    again = WorkFolder(tmp_path / "out.parquet")
    assert again.open(dict(FINGERPRINT), overwrite=False) == 2
    assert again.is_done(2) and not again.is_done(1)
    assert [s.accepted for s in again.summaries()] == [3, 1]


@pytest.mark.parametrize("key, value, label", [
    ("prompt_hash", "def", "prompt (hash)"), ("model", "qwen", "model"), ("seed", 1, "seed"),
    ("input", {"files": ["x"]}, "input"), ("backend", "vllm", "backend"),
])
def test_changed_settings_are_refused_unless_overwrite(tmp_path, key, value, label):
    folder = WorkFolder(tmp_path / "out.parquet")
    folder.open(FINGERPRINT, overwrite=False)
    folder.mark_done(0, ChunkSummary(chunk=0, rows=0, accepted=0, rejected=0))
    changed = {**FINGERPRINT, key: value}
    with pytest.raises(TripleGenError, match=rf"different {re.escape(label)}.*--overwrite to start over"):
        WorkFolder(tmp_path / "out.parquet").open(changed, overwrite=False)
    assert WorkFolder(tmp_path / "out.parquet").open(changed, overwrite=True) == 0
    assert not folder.is_done(0)


def test_an_existing_final_output_is_refused_without_overwrite(tmp_path):
    (tmp_path / "out.parquet").write_bytes(b"x")
    with pytest.raises(TripleGenError, match="already exists; pass --overwrite"):
        WorkFolder(tmp_path / "out.parquet").open(FINGERPRINT, overwrite=False)
    assert WorkFolder(tmp_path / "out.parquet").open(FINGERPRINT, overwrite=True) == 0


# -- a real run killed with SIGKILL at several moments, then finished by the same command ------------

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tests.triplegen.test_reliability import interrupt_after_chunks

REPO = Path(__file__).resolve().parents[2]
SUBJECTS = ["A dog", "Two cats", "A man", "A woman", "Three birds", "A child", "An old car", "A red bus"]
ACTIONS = ["runs on the beach", "sleeps on a sofa", "rides a horse", "sits near a window", "is eating an apple",
           "stands next to a tree", "waits at the station", "plays with a ball"]


def _big_input(path: Path, rows: int) -> Path:
    captions = [f"{SUBJECTS[i % 8]} {ACTIONS[(i // 8) % 8]} in picture {i}." for i in range(rows)]
    pq.write_table(pa.table({"id": [f"row{i}" for i in range(rows)], "caption": captions}), path)
    return path


def _command(input: Path, output: Path) -> list[str]:
    return [sys.executable, "-c", "from triplegen.cli import main; main()", "generate", str(input), "-o", str(output),
            "--chunk-size", "250", "--quiet"]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def _markers(output: Path) -> int:
    return len(list(output.with_name(output.name + ".parts").glob("*.done")))


def _kill_when(process, output: Path, markers: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while _markers(output) < markers and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(random.uniform(0, 0.05))  # land somewhere inside the next chunk or its writes
    process.send_signal(signal.SIGKILL)
    process.wait()


def test_a_run_killed_with_sigkill_resumes_to_every_id_exactly_once(tmp_path):
    random.seed(0)
    input = _big_input(tmp_path / "caps.parquet", 6000)  # 24 chunks
    output = tmp_path / "out" / "triples.parquet"
    progress = []
    for wanted in (0, 3, 9, 15):  # at start-up, then ever later in the run
        process = subprocess.Popen(_command(input, output), env=_env(), stderr=subprocess.PIPE)
        if wanted == 0:
            time.sleep(0.5)
            process.send_signal(signal.SIGKILL)
            process.wait()
        else:
            _kill_when(process, output, wanted)
        assert process.returncode == -signal.SIGKILL, process.stderr.read().decode()
        progress.append(_markers(output))
    assert not output.exists() and progress[-1] >= 15
    finished = subprocess.run(_command(input, output), env=_env(), capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr

    rejects = output.with_name("triples.rejects.parquet")
    ids = pq.read_table(output).column("id").to_pylist() + pq.read_table(rejects).column("id").to_pylist()
    assert sorted(ids) == sorted(f"row{i}" for i in range(6000)) and len(ids) == len(set(ids))
    assert not output.with_name(output.name + ".parts").exists()

    clean = tmp_path / "clean" / "triples.parquet"  # the same command, never interrupted
    assert subprocess.run(_command(input, clean), env=_env(), capture_output=True).returncode == 0
    assert pq.read_table(output).equals(pq.read_table(clean))


def test_a_kill_after_the_final_files_were_written_still_finishes(tmp_path, monkeypatch):
    from triplegen.config import GenerateConfig
    from triplegen.orchestration.run import generate

    input = _big_input(tmp_path / "caps.parquet", 600)
    config = GenerateConfig(input=input, output=tmp_path / "t.parquet", chunk_size=100, quiet=True)

    def killed(self):
        raise KeyboardInterrupt  # stands in for SIGKILL between the final rename and the clean-up

    monkeypatch.setattr(WorkFolder, "remove", killed)
    with pytest.raises(KeyboardInterrupt):
        generate(config)
    monkeypatch.undo()
    assert config.output.exists() and WorkFolder(config.output).path.exists()
    summary = generate(config)  # the same command again: resumes (all chunks done), no --overwrite needed
    assert summary.resumed_chunks == 6 and summary.rows == 600
    assert not WorkFolder(config.output).path.exists()


def test_a_rerun_with_another_prompt_is_refused(tmp_path, monkeypatch):
    from triplegen.config import GenerateConfig
    from triplegen.orchestration.run import generate

    input = _big_input(tmp_path / "caps.parquet", 300)
    config = GenerateConfig(input=input, output=tmp_path / "t.parquet", chunk_size=100, quiet=True)
    monkeypatch.setattr(WorkFolder, "remove", lambda self: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        generate(config)
    monkeypatch.undo()
    other = tmp_path / "prompts" / "default.yaml"
    other.parent.mkdir()
    from triplegen.templates import load_template, packaged_files

    default = next(f for f in packaged_files() if f.name == "default.yaml")
    version = load_template("default").version
    other.write_text(default.read_text().replace(f'version: "{version}"', f'version: "{version}.1"'))
    with pytest.raises(TripleGenError, match=r"different .*prompt \(hash\)"):
        generate(config.model_copy(update={"prompt": str(other)}))
    with pytest.raises(TripleGenError, match="different seed"):
        generate(config.model_copy(update={"seed": 3}))
    assert generate(config.model_copy(update={"seed": 3, "overwrite": True})).rows == 300


# -- what a run depends on beyond its finished chunks; what it writes where -------------------------

SCENES = [["dog", "ball"], ["dog", "tree"], ["cat", "sofa"], ["cat", "lamp"], ["dog", "grass"], ["cat", "bed"]]


def _objects_input(path: Path, rows: int = 40) -> Path:
    """JSON lines with object labels: an edit that swaps a label for one of the same length keeps the size."""
    lines = [json.dumps({"id": f"r{i:03d}", "caption": f"A pet number {i} rests in the house.",
                         "objects": SCENES[i % len(SCENES)]}) for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _edit_in_place(path: Path, old: str, new: str, after: int) -> None:
    """Replace `old` by `new` (same length) from character `after` on, keeping size and modification time."""
    before = path.stat()
    text = path.read_text()
    path.write_text(text[:after] + text[after:].replace(old, new))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)


def test_unfinished_rows_edited_in_place_are_refused_or_redone_as_a_fresh_run_would(tmp_path):
    from triplegen.config import GenerateConfig
    from triplegen.orchestration.run import generate

    source = _objects_input(tmp_path / "caps.jsonl")

    def make(name: str) -> GenerateConfig:
        return GenerateConfig(input=source, output=tmp_path / name, chunk_size=10, absent_objects=1, quiet=True)

    config = make("t.parquet")
    with pytest.raises(KeyboardInterrupt):
        interrupt_after_chunks(config, 2)  # rows r000-r019 finished, r020-r039 not
    unfinished = source.read_text().index('"r020"')

    # object labels of unfinished rows: the vocabulary, counted over the whole input, changes
    _edit_in_place(source, '"cat", "sofa"', '"dog", "sofa"', unfinished)
    fresh = generate(make("fresh.parquet"))
    with pytest.raises(TripleGenError, match=r"different input \(its object labels"):
        generate(config)
    assert len(WorkFolder(config.output).done_chunks()) == 2 and not config.output.exists()
    _edit_in_place(source, '"dog", "sofa"', '"cat", "sofa"', unfinished)  # back as it was: it resumes

    # captions of unfinished rows: only those rows depend on them, and they are generated now
    _edit_in_place(source, "rests in the house", "sleeps in the hall", unfinished)
    resumed = generate(config)
    assert resumed.resumed_chunks == 2
    clean = generate(make("clean.parquet"))
    assert pq.read_table(resumed.output).equals(pq.read_table(clean.output))
    assert not pq.read_table(fresh.output).equals(pq.read_table(clean.output))  # the label edit mattered


def test_a_parts_folder_that_is_a_link_is_refused_and_never_written_through(tmp_path):
    from typer.testing import CliRunner

    from triplegen.cli import app

    inputs = tmp_path / "inputs"
    inputs.mkdir()
    source = _big_input(inputs / "caps.parquet", 30)
    before = {p.name: p.read_bytes() for p in inputs.iterdir()}
    output = tmp_path / "out" / "t.parquet"
    output.parent.mkdir()
    output.with_name("t.parquet.parts").symlink_to(inputs)
    for extra in ([], ["--overwrite"]):
        result = CliRunner().invoke(app, ["generate", str(source), "-o", str(output), "-q", *extra])
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        assert result.output.startswith("error: ") and result.output.count("\n") == 1
        assert "is a symbolic link" in result.output
    assert {p.name: p.read_bytes() for p in inputs.iterdir()} == before
    assert sorted(p.name for p in output.parent.iterdir()) == ["t.parquet.parts"]


def test_a_run_that_fails_before_generating_leaves_nothing_behind(tmp_path):
    """The missing-vLLM error (vLLM hidden from the import system) comes before any chunk: no work folder,
    no output folder; a run that had finished chunks keeps them."""
    source = _big_input(tmp_path / "caps.parquet", 30)
    hide_vllm = "import sys; sys.modules['vllm'] = None; from triplegen.cli import main; main()"
    failed = subprocess.run([sys.executable, "-c", hide_vllm, "generate", str(source), "-o",
                             str(tmp_path / "out" / "llm.parquet"), "--model", "some/model"],
                            env=_env(), capture_output=True, text=True, timeout=120)
    assert failed.returncode == 2 and "needs the 'vllm' package" in failed.stderr, failed.stderr
    assert "Traceback" not in failed.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["caps.parquet"]
