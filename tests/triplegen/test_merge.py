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


def _one_line(result, *texts: str) -> None:
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert result.output.count("\n") == 1 and result.output.startswith("error: "), result.output
    for text in texts:
        assert text in result.output, result.output


def test_parts_made_with_other_settings_are_refused_naming_the_parts_and_the_setting(tmp_path):
    rows = [{"id": f"r{i}", "caption": f"A dog number {i} runs on the beach.",
             "objects": [["dog", "ball"], ["dog", "tree"], ["cat", "sofa"]][i % 3]} for i in range(30)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "caps.parquet")

    def part(name: str, *flags: str):
        result = runner.invoke(app, ["generate", str(tmp_path / "caps.parquet"), "-o", str(tmp_path / name), "-q",
                                     *flags])
        assert result.exit_code == 0, result.output
        return str(tmp_path / name)

    with_absent = part("a0", "--shard", "0/2", "--absent-objects", "1")
    without = part("b1", "--shard", "1/2")
    other_seed = part("c1", "--shard", "1/2", "--absent-objects", "1", "--seed", "7")
    same = part("d1", "--shard", "1/2", "--absent-objects", "1", "--concurrency", "3")  # where it ran: no matter
    _one_line(runner.invoke(app, ["merge", with_absent, without, "-o", str(tmp_path / "m1")]),
              f"{with_absent}/triples.parquet and {without}/triples.parquet", "different --absent-objects (1 and 0)",
              "only the shard may differ")
    _one_line(runner.invoke(app, ["merge", with_absent, other_seed, "-o", str(tmp_path / "m2")]),
              "different --seed (0 and 7)")
    assert not (tmp_path / "m1").exists() and not (tmp_path / "m2").exists()
    merged = runner.invoke(app, ["merge", with_absent, same, "-o", str(tmp_path / "m3"), "--input",
                                 str(tmp_path / "caps.parquet")])
    assert merged.exit_code == 0 and "input ids present once" in merged.output, merged.output
