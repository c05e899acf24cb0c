"""The progress of an LLM run moves with requests, not chunks: within one chunk the plain progress
lines (what Slurm logs show) count the rows whose request came back (real engine, real server)."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from tests.llm.conftest import TINY_MODEL_NAME, engine_options
from tests.llm.test_generate_e2e import pinned_template, write_captions  # noqa: F401
from triplegen.config import GenerateConfig, ServerOptions
from triplegen.orchestration.run import generate

pytestmark = pytest.mark.vllm


def progress_counts(config: GenerateConfig, rows: int, monkeypatch) -> list[int]:
    """The row counts of the plain progress lines a run printed (a log, not a terminal)."""
    monkeypatch.setenv("SEMCLIP_PROGRESS_INTERVAL", "0.1")
    screen = io.StringIO()
    generate(config, console=Console(file=screen, force_terminal=False, width=300))
    return [int(m) for m in re.findall(rf"^generate (\d+)/{rows} rows", screen.getvalue(), re.M)]


def assert_moved_within_the_chunk(counts: list[int], rows: int) -> None:
    """One chunk of `rows` rows: some line between 0 and all of them, never backwards."""
    assert any(0 < count < rows for count in counts), counts
    assert counts == sorted(counts) and counts[-1] == rows, counts


def test_the_in_process_engine_counts_each_finished_request(tiny_llama_dir, tiny_engine, pinned_template,  # noqa: F811
                                                            tmp_path, monkeypatch):
    captions = write_captions(tmp_path / "caps.parquet", 128)  # the tiny model answers all in about a second
    config = GenerateConfig(input=captions, output=tmp_path / "t.parquet", model=str(tiny_llama_dir),
                            engine=engine_options(), prompt=str(pinned_template), max_attempts=1, verbose=True)
    assert_moved_within_the_chunk(progress_counts(config, 128, monkeypatch), 128)


def test_the_openai_backend_counts_each_finished_request(tiny_server, pinned_template, tmp_path,  # noqa: F811
                                                         monkeypatch):
    captions = write_captions(tmp_path / "caps.parquet", 48)
    config = GenerateConfig(input=captions, output=tmp_path / "t.parquet", model=TINY_MODEL_NAME,
                            prompt=str(pinned_template), max_attempts=1,
                            server=ServerOptions(base_urls=[tiny_server.base_url], concurrency=4))
    assert_moved_within_the_chunk(progress_counts(config, 48, monkeypatch), 48)
