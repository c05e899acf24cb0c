"""A server or engine that dies is not bad output: the run stops, rejects nothing for it, and the same
command finishes it later with every id exactly once (a real vLLM server and engine, killed)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import require
from tests.llm.conftest import TINY_MODEL_NAME, ServerProcess, free_port
from tests.llm.fault_proxy import FaultProxy
from tests.llm.test_generate_e2e import assert_validates, ids_once, pinned_template, write_captions  # noqa: F401
from triplegen.orchestration.resume import WorkFolder

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def generate_command(captions: Path, output: Path, *options: str) -> list[str]:
    return [sys.executable, "-c", "from triplegen.cli import main; main()", "generate", str(captions),
            "-o", str(output), "--chunk-size", "8", *options]


def wait_for_a_finished_chunk(process: subprocess.Popen, work: WorkFolder, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while process.poll() is None and time.monotonic() < deadline:
        if work.path.exists() and work.done_chunks():
            return
        time.sleep(0.05)
    raise AssertionError(f"no chunk finished (exit code {process.poll()}): {process.stderr.read()}")


def assert_stopped_cleanly(stderr: str, returncode: int, names: str) -> str:
    """Exit code 3 and one line naming what failed; no traceback, no other error line."""
    assert returncode == 3, stderr
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and names in errors[0], stderr
    return errors[0]


def assert_nothing_rejected_for_it(work: WorkFolder) -> list[int]:
    finished = work.done_chunks()
    assert finished, "the finished chunks were not kept"
    for summary in work.summaries():
        assert "backend_error" not in summary.reject_reasons, summary
    assert sorted(p.name for p in work.path.glob("chunk-*.parquet") if "rejects" not in p.name) == [
        work.part(i).name for i in finished]  # the unfinished chunk wrote nothing
    return finished


def test_a_killed_server_stops_the_run_in_under_a_minute_and_the_same_command_finishes_it(
        tiny_llama_dir, tiny_server, pinned_template, tmp_path):  # noqa: F811
    port = free_port()
    server = ServerProcess(tiny_llama_dir, TINY_MODEL_NAME, tmp_path / "killed-server.log", port=port)
    try:
        server.wait_ready()
        captions = write_captions(tmp_path / "caps.parquet", 64)
        output = tmp_path / "t.parquet"
        command = generate_command(captions, output, "--base-url", server.base_url, "--model", TINY_MODEL_NAME,
                                   "--prompt", str(pinned_template), "--concurrency", "2")
        first = subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        work = WorkFolder(output)
        wait_for_a_finished_chunk(first, work)
        server.kill()
        killed = time.monotonic()
        _, stderr = first.communicate(timeout=120)
        stopped_after = time.monotonic() - killed
    finally:
        server.stop()
    assert stopped_after < 60, stopped_after  # the default --max-outage-s is 30
    line = assert_stopped_cleanly(stderr, first.returncode, server.base_url)
    assert "run the same command again" in line
    finished = assert_nothing_rejected_for_it(work)
    assert len(finished) < 8 and not output.exists()

    # The server is back at the same address (the session's server, behind a proxy on that port).
    with FaultProxy(tiny_server.base_url.removesuffix("/v1"), port=port):
        second = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=400)
    assert second.returncode == 0, second.stderr
    assert f"Resuming: {len(finished)} chunk(s)" in second.stderr
    out, rej = ids_once(output, output.with_name("t.rejects.parquet"), {f"cap-{i:03d}" for i in range(64)})
    assert "backend_error" not in set(rej["reason"])
    assert_validates(output)


def test_an_engine_that_dies_stops_the_run_without_rejecting_its_rows(tiny_llama_dir, pinned_template, tmp_path):  # noqa: F811
    require("vllm", "the generate subprocess runs the real engine")
    import psutil

    captions = write_captions(tmp_path / "caps.parquet", 400)
    output = tmp_path / "t.parquet"
    command = generate_command(captions, output, "--model", str(tiny_llama_dir), "--prompt", str(pinned_template),
                               "--dtype", "float32", "--enforce-eager", "--max-model-len", "512")
    first = subprocess.Popen(command, env={**ENV, "VLLM_CPU_KVCACHE_SPACE": "1"}, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    work = WorkFolder(output)
    try:
        wait_for_a_finished_chunk(first, work)
        engines = [p for p in psutil.Process(first.pid).children(recursive=True) if "EngineCore" in p.name()]
        assert engines, "no engine process found"
        for engine in engines:
            engine.kill()
        _, stderr = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert_stopped_cleanly(stderr, first.returncode, f"the vLLM engine for {tiny_llama_dir} failed")
    finished = assert_nothing_rejected_for_it(work)
    assert len(finished) < 50 and not output.exists()
    rows = pl.concat([pl.read_parquet(work.rejects_part(i)) for i in finished])
    assert "backend_error" not in set(rows["reason"])
