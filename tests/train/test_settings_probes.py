"""Settings that used to give a traceback, a silent wrong result or minutes of silence: an lr beyond
float32, weights that overflow only in the forward pass, an unreachable MLflow server, a warm-up
the run never finishes, a config key given twice (docs/reliability.md)."""

from __future__ import annotations

import json
import os
import time

import pytest
from typer.testing import CliRunner

from semclip_train.training.cli import app as train_app
from tests.train.test_reliability import one_line_error, train_args

runner = CliRunner()


@pytest.mark.parametrize("lr", ["1e39", "inf"])
def test_an_lr_that_is_not_a_finite_float32_is_refused_up_front(base_config, lr):
    result = runner.invoke(train_app, train_args(base_config, lr=lr, **{"max-steps": 1}))
    one_line_error(result, "lr: ")
    assert "is not a finite float32 number" in result.output
    assert not base_config["output"].exists()


def test_finite_weights_with_non_finite_embeddings_stop_the_run_as_diverged(base_config):
    result = runner.invoke(train_app, train_args(base_config, lr=1e30, **{"max-steps": 1}))
    line = one_line_error(result, "training diverged by step 1: the weights are finite but the text embeddings are not",
                          code=1)
    assert "lower --lr (now 1e+30)" in line
    assert not (base_config["output"] / "final").exists()
    assert not (base_config["output"] / "checkpoints").exists()


@pytest.mark.parametrize("uri, cause", [("http://127.0.0.1:9", "Connection refused"), ("bogus://x", "bogus")])
def test_an_mlflow_server_that_cannot_be_used_is_one_line_in_seconds(base_config, monkeypatch, uri, cause):
    pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    for name in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    started = time.monotonic()
    result = runner.invoke(train_app, train_args(base_config, **{"report-to": "mlflow", "max-steps": 1}))
    line = one_line_error(result, f"--report-to mlflow: cannot start a run at MLFLOW_TRACKING_URI {uri}")
    assert cause in line and time.monotonic() - started < 60
    assert not (base_config["output"] / "final").exists()
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ  # the start-up settings are not left behind


def test_the_default_warm_up_fits_a_short_run_and_the_card_gives_the_peak_reached(base_config):
    run_dir = base_config["output"]
    args = train_args(base_config, **{"max-steps": 20, "log-every": 1})
    at = args.index("--warmup-steps")
    del args[at:at + 2]  # the default warm-up
    result = runner.invoke(train_app, args)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    plan = next(r for r in records if r.get("event") == "schedule")
    assert plan == {**plan, "warmup_steps": 2, "total_steps": 20, "peak_step": 2, "peak_lr": 1e-3}
    lrs = [r["lr"] for r in records if "lr" in r]
    assert max(lrs) == 1e-3 and lrs[1] == 1e-3  # reached at step 2, as the card says
    assert "| learning rate | peak 0.001 at step 2 (warm-up 2 steps, then cosine to 0 at step 20) |" \
        in (run_dir / "final" / "README.md").read_text()
    assert json.loads((run_dir / "config.json").read_text())["warmup_steps"] is None  # the default, reproduced


def test_a_warm_up_longer_than_the_run_is_refused(base_config):
    result = runner.invoke(train_app, train_args(base_config, **{"warmup-steps": 50, "max-steps": 20}))
    one_line_error(result, "--warmup-steps 50 is longer than the run's 20 steps, so the learning rate would never "
                           "reach --lr 0.001")
    assert not (base_config["output"] / "final").exists()


@pytest.mark.parametrize("name, text", [
    ("train.yaml", "lr: 0.001\nbatch-size: 4\nlr: 0.1\n"),
    ("train.json", '{"lr": 0.001, "batch-size": 4, "lr": 0.1}'),
])
def test_a_config_key_given_twice_is_refused_naming_it(base_config, tmp_path, name, text):
    file = tmp_path / name
    file.write_text(text)
    result = runner.invoke(train_app, ["--config", str(file), *train_args(base_config)[:-1]])
    one_line_error(result, f"config file {file}: key 'lr' is given twice")
    assert not base_config["output"].exists()
