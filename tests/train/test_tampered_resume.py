"""`--resume` trusts nothing in the run folder it did not check: a `latest` pointer out of the run,
a state whose step is not a count or not its folder's, and tensors of the wrong shape are each one
line naming the checkpoint, never a traceback or a resumed run (docs/reliability.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from semclip_train.training.cli import app as train_app
from tests.train.test_reliability import one_line_error, train_args

runner = CliRunner()


@pytest.fixture
def stopped_run(base_config) -> Path:
    """A run stopped at step 2 of 4 (checkpoints at steps 1 and 2), as a crash leaves it."""
    result = runner.invoke(train_app, train_args(base_config, **{"max-steps": 2, "checkpoint-every": 1}))
    assert result.exit_code == 0, result.output
    run_dir = base_config["output"]
    (run_dir / "final").rename(run_dir.parent / "final-of-the-short-run")  # as if killed before final/
    return run_dir


def resume(run_dir: Path):
    return runner.invoke(train_app, ["--resume", str(run_dir), "--max-steps", "4", "-q"])


def test_a_latest_pointer_out_of_the_run_is_refused(stopped_run, tmp_path):
    import shutil

    latest = stopped_run / "checkpoints" / "latest"
    shutil.copytree(stopped_run / "checkpoints" / "step-00000002", tmp_path / "elsewhere")  # a complete checkpoint
    latest.write_text("../../elsewhere")
    one_line_error(resume(stopped_run), "names '../../elsewhere', not a checkpoint folder of this run")
    shutil.rmtree(stopped_run / "checkpoints" / "step-00000002")
    (stopped_run / "checkpoints" / "step-00000002").symlink_to(tmp_path / "elsewhere")
    latest.write_text("step-00000002")
    one_line_error(resume(stopped_run), "a link out of")
    assert not (stopped_run / "final").exists()


def _tamper_state(folder: Path, **changes) -> None:
    state = torch.load(folder / "state.pt", weights_only=True)
    state.update(changes)
    torch.save(state, folder / "state.pt")


@pytest.mark.parametrize("step, message", [
    (10**9, "state.pt says step 1000000000, its folder step 2"),
    (1e9, "state.pt has step 1000000000.0, not a count"),
    (-1, "state.pt has step -1, not a count"),
    (True, "state.pt has step True, not a count"),
])
def test_a_tampered_step_is_refused(stopped_run, step, message):
    _tamper_state(stopped_run / "checkpoints" / "step-00000002", step=step)
    one_line_error(resume(stopped_run), message)
    assert not (stopped_run / "final").exists()


def test_a_consistent_step_beyond_the_run_is_refused(stopped_run):
    checkpoints = stopped_run / "checkpoints"
    (checkpoints / "step-00000002").rename(checkpoints / "step-1000000000")
    _tamper_state(checkpoints / "step-1000000000", step=10**9)
    (checkpoints / "latest").write_text("step-1000000000")
    one_line_error(resume(stopped_run), "is at step 1000000000, beyond this run's 4 steps")
    assert not (stopped_run / "final").exists()


def test_a_model_tensor_of_the_wrong_shape_is_one_line_naming_the_checkpoint(stopped_run):
    folder = stopped_run / "checkpoints" / "step-00000002"
    weights = load_file(str(folder / "model.safetensors"))
    weights["clip.text_projection.weight"] = weights["clip.text_projection.weight"][:, :-1].contiguous()
    save_file(weights, str(folder / "model.safetensors"))
    one_line_error(resume(stopped_run), f"checkpoint {folder} does not match the model: clip.text_projection.weight "
                                        "has shape [16, 31], the model's is [16, 32]")


def test_an_optimizer_tensor_of_the_wrong_shape_is_one_line_naming_the_checkpoint(stopped_run):
    folder = stopped_run / "checkpoints" / "step-00000002"
    state = torch.load(folder / "state.pt", weights_only=True)
    moments = next(value for value in state["optimizer"]["state"].values() if value["exp_avg"].ndim == 2)
    moments["exp_avg"] = moments["exp_avg"][:, :-1].clone()
    torch.save(state, folder / "state.pt")
    one_line_error(resume(stopped_run), f"checkpoint {folder}: optimizer tensor exp_avg has shape")


def test_an_untouched_stopped_run_still_resumes(stopped_run):
    result = resume(stopped_run)
    assert result.exit_code == 0, result.output
    assert "| steps | 4 |" in (stopped_run / "final" / "README.md").read_text()
