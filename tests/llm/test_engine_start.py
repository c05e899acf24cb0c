"""The in-process engine on a CPU as a new user meets it: the README's laptop command without
VLLM_CPU_KVCACHE_SPACE, a torchvision that does not match the CPU torch, and an engine that cannot
start, each a result or one line with the fix (the real CLI, the real vllm-cpu engine)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import require
from tests.llm.test_generate_e2e import pinned_template, write_captions  # noqa: F401
from triplegen.cli import app

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "from triplegen.cli import main; main()"]


def user_env(**extra: str) -> dict[str, str]:
    """A new user's environment: no VLLM_CPU_KVCACHE_SPACE, vLLM's own log level (the test session
    sets both for itself)."""
    env = {k: v for k, v in os.environ.items() if k not in ("VLLM_CPU_KVCACHE_SPACE", "VLLM_LOGGING_LEVEL")}
    return {**env, "PYTHONPATH": str(REPO), **extra}


def one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    return errors[0]


def test_the_readmes_laptop_command_runs_without_a_kv_cache_setting_and_its_progress_moves(smollm2_dir, tmp_path):
    output = tmp_path / "out" / "llm.parquet"
    command = [*CLI, "generate", str(REPO / "examples" / "captions.parquet"), "-o", str(output),
               "--model", str(smollm2_dir), "--max-model-len", "2048", "--enforce-eager", "--limit", "24"]
    done = subprocess.run(command, env=user_env(SEMCLIP_PROGRESS_INTERVAL="0.2"), capture_output=True, text=True,
                          timeout=500, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    log = (tmp_path / "out" / "llm.vllm.log").read_text(errors="replace")
    assert re.search(r"triplegen: vLLM on a CPU, KV cache \d+\.\d\d GiB: min\(4 GiB, half of the", log), log[-3000:]
    # --dtype auto on a CPU: vLLM runs a float32 checkpoint in bfloat16, as the help says
    assert "dtype=torch.bfloat16" in log
    # one chunk of 24 rows: the progress moved while the chunk was in flight, not 0 then 24
    counts = [int(m) for m in re.findall(r"^generate (\d+)/24 rows", done.stderr, re.M)]
    assert any(0 < count < 24 for count in counts), done.stderr
    assert counts == sorted(counts) and counts[-1] == 24, counts


def test_the_dtype_help_says_what_vllm_does_on_a_cpu():
    result = CliRunner().invoke(app, ["generate", "--help"], env={"COLUMNS": "200"})
    text = " ".join(result.output.replace("│", " ").split())
    assert "float32 on a CPU" not in text
    assert "float32 models, which run in bfloat16, on a CPU too" in text


def test_a_torchvision_that_does_not_match_torch_is_one_line_with_the_fix(tmp_path):
    require("vllm", "vLLM's import pulls in transformers, which imports torchvision")
    fake = tmp_path / "site" / "torchvision"
    fake.mkdir(parents=True)
    # what torchvision built for another torch raises at import (vllm-cpu pulls such a build)
    (fake / "__init__.py").write_text('raise RuntimeError("operator torchvision::nms does not exist")\n')
    captions = write_captions(tmp_path / "caps.parquet", 2)
    env = user_env(PYTHONPATH=f"{tmp_path / 'site'}{os.pathsep}{REPO}")
    done = subprocess.run([*CLI, "generate", str(captions), "-o", str(tmp_path / "out"), "--model", "some/model"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    line = one_error_line(done.stderr)
    assert "torchvision" in line and "operator torchvision::nms does not exist" in line, line
    assert line.endswith("pip uninstall -y torchvision torchaudio torchcodec"), line


@pytest.mark.parametrize("setting, env, cause, fix", [
    ("VLLM_CPU_KVCACHE_SPACE=1000", {"VLLM_CPU_KVCACHE_SPACE": "1000"}, "less than requested memory for kv",
     "Fix: set VLLM_CPU_KVCACHE_SPACE to"),
    ("--gpu-memory-utilization 1.0", {}, "less than desired CPU memory utilization",
     "Fix: pass a lower --gpu-memory-utilization"),
])
def test_an_engine_that_cannot_start_is_one_line_with_the_cause_from_its_log_and_the_fix(
        tiny_llama_dir, pinned_template, tmp_path, setting, env, cause, fix):  # noqa: F811
    require("vllm", "the generate subprocess runs the real engine")
    captions = write_captions(tmp_path / "caps.parquet", 2)
    extra = ["--gpu-memory-utilization", "1.0"] if setting.startswith("--") else []
    command = [*CLI, "generate", str(captions), "-o", str(tmp_path / "out"), "--model", str(tiny_llama_dir),
               "--prompt", str(pinned_template), "--dtype", "float32", "--max-model-len", "512", "--enforce-eager",
               *extra]
    done = subprocess.run(command, env=user_env(**env), capture_output=True, text=True, timeout=400)
    assert done.returncode == 2, done.stderr
    line = one_error_line(done.stderr)
    assert f"the vLLM engine for {tiny_llama_dir} did not start: ValueError: Available memory" in line, line
    assert cause in line and fix in line, line
    assert "Engine core initialization failed" not in line
    assert line.endswith(f"(engine log: {tmp_path / 'out.vllm.log'})"), line


def test_a_max_model_len_above_the_models_is_one_line_with_the_longest_it_takes(tiny_llama_dir, pinned_template,  # noqa: F811
                                                                                 tmp_path):
    require("vllm", "the generate subprocess runs the real engine")
    captions = write_captions(tmp_path / "caps.parquet", 2)
    command = [*CLI, "generate", str(captions), "-o", str(tmp_path / "out"), "--model", str(tiny_llama_dir),
               "--prompt", str(pinned_template), "--max-model-len", "100000", "--enforce-eager"]
    done = subprocess.run(command, env=user_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    line = one_error_line(done.stderr)
    assert "max_model_len (100000) is greater than the derived max_model_len" in line, line
    assert "Fix: pass --max-model-len 1024 or less" in line and "validation error" not in line, line
