"""Servers that fail without dying: one that refuses every request (set up wrong for the run) and one
that stops answering (SIGSTOP, a hung process). Neither is bad rows: the run stops with one line and
exit code 3, rejects nothing, and keeps what is done (a real vLLM server, behind the fault proxy)."""

from __future__ import annotations

import hashlib
import subprocess
import time

import pytest
import yaml

from tests.llm.conftest import TINY_MODEL_NAME
from tests.llm.fault_proxy import FaultProxy
from tests.llm.test_generate_e2e import PINNED_TEMPLATE, pinned_template, write_captions  # noqa: F401
from tests.llm.test_outage import (
    ENV, assert_nothing_rejected_for_it, assert_stopped_cleanly, generate_command, wait_for_a_finished_chunk,
)
from triplegen.orchestration.resume import WorkFolder

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_server_that_refuses_every_request_stops_the_run_quoting_its_message(tiny_server, tmp_path):
    # The server's context (--max-model-len 512) is shorter than every prompt of this template: vLLM
    # answers HTTP 400 to each request, while its /models and the short schema probes pass.
    long_prompt = {**PINNED_TEMPLATE, "name": "too-long", "system": "Rewrite the caption as JSON. " * 150}
    template = tmp_path / "too-long.yaml"
    template.write_text(yaml.safe_dump(long_prompt, sort_keys=False), encoding="utf-8")
    captions = write_captions(tmp_path / "caps.parquet", 40)
    before = digest(captions)
    output = tmp_path / "t.parquet"
    command = generate_command(captions, output, "--base-url", tiny_server.base_url, "--model", TINY_MODEL_NAME,
                               "--prompt", str(template), "--concurrency", "4")
    done = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=300)
    line = assert_stopped_cleanly(done.stderr, done.returncode, "the server refuses every request")
    assert "16 in a row" in line and "HTTP 400" in line and "context length" in line, line
    assert "run the same command again" in line
    work = WorkFolder(output)
    assert not output.exists() and not (work.path.exists() and work.done_chunks())  # no row rejected for it
    assert digest(captions) == before


def test_a_stopped_server_stops_the_run_within_max_outage_s(tiny_server, pinned_template, tmp_path):  # noqa: F811
    captions = write_captions(tmp_path / "caps.parquet", 64)
    output = tmp_path / "t.parquet"
    with FaultProxy(tiny_server.base_url.removesuffix("/v1")) as proxy:
        command = generate_command(captions, output, "--base-url", proxy.base_url, "--model", TINY_MODEL_NAME,
                                   "--prompt", str(pinned_template), "--concurrency", "2", "--max-outage-s", "5")
        run = subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            work = WorkFolder(output)
            wait_for_a_finished_chunk(run, work)
            proxy.hang = True  # every request from now on, and those in flight, go unanswered
            stopped = time.monotonic()
            _, stderr = run.communicate(timeout=60)  # the request timeout is 120 s
            waited = time.monotonic() - stopped
        finally:
            if run.poll() is None:
                run.kill()
                run.wait()
            proxy.hang = False
    assert waited < 30, waited  # about 6 s; the bound leaves room for a loaded machine, far below 120 s
    line = assert_stopped_cleanly(stderr, run.returncode, proxy.base_url)
    assert "not even to GET /models" in line and "run the same command again" in line, line
    finished = assert_nothing_rejected_for_it(work)
    assert len(finished) < 8 and not output.exists()
