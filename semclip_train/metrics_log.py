"""Where training numbers go: a rich progress bar, `metrics.jsonl`, and TensorBoard when installed.

Only rank 0 creates a `MetricsLog`; other ranks get a `NullLog`, so the trainer never asks who it is
before logging. `metrics.jsonl` is appended and flushed line by line, so a crashed run keeps
everything it logged; on resume, lines past the checkpoint's step are dropped first, so the file
ends up as if the run had never stopped.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

METRICS_NAME = "metrics.jsonl"


class NullLog:
    """The log of a rank that does not write."""

    def start(self, total_steps: int, done_steps: int) -> None: ...

    def step(self, step: int, record: dict[str, Any]) -> None: ...

    def event(self, record: dict[str, Any]) -> None: ...

    def message(self, text: str) -> None: ...

    def close(self) -> None: ...


class MetricsLog(NullLog):
    """JSON lines, a progress bar with samples/s and the loss terms, optional TensorBoard."""

    def __init__(self, run_dir: Path, quiet: bool = False, resume_step: int | None = None):
        from rich.console import Console

        self.path = run_dir / METRICS_NAME
        self.console = Console(stderr=True, quiet=quiet)
        if resume_step is not None and self.path.exists():
            _truncate_after(self.path, resume_step)
        elif self.path.exists():
            self.path.unlink()
        self.file = self.path.open("a", encoding="utf-8")
        self.tensorboard = _tensorboard_writer(run_dir / "tensorboard")
        self.progress = None
        self.task = None

    def start(self, total_steps: int, done_steps: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            TextColumn("{task.fields[status]}"), console=self.console, transient=False,
        )
        self.task = self.progress.add_task("train", total=total_steps, completed=done_steps, status="")
        self.progress.start()

    def step(self, step: int, record: dict[str, Any]) -> None:
        self._write({"step": step, **record})
        if self.progress is not None:
            terms = " ".join(f"{k.removesuffix('_loss')} {v:.4f}" for k, v in record.items() if k.endswith("loss"))
            status = f"{record.get('samples_per_s', 0):.0f} samples/s  {terms}"
            self.progress.update(self.task, completed=step, status=status)

    def event(self, record: dict[str, Any]) -> None:
        """A non-step record (validation, evaluation, the data report)."""
        self._write(record)

    def message(self, text: str) -> None:
        self.console.print(text)

    def _write(self, record: dict[str, Any]) -> None:
        record = {"time": round(time.time(), 3), **record}
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        if self.tensorboard is not None and "step" in record:
            for key, value in record.items():
                if isinstance(value, (int, float)) and key not in ("step", "time"):
                    self.tensorboard.add_scalar(key, value, record["step"])

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
        self.file.close()
        if self.tensorboard is not None:
            self.tensorboard.close()


def _tensorboard_writer(folder: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(str(folder))


def _truncate_after(path: Path, step: int) -> None:
    """Keep lines logged up to `step` (those past it are recomputed by the resumed run)."""
    from triplegen.files import write_text_atomic

    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # the last line of a killed run may be cut short
            continue
        if record.get("step", 0) <= step:
            kept.append(line)
    write_text_atomic(path, "".join(line + "\n" for line in kept))


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """Every record of a run's `metrics.jsonl`."""
    path = run_dir / METRICS_NAME
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
