"""The `triplegen generate` command: help, the README's first command, progress, option mapping."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import triplegen.orchestration.run
from triplegen.cli import app

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "captions.parquet"
runner = CliRunner()


def test_help_shows_examples_and_every_documented_option():
    result = runner.invoke(app, ["generate", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "triplegen generate examples/captions.parquet -o out/example" in result.output
    for option in ["--output", "--rejects", "--caption-col", "--image-col", "--id-col", "--prompt", "--backend",
                   "--model", "--base-url", "--concurrency", "--max-attempts", "--seed", "--temperature",
                   "--max-tokens", "--chunk-size", "--shard", "--limit", "--semantic-check", "--overwrite",
                   "--quiet", "--tensor-parallel-size", "--data-parallel-size", "--dtype", "--max-model-len",
                   "--gpu-memory-utilization", "--enforce-eager", "a missing folder is created"]:
        assert option in result.output, option
    for command in ("validate", "merge"):
        assert "Examples:" in runner.invoke(app, [command, "--help"]).output


def test_the_readme_first_command_runs_on_the_bundled_example(tmp_path):
    output = tmp_path / "out" / "triples.parquet"
    result = runner.invoke(app, ["generate", str(EXAMPLE), "-o", str(output)])
    assert result.exit_code == 0, result.output
    assert "Using the built-in rules generator because no model was named" in result.output
    assert "rows/s" in result.output and "accepted" in result.output and "rejected" in result.output
    table = pq.read_table(output)
    rejects = pq.read_table(output.with_name("triples.rejects.parquet"))
    assert table.num_rows + rejects.num_rows == pq.read_metadata(EXAMPLE).num_rows
    assert set(table.column("backend").to_pylist()) == {"rules"}
    assert "empty_caption" in rejects.column("reason").to_pylist()
    assert "configs:" in output.with_name("README.md").read_text()  # the earlier -o FILE form gets a Hub card too
    validated = runner.invoke(app, ["validate", str(output)])
    assert validated.exit_code == 0, validated.output
    written = {p.name: p.stat().st_mtime_ns for p in output.parent.iterdir()}
    again = runner.invoke(app, ["generate", str(EXAMPLE), "-o", str(output)])  # a rerun: Slurm --requeue, a retry
    assert again.exit_code == 0 and "already complete (same input and settings), nothing rewritten" in again.output
    assert "298 accepted, 2 rejected" in again.output
    assert {p.name: p.stat().st_mtime_ns for p in output.parent.iterdir()} == written
    other = runner.invoke(app, ["generate", str(EXAMPLE), "-o", str(output), "--seed", "1"])
    assert other.exit_code == 2 and "already exists; pass --overwrite" in other.output
    assert "(it was made with a different seed)" in other.output


def test_overwrite_and_a_custom_rejects_path(tmp_path):
    output, rejects = tmp_path / "t.parquet", tmp_path / "elsewhere" / "bad.parquet"
    for _ in range(2):
        result = runner.invoke(app, ["generate", str(EXAMPLE), "-o", str(output), "--rejects", str(rejects),
                                     "--overwrite", "--quiet", "--limit", "50"])
        assert result.exit_code == 0, result.output
    assert pq.read_table(output).num_rows + pq.read_table(rejects).num_rows == 50
    assert not (tmp_path / "t.rejects.parquet").exists()
    (tmp_path / "u.rejects.parquet").write_bytes(b"x")  # a stray rejects file is not silently replaced
    result = runner.invoke(app, ["generate", str(EXAMPLE), "-o", str(tmp_path / "u.parquet"), "--quiet"])
    assert result.exit_code == 2 and "u.rejects.parquet already exists" in result.output


def test_quiet_prints_only_the_result_line(tmp_path):
    result = runner.invoke(app, ["generate", str(EXAMPLE), "-o", str(tmp_path / "t.parquet"), "--quiet"])
    assert result.exit_code == 0
    assert result.output.count("\n") == 1 and "accepted" in result.output and "rows/s" not in result.output


def test_flags_map_onto_the_config(tmp_path, monkeypatch):
    seen = {}

    def capture(config):
        seen["config"] = config
        raise SystemExit(0)

    monkeypatch.setattr(triplegen.orchestration.run, "generate", capture)
    runner.invoke(app, [
        "generate", "in.csv", "-o", "o.parquet", "--model", "m", "--base-url", "http://a/v1", "--base-url",
        "http://b/v1", "--concurrency", "8", "--tensor-parallel-size", "2", "--data-parallel-size", "4",
        "--dtype", "bfloat16", "--max-model-len", "1024", "--gpu-memory-utilization", "0.5", "--enforce-eager",
        "--shard", "1/4", "--seed", "9", "--temperature", "0.3", "--max-tokens", "99", "--backend", "openai",
        "--id-col", "key", "--max-attempts", "5",
    ])
    config = seen["config"]
    assert config.server.base_urls == ["http://a/v1", "http://b/v1"] and config.server.concurrency == 8
    engine = config.engine
    assert (engine.tensor_parallel_size, engine.data_parallel_size, engine.dtype, engine.max_model_len,
            engine.gpu_memory_utilization, engine.enforce_eager, engine.seed) == (2, 4, "bfloat16", 1024, 0.5, True, 9)
    assert (str(config.shard), config.seed, config.temperature, config.max_tokens, config.backend, config.id_col,
            config.max_attempts) == ("1/4", 9, 0.3, 99, "openai", "key", 5)


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a shell")
def test_the_readme_set_up_line_runs_twice_in_the_same_folder(tmp_path):
    line = "triplegen generate examples/captions.parquet -o out/example && triplegen validate out/example"
    assert line in (REPO / "README.md").read_text()
    (tmp_path / "examples").symlink_to(REPO / "examples")
    bin_dir = Path(sys.executable).parent  # the triplegen script of this environment
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    runs = [subprocess.run(line, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True) for _ in range(2)]
    for done in runs:
        assert done.returncode == 0, done.stdout + done.stderr
    assert "already complete" in runs[1].stdout and "298 pass" in runs[1].stdout


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a shell")
def test_generate_then_validate_in_real_subprocesses(tmp_path):
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    cli = [sys.executable, "-c", "from triplegen.cli import main; main()"]
    output = tmp_path / "out" / "triples.parquet"
    made = subprocess.run([*cli, "generate", str(EXAMPLE), "-o", str(output)], env=env, capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    assert "no model was named" in made.stderr
    checked = subprocess.run([*cli, "validate", str(output)], env=env, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_import_is_light_and_the_library_entry_points_are_functions():
    code = (
        "import sys, triplegen\n"
        "assert 'pyarrow' not in sys.modules and 'torch' not in sys.modules\n"
        "import triplegen.checks.validation, triplegen.orchestration.run\n"
        "assert callable(triplegen.generate) and callable(triplegen.validate)\n"
        "assert triplegen.validate is triplegen.checks.validation.validate\n"
        "assert 'torch' not in sys.modules and 'vllm' not in sys.modules\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
