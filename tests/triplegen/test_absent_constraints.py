"""Absent-object rows right by construction: the row's patterns admit the rules writer's own row, in
every wording that fits, and refuse a caption that denies a shown object or a true "negation".

Patterns are matched with Python's `re` on the JSON-escaped text and, for the schema as a whole,
with `jsonschema`; `test_xgrammar_reads_the_absent_patterns_as_python_does` shows that vLLM's
decoder accepts and refuses the same texts.
"""

from __future__ import annotations

import json
from dataclasses import replace

import jsonschema
import pytest

from tests.conftest import require
from triplegen.rules.absent import AbsentSpec, absent_row
from triplegen.checks.absent_constraints import (
    SAMPLE_SCHEMA, absent_patterns, absent_row_schema, matches, sample_absent_schema,
)
from triplegen.checks.lexical import check_absent_triple
from triplegen.checks.constraints import choose_constraint
from triplegen.rules.denials import caption_form, swap_site, wordings_for
from triplegen.rules.lexicon import split_ending
from triplegen.rules.object_names import ObjectLexicon
from triplegen.tasks import row_variables
from triplegen.templates import load_template

LEXICON = ObjectLexicon.builtin()
# (caption, objects the image shows, an absent object that can take a shown one's place)
CAPTIONS = [
    ("A man riding a horse on a beach.", ("person", "horse"), "cow"),  # noun phrase
    ("A cat sleeps on a red sofa.", ("cat", "couch"), "dog"),  # sentence
    ("two cups of coffee on a wooden table", ("cup", "dining table"), "bowl"),  # lower case, no full stop
    ("A kitchen with no people and a dog on the floor.", ("dog", "oven"), "cat"),  # negated caption
    ('A sign that says "STOP" next to a bus.', ("stop sign", "bus"), "truck"),  # quotes to escape
]


def plans(caption: str, shown: tuple[str, ...], absent: str) -> list[AbsentSpec]:
    """One plan per kind and fitting wording, as `plan_absent` could draw them."""
    body = split_ending(caption)[0]
    form = caption_form(body)
    swap = swap_site(body, list(shown), absent, LEXICON)
    kinds = [("absent-assert", None)] + ([("absent-swap", swap)] if swap else [])
    specs = []
    for style in wordings_for(form, body):
        others = [w for w in wordings_for(form, body) if w != style]
        for kind, site in kinds:
            specs.append(AbsentSpec(
                1, shown, absent, kind, site.present if site else shown[0], "end", style, others[0],
                absent_word=LEXICON.name(absent).word, shown_word=site.shown_word if site else "",
                swapped=site.body if site else None))
    return [replace(s, position=_position(s.style)) for s in specs]


def _position(style: str) -> str:
    from triplegen.rules.denials import WORDINGS

    return WORDINGS[style].position


ROWS = [(caption, spec) for caption, shown, absent in CAPTIONS for spec in plans(caption, shown, absent)]


def test_every_caption_gets_both_kinds_and_several_wordings():
    kinds = {(caption, spec.kind) for caption, spec in ROWS}
    assert len(kinds) == 2 * len(CAPTIONS), kinds
    assert {spec.style for _, spec in ROWS} >= {"with no", "in sight", "but no", "but there is no", "either",
                                                 "in this picture", "around", "without", "no in sight"}


@pytest.mark.parametrize(("caption", "spec"), ROWS, ids=[f"{c[:12]}-{s.kind}-{s.style}" for c, s in ROWS])
def test_the_patterns_admit_the_rules_writers_own_row(caption, spec):
    true, paraphrase, false = absent_row(caption, spec)
    patterns = {field: pattern for field, (_, pattern) in absent_patterns(caption, spec).items()}
    assert matches(patterns["caption"], true), (patterns["caption"], true)
    assert matches(patterns["negation"], false), (patterns["negation"], false)
    assert matches(patterns["paraphrase"], paraphrase), (patterns["paraphrase"], paraphrase)
    assert not check_absent_triple(caption, spec.objects, spec.absent, true, paraphrase, false)
    schema = absent_row_schema(caption, spec, SAMPLE_SCHEMA).schema
    if '"' not in caption:  # patterns read the JSON-escaped text, as the decoders do; jsonschema the raw one
        jsonschema.validate({"caption": true, "paraphrase": paraphrase, "negation": false}, schema)
    assert json.loads(json.dumps(schema)) == schema  # travels to a server and a Ray worker as JSON


@pytest.mark.parametrize(("caption", "spec"), ROWS[:12])
def test_whatever_the_patterns_admit_passes_the_checks(caption, spec):
    """Every caption wording with every negation wording and every paraphrase the pattern allows."""
    from triplegen.checks.absent_constraints import _wordings

    own, others = _wordings(caption, spec)
    rows = {style: absent_row(caption, replace(spec, style=style)) for style in own + others}
    for caption_style in own:
        for negation_style in own:
            for paraphrase_style in others:
                true, said, false = rows[caption_style][0], rows[paraphrase_style][0], rows[negation_style][2]
                assert not check_absent_triple(caption, spec.objects, spec.absent, true, said, false), (true, said, false)


def test_the_patterns_refuse_a_denied_shown_object_a_true_negation_and_a_copy():
    caption = "A man riding a horse on a beach."
    spec = AbsentSpec(1, ("person", "horse"), "dog", "absent-assert", "horse", "end", "in sight", "around",
                      absent_word="dog")
    patterns = {field: pattern for field, (_, pattern) in absent_patterns(caption, spec).items()}
    assert matches(patterns["caption"], "A man riding a horse on a beach, with no dog in sight.")
    assert matches(patterns["caption"], "a man riding a horse on a beach, with no dog")  # another end wording
    for wrong in ["A man riding a horse on a beach, with no horse in sight.",  # denies what the image shows
                  "A man riding a beach, with no dog in sight.",  # drops the caption's words
                  "With no dog around, a man riding a horse on a beach.",  # the paraphrase's wording
                  "A man riding a horse on a beach, with no dog in sight of a dog."]:
        assert not matches(patterns["caption"], wrong), wrong
    assert matches(patterns["negation"], "A man riding a horse on a beach, with a dog nearby.")
    assert not matches(patterns["negation"], "A man riding a horse on a beach, with no dog in sight.")
    assert matches(patterns["paraphrase"], "With no dog around, a man riding a horse on a beach.")
    assert not matches(patterns["paraphrase"], "A man riding a horse on a beach, with no dog in sight.")


def test_a_swap_moves_the_denial_onto_the_shown_object():
    caption = "A cat sleeps on a red sofa."
    spec = AbsentSpec(1, ("cat", "couch"), "bed", "absent-swap", "couch", "end", "with no", "around",
                      absent_word="bed", shown_word="sofa", swapped="A cat sleeps on a red bed")
    negation = absent_patterns(caption, spec)["negation"][1]
    assert matches(negation, "A cat sleeps on a red bed, with no sofa.")
    assert not matches(negation, "A cat sleeps on a red sofa, with a bed.")


def test_a_template_field_with_its_own_pattern_keeps_it_and_bounds_go():
    pinned = json.loads(json.dumps(SAMPLE_SCHEMA))
    pinned["properties"]["paraphrase"]["pattern"] = "^x$"
    caption, spec = ROWS[0]
    row = absent_row_schema(caption, spec, pinned)
    assert row.schema["properties"]["paraphrase"]["pattern"] == "^x$"
    assert row.kinds == {"caption": "denial", "paraphrase": "template", "negation": "affirm"}
    assert "maxLength" not in row.schema["properties"]["caption"]
    assert row.counts()["absent caption: denial"] == 1


def test_the_start_up_probe_asks_for_the_absent_patterns_when_the_run_has_absent_rows():
    asked = []
    probe = lambda schema: asked.append(schema) or None  # noqa: E731
    default, absent = load_template("default"), load_template("absent")
    assert choose_constraint("polarity", "vllm", default, probe)["applied"]
    without = len(asked)
    assert choose_constraint("polarity", "vllm", default, probe, absent_template=absent)["applied"]
    assert len(asked) == 2 * without + 1 and asked[-1] == sample_absent_schema(absent.output_schema)
    refused = choose_constraint("polarity", "vllm", default, lambda s: "bad" if "caption" in s["properties"] else None,
                                absent_template=absent)
    assert refused["applied"] is False and "bad" in refused["note"]


def test_the_absent_prompt_shows_the_exact_phrases():
    caption, spec = "A cat sleeps on a red sofa.", AbsentSpec(
        1, ("cat", "couch"), "bed", "absent-swap", "couch", "end", "in sight", "around",
        absent_word="bed", shown_word="sofa", swapped="A cat sleeps on a red bed")
    template = load_template("absent")
    assert template.version == "3.1"
    user = template.render(caption, row_variables(spec))[-1]["content"]
    assert "caption: <caption>, with no bed in sight" in user
    assert "negation: A cat sleeps on a red bed, with no sofa in sight" in user
    assert "With no bed around, <the caption in other words>" in user


def test_xgrammar_reads_the_absent_patterns_as_python_does():
    require("xgrammar", "vLLM's default structured-output decoder (installed with vllm)")
    import xgrammar
    from xgrammar.testing import _is_grammar_accept_string as accepts

    caption, spec = ROWS[-1]
    true, paraphrase, false = absent_row(caption, spec)
    texts = [true, paraphrase, false, true.lower(), true.rstrip("."), caption, true + " A dog.", "a\nb"]
    for field, (_, pattern) in absent_patterns(caption, spec).items():
        schema = {"type": "object", "properties": {"t": {"type": "string", "pattern": pattern}}, "required": ["t"],
                  "additionalProperties": False}
        grammar = xgrammar.Grammar.from_json_schema(json.dumps(schema))
        for text in texts:
            assert accepts(grammar, json.dumps({"t": text}, ensure_ascii=False)) == matches(pattern, text), (field, text)
