"""The atomic Parquet writer: a Parquet file appears complete or not at all.

Data goes to a temp file in the destination's folder (`semclip_core.files`, which also holds the text
writers); only a clean `finalize()` renames it. A crash or an exception leaves the destination untouched, which
is what makes a killed run safe to restart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from semclip_core.files import atomic_path, cannot_write
from triplegen.io.schema import METADATA_KEY

ROW_GROUP_ROWS = 8192


@dataclass(frozen=True)
class WriteSummary:
    path: Path
    rows: int
    bytes: int


def with_run_metadata(schema: pa.Schema, run: dict | None) -> pa.Schema:
    """The schema carrying the run's config as JSON under the `triplegen` key-value metadata key."""
    if run is None:
        return schema
    metadata = dict(schema.metadata or {})
    metadata[METADATA_KEY] = json.dumps(run, sort_keys=True, default=str).encode()
    return schema.with_metadata(metadata)


class ParquetSink:
    """A buffered Parquet writer used as a context manager; the file appears only on success.

    Written rows are cast to the declared schema, so every part and the merged file agree on it.
    """

    def __init__(self, path: Path | str, schema: pa.Schema, run: dict | None = None,
                 row_group_rows: int = ROW_GROUP_ROWS):
        self.path = Path(path)
        self.schema = with_run_metadata(schema, run)
        self.row_group_rows = row_group_rows
        self.rows = 0
        self._atomic = atomic_path(self.path)  # the temp file, moved into place by finalize()
        self._temp = self._atomic.__enter__()
        self._done = False
        try:
            self._writer = pq.ParquetWriter(self._temp, self.schema, compression="zstd")
        except BaseException as exc:
            self._atomic.__exit__(type(exc), exc, None)
            raise

    def write(self, data: pa.Table | pa.RecordBatch) -> None:
        if data.num_rows == 0:
            return
        table = data if isinstance(data, pa.Table) else pa.Table.from_batches([data])
        if not table.schema.equals(self.schema, check_metadata=False):
            table = table.select(self.schema.names).cast(self.schema)
        try:
            self._writer.write_table(table, row_group_size=self.row_group_rows)
        except OSError as exc:  # e.g. the disk is full
            raise cannot_write(self.path, exc) from None
        self.rows += table.num_rows

    def finalize(self) -> WriteSummary:
        """Close and rename into place; returns rows and bytes written."""
        try:
            self._writer.close()
            self._done = True
            self._atomic.__exit__(None, None, None)
        except OSError as exc:
            raise cannot_write(self.path, exc) from None
        return WriteSummary(self.path, self.rows, self.path.stat().st_size)

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            self._writer.close()
        except Exception:  # noqa: S110 - the error that led here is the one to report
            pass
        finally:
            self._atomic.__exit__(RuntimeError, RuntimeError("aborted"), None)  # removes the temp file

    def __enter__(self) -> "ParquetSink":
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is not None:
            self.abort()
        elif not self._done:
            self.finalize()


def write_parquet_atomic(path: Path, table: pa.Table, schema: pa.Schema, run: dict | None = None) -> WriteSummary:
    with ParquetSink(path, schema, run) as sink:
        sink.write(table)
        return sink.finalize()
