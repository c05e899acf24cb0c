"""Where an in-process vLLM engine's own output goes: a log file, not the terminal.

Starting an engine prints some fifty lines (its configuration, worker processes, weight loading,
compilation) from this process and from the engine's worker processes, which inherit stdout and
stderr; around a progress bar they bury it. While the engine starts, both file descriptors point at
the log file, so the workers write there for good; afterwards vLLM's logger in this process writes
there too. `--verbose` leaves everything on the terminal.

When the engine fails to start, the exception this process gets says only "Engine core
initialization failed. See root cause above"; the cause is a worker's traceback in the log, which
`root_cause` reads back (from where this start began writing) for the one-line error.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# "ValueError: ..." at the start of a line or after a log prefix "(Worker pid=1) ERROR ... [f.py:1] "
_EXCEPTION_LINE = re.compile(r"(?:^|\] )((?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*(?:Error|Exception)): (.+)$")
# what vLLM wraps the cause in, on its way to this process
_WRAPPERS = ("Engine core initialization failed", "Worker failed with error", "Worker proc")


@contextmanager
def engine_output_to(path: Path | None) -> Iterator[None]:
    """Send what is printed inside the block (this process and the processes it starts) to `path`."""
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as sink:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
    _vllm_logger_to(path)


def _vllm_logger_to(path: Path) -> None:
    """vLLM's logger keeps writing to the log file once the engine is up (its stats, its warnings)."""
    logger = logging.getLogger("vllm")
    streams = [h for h in logger.handlers if type(h) is logging.StreamHandler]
    if not streams:
        return
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(streams[0].formatter)
    for stream in streams:
        logger.removeHandler(stream)
    logger.addHandler(handler)


def log_size(path: Path | None) -> int:
    """Where the next engine start begins writing in `path` (the log is appended to)."""
    try:
        return path.stat().st_size if path is not None else 0
    except OSError:
        return 0


def root_cause(path: Path | None, offset: int = 0) -> str | None:
    """The first exception line ("ValueError: Available memory ...") written to `path` after `offset`,
    without vLLM's wrappers around it; None when there is none (or no log)."""
    if path is None:
        return None
    try:
        with open(path, "rb") as log:
            log.seek(offset)
            text = log.read().decode("utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        match = _EXCEPTION_LINE.search(line.rstrip())
        if match and not match.group(2).startswith(_WRAPPERS):
            return f"{match.group(1).rsplit('.', 1)[-1]}: {match.group(2).strip()}"
    return None
