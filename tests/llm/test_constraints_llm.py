"""Polarity by construction and the LLM judge on the real engine and the real server (tiny random Llama).

A random model writes random words, so whatever polarity its negations have is the constraint's
doing: every negation of an affirmative caption starts with the caption's own words and then a
negation word, and a negated caption's negation has none left. The paraphrase is pinned by the
test template (a template's own pattern wins over the row's), so that the answer ends.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl
import pytest
import yaml

from tests.llm.conftest import TINY_MODEL_NAME, engine_options
from tests.llm.test_generate_e2e import assert_validates, ids_once
from triplegen.backends.base import Request
from triplegen.config import BackendOptions, GenerateConfig, ServerOptions
from triplegen.checks.constraints import edit_point, row_schema
from triplegen.rules.polarity import negation_cues
from triplegen.orchestration.run import generate

pytestmark = pytest.mark.vllm

CAPTIONS = ["A man riding a horse on a beach.", "Two dogs play in the snow.", "a plate of pasta next to a glass of wine",
            "A cat sleeps on a red sofa.", "A kitchen with no people in it.", "A street without cars."]
SCHEMA = {
    "type": "object",
    "properties": {
        "paraphrase": {"type": "string", "pattern": "^the (cat|kitten|pet) is resting on the (mat|rug)$"},
        "negation": {"type": "string", "maxLength": 400},
    },
    "required": ["paraphrase", "negation"],
    "additionalProperties": False,
}
SAMPLING = {"temperature": 1.0, "max_tokens": 160}


def written_negation(text: str) -> str | None:
    """The negation as far as it was written (a random model may spend max_tokens on JSON whitespace)."""
    found = re.search(r'"negation"\s*:\s*"((?:[^"\\]|\\.)*)', text)
    return None if found is None else json.loads('"' + found.group(1).rstrip("\\") + '"')


def requests_for(captions):
    messages = lambda c: [{"role": "user", "content": f"Rewrite as JSON: {c}"}]  # noqa: E731
    return [Request(key=str(i), caption=c, messages=messages(c), seed=100 + i, schema=row_schema(c, SCHEMA).schema)
            for i, c in enumerate(captions)]


def assert_polarity_by_construction(completions) -> None:
    written = {}
    for caption, completion in zip(CAPTIONS, completions):
        assert completion.text is not None, completion.error
        written[caption] = written_negation(completion.text)
    assert sum(n is not None for n in written.values()) >= 4, written
    for caption, negation in written.items():
        if negation is None or len(negation) < 12:
            continue
        if negation_cues(caption):
            assert negation and not negation_cues(negation), (caption, negation)
        else:
            point = edit_point(caption)
            assert negation.lower().startswith(point.lower()), (caption, negation)
            assert negation_cues(negation[len(point):])[:1], (caption, negation)


def test_the_engine_builds_the_negations_polarity_in(tiny_llama_dir, tiny_engine):
    from triplegen.backends.vllm import VllmBackend

    backend = VllmBackend(BackendOptions(name="vllm", model=str(tiny_llama_dir), engine=engine_options()), SCHEMA)
    assert backend.check_schema(row_schema(CAPTIONS[0], SCHEMA).schema) is None
    completions = backend.generate(requests_for(CAPTIONS), SAMPLING)
    assert_polarity_by_construction(completions)
    assert backend.prefix_caching is True and all(isinstance(c.cached_tokens, int) for c in completions)


def test_the_server_gets_the_same_per_request_schemas(tiny_server):
    from triplegen.backends.openai import OpenAIBackend

    options = BackendOptions(name="openai", model=TINY_MODEL_NAME,
                             server=ServerOptions(base_urls=[tiny_server.base_url], concurrency=6))
    backend = OpenAIBackend(options, SCHEMA)
    try:
        assert backend.check_schema(row_schema(CAPTIONS[4], SCHEMA).schema) is None
        broken = {"type": "object", "properties": {"negation": {"type": "string", "pattern": "(unclosed"}},
                  "required": ["negation"]}
        refusal = backend.check_schema(broken)
        assert refusal is not None and "refused the schema: HTTP 400" in refusal
        completions = backend.generate(requests_for(CAPTIONS), SAMPLING)
    finally:
        backend.close()
    assert_polarity_by_construction(completions)
    assert all(c.cached_tokens is None for c in completions)  # this server runs without --enable-prompt-tokens-details


JUDGE = {
    "name": "tiny-judge", "version": "1", "task": "judge",
    "description": "A judge template for the tiny model.",
    "system": "Judge the texts.",
    "user": "Caption: {{ caption }}\nParaphrase: {{ paraphrase }}\nNegation: {{ negation }}",
    "output_schema": {
        "type": "object",
        "properties": {"paraphrase": {"type": "string", "enum": ["same meaning", "changed meaning"]},
                       "negation": {"type": "string", "enum": ["contradicts", "compatible"]}},
        "required": ["paraphrase", "negation"], "additionalProperties": False,
    },
    "sampling": {"temperature": 1.0, "top_p": 1.0, "max_tokens": 200},
    "examples": [],
}


def test_a_judged_run_on_the_engine_rejects_with_judge_reasons_and_counts_the_judge(tiny_llama_dir, tiny_engine,
                                                                                   pinned_template, tmp_path):
    judge = tmp_path / "tiny-judge.yaml"
    judge.write_text(yaml.safe_dump(JUDGE), encoding="utf-8")
    n = 12
    ids = [f"cap-{i:03d}" for i in range(n)]
    captions = pl.DataFrame({"id": ids, "caption": [f"a cat number {i} sits on the mat" for i in range(n)]})
    captions.write_parquet(tmp_path / "caps.parquet")
    config = GenerateConfig(input=tmp_path / "caps.parquet", output=tmp_path / "t.parquet", model=str(tiny_llama_dir),
                            engine=engine_options(), prompt=str(pinned_template), judge_model=str(tiny_llama_dir),
                            judge_prompt=str(judge), max_attempts=2, quiet=True)
    summary = generate(config)
    out, rej = ids_once(summary.output, summary.rejects, set(ids))
    judged = rej.filter(pl.col("reason").str.starts_with("judge_"))
    passed_checks = len(out) + len(judged)  # every row the checks passed went to the judge
    assert passed_checks <= summary.run["judge_counts"]["calls"] <= 2 * passed_checks
    # a random model spends some answers on JSON whitespace until max_tokens: those retry, then judge_error
    assert set(judged["reason"]) <= {"judge_paraphrase_changed_meaning", "judge_negation_compatible", "judge_error"}
    assert len(judged) > 0 and judged["detail"].str.contains("judge: paraphrase").all()
    card = summary.card.read_text()
    assert "## LLM judge" in card and "tiny-judge v1" in card
    if len(out):
        assert_validates(summary.output)


@pytest.fixture(scope="module")
def pinned_template(tmp_path_factory) -> Path:
    from tests.llm.test_generate_e2e import PINNED_TEMPLATE

    path = tmp_path_factory.mktemp("prompts") / "pinned-test.yaml"
    path.write_text(yaml.safe_dump(PINNED_TEMPLATE, sort_keys=False), encoding="utf-8")
    return path
