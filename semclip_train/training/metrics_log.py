"""Where training numbers go: a rich progress bar (plain lines off a terminal), `metrics.jsonl`, and the
trackers of `--report-to` (semclip_train.training.trackers).

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
    """JSON lines, a progress bar with samples/s and the loss terms, the chosen trackers."""

    def __init__(self, run_dir: Path, quiet: bool = False, resume_step: int | None = None,
                 report_to: list[str] | tuple[str, ...] = ("auto",), config: dict | None = None):
        from semclip_train.training.trackers import open_trackers

        from rich.console import Console

        self.path = run_dir / METRICS_NAME
        self.console = Console(stderr=True, quiet=quiet)
        if resume_step is not None and self.path.exists():
            _truncate_after(self.path, resume_step)
        elif self.path.exists():
            self.path.unlink()
        self.file = self.path.open("a", encoding="utf-8")
        self.trackers = open_trackers(list(report_to), run_dir, config or {})
        self.progress = None
        self.task = None
        self.total_steps, self.first_step, self.started, self.last_line = 0, 0, time.monotonic(), None

    def start(self, total_steps: int, done_steps: int) -> None:
        self.total_steps, self.started, self.last_line = total_steps, time.monotonic(), None
        self.first_step = done_steps
        if not self.console.is_terminal:  # Slurm, nohup: plain lines instead of a bar (see step)
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            TextColumn("{task.fields[status]}"), console=self.console, transient=False,
        )
        self.task = self.progress.add_task("train", total=total_steps, completed=done_steps, status="")
        self.progress.start()

    def step(self, step: int, record: dict[str, Any]) -> None:
        self._write({"step": step, **record})
        terms = " ".join(f"{k.removesuffix('_loss')} {v:.4f}" for k, v in record.items() if k.endswith("loss"))
        status = f"{record.get('samples_per_s', 0):.0f} samples/s  {terms}"
        if self.progress is not None:
            self.progress.update(self.task, completed=step, status=status)
        elif self._line_due(step):
            self.console.print(f"train {step:,}/{self.total_steps:,} steps · ETA {self._eta(step)} · "
                               f"{time.strftime('%H:%M:%S')} · {status}", markup=False, highlight=False, soft_wrap=True)
            self.console.file.flush()

    def _line_due(self, step: int) -> bool:
        """Off a terminal: a line at most every SEMCLIP_PROGRESS_INTERVAL seconds, and at the last step."""
        from semclip_core.progress import progress_interval

        now = time.monotonic()
        if step >= self.total_steps or self.last_line is None or now - self.last_line >= progress_interval():
            self.last_line = now
            return True
        return False

    def _eta(self, step: int) -> str:
        from semclip_core.progress import format_eta

        done = step - self.first_step
        rate = done / max(time.monotonic() - self.started, 1e-9)
        return format_eta((self.total_steps - step) / rate if rate > 0 else None)

    def event(self, record: dict[str, Any]) -> None:
        """A non-step record (validation, evaluation, the data report)."""
        self._write(record)

    def message(self, text: str) -> None:
        self.console.print(text)

    def _write(self, record: dict[str, Any]) -> None:
        record = {"time": round(time.time(), 3), **record}
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        if self.trackers and "step" in record:
            from semclip_train.training.trackers import tracked_values

            values = tracked_values(record)
            for tracker in self.trackers:
                tracker.log(values, record["step"])

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
        self.file.close()
        for tracker in self.trackers:
            tracker.close()


def _truncate_after(path: Path, step: int) -> None:
    """Keep lines logged up to `step` (those past it are recomputed by the resumed run)."""
    from semclip_core.files import write_text_atomic

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
