"""What `triplegen generate` accepts as captions, object labels and ids, and the duplicate-id check at scale.

A column of the wrong kind or a label that cannot name an object is one line and exit 2 before any
row is generated; a caption with a control character is a reject with its reason, counted on the card
and flagged by `validate`; a row of 20,000 labels is refused at once instead of costing gigabytes.
"""

from __future__ import annotations

import hashlib
import random

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from triplegen.io import idcheck
from triplegen.cli import app
from triplegen.io.idcheck import DuplicateIds
from triplegen.objects import MAX_LABELS

runner = CliRunner()
CAPTIONS = ["A cat sleeps on a sofa.", "A dog runs on a beach.", "A man rides a horse in a field.",
            "A plate of food on a table."]
OBJECTS = [["cat", "couch"], ["dog", "couch"], ["person", "horse"], ["dining table", "fork"]]


def _parquet(path, columns: dict) -> str:
    pq.write_table(pa.table(columns), path)
    return str(path)


def _digest(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def _generate(source, out, *args):
    return runner.invoke(app, ["generate", str(source), "-o", str(out), "--quiet", *args])


def _one_line_error(result, *parts: str) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert all(part in lines[0] for part in parts), lines[0]
    return lines[0]


# --- the objects column -------------------------------------------------------------------------

def test_the_caption_column_as_objects_is_refused_not_written_as_no_a_cat_sleeps(tmp_path):
    source = _parquet(tmp_path / "caps.parquet", {"caption": CAPTIONS, "objects": OBJECTS})
    before = _digest(source)
    result = _generate(source, tmp_path / "out", "--absent-objects", "1", "--objects-col", "caption")
    _one_line_error(result, "--objects-col 'caption' is the caption column")
    assert not (tmp_path / "out").exists() and _digest(source) == before


def test_another_column_of_captions_is_refused_by_its_labels(tmp_path):
    source = _parquet(tmp_path / "caps.parquet", {"caption": CAPTIONS, "alt": [c.lower() for c in CAPTIONS]})
    result = _generate(source, tmp_path / "out", "--absent-objects", "1", "--objects-col", "alt")
    _one_line_error(result, "row 1, column 'alt'", "'a cat sleeps on a sofa.'", "is a phrase, not an object name")


@pytest.mark.parametrize("values, kind", [
    (pa.array([[1, 2], [3, 4], [5], [6]]), "int64"),
    (pa.array([1, 2, 3, 4]), "int64"),
    (pa.array([{"name": "cat"}] * 4), "struct<name: string>"),
])
def test_an_objects_column_of_another_type_names_the_column_and_its_type(tmp_path, values, kind):
    source = _parquet(tmp_path / "caps.parquet", {"caption": CAPTIONS, "labels": values})
    result = _generate(source, tmp_path / "out", "--absent-objects", "1", "--objects-col", "labels")
    _one_line_error(result, "column 'labels' (--objects-col) has type", kind, "list of names")


@pytest.mark.parametrize("label, why", [
    ("no", "holds the negation 'no'"),
    ("not a dog", "holds the negation 'not'"),
    ("cat|dog", "holds '|'"),
    ("cat;dog", "holds ';'"),
    ("cat\x00", "control character"),
    ("", "is empty"),
    ("17", "has no letters"),
    ("the dog", "is a phrase"),
])
def test_a_label_that_cannot_name_an_object_is_one_line_naming_it_and_its_row(tmp_path, label, why):
    objects = [list(o) for o in OBJECTS]
    objects[2].append(label)
    source = _parquet(tmp_path / "caps.parquet", {"caption": CAPTIONS, "objects": objects})
    result = _generate(source, tmp_path / "out", "--absent-objects", "1")
    _one_line_error(result, "row 3, column 'objects' (--objects-col)", f"object label {label!r}", why)
    assert not (tmp_path / "out").exists()


def test_csv_labels_keep_their_comma_form_and_sign_names(tmp_path):
    """The text form stays: comma-separated names, a trailing comma, a sign that names an object."""
    path = tmp_path / "caps.csv"
    path.write_text('caption,objects\nA cat on a sofa,"cat, couch,"\n'
                    'A dog by a no parking sign,"dog, no parking sign"\nA dog on a sofa,"dog, couch"\n')
    result = _generate(path, tmp_path / "out", "--absent-objects", "1")
    assert result.exit_code == 0, result.output


def test_a_row_of_thousands_of_labels_is_refused_at_once(tmp_path):
    """Every pair of a row's labels was counted: one row of 2,000 labels took seconds and 0.5 GB
    before it was refused (5 rows of 20,000: 8.4 GB and 498 s); now it is refused as it is read."""
    rows = [[f"thing {row} {k}" for k in range(n)] for row, n in enumerate([3, 2_000, 2, 2])]
    source = _parquet(tmp_path / "caps.parquet", {"caption": CAPTIONS, "objects": rows})
    result = _generate(source, tmp_path / "out", "--absent-objects", "1")
    _one_line_error(result, "row 2, column 'objects'", "2,000 distinct object labels", f"at most {MAX_LABELS}")


def test_a_row_at_the_limit_of_labels_is_read_and_planned(tmp_path):
    """MAX_LABELS labels a row are allowed, and the rows' absent objects are still right."""
    labels = [f"thing {k}" for k in range(MAX_LABELS + 40)]
    rows = [labels[:MAX_LABELS], labels[40:], ["thing 0", "thing 300"], ["thing 1", "thing 2"]]
    captions = ["A photo of a room.", "A photo of a hall.", "A photo of a yard.", "A photo of a shed."]
    source = _parquet(tmp_path / "caps.parquet", {"caption": captions, "objects": rows})
    result = _generate(source, tmp_path / "out", "--absent-objects", "1")
    assert result.exit_code == 0, result.output
    table = pl.read_parquet(tmp_path / "out" / "triples.parquet")
    absent = table.filter(pl.col("kind") != "caption")
    assert absent.height >= 1
    for objects, missing in absent.select("objects", "absent_object").iter_rows():
        assert missing in labels and missing not in objects


# --- captions -----------------------------------------------------------------------------------

@pytest.mark.parametrize("values, kind", [(pa.array([1, 2, 3, 4]), "int64"), (pa.array([1.5] * 4), "double"),
                                          (pa.array([["a"]] * 4), "string")])
def test_a_caption_column_that_is_not_text_is_one_line(tmp_path, values, kind):
    source = _parquet(tmp_path / "caps.parquet", {"caption": values})
    _one_line_error(_generate(source, tmp_path / "out"), "column 'caption' (--caption-col) has type", kind,
                    "captions must be text")


def test_a_caption_with_a_control_character_is_rejected_counted_and_flagged_by_validate(tmp_path):
    captions = ["A cat\x00 sleeps on a sofa.", "A dog runs on a beach.", "A man \x1b[31mrides a horse.",
                "Two dogs\tplay in the snow.\n"]
    source = _parquet(tmp_path / "caps.parquet", {"id": ["nul", "ok", "escape", "tab"], "caption": captions})
    result = _generate(source, tmp_path / "out")
    assert result.exit_code == 0, result.output
    rejects = pl.read_parquet(tmp_path / "out" / "rejects.parquet")
    assert dict(rejects.select("id", "reason").iter_rows()) == {"nul": "caption_control_chars",
                                                                "escape": "caption_control_chars"}
    assert sorted(pl.read_parquet(tmp_path / "out" / "triples.parquet")["id"]) == ["ok", "tab"]
    assert "| `caption_control_chars` | 2 |" in (tmp_path / "out" / "README.md").read_text()

    edited = pl.read_parquet(tmp_path / "out" / "triples.parquet").with_columns(
        pl.when(pl.col("id") == "ok").then(pl.lit("A dog\x00 runs on a beach.")).otherwise(pl.col("caption"))
        .alias("caption"))
    edited.write_parquet(tmp_path / "edited.parquet")
    checked = runner.invoke(app, ["validate", str(tmp_path / "edited.parquet")])
    assert checked.exit_code == 1 and "caption_control_chars" in checked.output, checked.output


def test_validate_flags_an_absent_row_whose_objects_hold_a_bad_label(tmp_path):
    source = _parquet(tmp_path / "caps.parquet", {"caption": CAPTIONS * 3, "objects": OBJECTS * 3,
                                                  "id": [str(i) for i in range(12)]})
    assert _generate(source, tmp_path / "out", "--absent-objects", "1").exit_code == 0
    table = pl.read_parquet(tmp_path / "out" / "triples.parquet")
    assert (table["kind"] != "caption").any()
    edited = table.with_columns(pl.when(pl.col("kind") != "caption").then(pl.lit(["no", "a|b"]))
                                .otherwise(pl.col("objects")).alias("objects"))
    edited.write_parquet(tmp_path / "edited.parquet")
    checked = runner.invoke(app, ["validate", str(tmp_path / "edited.parquet")])
    assert checked.exit_code == 1 and "invalid_objects" in checked.output, checked.output


# --- duplicate ids in bounded memory --------------------------------------------------------------

def _first_repeat(ids):
    seen = set()
    for row_id in ids:
        if row_id in seen:
            return row_id
        seen.add(row_id)
    return None


def _check(ids, beside, batch=97):
    batches = [ids[i:i + batch] for i in range(0, len(ids), batch)]
    with DuplicateIds(beside) as check:
        for part in batches:
            check.add(part)
        found = check.first_duplicate(lambda: iter(batches))
    return found


@pytest.mark.parametrize("block", [50, 1_000, 1 << 21])
def test_the_bounded_check_names_the_first_repeat_as_a_set_would(tmp_path, monkeypatch, block):
    """Spilled (small blocks) or in memory, the same answer as a set, and no spill files left behind."""
    monkeypatch.setattr(idcheck, "BLOCK_ROWS", block)
    rng = random.Random(block)
    for _ in range(8):
        pool = rng.randint(1, 30_000)
        ids = [f"id{rng.randrange(pool)}" for _ in range(rng.randint(0, 2_000))]
        assert _check(ids, tmp_path / "t.parquet") == _first_repeat(ids)
    assert list(tmp_path.iterdir()) == []


def test_equal_hashes_of_different_ids_are_not_duplicates(tmp_path, monkeypatch):
    """A hash that collides all the time (three values): the ids are compared, never their hashes."""
    monkeypatch.setattr(idcheck, "hashes", lambda ids: pl.Series([len(i) % 3 for i in ids], dtype=pl.UInt64))
    monkeypatch.setattr(idcheck, "BLOCK_ROWS", 100)
    monkeypatch.setattr(idcheck, "CANDIDATES", 7)
    ids = [f"id{i}" for i in range(300)]
    assert _check(ids, tmp_path / "t.parquet") is None
    assert _check([*ids, "id150", "id3"], tmp_path / "t.parquet") == "id150"


def test_generate_refuses_a_repeat_found_after_a_spill_with_the_same_message(tmp_path, monkeypatch):
    monkeypatch.setattr(idcheck, "BLOCK_ROWS", 500)
    ids = [f"row-{i}" for i in range(3_000)] + ["row-17"]
    source = _parquet(tmp_path / "caps.parquet", {"id": ids, "caption": ["A dog runs on a beach."] * len(ids)})
    out = tmp_path / "out"
    result = _generate(source, out)
    _one_line_error(result, f"duplicate id 'row-17' in {source} (--id-col names a column with repeats)")
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]  # the spill folder is gone
