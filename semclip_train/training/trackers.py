"""Experiment trackers (`--report-to tensorboard|wandb|mlflow|none`): where the metrics of `metrics.jsonl`
also go, under `train/`, `val/` and `eval/` names, one step axis.

Each tracker is optional (its package is an extra) and imported only when asked for. A run folder
remembers its W&B run id and MLflow run id in `trackers.json`, so `--resume` continues the same
tracked run instead of starting a second one. They read their usual settings from the environment:
`WANDB_PROJECT`, `WANDB_MODE=offline`, `MLFLOW_TRACKING_URI`, `MLFLOW_EXPERIMENT_NAME`. A tracker that
cannot start (a bad URI, a server that does not answer) is one line before training, in bounded time.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

from semclip_train.errors import SemClipError

IDS_NAME = "trackers.json"
PROJECT = "semclip"


def tracked_values(record: dict[str, Any]) -> dict[str, float]:
    """A metrics.jsonl record as tracker names: a step's values under train/, validation under val/."""
    numbers = {k: v for k, v in record.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    event = record.get("event")
    if event is None:
        return {f"train/{k}": v for k, v in numbers.items() if k not in ("step", "time")}
    if event == "validation":
        return {"val/loss": numbers["val_loss"]} if "val_loss" in numbers else {}
    if event == "evaluation":  # names are already eval/...
        return {k: v for k, v in numbers.items() if k.startswith("eval/")}
    return {}


def resolve_report_to(names: list[str]) -> list[str]:
    """`auto` (the default): TensorBoard where it is installed, as before the option existed."""
    if "none" in names:
        if len(names) > 1:
            raise SemClipError("--report-to none excludes other trackers")
        return []
    resolved = []
    for name in names:
        if name == "auto":
            if importlib.util.find_spec("tensorboard") is not None:
                resolved.append("tensorboard")
        elif name not in resolved:
            resolved.append(name)
    return resolved


class TensorBoard:
    def __init__(self, run_dir: Path, config: dict, ids: dict):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise SemClipError("--report-to tensorboard needs tensorboard: pip install 'semclip[tensorboard]'") from None
        self.writer = SummaryWriter(str(run_dir / "tensorboard"))

    def log(self, values: dict[str, float], step: int) -> None:
        for key, value in values.items():
            self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        self.writer.close()


class WandB:
    def __init__(self, run_dir: Path, config: dict, ids: dict):
        try:
            import wandb
        except ImportError:
            raise SemClipError("--report-to wandb needs wandb: pip install 'semclip[wandb]'") from None
        ids.setdefault("wandb", secrets.token_hex(4))  # a W&B run id: 8 lowercase characters
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", PROJECT), name=run_dir.resolve().name,
                              id=ids["wandb"], resume="allow", dir=str(run_dir), config=config)

    def log(self, values: dict[str, float], step: int) -> None:
        self.run.log(values, step=step)

    def close(self) -> None:
        self.run.finish()


class MLflow:
    def __init__(self, run_dir: Path, config: dict, ids: dict):
        try:
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise SemClipError("--report-to mlflow needs mlflow: pip install 'semclip[mlflow]'") from None
        uri = os.environ.get("MLFLOW_TRACKING_URI", "MLflow's default store")
        try:
            with _bounded_http():
                self.client = MlflowClient()  # MLFLOW_TRACKING_URI, else MLflow's default store
                if "mlflow" not in ids:
                    ids["mlflow"] = self._new_run(run_dir, config)
        except Exception as exc:  # any failure to reach or use the store is the user's set-up to fix
            message = _root_cause(exc)
            raise SemClipError(f"--report-to mlflow: cannot start a run at MLFLOW_TRACKING_URI {uri} ({message}); "
                               "start the tracking server or fix the URI, or leave out --report-to mlflow") from None
        self.run_id = ids["mlflow"]

    def _new_run(self, run_dir: Path, config: dict) -> str:
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME", PROJECT)
        experiment = self.client.get_experiment_by_name(name)
        experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(name)
        run_id = self.client.create_run(experiment_id, run_name=run_dir.resolve().name).info.run_id
        for key, value in config.items():  # parameters cannot change, so only a new run logs them
            self.client.log_param(run_id, key, json.dumps(value) if isinstance(value, (list, dict)) else value)
        return run_id

    def log(self, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), now, step) for k, v in values.items()])

    def close(self) -> None:
        self.client.set_terminated(self.run_id)


# While a run starts, an unreachable tracking server fails in seconds instead of after MLflow's
# default retries with back-off (minutes of silence); settings the user made are kept.
STARTUP_HTTP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


@contextlib.contextmanager
def _bounded_http():
    added = {key: value for key, value in STARTUP_HTTP.items() if key not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def _root_cause(exc: BaseException) -> str:
    """A failure in one short line: the network error under the wrappers ('Connection refused'),
    else the error's own message."""
    inner: BaseException | None = exc
    while inner is not None:
        if isinstance(inner, OSError) and inner.strerror:
            return inner.strerror
        inner = inner.__cause__ or inner.__context__
    text = " ".join(str(exc).split()) or type(exc).__name__
    return (text[:200] + "...") if len(text) > 200 else text


TRACKERS = {"tensorboard": TensorBoard, "wandb": WandB, "mlflow": MLflow}


def open_trackers(names: list[str], run_dir: Path, config: dict) -> list:
    """The trackers `names` asks for; their run ids are kept in `run_dir/trackers.json` for --resume."""
    from semclip_core.files import write_text_atomic

    path = run_dir / IDS_NAME
    ids = json.loads(path.read_text()) if path.exists() else {}
    trackers = [TRACKERS[name](run_dir, config, ids) for name in resolve_report_to(names)]
    if ids:
        write_text_atomic(path, json.dumps(ids, indent=2))
    return trackers
