"""The state of a resumable run: a work folder of finished chunks next to the output.

Layout of `<output>.parts/`:
    fingerprint.json            what the run was started with (prompt hash, model, input, ...)
    chunk-000042.parquet        accepted rows of chunk 42
    chunk-000042.rejects.parquet
    chunk-000042.done           completion marker (JSON counts), written last

A chunk counts as finished only when its marker exists; the marker is written after both part files
were renamed into place (as datatrove's completion markers), so a run killed at any moment leaves
either a finished chunk or one that is simply done again. A rerun with different settings would mix
two runs in one file, so it is refused unless the user asks to start over.

An input edited in place can keep its size and modification time, which the fingerprint holds; so
each marker also holds a digest of its chunk's input rows, and a resumed run compares them before it
generates anything (`verify_input`), at the cost of reading the finished part of the input once more.
What a run computes over the whole input, not chunk by chunk (the object vocabulary of
`--absent-objects`), is a digest in the fingerprint: an edit of unfinished rows that changes it is
refused too, since finished chunks were made with the old one.

The folder is the run's own: one that is a symbolic link (say, to the input folder) is refused, never
written through. A finished run moves it aside before deleting it, so a kill during the deletion
leaves a temporary folder the next run removes, not a folder of half the markers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa

from semclip_core.files import remove_folder, write_json_atomic
from triplegen.errors import TripleGenError
from triplegen.io.layout import retry_folder, work_folder
from triplegen.orchestration.records import ChunkSummary

FINGERPRINT = "fingerprint.json"


class WorkFolder:
    """Finished chunks of one run and the fingerprint that ties them to their settings."""

    def __init__(self, output: Path, path: Path | None = None, guarded: tuple[Path, ...] | None = None):
        self.output = output
        self.path = path or work_folder(output)
        self.guarded = (output,) if guarded is None else guarded  # files a new run must not find
        self._refuse_a_link()

    @classmethod
    def for_retry(cls, output: Path) -> "WorkFolder":
        """The work folder of `--retry-backend-errors`: beside an output that exists by design."""
        return cls(output, retry_folder(output), guarded=())

    def _refuse_a_link(self) -> None:
        if self.path.is_symlink():
            raise TripleGenError(f"{self.path} is a symbolic link; a run keeps its unfinished chunks in a folder of "
                                 "its own there and never writes through a link: remove the link")
        if self.path.exists() and not self.path.is_dir():
            raise TripleGenError(f"{self.path} is a file; a run keeps its unfinished chunks in a folder there: "
                                 "move the file away")

    def open(self, fingerprint: dict, overwrite: bool, extra_outputs: tuple[Path, ...] = ()) -> int:
        """Prepare the folder for a run; returns how many chunks a previous run already finished."""
        self._refuse_a_link()
        if overwrite and self.path.exists():
            self.remove()
        if not self.path.exists():
            existing = [p for p in (*self.guarded, *extra_outputs) if p.exists()]
            if existing and not overwrite:
                raise TripleGenError(
                    f"{existing[0]} already exists; pass --overwrite to replace it or choose another -o"
                )
            write_json_atomic(self.path / FINGERPRINT, fingerprint)  # creates the folder
            return 0
        stored = self._stored_fingerprint()
        if stored is None:  # killed before the fingerprint was written: nothing was finished
            write_json_atomic(self.path / FINGERPRINT, fingerprint)
            return len(self.done_chunks())
        changed = differences(stored, fingerprint)
        if changed:
            raise TripleGenError(
                f"{self.path} holds an unfinished run with a different {', '.join(changed)}; "
                "rerun with the original settings to resume it, or pass --overwrite to start over"
            )
        return len(self.done_chunks())

    def _stored_fingerprint(self) -> dict | None:
        try:
            return json.loads((self.path / FINGERPRINT).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise TripleGenError(f"{self.path / FINGERPRINT} is unreadable ({exc}); pass --overwrite") from None

    def part(self, index: int) -> Path:
        return self.path / f"chunk-{index:06d}.parquet"

    def rejects_part(self, index: int) -> Path:
        return self.path / f"chunk-{index:06d}.rejects.parquet"

    def marker(self, index: int) -> Path:
        return self.path / f"chunk-{index:06d}.done"

    def is_done(self, index: int) -> bool:
        return self.marker(index).exists()

    def mark_done(self, index: int, summary: ChunkSummary) -> None:
        write_json_atomic(self.marker(index), summary.model_dump(mode="json"))

    def done_chunks(self) -> list[int]:
        return sorted(int(p.name[6:12]) for p in self.path.glob("chunk-*.done"))

    def summary(self, index: int) -> ChunkSummary:
        return ChunkSummary.model_validate_json(self.marker(index).read_text(encoding="utf-8"))

    def summaries(self) -> list[ChunkSummary]:
        return [self.summary(i) for i in self.done_chunks()]

    def verify_input(self, chunks: Iterable, input_name: str) -> None:
        """Refuse to resume when a finished chunk's input rows differ from what the input holds now."""
        done = set(self.done_chunks())
        last = max(done, default=-1)
        for chunk in chunks:
            if chunk.index > last:
                return
            if chunk.index not in done:
                continue
            stored = self.summary(chunk.index).input_digest
            if stored is not None and stored != input_digest(chunk.rows):
                raise TripleGenError(
                    f"{input_name} changed since the unfinished run in {self.path} (the rows of chunk "
                    f"{chunk.index} differ); rerun with the original input to resume, or pass --overwrite to start over"
                )

    def remove(self) -> None:
        """Delete the folder: first renamed to a temporary name (atomic), so that it is gone as a whole."""
        remove_folder(self.path)


def combined_digest(digests: Iterable[str | None]) -> str | None:
    """One digest of the chunks' input digests, in chunk order (None if a chunk has none)."""
    combined = hashlib.blake2b(digest_size=16)
    for digest in digests:
        if digest is None:
            return None
        combined.update(digest.encode())
    return combined.hexdigest()


def input_digest(rows: pa.Table) -> str:
    """A digest of a chunk's normalised input rows (ids, captions, images, carried columns)."""
    digest = hashlib.blake2b(digest_size=16)
    for name in rows.column_names:
        digest.update(name.encode())
        digest.update(repr(rows.column(name).to_pylist()).encode())
    return digest.hexdigest()


# Names shown to the user when a setting differs between the stored and the new run.
_LABELS = {
    "prompt_hash": "prompt (hash)",
    "prompt": "prompt",
    "model": "model",
    "backend": "backend",
    "seed": "seed",
    "columns": "columns",
    "input": "input",
    "shard": "shard",
    "limit": "limit",
    "chunk_size": "chunk size",
    "sampling": "sampling settings",
    "max_attempts": "max attempts",
    "checks": "checks",
    "vocabulary": "input (its object labels, which absent objects are chosen from)",
}
# Keys newer versions added to the fingerprint: a folder started by an older version, without them, still resumes.
_ADDED_LATER = {"vocabulary"}


def differences(stored: dict, current: dict) -> list[str]:
    """The user-facing names of the fingerprint entries that differ."""
    keys = sorted((set(stored) | set(current)) - {key for key in _ADDED_LATER if key not in stored})
    return [_LABELS.get(key, key) for key in keys if stored.get(key) != current.get(key)]
