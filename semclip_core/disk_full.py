"""A write that runs out of disk space or quota, as one line the user can act on.

`semclip_core.files` turns ENOSPC and EDQUOT during any of its writes into `DiskFull`, which names the
path, the free space on its file system and, when known, the space the write needed; the CLI error path
(`semclip_core.cli_errors`) turns any other out-of-space error into the same line with
`disk_full_error`. Writers report it in different ways: Python and pyarrow with errno 28 (pyarrow
also in the message), safetensors only in its message ("os error 28"), torch.save only as a short
write ("unexpected pos"), which counts when the file system is out of space at that moment.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from semclip_core.errors import UserError


class DiskFull(UserError):
    """A write failed for want of space (ENOSPC) or quota (EDQUOT): the user frees some and reruns."""

    def __init__(self, path: Path | None, needed: int | None = None, quota: bool = False):
        cause = "disk quota exceeded" if quota else "no space left on device"
        if path is None:
            super().__init__(f"{cause}; free some space and rerun the same command")
            return
        where = _mount_point(Path(path))
        try:
            free = f"{_size(shutil.disk_usage(where).free)} free on {where}"
        except OSError:
            free = f"free space on {where} unknown"
        need = f", {_size(needed)} needed" if needed else ""
        super().__init__(f"{cause} writing {path} ({free}{need}); free some space and rerun the same command")


_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
# writers that lose the errno on the way out (pyarrow, safetensors) still name it in their message
_FULL_TEXTS = ("No space left on device", "Disk quota exceeded", "os error 28", "os error 122")
_TORCH_SHORT_WRITE = ("unexpected pos", "file write failed", "PytorchStreamWriter failed")
_NEARLY_FULL = 1 << 20


def is_disk_full(exc: BaseException) -> bool:
    """True when `exc`, or an error it was raised from, is a full disk or an exceeded quota."""
    return any((isinstance(e, OSError) and e.errno in _FULL_ERRNOS) or any(text in str(e) for text in _FULL_TEXTS)
               for e in _chain(exc))


def disk_full_error(exc: BaseException) -> UserError | None:
    """The one-line error for a write that ran out of space outside this module (a library writing
    on its own), naming the file when the error does; None for any other error."""
    if not is_disk_full(exc):
        return None
    if isinstance(exc, UserError):
        return exc
    path = next((e.filename for e in _chain(exc) if isinstance(e, OSError) and e.filename), None)
    return DiskFull(path and Path(os.fsdecode(path)), quota=is_quota(exc))


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def is_quota(exc: BaseException) -> bool:
    return any((isinstance(e, OSError) and e.errno == errno.EDQUOT) or "quota" in str(e).lower() for e in _chain(exc))


def failed_for_space(exc: BaseException, folder: Path) -> bool:
    """A failed write is put down to a full disk when it says so, or when torch.save's writer failed
    (it reports a short write only as "unexpected pos") with the file system out of space."""
    if isinstance(exc, UserError):
        return False
    if is_disk_full(exc):
        return True
    if not (isinstance(exc, RuntimeError) and any(text in str(exc) for text in _TORCH_SHORT_WRITE)):
        return False
    try:
        return shutil.disk_usage(folder).free < _NEARLY_FULL
    except OSError:
        return False


def _mount_point(path: Path) -> Path:
    path = Path(os.path.realpath(path))
    while not os.path.ismount(path) and path != path.parent:
        path = path.parent
    return path


def _size(n: float) -> str:
    unit = "B"
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            break
        n /= 1000
    return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
