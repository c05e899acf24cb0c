"""Bad input: one line on stderr and exit code 2, or a reject row with a reason; never a traceback or a lost row."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from triplegen.cli import app

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _generate(*args: str):
    return runner.invoke(app, ["generate", *map(str, args), "--quiet"])


def _one_line_error(result, message: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.output


def _parquet(path: Path, rows) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def test_missing_file(tmp_path):
    _one_line_error(_generate(tmp_path / "nope.parquet", "-o", tmp_path / "t.parquet"), "input not found")


def test_non_parquet_file(tmp_path):
    (tmp_path / "caps.parquet").write_text("id,caption\n1,a dog\n")
    _one_line_error(_generate(tmp_path / "caps.parquet", "-o", tmp_path / "t.parquet"), "as Parquet")


def test_missing_column_lists_the_available_ones(tmp_path):
    path = _parquet(tmp_path / "caps.parquet", [{"id": "1", "text": "a dog"}])
    _one_line_error(_generate(path, "-o", tmp_path / "t.parquet"), "no column 'caption' (--caption-col); available: id, text")


@pytest.mark.parametrize("name, content", [("caps.parquet", b""), ("caps.csv", b"id,caption\n"), ("caps.jsonl", b"")])
def test_empty_file(tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    result = _generate(tmp_path / name, "-o", tmp_path / "t.parquet")
    assert result.exit_code == 2 and ("is empty" in result.output or "has no rows" in result.output), result.output
    _one_line_error(result, str(tmp_path / name))


def test_empty_parquet_table(tmp_path):
    path = tmp_path / "caps.parquet"
    pq.write_table(pa.table({"id": pa.array([], pa.string()), "caption": pa.array([], pa.string())}), path)
    _one_line_error(_generate(path, "-o", tmp_path / "t.parquet"), "has no rows")


def test_null_empty_and_whitespace_captions_are_rejected_not_lost(tmp_path):
    rows = [{"id": "ok", "caption": "A dog runs on the beach."}, {"id": "null", "caption": None},
            {"id": "empty", "caption": ""}, {"id": "space", "caption": " \t\n "}]
    result = _generate(_parquet(tmp_path / "caps.parquet", rows), "-o", tmp_path / "t.parquet")
    assert result.exit_code == 0, result.output
    rejects = {r["id"]: r["reason"] for r in pq.read_table(tmp_path / "t.rejects.parquet").to_pylist()}
    assert rejects == {"null": "empty_caption", "empty": "empty_caption", "space": "empty_caption"}
    assert pq.read_table(tmp_path / "t.parquet").column("id").to_pylist() == ["ok"]


def test_non_utf8_csv(tmp_path):
    path = tmp_path / "caps.csv"
    path.write_bytes(b"id,caption\n1,A dog runs\n2,un caf\xe9 au lait\n")
    _one_line_error(_generate(path, "-o", tmp_path / "t.parquet"), "is not valid UTF-8 (line 3); re-encode it first")
    assert not (tmp_path / "t.parquet").exists()


def test_a_20000_character_caption_is_rejected_as_too_long(tmp_path):
    rows = [{"id": "long", "caption": "a dog " * 3334}, {"id": "ok", "caption": "A dog runs on the beach."}]
    result = _generate(_parquet(tmp_path / "caps.parquet", rows), "-o", tmp_path / "t.parquet")
    assert result.exit_code == 0, result.output
    reject = pq.read_table(tmp_path / "t.rejects.parquet").to_pylist()
    assert [(r["id"], r["reason"]) for r in reject] == [("long", "caption_too_long")]
    assert "20004 characters" in reject[0]["detail"]


@pytest.mark.parametrize("rows, message", [
    ([{"id": "a", "caption": "x y"}, {"id": "a", "caption": "z w"}], "duplicate id 'a'"),
    ([{"caption": "A dog."}, {"caption": "A dog."}], "same image and caption"),
])
def test_duplicate_ids(tmp_path, rows, message):
    _one_line_error(_generate(_parquet(tmp_path / "caps.parquet", rows), "-o", tmp_path / "t.parquet"), message)


def test_an_output_in_a_missing_folder_is_created(tmp_path):
    path = _parquet(tmp_path / "caps.parquet", [{"caption": "A dog runs on the beach."}])
    result = _generate(path, "-o", tmp_path / "new" / "deeper" / "t.parquet")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "new" / "deeper" / "t.parquet").exists()


def test_bad_option_values(tmp_path):
    path = _parquet(tmp_path / "caps.parquet", [{"caption": "A dog runs on the beach."}])
    _one_line_error(_generate(path, "-o", tmp_path / "t.parquet", "--shard", "3/2"), "--shard 3/2")
    _one_line_error(_generate(path, "-o", tmp_path / "t.parquet", "--shard", "x"), "--shard must look like i/N")
    _one_line_error(_generate(path, "-o", tmp_path / "t.parquet", "--prompt", "no-such-template"), "no-such-template")


def test_a_real_subprocess_prints_one_line_and_exits_2(tmp_path):
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    path = tmp_path / "caps.csv"
    path.write_bytes(b"id,caption\n1,un caf\xe9\n")
    for args in ([str(path)], [str(tmp_path / "missing.parquet")]):
        done = subprocess.run([sys.executable, "-c", "from triplegen.cli import main; main()", "generate", *args,
                               "-o", str(tmp_path / "t.parquet")], env=env, capture_output=True, text=True)
        assert done.returncode == 2 and done.stdout == ""
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: "), done.stderr


def test_input_columns_that_clash_with_output_columns_are_named(tmp_path):
    rows = [{"id": "1", "key": "k1", "caption": "A dog runs.", "img": "a.jpg", "image": "b.jpg", "model": "x"}]
    path = _parquet(tmp_path / "caps.parquet", rows)
    _one_line_error(_generate(path, "-o", tmp_path / "t.parquet", "--id-col", "key", "--image-col", "img"),
                    "input columns id, image, model clash with the output's own columns")
