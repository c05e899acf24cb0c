"""Real processes: the `semclip-train` command, 2-rank `torchrun` (gloo), and resume after kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import load_file

from semclip_train import TrainConfig, train
from semclip_train.training.config import resolve_config
from semclip_train.training.metrics_log import read_metrics

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
            "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _flags(options: dict) -> list[str]:
    args = []
    for key, value in options.items():
        flag = "--" + ("model-config" if key == "clip_config" else key.replace("_", "-"))
        if value is True:
            args.append(flag)
        elif value is not False:
            args += [flag, str(value)]
    return args


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "final" / "model.safetensors"))


def test_semclip_train_command_runs_one_epoch(base_config, tmp_path):
    command = [str(Path(sys.executable).parent / "semclip-train"), *_flags({**base_config, "quiet": False})]
    done = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    assert "trained 4 steps on 16 samples" in done.stdout
    from transformers import CLIPModel

    assert CLIPModel.from_pretrained(tmp_path / "run" / "final").config.projection_dim == 16
    bad = subprocess.run([command[0], "--triples", str(tmp_path / "none.parquet")], env=_env(),
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and bad.stderr.startswith("error: ")


def test_two_gloo_ranks_equal_one_process_on_the_same_global_batch(base_config, tmp_path):
    options = {**base_config, "max_steps": 2, "val_fraction": 0.0, "loss": "semclip", "warmup_steps": 0}
    single = train(TrainConfig(**{**options, "batch_size": 8, "output": tmp_path / "single"}))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "semclip_train", *_flags({**options, "batch_size": 4, "output": tmp_path / "ddp"})]
    done = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    one, two = _weights(tmp_path / "single"), _weights(tmp_path / "ddp")
    assert one.keys() == two.keys()
    moved = 0
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=1e-4, atol=2e-6)
        moved += not torch.equal(one[name], load_file(str(tmp_path / "single" / "checkpoints" / "step-00000002"
                                                          / "model.safetensors"))["clip." + name])
    assert moved == 0  # the final model is the last checkpoint's
    losses_one = [r["loss"] for r in read_metrics(tmp_path / "single") if "loss" in r]
    losses_two = [r["loss"] for r in read_metrics(tmp_path / "ddp") if "loss" in r]
    assert len(losses_one) == len(losses_two) == 2
    assert losses_two == pytest.approx(losses_one, rel=1e-5)
    assert [r["samples_seen"] for r in read_metrics(tmp_path / "ddp") if "loss" in r] == [8, 16]
    assert single.steps == 2


@pytest.fixture
def long_triples(triples_file) -> Path:
    """240 rows (each image in 20 rows) so that checkpoints fall mid-epoch."""
    rows = pq.read_table(triples_file).to_pylist()
    many = [{**row, "id": f"{row['id']}-{k}"} for k in range(10) for row in rows]
    path = triples_file.parent / "long.parquet"
    pq.write_table(pa.Table.from_pylist(many), path)
    return path


def test_resume_after_kill_9_ends_like_an_uninterrupted_run(base_config, long_triples, tmp_path):
    options = {**base_config, "triples": long_triples, "max_steps": 60, "checkpoint_every": 10,
               "val_fraction": 0.1, "log_every": 5, "warmup_steps": 5}  # 50 steps per epoch
    train(TrainConfig(**{**options, "output": tmp_path / "whole"}))

    run = tmp_path / "killed"
    command = [str(Path(sys.executable).parent / "semclip-train"), *_flags({**options, "output": run})]
    process = subprocess.Popen(command, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    latest = run / "checkpoints" / "latest"
    deadline = time.monotonic() + 180
    while not (latest.exists() and latest.read_text() >= "step-00000020") and time.monotonic() < deadline:
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (run / "final").exists()
    stopped_at = int(latest.read_text().removeprefix("step-"))
    assert 20 <= stopped_at < 60

    result = train(resolve_config({"resume": run}))
    assert result.steps == 60
    whole, resumed = _weights(tmp_path / "whole"), _weights(run)
    assert all(torch.equal(whole[name], resumed[name]) for name in whole)
    logged = [(r["step"], r["loss"]) for r in read_metrics(run) if "loss" in r]
    reference = [(r["step"], r["loss"]) for r in read_metrics(tmp_path / "whole") if "loss" in r]
    assert logged == reference  # metrics.jsonl as if the run had never stopped
