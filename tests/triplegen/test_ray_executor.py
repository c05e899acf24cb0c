"""`--executor ray` on a real local Ray cluster: the same output as a local run, a lost worker's chunk
done elsewhere and written once, a killed driver resumed, and one-line errors for bad set-ups."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from tests.conftest import require
from triplegen.cli import app
from triplegen.config import GenerateConfig, RayOptions
from triplegen.orchestration.resume import WorkFolder
from triplegen.orchestration.run import generate
from triplegen.io.schema import METADATA_KEY

REPO = Path(__file__).resolve().parents[2]
ROWS = 20_000
CHUNK = 500

SUBJECTS = ["a dog", "two cats", "a man", "a woman", "three children", "a red car", "an old bus", "a small bird"]
VERBS = ["runs on", "sits on", "stands near", "walks along", "plays in", "waits beside"]
PLACES = ["the beach", "a grassy field", "the street", "a wooden bench", "the river", "a park"]


def write_captions(path: Path) -> Path:
    """20,000 rows: captions repeated across chunks (the fan-out cache), blanks, object labels."""
    rows = []
    for i in range(ROWS):
        caption = f"{SUBJECTS[i % 8]} {VERBS[i // 8 % 6]} {PLACES[i // 48 % 6]}".capitalize() + "."
        if i % 7 == 0:
            caption = caption[:-1] + f" at dusk, picture {i % 997}."
        if i % 1999 == 0:
            caption = "   "
        objects = [SUBJECTS[i % 8].split()[-1], PLACES[i // 48 % 6].split()[-1]]
        # seen with every scene, in varied sets: the plausible absent objects (one subject and one place
        # per image would make every other subject and place implausible)
        objects += [label for bit, label in enumerate(("tree", "cloud", "kite")) if i // 7 % 7 >> bit & 1]
        rows.append({"id": f"r{i:05d}", "image": f"img/{i}.jpg", "caption": caption, "objects": objects})
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The captions and the local run's output (the rules, with absent-object rows)."""
    folder = tmp_path_factory.mktemp("reference")
    captions = write_captions(folder / "captions.parquet")
    summary = generate(GenerateConfig(input=captions, output=folder / "local" / "t.parquet", chunk_size=CHUNK,
                                      absent_objects=1, quiet=True))
    return captions, summary


def assert_same_rows(local, output: Path, rejects: Path) -> None:
    assert pl.read_parquet(output).equals(pl.read_parquet(local.output))
    assert pl.read_parquet(rejects).equals(pl.read_parquet(local.rejects))


def command(captions: Path, output: Path, address: str, *extra: str) -> list[str]:
    return [sys.executable, "-c", "from triplegen.cli import main; main()", "generate", str(captions), "-o",
            str(output), "--chunk-size", str(CHUNK), "--absent-objects", "1", "--executor", "ray",
            "--ray-address", address, *extra]


def environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}


def wait_for_chunks(process: subprocess.Popen, work: WorkFolder, count: int) -> None:
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        if work.path.exists() and len(work.done_chunks()) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"the run ended (or stalled) before {count} chunks were written: {process.poll()}")


def chunk_workers() -> list[psutil.Process]:
    """The ChunkWorker actor processes of this session's cluster (the cluster is this process's child)."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if " ".join(child.cmdline()).startswith("ray::ChunkWorker"):
                found.append(child)
        except psutil.Error:
            pass
    return found


def workers_left(timeout_s: float = 30) -> list[psutil.Process]:
    """The ChunkWorker processes still alive after waiting up to `timeout_s` for them to end."""
    deadline = time.monotonic() + timeout_s
    while (left := chunk_workers()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def test_ray_run_writes_what_the_local_run_writes(ray_cluster, reference, tmp_path):
    captions, local = reference
    config = GenerateConfig(input=captions, output=tmp_path / "ray" / "t.parquet", chunk_size=CHUNK,
                            absent_objects=1, quiet=True, executor="ray", ray=RayOptions(address=ray_cluster))
    summary = generate(config)

    assert_same_rows(local, summary.output, summary.rejects)
    assert summary.rows == ROWS and summary.accepted + summary.rejected == local.accepted + local.rejected
    assert local.rejected > 0 and local.run["counts"]["absent_planned"] > 0
    ours, theirs = (json.loads(pq.read_schema(p).metadata[METADATA_KEY]) for p in (summary.output, local.output))
    assert ours["config"]["executor"] == "ray" and ours["config"]["ray"]["address"] == ray_cluster
    # the rows, reasons and prompt are the same; how much work it took (fan-out per worker) may differ
    for key in ("backend", "model", "prompt", "absent_prompt", "reject_reasons", "triplegen_version"):
        assert ours[key] == theirs[key], key
    assert {k: ours["counts"][k] for k in ("rows", "accepted", "rejected", "absent_planned", "absent_accepted")} \
        == {k: theirs["counts"][k] for k in ("rows", "accepted", "rejected", "absent_planned", "absent_accepted")}
    assert summary.card.read_text().splitlines()[0] == local.card.read_text().splitlines()[0]
    assert not WorkFolder(summary.output).path.exists()
    assert workers_left() == []  # the run stopped its workers; the cluster itself is the session's


def test_a_killed_worker_has_its_chunks_done_elsewhere_and_written_once(ray_cluster, reference, tmp_path):
    captions, local = reference
    output = tmp_path / "t.parquet"
    run = subprocess.Popen(command(captions, output, ray_cluster), env=environment(),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_chunks(run, WorkFolder(output), 2)
    workers = chunk_workers()
    assert len(workers) == 2, workers
    workers[0].send_signal(signal.SIGKILL)
    _, stderr = run.communicate(timeout=300)

    assert run.returncode == 0, stderr
    assert "was lost" in stderr and "goes back in the queue" in stderr and "replacement worker" in stderr
    assert_same_rows(local, output, output.with_name("t.rejects.parquet"))


def test_a_killed_driver_resumes_without_repeating_finished_chunks(ray_cluster, reference, tmp_path):
    captions, local = reference
    output = tmp_path / "t.parquet"
    work = WorkFolder(output)
    first = subprocess.Popen(command(captions, output, ray_cluster), env=environment(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_chunks(first, work, 3)
    first.send_signal(signal.SIGKILL)
    first.wait()
    finished = work.done_chunks()
    assert 3 <= len(finished) < ROWS // CHUNK and not output.exists()
    before = {i: work.marker(i).stat().st_mtime_ns for i in finished}
    assert workers_left() == []  # Ray ends the actors of a dead driver

    changed = subprocess.run(command(captions, output, ray_cluster, "--seed", "1"), env=environment(),
                             capture_output=True, text=True, timeout=120)
    assert changed.returncode == 2 and "different seed" in changed.stderr and "Traceback" not in changed.stderr
    assert {i: work.marker(i).stat().st_mtime_ns for i in finished} == before

    second = subprocess.Popen(command(captions, output, ray_cluster), env=environment(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    # while the rerun works, the chunks the first run finished stay untouched
    deadline = time.monotonic() + 300
    while second.poll() is None and time.monotonic() < deadline:
        if work.path.exists():
            now = {i: work.marker(i).stat().st_mtime_ns for i in finished if work.marker(i).exists()}
            assert all(now[i] == before[i] for i in now)
        time.sleep(0.05)
    _, stderr = second.communicate(timeout=60)
    assert second.returncode == 0, stderr
    assert f"Resuming: {len(finished)} chunk(s)" in stderr
    assert_same_rows(local, output, output.with_name("t.rejects.parquet"))


def test_a_ray_run_killed_near_the_end_is_finished_then_complete_on_reruns(ray_cluster, tmp_path, monkeypatch):
    """The driver killed after the final files were written, before its clean-up; the same command then
    finishes it, and once more finds it complete (Slurm --requeue) without writing anything."""
    pq.write_table(pa.table({"id": [f"r{i}" for i in range(120)],
                             "caption": [f"A dog number {i} runs on the beach." for i in range(120)]}),
                   tmp_path / "c.parquet")
    output = tmp_path / "out"
    config = GenerateConfig(input=tmp_path / "c.parquet", output=output, chunk_size=40, quiet=True, executor="ray",
                            ray=RayOptions(address=ray_cluster, workers=1))
    monkeypatch.setattr(WorkFolder, "remove", lambda self: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        generate(config)
    monkeypatch.undo()
    rerun = [sys.executable, "-c", "from triplegen.cli import main; main()", "generate", str(tmp_path / "c.parquet"),
             "-o", str(output), "--chunk-size", "40", "--executor", "ray", "--ray-address", ray_cluster, "-q"]
    finished = subprocess.run(rerun, env=environment(), capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0 and "120 accepted" in finished.stdout, finished.stderr
    before = {p.name: p.stat().st_mtime_ns for p in output.iterdir()}
    again = subprocess.run(rerun, env=environment(), capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "already complete" in again.stdout, again.stderr
    assert {p.name: p.stat().st_mtime_ns for p in output.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.parquet", "out"]


def test_a_wrong_address_is_one_line_not_a_hang(tmp_path):
    require("ray", "the error comes from joining a Ray cluster", "SEMCLIP_REQUIRE_RAY")
    captions = write_small(tmp_path / "c.parquet")
    port = free_port()  # nothing listens there
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", "from triplegen.cli import main; main()", "generate", str(captions),
         "-o", str(tmp_path / "t.parquet"), "--executor", "ray", "--ray-address", f"127.0.0.1:{port}"],
        env=environment(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and time.monotonic() - started < 60
    assert result.stderr.strip().splitlines()[-1].startswith("error: --ray-address 127.0.0.1:")
    assert "no Ray head answers there" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("flags, message", [
    (["--ray-gpus-per-worker", "1"], "a worker needs 1 GPU(s) but the Ray cluster has 0"),
    (["--model", "some/model"], "a worker needs 1 GPU(s) but the Ray cluster has 0 (--ray-gpus-per-worker 0"),
    (["--ray-cpus-per-worker", "4"], "a worker needs 4 CPU(s) (--ray-cpus-per-worker) but the Ray cluster has 2"),
    (["--data-parallel-size", "2", "--model", "m"], "with --executor ray each worker is one engine"),
])
def test_set_ups_the_cluster_cannot_hold_are_refused_in_one_line(ray_cluster, tmp_path, flags, message):
    captions = write_small(tmp_path / "c.parquet")
    result = CliRunner().invoke(app, ["generate", str(captions), "-o", str(tmp_path / "t.parquet"), "--executor",
                                      "ray", "--ray-address", ray_cluster, *flags])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_without_ray_installed_the_error_names_the_extra(tmp_path):
    captions = write_small(tmp_path / "c.parquet")
    hide_ray = "import sys; sys.modules['ray'] = None; from triplegen.cli import main; main()"
    result = subprocess.run([sys.executable, "-c", hide_ray, "generate", str(captions), "-o",
                             str(tmp_path / "t.parquet"), "--executor", "ray"],
                            env=environment(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == "error: --executor ray needs the 'ray' package: pip install 'semclip[ray]'"
    # nothing was started: the same command runs locally afterwards
    local = subprocess.run([sys.executable, "-c", "from triplegen.cli import main; main()", "generate",
                            str(captions), "-o", str(tmp_path / "t.parquet"), "-q"],
                           env=environment(), capture_output=True, text=True, timeout=120)
    assert local.returncode == 0, local.stderr


@pytest.mark.parametrize("settings, cluster, shape", [
    ({}, {"CPU": 16.0}, (1.0, 0.0, 16)),  # rules: one worker per CPU
    ({"model": "m"}, {"CPU": 64.0, "GPU": 8.0}, (1.0, 1.0, 8)),  # vllm: one engine per GPU
    ({"model": "m", "engine": {"tensor_parallel_size": 4}}, {"CPU": 64.0, "GPU": 8.0}, (1.0, 4.0, 2)),
    ({"model": "m", "ray": {"gpus_per_worker": 0, "cpus_per_worker": 4}}, {"CPU": 16.0}, (4.0, 0.0, 4)),
    ({"server": {"base_urls": ["http://h:8000/v1"], "concurrency": 3}}, {"CPU": 16.0}, (1.0, 0.0, 3)),
    # more than fit now, or GPUs the cluster does not have yet: they start as an autoscaler adds room
    ({"ray": {"workers": 40}}, {"CPU": 16.0}, (1.0, 0.0, 40)),
    ({"model": "m", "ray": {"workers": 64}}, {"CPU": 4.0}, (1.0, 1.0, 64)),
])
def test_workers_fill_the_cluster_by_default(settings, cluster, shape):
    from triplegen.orchestration.executors.ray_pool import worker_shape

    config = GenerateConfig(input="c.parquet", output="t.parquet", executor="ray", **settings)
    assert worker_shape(config, cluster) == shape


def test_each_worker_gets_its_share_of_the_concurrency():
    from triplegen.orchestration.executors.ray_pool import worker_config

    config = GenerateConfig(input="c.parquet", output="t.parquet", executor="ray",
                            server={"base_urls": ["http://h:8000/v1"], "concurrency": 100})
    assert worker_config(config, 8).server.concurrency == 13 and config.server.concurrency == 100


def write_small(path: Path) -> Path:
    pq.write_table(pa.table({"id": ["a", "b"], "caption": ["A dog runs on the beach.", "Two cats sleep."]}), path)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
