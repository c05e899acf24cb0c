"""Polarity by construction: the per-row patterns admit the right answers and refuse the wrong ones.

Patterns are matched here with Python's `re` on the JSON-escaped text (how the structured-output
decoders apply them); `test_xgrammar_reads_the_patterns_as_python_does` shows that vLLM's default
decoder, xgrammar, accepts and refuses the same texts.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import require
from triplegen.checks.lexical import check_triple
from triplegen.checks.constraints import (
    SAMPLE_CAPTIONS, cue_text, edit_point, guided_negation, no_cue_text, row_schema,
)
from triplegen.rules.polarity import flips_polarity
from triplegen.templates import load_template

TEMPLATE_SCHEMA = load_template("default").output_schema


def admits(pattern: str, text: str) -> bool:
    return re.fullmatch(pattern, json.dumps(text, ensure_ascii=False)[1:-1]) is not None


@pytest.mark.parametrize(("caption", "point"), [
    ("A man drinking something from a red bottle.", "A man "),
    ("Two dogs play in the snow.", "Two dogs "),
    ("There is a woman sitting on the railroad tracks.", "There is "),
    ("a plate of pasta next to a glass of wine", ""),
])
def test_the_edit_point_is_where_the_rules_negate(caption, point):
    assert edit_point(caption) == point


def test_a_guided_negation_keeps_the_captions_start_and_must_negate():
    pattern = guided_negation("A man drinking something from a red bottle.")
    for good in ["A man is not drinking something from a red bottle.", "A man not drinking from a bottle",
                 "a man isn't drinking anything from a red bottle.", "A man does not drink something from a red bottle!"]:
        assert admits(pattern, good), good
        assert flips_polarity("A man drinking something from a red bottle.", good)
    for bad in ["A man drinking something from a red bottle.",  # a copy: no negation word
                "A man is drinking nothing",  # the negation word must come at the edit point
                "A man is aren't drinking.",  # an auxiliary before a contraction
                "A woman is not drinking something.",  # another start
                "A man is not",  # nothing after the negation word
                "A man is not drinking. A red bottle is not a bottle.",  # one sentence only
                "A man is notdrinking"]:  # whole words only
        assert not admits(pattern, bad), bad


@pytest.mark.parametrize(("caption", "good", "bad"), [
    ("there is a fire hydrant surrounded by three metal poles", "There is no fire hydrant surrounded by poles.",
     "There is are no metal poles around the fire hydrant."),  # written by SmolLM2 before
    ("There is a tractor next to some boats on the beach", "There is not a tractor next to boats.",
     "There is isn't a tractor on the beach."),
    ("A man is drinking from a red bottle.", "A man is not drinking from a red bottle.",
     "A man is does not drink from a red bottle."),
])
def test_after_the_captions_own_auxiliary_only_a_negation_word_follows(caption, good, bad):
    pattern = guided_negation(caption)
    assert edit_point(caption).split()[-1].lower() == "is"
    assert admits(pattern, good) and not admits(pattern, bad)


def test_a_caption_negated_from_its_start_opens_with_no_or_there_is_no():
    pattern = guided_negation("a plate of pasta next to a glass of wine")
    assert admits(pattern, "No plate of pasta next to a glass of wine.")
    assert admits(pattern, "There are no plates of pasta next to a glass of wine")
    assert not admits(pattern, "Aren't a plate of pasta")  # a model that wanted "A" gets no "Aren't"
    assert not admits(pattern, "A plate of pasta with no wine.")


def test_a_negated_caption_forbids_every_cue_in_its_negation_and_keeps_one_in_its_paraphrase():
    caption = "A kitchen with no people in it."
    shaped = row_schema(caption, TEMPLATE_SCHEMA)
    assert (shaped.paraphrase, shaped.negation) == ("cue", "no-cue")
    negation = shaped.schema["properties"]["negation"]["pattern"]
    paraphrase = shaped.schema["properties"]["paraphrase"]["pattern"]
    for good in ["A kitchen with people in it.", "A kitchen full of people, a man's hat and a t-shirt.",
                 'A sign says "OPEN" in the kitchen.', "North of the kitchen, nota bene"]:
        assert admits(negation, good), good
    for bad in ["A kitchen with no people.", "Nobody is in the kitchen", "The kitchen isn't empty", "People don't cook",
                "People can\u2019t cook", "A kitchen without people", "NOT a kitchen", "A kitchen lacking people"]:
        assert not admits(negation, bad), bad
    assert admits(paraphrase, "A kitchen where nobody is present.") and admits(paraphrase, "Nobody is in the kitchen.")
    assert not admits(paraphrase, "A kitchen where people cook.")
    assert check_triple(caption, "A kitchen where nobody is present.", "A kitchen with people in it.") == []


def test_the_paraphrase_of_an_affirmative_caption_is_free_and_the_row_schema_has_no_length_unrolling():
    shaped = row_schema(SAMPLE_CAPTIONS[0], TEMPLATE_SCHEMA)
    assert (shaped.paraphrase, shaped.negation) == ("free", "edit")
    properties = shaped.schema["properties"]
    assert "pattern" not in properties["paraphrase"] and "maxLength" not in properties["paraphrase"]
    assert set(properties["negation"]) == {"type", "pattern"}  # xgrammar cannot combine pattern with lengths
    assert shaped.schema["required"] == TEMPLATE_SCHEMA["required"] and TEMPLATE_SCHEMA["properties"]["paraphrase"][
        "maxLength"] == 400  # the template's own schema is untouched


def test_a_templates_own_pattern_wins():
    schema = json.loads(json.dumps(TEMPLATE_SCHEMA))
    schema["properties"]["negation"] = {"type": "string", "pattern": "^a cat is not on the mat$"}
    shaped = row_schema("A cat on the mat.", schema)
    assert shaped.negation == "template"
    assert shaped.schema["properties"]["negation"]["pattern"] == "^a cat is not on the mat$"


def test_quotes_and_special_characters_of_the_caption_are_escaped():
    caption = 'The "STOP (now)" sign is hanging on a pole.'
    pattern = guided_negation(caption)
    assert edit_point(caption) == 'The "STOP (now)" sign is '
    assert admits(pattern, 'The "STOP (now)" sign is not hanging on a pole.')
    assert not admits(pattern, 'The "STOP now" sign is not hanging on a pole.')


def test_xgrammar_reads_the_patterns_as_python_does():
    require("xgrammar", "vLLM's default structured-output decoder (installed with vllm)")
    import xgrammar
    from xgrammar.testing import _is_grammar_accept_string as accepts

    texts = ["A man is not drinking something.", "A man isn't drinking", "A man drinking something.", "No plate",
             "There are no plates here.", "A kitchen with people in it.", "A kitchen with no people.", "don't",
             'A sign says "OPEN".', "A man's hat", "A t-shirt", "A man is aren't a man.", "Nobody is here.", "a\nb"]
    patterns = [guided_negation("A man drinking something from a red bottle."),
                guided_negation("a plate of pasta next to a glass of wine"), no_cue_text(), cue_text()]
    for pattern in patterns:
        schema = {"type": "object", "properties": {"t": {"type": "string", "pattern": pattern}}, "required": ["t"],
                  "additionalProperties": False}
        grammar = xgrammar.Grammar.from_json_schema(json.dumps(schema))
        for text in texts:
            assert accepts(grammar, json.dumps({"t": text}, ensure_ascii=False)) == admits(pattern, text), (pattern, text)
