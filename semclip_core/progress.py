"""Progress lines on stderr that read well in a terminal and in a log file, for any long command.

When stderr is not a terminal (Slurm, nohup, a CI log), a bar would print nothing until the end, so
a command prints a plain line every `SEMCLIP_PROGRESS_INTERVAL` seconds (default 30) instead, and
once at the end; `triplegen generate` and `semclip-train` both keep to that interval.
"""

from __future__ import annotations

import os
import sys
import threading

from rich.console import Console


def stderr_console() -> Console:
    return Console(file=sys.stderr, highlight=False)


def progress_interval() -> float:
    """Seconds between plain progress lines off a terminal (`SEMCLIP_PROGRESS_INTERVAL`)."""
    try:
        return max(0.1, float(os.environ.get("SEMCLIP_PROGRESS_INTERVAL", "30")))
    except ValueError:
        return 30.0


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


class Ticker:
    """Calls `action()` every `interval` seconds from a daemon thread, and once more at `stop()`."""

    def __init__(self, action, interval: float):
        self.action, self.interval = action, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="progress")

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.action()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.action()


class PlainTicker(Ticker):
    """Prints `line()` every `interval` seconds (off a terminal), and once more at `stop()`."""

    def __init__(self, line, console: Console, interval: float | None = None):
        super().__init__(self._print, interval or progress_interval())
        self.line, self.console = line, console

    def _print(self) -> None:
        self.console.print(self.line(), markup=False, highlight=False, soft_wrap=True)
        self.console.file.flush()
