"""generate's first-time-right features with scripted backends: per-row schemas, their fallback, hotter
retries, the LLM judge and what the card says about each (the real engine and server: tests/llm)."""

from __future__ import annotations

import io
import json

import polars as pl
import pytest
from rich.console import Console
from typer.testing import CliRunner

from tests.triplegen.test_pipeline import ScriptedBackend, _captions, _config
from triplegen.cli import app
from triplegen.errors import TripleGenError
from triplegen.orchestration.run import generate

ROWS = [{"id": "a", "caption": "A man riding a horse on a beach."},
        {"id": "b", "caption": "A kitchen with no people in it."},
        {"id": "c", "caption": "Two dogs play in the snow."}]
ANSWERS = {
    "A man riding a horse on a beach.": {"paraphrase": "On a beach, a man is riding a horse.",
                                         "negation": "A man is not riding a horse on a beach."},
    "A kitchen with no people in it.": {"paraphrase": "A kitchen where nobody is present.",
                                        "negation": "A kitchen with people in it."},
    "Two dogs play in the snow.": {"paraphrase": "A pair of dogs is playing in the snow.",
                                   "negation": "Two dogs do not play in the snow."},
}


class RecordingBackend(ScriptedBackend):
    """Answers from a script and records every request's schema and every call's sampling."""

    def __init__(self, script, refuse: str | None = None):
        super().__init__(script)
        self.schemas, self.samplings, self.refuse = [], [], refuse

    def generate(self, requests, sampling):
        self.schemas += [r.schema for r in requests]
        self.samplings.append(dict(sampling))
        return super().generate(requests, sampling)

    def check_schema(self, schema):
        return self.refuse


def test_each_caption_gets_its_own_schema_and_the_card_says_which(tmp_path):
    backend = RecordingBackend(lambda caption, attempt: ANSWERS[caption])
    summary = generate(_config(tmp_path, _captions(tmp_path / "c.parquet", ROWS)), backend=backend)
    by_caption = dict(zip([r["caption"] for r in ROWS], backend.schemas))
    negation = by_caption["A man riding a horse on a beach."]["properties"]["negation"]["pattern"]
    assert negation.startswith("^[aA] man ") and "not" in negation
    negated = by_caption["A kitchen with no people in it."]["properties"]
    assert "pattern" in negated["paraphrase"] and "pattern" in negated["negation"]
    assert summary.accepted == 3
    assert summary.run["constraint"]["applied"] is True
    assert summary.run["constraints"] == {"paraphrase: free": 2, "negation: edit": 2, "paraphrase: cue": 1,
                                          "negation: no-cue": 1}
    card = summary.card.read_text()
    assert "| output constraint | polarity, per-caption JSON-schema patterns (negation as a guided edit" in card
    assert "negation of a negated caption must drop every negation word: 1" in card


def test_constrain_none_sends_the_templates_schema(tmp_path):
    backend = RecordingBackend(lambda caption, attempt: ANSWERS[caption])
    summary = generate(_config(tmp_path, _captions(tmp_path / "c.parquet", ROWS), constrain="none"), backend=backend)
    assert backend.schemas == [None, None, None]
    assert "| output constraint | template schema only (--constrain none" in summary.card.read_text()


def test_a_backend_that_refuses_the_schema_runs_without_it_and_says_so(tmp_path):
    backend = RecordingBackend(lambda caption, attempt: ANSWERS[caption], refuse="http://x/v1 refused the schema: HTTP 400")
    out = io.StringIO()
    config = _config(tmp_path, _captions(tmp_path / "c.parquet", ROWS)).model_copy(update={"quiet": False})
    summary = generate(config, backend=backend, console=Console(file=out, width=200))
    assert backend.schemas == [None, None, None] and summary.accepted == 3
    assert "Polarity constraint not applied: http://x/v1 refused the schema" in out.getvalue()
    assert "not applied: http://x/v1 refused the schema: HTTP 400" in summary.card.read_text()


def test_retries_sample_hotter_unless_told_not_to(tmp_path):
    copy = lambda caption, attempt: {"paraphrase": caption, "negation": ANSWERS[caption]["negation"]}  # noqa: E731
    for retry_temperature, expected in ((1.0, [0.2, 1.0, 1.0]), (0.0, [0.2, 0.2, 0.2])):
        backend = RecordingBackend(lambda caption, attempt: copy(caption, attempt) if attempt < 3 else ANSWERS[caption])
        config = _config(tmp_path / str(retry_temperature), _captions(tmp_path / "c.parquet", ROWS[:1]),
                         retry_temperature=retry_temperature)
        summary = generate(config, backend=backend)
        assert [s["temperature"] for s in backend.samplings] == expected
        assert summary.accepted == 1 and summary.run["config"]["retry_temperature"] == retry_temperature


def judged_script(verdicts):
    """Generation answers from ANSWERS; judge requests (their schema has enums) get `verdicts[caption]`."""
    def script(caption, attempt):
        return ANSWERS[caption]
    backend = RecordingBackend(script)
    backend.name, backend.model = "vllm", "script-1"  # the judge is the same model: its engine is reused
    generate_ = backend.generate

    def generate(requests, sampling):
        if requests and requests[0].schema and "enum" in requests[0].schema["properties"]["paraphrase"]:
            backend.judge_requests = getattr(backend, "judge_requests", []) + requests
            from triplegen.backends.base import Completion

            return [Completion(text=verdicts[r.caption](r.attempt), prompt_tokens=30, completion_tokens=8,
                               cached_tokens=16) for r in requests]
        return generate_(requests, sampling)

    backend.generate = generate
    return backend


def verdict(paraphrase, negation):
    return lambda attempt: json.dumps({"paraphrase": paraphrase, "negation": negation})


def test_the_judge_rejects_what_it_does_not_pass_and_the_card_shows_its_cost(tmp_path):
    backend = judged_script({
        "A man riding a horse on a beach.": verdict("same meaning", "contradicts"),
        "A kitchen with no people in it.": verdict("changed meaning", "compatible"),
        "Two dogs play in the snow.": lambda attempt: "not json" if attempt < 3 else "still not json",
    })
    config = _config(tmp_path, _captions(tmp_path / "c.parquet", ROWS), model="script-1", judge_model="script-1")
    summary = generate(config, backend=backend)
    out, rejects = pl.read_parquet(summary.output), pl.read_parquet(summary.rejects)
    assert out["id"].to_list() == ["a"]
    reasons = dict(zip(rejects["id"], rejects["reason"]))
    assert reasons == {"b": "judge_paraphrase_changed_meaning", "c": "judge_error"}
    detail = rejects.filter(pl.col("id") == "b")["detail"][0]
    assert "judge_negation_compatible" in detail and "A kitchen where nobody is present." in detail
    assert json.loads(rejects.filter(pl.col("id") == "b")["raw_output"][0]) == ANSWERS["A kitchen with no people in it."]
    # one call each for a and b, three for c; the judge's seeds are not the rows' own
    assert len(backend.judge_requests) == 5
    assert {r.seed for r in backend.judge_requests}.isdisjoint({s for call in backend.calls for _, _, s in call})
    counts = summary.run["judge_counts"]
    assert counts["calls"] == 5 and counts["prompt_tokens"] == 150 and counts["completion_tokens"] == 40
    card = summary.card.read_text()
    assert "## LLM judge" in card and "5 calls, 150 prompt tokens (80 of them from the prefix cache)" in card
    assert "| `judge_paraphrase_changed_meaning` | the judge model said the paraphrase is 'changed meaning' | 1 |" in card
    assert summary.run["tokens"]["prompt"] == 30  # the generation's own tokens are counted apart


def test_a_judge_prompt_must_be_a_judge_template(tmp_path):
    config = _config(tmp_path, _captions(tmp_path / "c.parquet", ROWS), judge_model="m", judge_prompt="default")
    with pytest.raises(TripleGenError, match="needs task: judge"):
        generate(config)
    result = CliRunner().invoke(app, ["generate", str(tmp_path / "c.parquet"), "-o", str(tmp_path / "x.parquet"),
                                      "--judge-model", "m", "--judge-prompt", "default"])
    assert result.exit_code == 2 and "needs task: judge" in result.output and "Traceback" not in result.output
