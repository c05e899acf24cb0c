"""How every command writes files: atomically, with the user's umask, never onto an input, one run
per output. `triplegen` and `semclip_train` both write through these few functions.

A file or folder appears complete or not at all: it is written under a temporary name beside its
destination (`.<name>.<12 hex digits>.tmp`, on the same file system) and moved into place with
`os.replace`. New files get mode 0666 and folders 0777, minus the umask, like any file the user's
shell creates; `tempfile.mkstemp`/`mkdtemp` would make them private (0600/0700) and the rename keeps
that, so a colleague could not read a triples file or a checkpoint in a shared folder. A process
killed mid-write leaves its temporary file behind; the next run, holding the run's lock, removes
it (`remove_stale_temps`).

Nothing is written through a symbolic link: a destination or lock file that is a link (which no
command makes) is refused, so a link planted at an output's name cannot make a run truncate or
replace the file it points to. `refuse_unsafe_output` is the one check a command runs on a path it
will write: not a link, not an input, not outside its output folder. A full disk or an exceeded quota
during any write here is one line naming the path and the free space there (`DiskFull`); the
temporary file is removed, so the same command reruns (and a generate run resumes) once there is room.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import shutil
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

from semclip_core.disk_full import DiskFull, failed_for_space, is_disk_full, is_quota
from semclip_core.errors import UserError

_TEMP = re.compile(r"^\.(?P<name>.+)\.[0-9a-f]{12}\.tmp$")


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def temp_name(path: Path) -> Path:
    """`.<name>.<12 hex digits>.tmp` beside `path`: what `remove_stale_temps` clears after a kill."""
    return path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"


def cannot_write(path: Path, exc: OSError) -> UserError:
    if is_disk_full(exc):
        return DiskFull(path, quota=is_quota(exc))
    return UserError(f"cannot write {path}: {exc.strerror or exc}"
                     + (f" ({exc.filename})" if exc.filename and str(exc.filename) != str(path) else ""))


def make_parent(path: Path) -> None:
    """The destination's folder, created if missing; a one-line error if it cannot be."""
    path = Path(path)
    blocker = next((p for p in path.parents if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise UserError(f"cannot write {path}: {blocker} is a file, not a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise cannot_write(path, exc) from None


def temp_path(path: Path) -> Path:
    """A new empty file beside `path`, with the permissions the umask gives any new file."""
    path = Path(path)
    make_parent(path)
    while True:
        name = temp_name(path)
        try:
            os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return name
        except FileExistsError:
            continue
        except OSError as exc:
            raise cannot_write(path, exc) from None


@contextlib.contextmanager
def atomic_path(path: Path, needed: int | None = None) -> Iterator[Path]:
    """A temporary file for any writer (pyarrow, safetensors, torch.save), moved onto `path` only
    when the block finishes; on an exception it is removed and `path` is left as it was. A full disk
    becomes `DiskFull` (`needed`: the bytes the write needs, when known)."""
    path = Path(path)
    refuse_link(path, "the output")
    temp = temp_path(path)
    try:
        yield temp
        os.chmod(temp, 0o666 & ~current_umask())  # a writer that recreated the file chose its own mode
        os.replace(temp, path)
    except BaseException as exc:
        full = failed_for_space(exc, path.parent)
        temp.unlink(missing_ok=True)
        if full:
            raise DiskFull(path, needed, is_quota(exc)) from None
        raise


@contextlib.contextmanager
def atomic_folder(path: Path) -> Iterator[Path]:
    """A temporary folder moved onto `path` when the block finishes (an older `path` is replaced).

    Everything written into it gets the umask's permissions, whatever mode its writer chose
    (`save_pretrained` and safetensors create some files private).
    """
    path = Path(path)
    refuse_link(path, "the output")
    make_parent(path)
    temp = temp_name(path)
    try:
        os.mkdir(temp, 0o777)
    except OSError as exc:
        raise cannot_write(path, exc) from None
    try:
        yield temp
        _apply_umask(temp)
        if path.exists():  # a folder cannot be replaced in one step: move the old one aside first
            old = temp_name(path)
            os.replace(path, old)
            os.replace(temp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(temp, path)
    except BaseException as exc:
        full = failed_for_space(exc, path.parent)
        shutil.rmtree(temp, ignore_errors=True)
        if full:
            raise DiskFull(path, quota=is_quota(exc)) from None
        raise


def _apply_umask(folder: Path) -> None:
    mask = current_umask()
    os.chmod(folder, 0o777 & ~mask)
    for parent, folders, files in os.walk(folder):
        for name in folders:
            os.chmod(os.path.join(parent, name), 0o777 & ~mask)
        for name in files:
            os.chmod(os.path.join(parent, name), 0o666 & ~mask)


def move_into_place(staged: Path, path: Path) -> None:
    """Put a file written beside `path` (see `temp_path`) in its place in one step."""
    refuse_link(Path(path), "the output")
    os.replace(staged, path)


def remove_folder(path: Path) -> None:
    """Delete a folder as a whole: renamed to a temporary name first, so a kill during the deletion
    leaves a temporary that `remove_stale_temps` clears, never a half-deleted folder."""
    path = Path(path)
    if path.is_symlink() or not path.is_dir():
        return
    doomed = temp_name(path)
    os.replace(path, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    """A small file (card, marker, report, image) through a temp file, fsync and a rename."""
    path = Path(path)
    with atomic_path(path, len(data)) as temp:
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    return path


def write_text_atomic(path: Path, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: Path, value) -> Path:
    return write_text_atomic(path, json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")


def remove_stale_temps(folder: Path, names: Iterable[str] | None = None) -> int:
    """Delete the temporary files and folders that a killed process left in `folder` (only those
    of the destinations `names` when given); returns how many. Call it only while holding the
    lock of the run that owns them, or a live writer's file could go."""
    wanted = None if names is None else set(names)
    removed = 0
    try:
        entries = list(Path(folder).iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return 0
    for entry in entries:
        match = _TEMP.match(entry.name)
        if match is None or (wanted is not None and match["name"] not in wanted):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed += 1
    return removed


def same_file(a: Path, b: Path) -> bool:
    """True when `a` and `b` are one file: the same path, a link to it, or a hard link."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist yet: compare where the links lead
        return os.path.realpath(a) == os.path.realpath(b)


def refuse_overwriting_inputs(outputs: dict[str, Path | None], inputs: Iterable[Path], *,
                              read_folders: bool = False) -> None:
    """Refuse an output that is an input (also through a link), whatever `--overwrite` says:
    writing it would destroy what is being read. With `read_folders` (an input folder is read whole,
    as generate reads a folder of Parquet files), an output inside an input folder is refused too."""
    inputs = [Path(p) for p in inputs]
    for flag, output in outputs.items():
        if output is None:
            continue
        for source in inputs:
            if same_file(output, source):
                raise UserError(f"{flag} {output} is the input {source}; writing it would destroy the input: "
                                "name another file")
            if read_folders and source.is_dir() and Path(os.path.realpath(output)).is_relative_to(
                    os.path.realpath(source)):
                raise UserError(f"{flag} {output} lies inside the input folder {source}; a later run would read "
                                "it as input: write it elsewhere")


def refuse_link(path: Path, what: str) -> None:
    """Refuse to write at a path that is a symbolic link: no command makes one, so it leads to a file
    that is not this run's, which writing through it (or replacing it) would change or hide."""
    path = Path(path)
    if path.is_symlink():
        raise UserError(f"{what} {path} is a symbolic link (to {os.readlink(path)}); nothing is written through "
                        "a link: remove the link or name another path")


def refuse_unsafe_output(path: Path, flag: str, inputs: Iterable[Path] = (), within: Path | None = None) -> None:
    """The one input-protection rule for any path a command writes (a file, a folder, a lock, a cache):
    not a symbolic link, not an input or inside an input folder, and, given `within` (the output
    folder), inside it once every link on the way is followed."""
    path = Path(path)
    refuse_overwriting_inputs({flag: path}, inputs, read_folders=True)
    refuse_link(path, flag)
    if within is not None:
        real = Path(os.path.realpath(path))
        if not real.is_relative_to(os.path.realpath(within)):
            raise UserError(f"{flag} {path} leads to {real}, outside the output folder {within} "
                            "(a link on the way?); remove the link or name another path")


def refuse_folder(path: Path | None, flag: str) -> None:
    """An output file that names an existing folder is a mistake, not something to replace; one
    whose folder cannot be made (a file in the way) is refused before any work."""
    if path is None:
        return
    if Path(path).is_dir():
        raise UserError(f"{flag} {path} is a folder; give a file name, e.g. {Path(path) / 'name'}")
    _refuse_a_file_in_the_way(Path(path).parents, path, flag)


def refuse_file(path: Path, flag: str) -> None:
    """An output folder (a run folder) that is a file, or lies under one, is refused before any work."""
    _refuse_a_file_in_the_way([Path(path), *Path(path).parents], path, flag)


def _refuse_a_file_in_the_way(candidates, path: Path, flag: str) -> None:
    blocker = next((p for p in candidates if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise UserError(f"{flag} {path}: {blocker} is a file, not a folder")


class RunLock:
    """One run per output: an exclusive `flock` on a lock file beside what the run writes.

    The kernel drops the lock when the process ends, even by kill -9, so a killed run never leaves
    its output locked; a second run that finds it held is refused at once with the holder's pid.
    """

    def __init__(self, path: Path, what: str):
        self.path, self.what = Path(path), what
        self._fd: int | None = None

    def __enter__(self) -> "RunLock":
        import fcntl

        refuse_link(self.path, f"{self.what}: the lock")
        make_parent(self.path)
        while True:
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 64).decode(errors="replace").strip()
                os.close(fd)
                raise UserError(f"{self.what} is in use by another run (pid {holder or '?'}, lock {self.path}); "
                                "wait for it to finish or stop it") from None
            try:  # the holder before us may have removed the file between our open and our lock
                same = os.fstat(fd).st_ino == os.lstat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        self._fd = fd
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError as exc:
            self.__exit__()
            raise cannot_write(self.path, exc) from None
        return self

    def _open(self) -> int:
        """The lock file, never through a link (O_NOFOLLOW) and only a plain file of its own: a hard
        link to another file would be truncated to the pid."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # made a link since refuse_link looked
                refuse_link(self.path, f"{self.what}: the lock")
            if is_disk_full(exc):
                raise DiskFull(self.path) from None
            raise UserError(f"{self.what}: cannot write in {self.path.parent} ({exc.strerror or exc})") from None
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            os.close(fd)
            kind = "a hard link to another file" if stat.S_ISREG(info.st_mode) else "not a plain file"
            raise UserError(f"{self.what}: the lock {self.path} is {kind}, not a lock a run made; "
                            "nothing is written into it: remove it and rerun")
        return fd

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            self.path.unlink(missing_ok=True)  # while still holding it, so nobody locks a removed file
            os.close(self._fd)
            self._fd = None
