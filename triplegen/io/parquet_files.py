"""A run's Parquet files: the run metadata they carry, and several joined into one.

Every triples and rejects file records the run that wrote it (its config, counts and reasons) as
JSON under the `triplegen` key-value metadata key (`triplegen.io.writer.with_run_metadata`); resume,
retry, the viewer and merge read it back. A run's chunk parts, and the outputs of `--shard i/N`
runs, are joined by streaming their row groups, so memory stays one row group whatever the size.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from semclip_core.parquet import unreadable
from triplegen.io.schema import METADATA_KEY
from triplegen.io.writer import ParquetSink, WriteSummary


def read_run_metadata(path: Path) -> dict | None:
    """The `triplegen` key-value metadata of a Parquet file, or None if it has none."""
    metadata = pq.read_schema(path).metadata or {}
    raw = metadata.get(METADATA_KEY)
    return json.loads(raw) if raw else None


def row_groups(inputs: Iterable[Path]) -> Iterator[pa.Table]:
    """The row groups of `inputs`, one at a time; a corrupt page is one line, found as it is read."""
    for path in inputs:
        try:
            parquet = pq.ParquetFile(path)
            for group in range(parquet.num_row_groups):
                yield parquet.read_row_group(group)
        except (pa.ArrowInvalid, OSError) as exc:
            raise unreadable(path, exc) from None


def write_parquet(tables: Iterable[pa.Table], output: Path, schema: pa.Schema, run: dict | None = None) -> WriteSummary:
    """Stream `tables` into `output` (atomically), with the run metadata `run`."""
    with ParquetSink(output, schema, run) as sink:
        for table in tables:
            sink.write(table)
        return sink.finalize()


def concat_parquet(inputs: Iterable[Path], output: Path, schema: pa.Schema, run: dict | None = None) -> WriteSummary:
    """Stream the row groups of `inputs` into `output` (atomically); memory is one row group."""
    return write_parquet(row_groups(inputs), output, schema, run)
