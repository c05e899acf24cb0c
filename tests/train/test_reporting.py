"""Where a run reports: plain progress lines off a terminal, TensorBoard, W&B (offline) and MLflow
(a local SQLite store), each under train/ and val/ names; and the model card of final/."""

from __future__ import annotations

import json

import pytest
import yaml

from semclip_train import TrainConfig, train


def _run(base_config, **changes):
    return train(TrainConfig(**{**base_config, **changes}))


def test_off_a_terminal_training_prints_plain_progress_lines(base_config, capsys, monkeypatch):
    monkeypatch.setenv("SEMCLIP_PROGRESS_INTERVAL", "0.1")
    result = _run(base_config, quiet=False, report_to=["none"])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("train ")]
    assert lines, "no progress line"
    assert lines[-1].startswith(f"train {result.steps}/{result.steps} steps") and "samples/s" in lines[-1]
    assert "loss" in lines[-1] and "ETA" in lines[-1]


def _wandb_history(path) -> list[dict]:
    """The history rows of an offline W&B run file (LevelDB log blocks of protobuf records), as `wandb sync` reads it."""
    import struct

    from wandb.proto import wandb_internal_pb2

    data, position, records, pending = path.read_bytes(), 7, [], b""  # 7: the file header
    while position + 7 <= len(data):
        if 32768 - position % 32768 < 7:  # a block's tail too short for a header is padding
            position += 32768 - position % 32768
            continue
        _, length, kind = struct.unpack("<IHB", data[position:position + 7])
        pending += data[position + 7:position + 7 + length]
        position += 7 + length
        if kind in (1, 4):  # a full record, or the last fragment of one
            records.append(pending)
            pending = b""
    rows = []
    for raw in records:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(raw)
        if record.WhichOneof("record_type") == "history":
            rows.append({"/".join(item.nested_key) or item.key: json.loads(item.value_json) for item in record.history.item})
    return rows


def test_wandb_offline_logs_train_and_val_groups(base_config, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    result = _run(base_config, report_to=["wandb"])
    import wandb

    wandb.teardown()  # the run file is written by W&B's service process: wait until it has shut down
    run_id = json.loads((result.run_dir / "trackers.json").read_text())["wandb"]
    files = list((result.run_dir / "wandb").glob(f"offline-run-*-{run_id}/run-{run_id}.wandb"))
    assert len(files) == 1
    history = _wandb_history(files[0])
    losses = {row["_step"]: row["train/loss"] for row in history if "train/loss" in row}
    assert sorted(losses) == list(range(1, result.steps + 1))
    assert losses[result.steps] == pytest.approx(result.last_metrics["loss"])
    assert any("val/loss" in row for row in history) and any("train/lr" in row for row in history)


def test_mlflow_with_a_local_store_logs_train_loss_and_resumes_the_same_run(base_config, tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "semclip-test")
    result = _run(base_config, report_to=["mlflow"], max_steps=2, checkpoint_every=1)
    run_id = json.loads((result.run_dir / "trackers.json").read_text())["mlflow"]
    client = MlflowClient()
    assert [m.step for m in client.get_metric_history(run_id, "train/loss")] == [1, 2]
    assert client.get_run(run_id).data.params["loss"] == "semclip"
    resumed = _run(base_config, report_to=["mlflow"], max_steps=4, resume=result.run_dir, output=None)
    assert resumed.steps == 4
    assert [m.step for m in client.get_metric_history(run_id, "train/loss")] == [1, 2, 3, 4]  # one run, continued
    assert len(client.search_runs([client.get_experiment_by_name("semclip-test").experiment_id])) == 1


def test_tensorboard_events_hold_the_grouped_scalars(base_config):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = _run(base_config, report_to=["tensorboard"])
    events = EventAccumulator(str(result.run_dir / "tensorboard"))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert "train/loss" in tags and "val/loss" in tags and "train/samples_per_s" in tags
    assert events.Scalars("train/loss")[-1].step == result.steps


def test_a_missing_tracker_package_is_one_clear_error(base_config, monkeypatch):
    import sys

    from semclip_train.errors import SemClipError

    monkeypatch.setitem(sys.modules, "wandb", None)  # as if not installed
    with pytest.raises(SemClipError, match=r"pip install 'semclip\[wandb\]'"):
        _run(base_config, report_to=["wandb"])


def test_the_final_model_has_a_model_card(base_config):
    result = _run(base_config, report_to=["none"], eval_every=2, eval=["retrieval:" + str(base_config["triples"])])
    card = (result.final_dir / "README.md").read_text()
    meta = yaml.safe_load(card.split("---", 2)[1])
    assert meta["library_name"] == "transformers" and "semclip" in meta["tags"]
    for text in ("semclip", f"| steps | {result.steps} |", "triples.parquet", "val/loss", "retrieval",
                 "CLIPModel.from_pretrained"):
        assert text in card, text


def test_report_to_on_the_command_line(base_config, tmp_path):
    from typer.testing import CliRunner

    from semclip_train.training.cli import app

    args = ["--triples", str(base_config["triples"]), "--model-config", str(base_config["clip_config"]),
            "--output", str(tmp_path / "cli-run"), "--batch-size", "4", "--max-steps", "2", "--workers", "0",
            "--val-fraction", "0.25", "--quiet"]
    refused = CliRunner().invoke(app, [*args, "--report-to", "none", "--report-to", "wandb"])
    assert refused.exit_code == 2 and "--report-to none excludes other trackers" in refused.output
    done = CliRunner().invoke(app, [*args, "--report-to", "none"])
    assert done.exit_code == 0, done.output
    assert json.loads((tmp_path / "cli-run" / "config.json").read_text())["report_to"] == ["none"]
    assert not (tmp_path / "cli-run" / "tensorboard").exists() and (tmp_path / "cli-run" / "final" / "README.md").exists()
