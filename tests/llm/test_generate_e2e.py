"""`triplegen generate` end to end with real LLM backends: retries, rejects, faults, resume, SmolLM2."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from tests.conftest import require
from tests.llm.conftest import TINY_MODEL_NAME, engine_options
from tests.llm.fault_proxy import FaultProxy
from triplegen.cli import app
from triplegen.config import EngineOptions, GenerateConfig, RayOptions, ServerOptions
from triplegen.checks.constraints import SAMPLE_CAPTIONS
from triplegen.orchestration.run import generate

pytestmark = pytest.mark.vllm

REPO = Path(__file__).resolve().parents[2]

# The tiny random model writes what these patterns allow; "(not )?" makes about half of its
# paraphrases flip the caption's polarity, so the checks reject them and the run retries.
PINNED_TEMPLATE = {
    "name": "pinned-test",
    "version": "1",
    "description": "Test template whose schema pins a random model's output to checkable sentences.",
    "system": "Rewrite the caption as JSON.",
    "user": "Caption: {{ caption }}",
    "output_schema": {
        "type": "object",
        "properties": {
            "paraphrase": {"type": "string", "pattern": "^the (cat|kitten|pet) is (not )?resting on the (mat|rug)$"},
            "negation": {"type": "string", "pattern": "^a cat is not (sitting|lying) on the mat$"},
        },
        "required": ["paraphrase", "negation"],
        "additionalProperties": False,
    },
    "sampling": {"temperature": 1.0, "top_p": 1.0, "max_tokens": 160},
    "examples": [],
}


@pytest.fixture(scope="module")
def pinned_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("prompts") / "pinned-test.yaml"
    path.write_text(yaml.safe_dump(PINNED_TEMPLATE, sort_keys=False), encoding="utf-8")
    return path


def write_captions(path: Path, n: int) -> Path:
    ids = [f"cap-{i:03d}" for i in range(n)]
    captions = [f"a cat number {i} sits on the mat" for i in range(n)]
    pl.DataFrame({"id": ids, "image": [f"img/{i}.jpg" for i in range(n)], "caption": captions}).write_parquet(path)
    return path


def ids_once(output: Path, rejects: Path, expected: set[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Every input id exactly once across output and rejects."""
    out, rej = pl.read_parquet(output), pl.read_parquet(rejects)
    all_ids = out["id"].to_list() + rej["id"].to_list()
    assert len(all_ids) == len(set(all_ids)), "an id is doubled"
    assert set(all_ids) == expected
    return out, rej


def assert_validates(path: Path) -> None:
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output


def test_vllm_backend_run_retries_then_rejects_with_raw_text_and_reason(tiny_llama_dir, tiny_engine,
                                                                          pinned_template, tmp_path):
    captions = write_captions(tmp_path / "caps.parquet", 24)
    config = GenerateConfig(input=captions, output=tmp_path / "out" / "t.parquet", model=str(tiny_llama_dir),
                            engine=engine_options(), prompt=str(pinned_template), max_attempts=2,
                            chunk_size=8, quiet=True)
    summary = generate(config)
    out, rej = ids_once(summary.output, summary.rejects, {f"cap-{i:03d}" for i in range(24)})
    assert summary.backend == "vllm" and summary.run["counts"]["retries"] > 0
    assert len(out) > 0 and len(rej) > 0, (len(out), len(rej))
    assert set(out["backend"]) == {"vllm"} and set(out["model"]) == {str(tiny_llama_dir)}
    assert out["attempts"].is_in([1, 2]).all()
    assert (rej["attempts"] == 2).all()  # retried before it was rejected
    assert set(rej["reason"]) == {"paraphrase_polarity"}
    assert rej["raw_output"].str.contains(" is not resting on the ").all()  # what the model really wrote
    assert summary.run["tokens"]["prompt"] > 0 and summary.run["tokens"]["completion"] > 0
    assert_validates(summary.output)


def test_a_run_through_injected_faults_completes_with_every_id_once(tiny_server, pinned_template, tmp_path):
    captions = write_captions(tmp_path / "caps.parquet", 30)
    # held requests outlast the timeout by far; a real answer on a busy machine stays within it
    with FaultProxy(tiny_server.base_url.removesuffix("/v1"), rate=0.3, seed=11, hold_s=6.0) as proxy:
        config = GenerateConfig(
            input=captions, output=tmp_path / "t.parquet", model=TINY_MODEL_NAME, prompt=str(pinned_template),
            max_attempts=2, chunk_size=10, quiet=True,
            server=ServerOptions(base_urls=[proxy.base_url], concurrency=6, timeout_s=3.0, max_retries=6,
                                 backoff_s=0.02, max_backoff_s=0.2, breaker_failures=100),
        )
        summary = generate(config)
    assert sum(n for kind, n in proxy.counts.items() if kind != "passed") >= 10, proxy.counts
    out, rej = ids_once(summary.output, summary.rejects, {f"cap-{i:03d}" for i in range(30)})
    assert summary.backend == "openai" and len(out) > 0
    assert_validates(summary.output)


def test_killed_served_run_resumes_without_repeating_accepted_rows(tiny_server, pinned_template, tmp_path):
    from triplegen.orchestration.resume import WorkFolder

    captions = write_captions(tmp_path / "caps.parquet", 32)
    output = tmp_path / "t.parquet"
    with FaultProxy(tiny_server.base_url.removesuffix("/v1")) as proxy:
        command = [sys.executable, "-c", "from triplegen.cli import main; main()", "generate", str(captions),
                   "-o", str(output), "--base-url", proxy.base_url, "--model", TINY_MODEL_NAME,
                   "--prompt", str(pinned_template), "--chunk-size", "8", "--concurrency", "2"]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        work = WorkFolder(output)
        deadline = time.monotonic() + 300
        while first.poll() is None and time.monotonic() < deadline:
            if work.path.exists() and work.done_chunks():
                break
            time.sleep(0.1)
        assert first.poll() is None, "the first run ended before it could be killed"
        first.send_signal(signal.SIGKILL)
        first.wait()
        finished = len(work.done_chunks())
        calls_before_kill = proxy.counts["passed"]
        assert 1 <= finished < 4 and not output.exists()

        second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=400)
        assert second.returncode == 0, second.stderr
        calls_by_second = proxy.counts["passed"] - calls_before_kill
    assert f"Resuming: {finished} chunk(s)" in second.stderr
    out, rej = ids_once(output, output.with_name("t.rejects.parquet"), {f"cap-{i:03d}" for i in range(32)})
    rows = pl.concat([out.select("id", "attempts"), rej.select("id", "attempts")])
    resumed_ids = {f"cap-{i:03d}" for i in range(8 * finished)}  # chunks are consecutive runs of 8 rows
    redone = rows.filter(~pl.col("id").is_in(resumed_ids))
    # the second run called the server only for the rows of the chunks the first had not finished
    # (plus its start-up checks: the server's models and one schema probe per sample caption);
    # a repeated chunk would add at least 8 calls
    start_up = 3 + len(SAMPLE_CAPTIONS)
    assert redone["attempts"].sum() <= calls_by_second <= redone["attempts"].sum() + start_up
    assert_validates(output)


def test_a_ray_worker_runs_its_own_vllm_engine_and_writes_what_the_local_engine_writes(
        tiny_llama_dir, tiny_engine, ray_cluster, pinned_template, tmp_path):
    captions = write_captions(tmp_path / "caps.parquet", 12)
    common = dict(input=captions, model=str(tiny_llama_dir), engine=engine_options(), prompt=str(pinned_template),
                  max_attempts=2, chunk_size=6, quiet=True)
    local = generate(GenerateConfig(output=tmp_path / "local" / "t.parquet", **common))
    # one worker on a CPU build of vLLM: no GPU to ask for, one engine loaded in the worker process
    on_ray = generate(GenerateConfig(output=tmp_path / "ray" / "t.parquet", executor="ray",
                                     ray=RayOptions(address=ray_cluster, workers=1, gpus_per_worker=0), **common))
    out, rej = ids_once(on_ray.output, on_ray.rejects, {f"cap-{i:03d}" for i in range(12)})
    assert on_ray.backend == "vllm" and len(out) > 0 and on_ray.run["tokens"]["completion"] > 0
    assert out.equals(pl.read_parquet(local.output)) and rej.equals(pl.read_parquet(local.rejects))


def test_ray_run_with_a_served_model_writes_what_the_local_run_writes(tiny_server, ray_cluster, pinned_template,
                                                                    tmp_path):
    captions = write_captions(tmp_path / "caps.parquet", 24)
    common = dict(input=captions, model=TINY_MODEL_NAME, prompt=str(pinned_template), max_attempts=2, chunk_size=6,
                  quiet=True, server=ServerOptions(base_urls=[tiny_server.base_url], concurrency=4))
    local = generate(GenerateConfig(output=tmp_path / "local" / "t.parquet", **common))
    on_ray = generate(GenerateConfig(output=tmp_path / "ray" / "t.parquet", executor="ray",
                                     ray=RayOptions(address=ray_cluster), **common))
    out, rej = ids_once(on_ray.output, on_ray.rejects, {f"cap-{i:03d}" for i in range(24)})
    assert len(out) > 0 and len(rej) > 0 and on_ray.backend == "openai"
    # per-caption seeds: the same completions whichever worker asked, so the same rows and rejects
    assert out.equals(pl.read_parquet(local.output))
    assert rej.equals(pl.read_parquet(local.rejects))
    assert on_ray.run["tokens"] == local.run["tokens"] and on_ray.run["counts"] == local.run["counts"]


def test_smollm2_end_to_end_on_real_captions(smollm2_dir, tmp_path):
    """A real 135M instruct model with the defaults: most captions pass, every negation is a guided edit."""
    from triplegen.checks.constraints import edit_point
    from triplegen.rules.polarity import is_negated

    config = GenerateConfig(
        input=REPO / "examples" / "captions.parquet", output=tmp_path / "t.parquet", model=str(smollm2_dir),
        engine=EngineOptions(dtype="float32", enforce_eager=True, max_model_len=2048),
        limit=32, max_attempts=2, quiet=True,
    )
    summary = generate(config)
    expected = set(pl.read_parquet(config.input)["id"].head(32))
    out, rej = ids_once(summary.output, summary.rejects, expected)
    assert summary.accepted >= 24, summary.reject_reasons
    for caption, negation in zip(out["caption"], out["negation"]):
        if not is_negated(caption) and edit_point(caption) is not None:
            assert negation.lower().startswith(edit_point(caption).lower()), (caption, negation)
    assert (rej["attempts"] == 2).all() and rej["raw_output"].str.starts_with("{").all()
    assert_validates(summary.output)
    card = summary.card.read_text()
    assert "vllm" in card and str(summary.run["tokens"]["prompt"]) in card.replace(",", "")
    assert "prefix caching on" in card and "served from the cache" in card and "guided edit" in card


def test_the_engine_output_goes_to_a_log_file_not_over_the_progress(tiny_llama_dir, pinned_template, tmp_path):
    require("vllm", "the generate subprocess runs the real engine")
    captions = write_captions(tmp_path / "caps.parquet", 4)
    folder = tmp_path / "out"
    command = [sys.executable, "-c", "from triplegen.cli import main; main()", "generate", str(captions),
               "-o", str(folder), "--model", str(tiny_llama_dir), "--prompt", str(pinned_template),
               "--dtype", "float32", "--max-model-len", "512", "--enforce-eager", "--max-attempts", "1"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "VLLM_LOGGING_LEVEL": "INFO", "SEMCLIP_PROGRESS_INTERVAL": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr
    log = tmp_path / "out.vllm.log"  # beside the dataset folder, not inside what `hf upload` pushes
    assert "vLLM engine log:" in done.stderr and str(log) in done.stderr.replace("\n", "")
    engine_lines = log.read_text(errors="replace")
    assert "INFO" in engine_lines and len(engine_lines.splitlines()) >= 10
    screen = done.stderr.splitlines()
    assert not [line for line in screen if "INFO" in line or "WARNING" in line], screen
    progress = [line for line in screen if line.startswith("generate ")]  # one a second: as many as the run is slow
    assert len(screen) - len(progress) < 12 and any(line.startswith("generate 4/4 rows") for line in progress), screen
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "rejects.parquet", "triples.parquet"]
