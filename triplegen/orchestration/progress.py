"""Live progress of a generate run: rows/s and accepted/rejected, plus the backend's own counters.

The backend's counters (tokens, retries, server errors) are read live from its optional `stats`
attribute (a `BackendStats`), so a served run shows tokens/s while a chunk is still in flight. The
rows move with requests too: those of finished chunks, plus the rows of the chunk in flight whose
request came back (`BackendStats.answered_rows`); a backend without stats moves chunk by chunk.
Rows skipped because an earlier run finished them are not counted in rows/s.

Off a terminal the bar becomes a plain line every `SEMCLIP_PROGRESS_INTERVAL` seconds
(`semclip_core.progress`, shared with `semclip-train`).
"""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
from rich.text import Text

from semclip_core.progress import PlainTicker, Ticker, format_eta, stderr_console
from triplegen.backends.base import BackendStats
from triplegen.orchestration.records import ChunkSummary

BAR_REFRESH_S = 0.5  # how often the bar follows the requests of the chunk in flight


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
        self.accepted = self.rejected = self.retries = self.new_rows = self.done = 0
        self._answered_before = stats.answered_rows if stats is not None else 0.0  # by earlier chunks
        self.started = time.monotonic()
        self._progress = self._ticker = None
        console = console or stderr_console()
        if not quiet and not console.is_terminal:
            self._ticker = PlainTicker(self.plain_line, console)
        elif not quiet:
            self._progress = Progress(
                TextColumn("[bold]generate"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                _Counters(self), console=console, transient=False,
            )
            self._task = self._progress.add_task("rows", total=total)
            self._ticker = Ticker(self._move_bar, BAR_REFRESH_S)

    def __enter__(self) -> "RunProgress":
        self.started = time.monotonic()
        if self._progress is not None:
            self._progress.start()
        if self._ticker is not None:
            self._ticker.start()
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is not None and self.stats is not None:  # a stopped run keeps only its finished chunks
            self._answered_before = self.stats.answered_rows
        if self._ticker is not None:
            self._ticker.stop()
        if self._progress is not None:
            self._progress.stop()

    def advance(self, summary: ChunkSummary, resumed: bool = False) -> None:
        """Count one finished chunk (from its completion marker)."""
        self.accepted += summary.accepted
        self.rejected += summary.rejected
        self.retries += summary.retries
        if not resumed:
            self.new_rows += summary.rows
            if self.stats is not None:  # the chunk's answered rows are in `done` now
                self._answered_before = self.stats.answered_rows
        self.done += summary.rows
        self._move_bar()

    def in_flight(self) -> int:
        """Rows of the chunk being generated whose request came back (0 without backend stats)."""
        if self.stats is None:
            return 0
        return max(0, min(int(self.stats.answered_rows - self._answered_before), self.total - self.done))

    def rows_done(self) -> int:
        return self.done + self.in_flight()

    def _move_bar(self) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=self.rows_done())

    def rows_per_s(self) -> float:
        return (self.new_rows + self.in_flight()) / max(time.monotonic() - self.started, 1e-9)

    def plain_line(self) -> str:
        """One log line: where the run is, its speed and its ETA (from this run's own rows/s)."""
        rate = self.rows_per_s()
        done = self.rows_done()
        left = self.total - done
        eta = left / rate if rate > 0 else (0 if left == 0 else None)
        share = done / self.total if self.total else 1.0
        return (f"generate {done:,}/{self.total:,} rows ({share:.0%}) · ETA {format_eta(eta)} · "
                f"{time.strftime('%H:%M:%S')} · {self.describe()}")

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
