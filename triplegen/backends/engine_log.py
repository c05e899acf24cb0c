"""Where an in-process vLLM engine's own output goes: a log file, not the terminal.

Starting an engine prints some fifty lines (its configuration, worker processes, weight loading,
compilation) from this process and from the engine's worker processes, which inherit stdout and
stderr; around a progress bar they bury it. While the engine starts, both file descriptors point at
the log file, so the workers write there for good; afterwards vLLM's logger in this process writes
there too. `--verbose` leaves everything on the terminal.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


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
