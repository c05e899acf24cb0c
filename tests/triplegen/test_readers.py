"""Readers: every input format yields the same normalised rows, streamed in bounded batches."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from triplegen.errors import TripleGenError
from triplegen.io.readers import CaptionSource, Columns, stable_id

ROWS = [
    {"id": "a", "image": "img/1.jpg", "caption": "A dog runs on the beach.", "source": "x"},
    {"id": "b", "image": "img/2.jpg", "caption": "Two cats, sleeping on a sofa", "source": "y"},
    {"id": "c", "image": "img/3.jpg", "caption": "A man is riding a horse.", "source": "z"},
]


def _write(path, rows=ROWS):
    if path.suffix == ".parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
    elif path.suffix == ".csv":
        import csv

        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _rows(source):
    return [row for batch in source.batches() for row in batch.to_pylist()]


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
def test_each_format_gives_the_same_rows_with_unused_columns_carried(tmp_path, suffix):
    source = CaptionSource(_write(tmp_path / f"caps{suffix}"))
    assert source.columns == Columns(caption="caption", image="image", id="id")
    assert _rows(source) == ROWS
    assert source.schema.names == ["id", "caption", "image", "source"]


def test_folder_of_parquet_files_is_read_in_name_order_with_missing_columns_as_nulls(tmp_path):
    folder = tmp_path / "shards"
    folder.mkdir()
    _write(folder / "b.parquet", ROWS[2:])
    _write(folder / "a.parquet", [{k: v for k, v in r.items() if k != "source"} for r in ROWS[:2]])
    rows = _rows(CaptionSource(folder))
    assert [r["id"] for r in rows] == ["a", "b", "c"]
    assert [r["source"] for r in rows] == [None, None, "z"]


def test_ids_default_to_a_stable_hash_of_image_and_caption(tmp_path):
    rows = [{k: v for k, v in r.items() if k != "id"} for r in ROWS]
    source = CaptionSource(_write(tmp_path / "caps.parquet", rows))
    ids = [r["id"] for r in _rows(source)]
    assert ids == [stable_id(r["image"], r["caption"]) for r in rows]
    assert ids[0] == "3e42cc3baa303182a19a"  # pinned: the same on any machine and Python run
    assert len(set(ids)) == 3
    assert [b for b in source.id_batches()] == [ids]


def test_named_columns_are_used_and_renamed(tmp_path):
    rows = [{"key": i, "text": r["caption"], "img": r["image"]} for i, r in enumerate(ROWS)]
    source = CaptionSource(_write(tmp_path / "caps.parquet", rows), Columns(caption="text", image="img", id="key"))
    out = _rows(source)
    assert out[1] == {"id": "1", "caption": ROWS[1]["caption"], "image": "img/2.jpg"}


def test_missing_column_error_lists_the_available_columns(tmp_path):
    path = _write(tmp_path / "caps.parquet")
    with pytest.raises(TripleGenError, match=r"no column 'text' \(--caption-col\); available: id, image, caption, source"):
        CaptionSource(path, Columns(caption="text"))
    with pytest.raises(TripleGenError, match="--id-col"):
        CaptionSource(path, Columns(id="key"))
    with pytest.raises(TripleGenError, match="--image-col"):
        CaptionSource(path, Columns(image="picture"))


def test_default_image_column_is_optional(tmp_path):
    rows = [{"caption": r["caption"]} for r in ROWS]
    source = CaptionSource(_write(tmp_path / "caps.jsonl", rows))
    assert source.image_type is None and source.schema.names == ["id", "caption"]


def test_hf_image_struct_is_carried_as_given(tmp_path):
    image_type = pa.struct([pa.field("bytes", pa.binary()), pa.field("path", pa.string())])
    table = pa.table({
        "caption": ["a red car", "a blue car"],
        "image": pa.array([{"bytes": b"\x89PNG1", "path": None}, {"bytes": None, "path": "b.png"}], image_type),
    })
    pq.write_table(table, tmp_path / "caps.parquet")
    source = CaptionSource(tmp_path / "caps.parquet")
    assert source.image_type == image_type
    assert [r["image"] for r in _rows(source)] == table.column("image").to_pylist()


def test_batches_are_bounded_so_memory_does_not_grow_with_the_input(tmp_path):
    rows = [{"id": str(i), "caption": f"caption number {i}"} for i in range(1000)]
    for suffix in (".parquet", ".csv", ".jsonl"):
        source = CaptionSource(_write(tmp_path / f"many{suffix}", rows), batch_rows=64)
        sizes = [b.num_rows for b in source.batches()]
        assert sum(sizes) == 1000
        if suffix == ".parquet":  # text readers cut by bytes (1 MiB blocks), Parquet by rows
            assert max(sizes) == 64 and len(sizes) == 16


def test_non_utf8_csv_is_refused_with_a_hint_to_re_encode(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("id,caption\n1,un caf\xe9 au lait\n".encode("latin-1"))
    with pytest.raises(TripleGenError, match=r"not valid UTF-8 \(line 2\); re-encode it first, e.g. iconv"):
        _rows(CaptionSource(path))


@pytest.mark.parametrize("make, message", [
    (lambda p: p, "input not found"),
    (lambda p: (p.write_bytes(b""), p)[1], "is empty"),
    (lambda p: (p.write_bytes(b"this is not parquet at all"), p)[1], "cannot read .* as Parquet"),
])
def test_unusable_files_raise_one_clear_error(tmp_path, make, message):
    with pytest.raises(TripleGenError, match=message):
        CaptionSource(make(tmp_path / "caps.parquet"))


def test_unknown_suffix_and_empty_folder(tmp_path):
    (tmp_path / "caps.xlsx").write_bytes(b"x")
    with pytest.raises(TripleGenError, match="unknown input format"):
        CaptionSource(tmp_path / "caps.xlsx")
    (tmp_path / "empty").mkdir()
    with pytest.raises(TripleGenError, match="without .parquet files"):
        CaptionSource(tmp_path / "empty")


def test_null_ids_are_refused(tmp_path):
    path = _write(tmp_path / "caps.parquet", [{"id": None, "caption": "a"}, {"id": "x", "caption": "b"}])
    with pytest.raises(TripleGenError, match="null"):
        list(CaptionSource(path).id_batches())
