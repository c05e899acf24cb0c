"""Atomic writers: a file appears complete, with the run config in its metadata, or not at all."""

from __future__ import annotations

import json
import os
import stat

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from semclip_core.files import write_text_atomic
from triplegen.io.schema import METADATA_KEY
from triplegen.io.writer import ParquetSink

SCHEMA = pa.schema([pa.field("id", pa.string(), nullable=False), pa.field("n", pa.int32())])


def test_sink_writes_casts_and_stores_the_run_config(tmp_path):
    path = tmp_path / "sub" / "out.parquet"  # a missing folder is created
    with ParquetSink(path, SCHEMA, run={"seed": 7}) as sink:
        sink.write(pa.table({"n": pa.array([1, 2], pa.int64()), "id": ["a", "b"]}))
        sink.write(pa.table({"id": [], "n": pa.array([], pa.int64())}))
        summary = sink.finalize()
    assert summary.rows == 2 and summary.bytes == path.stat().st_size
    table = pq.read_table(path)
    assert table.schema.equals(SCHEMA) and table.to_pylist() == [{"id": "a", "n": 1}, {"id": "b", "n": 2}]
    assert json.loads(pq.read_schema(path).metadata[METADATA_KEY]) == {"seed": 7}
    assert [p.name for p in path.parent.iterdir()] == ["out.parquet"]


def test_a_failed_write_leaves_neither_file_nor_temp(tmp_path):
    path = tmp_path / "out.parquet"
    path.write_bytes(b"previous")
    with pytest.raises(RuntimeError):
        with ParquetSink(path, SCHEMA) as sink:
            sink.write(pa.table({"id": ["a"], "n": [1]}))
            raise RuntimeError("killed mid-write")
    assert path.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["out.parquet"]


def test_text_is_replaced_atomically(tmp_path):
    path = tmp_path / "card.md"
    write_text_atomic(path, "one")
    write_text_atomic(path, "two")
    assert path.read_text() == "two" and len(list(tmp_path.iterdir())) == 1


def test_written_files_get_the_users_umask_not_private_temp_file_permissions(tmp_path):
    previous = os.umask(0o027)
    try:
        write_text_atomic(tmp_path / "card.md", "x")
        with ParquetSink(tmp_path / "out.parquet", SCHEMA) as sink:
            sink.write(pa.table({"id": ["a"], "n": [1]}))
    finally:
        os.umask(previous)
    for name in ("card.md", "out.parquet"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o640, name
