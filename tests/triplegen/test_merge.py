"""`triplegen merge`: shard outputs join into one file, with a proof that no id is missing or doubled."""

from __future__ import annotations

import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from triplegen.cli import app

runner = CliRunner()


@pytest.fixture()
def shards(tmp_path):
    rows = [{"id": f"r{i}", "caption": f"A dog number {i} runs on the beach.", "image": f"{i}.jpg"} for i in range(60)]
    rows[5]["caption"] = " "  # one reject, so rejects are merged too
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "caps.parquet")
    parts = []
    for index in range(3):
        part = tmp_path / f"part{index}.parquet"
        result = runner.invoke(app, ["generate", str(tmp_path / "caps.parquet"), "-o", str(part), "--shard",
                                     f"{index}/3", "--quiet"])
        assert result.exit_code == 0, result.output
        parts.append(part)
    return tmp_path, parts


def test_merged_shards_cover_the_input_exactly_once(shards):
    folder, parts = shards
    out = folder / "all.parquet"
    result = runner.invoke(app, ["merge", *map(str, parts), "-o", str(out), "--input", str(folder / "caps.parquet")])
    assert result.exit_code == 0, result.output
    assert "all 60 input ids present once" in result.output
    ids = pq.read_table(out).column("id").to_pylist()
    rejects = pq.read_table(folder / "all.rejects.parquet").to_pylist()
    assert [r["id"] for r in rejects] == ["r5"] and sorted(ids + ["r5"]) == sorted(f"r{i}" for i in range(60))
    assert pq.read_table(out).schema.field("image").type == pa.string()
    assert runner.invoke(app, ["validate", str(out)]).exit_code == 0
    assert runner.invoke(app, ["validate", *map(str, parts)]).exit_code == 0


def test_a_missing_shard_is_detected_against_the_input(shards):
    folder, parts = shards
    result = runner.invoke(app, ["merge", *map(str, parts[:2]), "-o", str(folder / "all.parquet"),
                                 "--input", str(folder / "caps.parquet")])
    assert result.exit_code == 2 and "input id(s) are in no part" in result.output
    assert not (folder / "all.parquet").exists()


def test_a_doubled_shard_is_refused(shards):
    folder, parts = shards
    copy = folder / "copy.parquet"
    shutil.copy(parts[0], copy)
    result = runner.invoke(app, ["merge", str(parts[0]), str(copy), "-o", str(folder / "all.parquet")])
    assert result.exit_code == 2 and "the parts overlap" in result.output


def test_an_existing_output_is_refused(shards):
    folder, parts = shards
    (folder / "all.parquet").write_bytes(b"x")
    result = runner.invoke(app, ["merge", *map(str, parts), "-o", str(folder / "all.parquet")])
    assert result.exit_code == 2 and "--overwrite" in result.output
