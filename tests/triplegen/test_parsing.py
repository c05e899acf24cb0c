"""Model output -> (paraphrase, negation) or one of the stable reason codes the pipeline retries on."""

from __future__ import annotations

import json
import random
from importlib.resources import files

import pytest
import yaml

from triplegen.checks.lexical import REASONS
from triplegen.checks.parsing import parse_output
from triplegen.prompts import load_template

TEMPLATE = load_template("default")
GOOD = '{"paraphrase": "A horse carries a man along the beach.", "negation": "A man not riding a horse on a beach."}'


def test_plain_json_is_parsed():
    parsed = parse_output(GOOD, "stop", TEMPLATE)
    assert parsed.ok and parsed.reason is None
    assert (parsed.paraphrase, parsed.negation) == (
        "A horse carries a man along the beach.",
        "A man not riding a horse on a beach.",
    )


@pytest.mark.parametrize(
    "text",
    [
        f"  \n{GOOD}\n  ",
        f"```json\n{GOOD}\n```",
        f"```JSON\n{GOOD}\n```\n",
        f"```\n{GOOD}\n```",
        f"  ```json {GOOD}```",
    ],
)
def test_whitespace_and_one_markdown_fence_are_tolerated(text):
    parsed = parse_output(text, "stop", TEMPLATE)
    assert parsed.ok, parsed.detail
    assert parsed.negation == "A man not riding a horse on a beach."


def test_fields_are_stripped():
    parsed = parse_output('{"paraphrase": "  A dog. ", "negation": "\\nNo dog.\\t"}', None, TEMPLATE)
    assert (parsed.paraphrase, parsed.negation) == ("A dog.", "No dog.")


def test_no_text_is_a_backend_error():
    parsed = parse_output(None, None, TEMPLATE)
    assert (parsed.ok, parsed.reason, parsed.paraphrase) == (False, "backend_error", None)


def test_length_finish_is_truncated_even_if_the_text_looks_complete():
    assert parse_output('{"paraphrase": "A dog', "length", TEMPLATE).reason == "truncated"
    assert parse_output(GOOD, "length", TEMPLATE).reason == "truncated"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "Sure! Here is the JSON you asked for.",
        f"Here you go: {GOOD}",
        f"{GOOD} Hope this helps!",
        f"{GOOD}\n{GOOD}",
        '{"paraphrase": "A dog", "negation": "No dog",}',
        "{'paraphrase': 'A dog', 'negation': 'No dog'}",
        f"```json\n{GOOD}",
        '["A dog", "No dog"]',
        '"A dog"',
        "42",
        "null",
    ],
)
def test_anything_but_one_json_object_is_invalid_json(text):
    parsed = parse_output(text, "stop", TEMPLATE)
    assert parsed.reason == "invalid_json"
    assert parsed.detail


@pytest.mark.parametrize(
    ("answer", "mentions"),
    [
        ({"paraphrase": "A dog."}, "negation"),
        ({"negation": "No dog."}, "paraphrase"),
        ({}, "required"),
        ({"paraphrase": 3, "negation": "No dog."}, "paraphrase"),
        ({"paraphrase": "A dog.", "negation": None}, "negation"),
        ({"paraphrase": "A dog.", "negation": ["No dog."]}, "negation"),
        ({"paraphrase": "A dog.", "negation": "No dog.", "explanation": "I negated it"}, "explanation"),
        ({"paraphrase": "", "negation": "No dog."}, "paraphrase"),
        ({"paraphrase": "A dog." * 100, "negation": "No dog."}, "paraphrase"),
    ],
)
def test_schema_violations_are_missing_field(answer, mentions):
    parsed = parse_output(json.dumps(answer), "stop", TEMPLATE)
    assert parsed.reason == "missing_field"
    assert mentions in parsed.detail


def test_every_code_is_a_documented_reason():
    outputs = [(None, None), (GOOD, "length"), ("nope", "stop"), ("{}", "stop")]
    codes = {parse_output(text, finish, TEMPLATE).reason for text, finish in outputs}
    assert codes == {"backend_error", "truncated", "invalid_json", "missing_field"}
    assert codes <= set(REASONS)


def test_the_fast_acceptance_agrees_with_jsonschema():
    """`output_error` skips jsonschema for well-formed answers; it must never accept what jsonschema rejects."""
    rng = random.Random(0)
    texts = ["", " ", "A dog.", "x" * 399, "x" * 400, "x" * 401, "\u00e9" * 400, "\U0001f415" * 401]
    values = [None, 3, True, ["A dog."], *texts]
    answers = [
        {key: rng.choice(values) for key in rng.sample(["paraphrase", "negation", "extra"], rng.randint(0, 3))}
        for _ in range(3000)
    ]
    for answer in answers + [{"paraphrase": "A dog.", "negation": "No dog."}]:
        expected = TEMPLATE.output_validator.is_valid(answer)
        assert (TEMPLATE.output_error(answer) is None) == expected, answer
    assert sum(TEMPLATE.output_validator.is_valid(a) for a in answers) > 20  # both outcomes are exercised


def test_other_schemas_are_enforced_in_full(tmp_path):
    """A schema with more than bounded strings (here a pattern) goes through jsonschema every time."""
    data = yaml.safe_load((files("triplegen.prompts") / "default.yaml").read_text(encoding="utf-8"))
    data["name"] = "patterned"
    data["output_schema"]["properties"]["negation"]["pattern"] = r"^[A-Z]"
    path = tmp_path / "patterned.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    template = load_template(path)
    assert parse_output('{"paraphrase": "A dog.", "negation": "A dog is not here."}', "stop", template).ok
    failed = parse_output('{"paraphrase": "A dog.", "negation": "no dog."}', "stop", template)
    assert failed.reason == "missing_field" and "negation" in failed.detail and "match" in failed.detail
