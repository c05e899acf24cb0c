"""Live progress of a generate run: rows/s and accepted/rejected, plus the backend's own counters.

The backend's counters (tokens, retries, server errors) are read live from its optional `stats`
attribute (a `BackendStats`), so a served run shows tokens/s while a chunk is still in flight.
Rows skipped because an earlier run finished them are not counted in rows/s.
"""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
from rich.text import Text

from triplegen.backends.base import BackendStats
from triplegen.records import ChunkSummary


def stderr_console() -> Console:
    return Console(file=sys.stderr, highlight=False)


class _Counters(ProgressColumn):
    def __init__(self, owner: "RunProgress"):
        super().__init__()
        self.owner = owner

    def render(self, task) -> Text:
        return Text(self.owner.describe(), style="cyan")


class RunProgress:
    """A rich progress bar over input rows; silent when `quiet`."""

    def __init__(self, total: int, quiet: bool = False, stats: BackendStats | None = None,
                 console: Console | None = None):
        self.total, self.quiet, self.stats = total, quiet, stats
        self.accepted = self.rejected = self.retries = self.new_rows = 0
        self.started = time.monotonic()
        self._progress = None
        if not quiet:
            self._progress = Progress(
                TextColumn("[bold]generate"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                _Counters(self), console=console or stderr_console(), transient=False,
            )
            self._task = self._progress.add_task("rows", total=total)

    def __enter__(self) -> "RunProgress":
        self.started = time.monotonic()
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()

    def advance(self, summary: ChunkSummary, resumed: bool = False) -> None:
        """Count one finished chunk (from its completion marker)."""
        self.accepted += summary.accepted
        self.rejected += summary.rejected
        self.retries += summary.retries
        if not resumed:
            self.new_rows += summary.rows
        if self._progress is not None:
            self._progress.advance(self._task, summary.rows)

    def rows_per_s(self) -> float:
        return self.new_rows / max(time.monotonic() - self.started, 1e-9)

    def describe(self) -> str:
        done = self.accepted + self.rejected
        parts = [
            f"{self.rows_per_s():,.0f} rows/s",
            f"accepted {self.accepted:,}",
            f"rejected {self.rejected:,}",
        ]
        if done:
            parts.append(f"{self.accepted / done:.0%} ok")
        if self.stats is not None:
            elapsed = max(time.monotonic() - self.started, 1e-9)
            parts.append(f"requests {self.stats.requests:,}")
            parts.append(f"{self.stats.completion_tokens / elapsed:,.0f} tok/s")
            parts.append(f"retries {self.retries:,}")
            parts.append(f"server errors {self.stats.server_errors:,}")
            if self.stats.retries:
                parts.append(f"transport retries {self.stats.retries:,}")
        elif self.retries:
            parts.append(f"retries {self.retries:,}")
        return " · ".join(parts)
