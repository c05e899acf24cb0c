"""Duplicate ids in bounded memory: the first id that an earlier row already had, at any input size.

`generate` refuses an input whose ids repeat (a resumed or sharded run finds its rows by id). A set
of the ids costs about 100 bytes an id, 10 GB at 10^8 rows. Instead each id becomes a 64-bit hash
with its row number; the pairs are held in blocks of BLOCK_ROWS, and a full block is sorted and
spilled into PARTITIONS files by the hash's top byte, in a temporary folder beside the output (16
bytes a row on disk; an input that fits one block never touches the disk). Each partition, sorted
by hash, gives the rows whose hash an earlier row already had. Equal hashes are only candidates:
the smallest candidate rows and the earlier rows of their hashes are read again from the input
(`id_batches`), and their ids are compared, so a hash collision is never reported as a duplicate.
The answer is the one a set would give: the first row, in input order, whose id was seen before.

Memory is one block (32 MiB of pairs) while the ids are read, then a group of partitions of about
8 MiB at a time: under 300 MiB for the whole process at 10^7 or 10^8 ids (benchmarks/duplicate_ids.py,
docs/benchmarks.md).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import polars as pl
import pyarrow as pa

from semclip_core.errors import UserError
from semclip_core.files import make_parent, temp_name

BLOCK_ROWS = 1 << 21  # (hash, row) pairs held in memory before a spill: 32 MiB
PARTITIONS = 256  # spill files by the hash's top byte; each is read and sorted on its own
CANDIDATES = 1024  # repeat rows confirmed by their ids per pass of the input (one pass unless hashes collide)
_SEED = 0x5EC1  # any fixed seed: hashes are compared within one process only
_BOUNDS = pl.Series([part << 56 for part in range(1, PARTITIONS)], dtype=pl.UInt64)


class DuplicateIds:
    """Collects ids batch by batch (`add`), then names the first repeated one (`first_duplicate`).

    Use it as a context manager: the spill folder (`.<output name>.<hex>.tmp` beside `beside`, so
    that the next run's stale-temp clean-up removes it after a kill -9) is deleted on exit.
    """

    def __init__(self, beside: Path):
        self.beside = Path(beside)
        self.rows = 0
        self._pending: list[pl.Series] = []
        self._pending_rows = 0
        self._folder: Path | None = None

    def __enter__(self) -> DuplicateIds:
        return self

    def __exit__(self, *exc) -> None:
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def add(self, ids: list[str]) -> None:
        self._pending.append(hashes(ids))
        self._pending_rows += len(ids)
        self.rows += len(ids)
        if self._pending_rows >= BLOCK_ROWS:
            self._spill()

    def first_duplicate(self, id_batches: Callable[[], Iterable[list[str]]]) -> str | None:
        """The first id, in row order, that an earlier row already had; None when all differ.

        `id_batches` reads the same ids again, in the same order (only when two hashes are equal).
        """
        after = -1
        while True:
            picked = self._candidates(after)
            if picked.is_empty():
                return None
            last = picked["r"].max()
            groups = self._group_rows(picked["h"].unique(), last)
            wanted = set(groups["r"].to_list())
            ids = _ids_at(id_batches(), wanted, last)
            if len(ids) != len(wanted):
                raise UserError("the input changed while its ids were read; run the command again")
            earlier: dict[int, set[str]] = {}
            for h, r in groups.sort("r").iter_rows():
                seen = earlier.setdefault(h, set())
                if ids[r] in seen:
                    return ids[r]
                seen.add(ids[r])
            after = last

    # -- the pairs, in memory and spilled ------------------------------------------------------------

    def _block(self) -> pl.DataFrame:
        """The pending pairs, sorted by hash (rows ascending within a hash: the sort is stable)."""
        values = pl.concat(self._pending) if self._pending else pl.Series([], dtype=pl.UInt64)
        start = self.rows - self._pending_rows
        rows = pl.int_range(start, start + len(values), dtype=pl.UInt64, eager=True)
        return pl.DataFrame({"h": values, "r": rows}).sort("h", maintain_order=True)

    def _spill(self) -> None:
        block = self._block()
        self._pending, self._pending_rows = [], 0
        folder = self._spill_folder()
        cuts = [0, *block["h"].search_sorted(_BOUNDS, side="left").to_list(), block.height]
        columns = (("h", _raw(block["h"])), ("r", _raw(block["r"])))
        for part in range(PARTITIONS):
            start, end = cuts[part] * 8, cuts[part + 1] * 8
            if start == end:
                continue
            for suffix, data in columns:
                path = folder / f"{part:03d}.{suffix}"
                try:
                    with open(path, "ab") as handle:
                        handle.write(data[start:end])
                except OSError as exc:
                    raise UserError(f"cannot write {path}: {exc.strerror or exc}; the duplicate-id check needs "
                                    f"16 bytes a row free beside {self.beside}") from None

    def _spill_folder(self) -> Path:
        if self._folder is None:
            make_parent(self.beside)
            folder = temp_name(self.beside)
            try:
                folder.mkdir()
            except OSError as exc:
                raise UserError(f"cannot write {folder}: {exc.strerror or exc}") from None
            self._folder = folder
        return self._folder

    def _partitions(self) -> Iterator[pl.DataFrame]:
        """Every pair, a few partitions at a time (about BLOCK_ROWS / 4 pairs), sorted by hash then row."""
        if self._folder is None:
            yield self._block()
            return
        if self._pending_rows:
            self._spill()
        values: list[bytes] = []
        rows: list[bytes] = []
        for part in range(PARTITIONS):
            path = self._folder / f"{part:03d}.h"
            if path.exists():
                values.append(path.read_bytes())
                rows.append(path.with_suffix(".r").read_bytes())
            if values and (part == PARTITIONS - 1 or sum(map(len, values)) >= 2 * BLOCK_ROWS):
                group = pl.DataFrame({"h": _series(b"".join(values)), "r": _series(b"".join(rows))})
                values, rows = [], []
                # partitions hold disjoint hashes, so a stable sort keeps each hash's rows in order
                yield group.sort("h", maintain_order=True)

    def _candidates(self, after: int) -> pl.DataFrame:
        """The CANDIDATES smallest rows after `after` whose hash an earlier row had."""
        best = pl.DataFrame(schema={"h": pl.UInt64, "r": pl.UInt64})
        for part in self._partitions():
            repeats = part.filter((pl.col("h") == pl.col("h").shift(1)) & (pl.col("r").cast(pl.Int64) > after))
            best = pl.concat([best, repeats.sort("r").head(CANDIDATES)]).sort("r").head(CANDIDATES)
        return best

    def _group_rows(self, hashes: pl.Series, last: int) -> pl.DataFrame:
        """Every row up to `last` whose hash is one of `hashes`."""
        wanted = hashes.to_frame("h")
        found = [part.filter(pl.col("r") <= last).join(wanted, on="h", how="semi") for part in self._partitions()]
        return pl.concat(found)


def hashes(ids: list[str]) -> pl.Series:
    """64-bit hashes of the ids (UInt64); equal ids give equal hashes within one process."""
    return pl.Series(ids, dtype=pl.String).hash(seed=_SEED)


def _raw(series: pl.Series) -> memoryview:
    """The bytes of a UInt64 series (8 per value), without a copy."""
    array = series.to_arrow()
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return memoryview(array.buffers()[1])[array.offset * 8:(array.offset + len(array)) * 8]


def _series(data: bytes) -> pl.Series:
    """A UInt64 series over bytes written by `_raw`."""
    return pl.from_arrow(pa.Array.from_buffers(pa.uint64(), len(data) // 8, [None, pa.py_buffer(data)]))


def _ids_at(batches: Iterable[list[str]], wanted: set[int], last: int) -> dict[int, str]:
    """The ids of the rows `wanted` (row numbers), reading no further than row `last`."""
    rows = sorted(wanted)
    found: dict[int, str] = {}
    offset = next_row = 0
    for ids in batches:
        end = offset + len(ids)
        while next_row < len(rows) and rows[next_row] < end:
            found[rows[next_row]] = ids[rows[next_row] - offset]
            next_row += 1
        offset = end
        if offset > last:
            break
    return found
