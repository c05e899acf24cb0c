"""Config precedence and the command line: one-epoch run via CliRunner, one-line errors with exit 2."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from semclip_train.errors import SemClipError
from semclip_train.training.cli import app
from semclip_train.training.config import TrainConfig, resolve_config


def test_flags_override_the_config_file_which_overrides_defaults(tmp_path):
    file = tmp_path / "train.yaml"
    file.write_text(yaml.safe_dump({"triples": "t.parquet", "model": "m", "output": "out",
                                    "lr": 1e-4, "batch-size": 32, "loss": "clip"}))
    config = resolve_config({"lr": 3e-4}, file)
    assert config.lr == 3e-4  # flag beats file
    assert config.batch_size == 32 and config.loss == "clip"  # file beats defaults
    assert config.weight_decay == 0.2 and config.warmup_for(1000) == 50 and config.freeze_vision  # defaults
    as_json = tmp_path / "train.json"
    as_json.write_text(json.dumps({"triples": "t.parquet", "model": "m", "output": "o", "epochs": 3}))
    assert resolve_config({}, as_json).epochs == 3


def test_resume_takes_the_saved_config_and_flags_still_win(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    saved = TrainConfig(triples=tmp_path / "t.parquet", model="m", output=run, lr=2e-4, max_steps=10)
    (run / "config.json").write_text(saved.model_dump_json())
    config = resolve_config({"resume": run, "max_steps": 20})
    assert config.lr == 2e-4 and config.max_steps == 20 and config.run_dir == run


@pytest.mark.parametrize("options, message", [
    ({"model": "m", "output": "o"}, "triples"),
    ({"triples": "t", "model": "m", "output": "o", "lr": -1}, "lr: Input should be greater than 0"),
    ({"triples": "t", "model": "m", "output": "o", "loss": "infonce"}, "loss: Input should be"),
    ({"triples": "t", "model": "m", "output": "o", "freeze_text": True}, "both towers frozen"),
    ({"triples": "t", "model": "m", "output": "o", "bogus": 1}, "bogus: Extra inputs are not permitted"),
    ({"triples": "t", "model": "m", "clip_config": "c", "output": "o"}, "exclude each other"),
])
def test_invalid_configs_are_one_line_errors(options, message):
    with pytest.raises(SemClipError, match=message) as caught:
        resolve_config(options)
    assert "\n" not in str(caught.value)


def _run(args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_bad_flags_and_configs_exit_2_with_one_line(tmp_path, triples_file, tiny_clip_dir):
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("lr: [unclosed")
    cases = [
        (["--no-such-flag"], "No such option"),
        (["--triples", triples_file, "--model-config", tiny_clip_dir, "-o", tmp_path / "r", "--lr", "fast"], "lr"),
        (["--config", bad_yaml], "cannot parse config file"),
        (["--config", tmp_path / "missing.yaml"], "config file not found"),
        (["--triples", tmp_path / "nope.parquet", "--model-config", tiny_clip_dir, "-o", tmp_path / "r"],
         "triples file not found"),
        (["--triples", triples_file, "--model-config", tiny_clip_dir, "-o", tmp_path / "r", "--loss", "clip",
          "--beta", "1"], "do not apply"),
        (["--triples", triples_file, "--model-config", tiny_clip_dir, "-o", tmp_path / "r", "--eval-every", "2",
          "--eval", "bogus"], "--eval must look like KIND:PATH"),
        (["--triples", triples_file, "--model-config", tiny_clip_dir, "-o", tmp_path / "r", "--precision", "bf16"],
         "bf16 is for CUDA"),
    ]
    for args, message in cases:
        result = _run(args)
        assert result.exit_code == 2, (args, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.output


def test_help_shows_an_example():
    result = _run(["--help"])
    assert result.exit_code == 0
    assert "semclip-train --triples triples.parquet" in result.output and "--resume" in result.output


def test_one_epoch_from_the_cli(tmp_path, triples_file, tiny_clip_dir):
    from transformers import CLIPModel

    from semclip_train.training.metrics_log import read_metrics

    run = tmp_path / "run"
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump({"batch_size": 4, "lr": 1e-3, "warmup_steps": 1, "workers": 1,
                                      "log_every": 1, "val_fraction": 0.25}))
    result = _run(["--triples", triples_file, "--model-config", tiny_clip_dir, "--output", run,
                   "--config", config, "--epochs", "1", "--loss", "semclip"])
    assert result.exit_code == 0, result.output
    assert "trained 4 steps on 16 samples" in result.output  # 18 train rows // 4, last short batch dropped
    saved = json.loads((run / "config.json").read_text())
    assert saved["batch_size"] == 4 and saved["loss"] == "semclip" and saved["workers"] == 1
    records = read_metrics(run)
    steps = [r for r in records if "step" in r and "loss" in r]
    assert [r["step"] for r in steps] == [1, 2, 3, 4]
    for record in steps:
        assert {"loss", "contrastive_loss", "paraphrase_loss", "negation_loss", "lr", "logit_scale",
                "samples_per_s", "samples_seen", "epoch"} <= set(record)
        assert record["samples_per_s"] > 0 and 0 < record["logit_scale"] <= 100
    assert steps[-1]["samples_seen"] == 16 and steps[-1]["lr"] < steps[0]["lr"]
    data = next(r for r in records if r.get("event") == "data")
    assert data["train_rows"] == 18 and data["val_rows"] == 6 and data["skipped_images"] == 0
    assert any(r.get("event") == "validation" for r in records)
    model = CLIPModel.from_pretrained(run / "final")
    assert model.config.text_config.hidden_size == 32


def test_existing_run_is_not_overwritten_by_other_settings(tmp_path, triples_file, tiny_clip_dir):
    args = ["--triples", triples_file, "--model-config", tiny_clip_dir, "-o", tmp_path / "r",
            "--batch-size", "4", "--max-steps", "1", "--workers", "0", "--quiet"]
    assert _run(args).exit_code == 0
    second = _run([*args, "--lr", "1e-3"])
    assert second.exit_code == 2 and "already holds a run with other settings" in second.output
    assert "(its lr is 5e-05, here 0.001): pass --resume" in second.output


def test_paraphrase_positives_reach_the_loss_from_the_flag_and_the_config_file(tmp_path, triples_file, tiny_clip_dir):
    from semclip_train.training.components import build_model

    base = ["--triples", triples_file, "--model-config", tiny_clip_dir, "--batch-size", "4", "--workers", "0",
            "--max-steps", "1", "-q"]
    result = _run([*base, "-o", tmp_path / "run", "--paraphrase-positives"])
    assert result.exit_code == 0, result.output
    saved = TrainConfig(**json.loads((tmp_path / "run" / "config.json").read_text()))
    assert saved.paraphrase_positives is True
    assert build_model(saved, 0, 1)[0].loss.paraphrase_positives
    file = tmp_path / "train.yaml"
    file.write_text(yaml.safe_dump({**dict.fromkeys(("triples", "model", "output"), "x"), "paraphrase-positives": True}))
    assert resolve_config({}, file).paraphrase_positives is True
    assert resolve_config({"paraphrase_positives": False}, file).paraphrase_positives is False
    file.write_text(yaml.safe_dump({**dict.fromkeys(("triples", "model", "output"), "x"), "no-paraphrase-positives": True}))
    assert resolve_config({}, file).paraphrase_positives is False
    refused = _run([*base, "-o", tmp_path / "other", "--loss", "negclip", "--paraphrase-positives"])
    assert refused.exit_code == 2 and refused.output.count("\n") == 1, refused.output
    assert "paraphrase_positives do not apply to the 'negclip' loss" in refused.output
