"""Quality checks: the reason codes generate retries on and validate reports."""

from __future__ import annotations

import json

import pytest

from triplegen.checks.lexical import REASONS, CheckConfig, check_caption, check_triple

CAPTION = "A man riding a horse on a beach."


def test_a_good_triple_passes():
    assert check_triple(CAPTION, "On a beach, a man is riding a horse.", "A man not riding a horse on a beach.") == []


@pytest.mark.parametrize(
    ("caption", "reason"),
    [(None, "empty_caption"), ("", "empty_caption"), ("  \t\n", "empty_caption"), ("x" * 20_000, "caption_too_long")],
)
def test_unusable_captions(caption, reason):
    assert check_caption(caption) == reason


def test_caption_bound_is_configurable():
    assert check_caption("A dog.") is None
    assert check_caption("A dog on a sofa.", CheckConfig(max_caption_chars=5)) == "caption_too_long"


@pytest.mark.parametrize(
    ("paraphrase", "negation", "reasons"),
    [
        (None, None, ["empty_paraphrase", "empty_negation"]),
        ("  ", "", ["empty_paraphrase", "empty_negation"]),
        ("a man riding a horse on a beach", "No man riding a horse on a beach.", ["paraphrase_copy"]),
        ("A MAN  riding a horse, on a beach!", "No man riding a horse on a beach.", ["paraphrase_copy"]),
        ("On a beach, a man is riding a horse.", "A man riding a horse on a beach", ["negation_copy"]),
        ("On a beach, a man is not riding a horse.", "No man rides a horse on a beach.", ["paraphrase_polarity"]),
        ("On a beach, a man is riding a horse.", "On the beach a man rides a horse.", ["negation_polarity"]),
        ("A man.", "No man riding a horse on a beach.", ["paraphrase_too_short"]),
        ("On a beach, a man is riding a horse.", "Not.", ["negation_too_short"]),
        ("A man riding a horse " * 10, "No man riding a horse on a beach.", ["paraphrase_too_long"]),
        ("Here is the paraphrase: a man rides a horse on a beach.", "No man rides a horse on the beach.",
         ["paraphrase_meta"]),
        ("Sure! On a beach a man rides a horse.", "Negated caption: no man rides a horse.",
         ["paraphrase_meta", "negation_meta"]),
        ("On a beach, a man is riding a horse.", "There is no cat sleeping on the sofa.", ["negation_unrelated"]),
    ],
)
def test_each_defect_has_its_reason(paraphrase, negation, reasons):
    assert check_triple(CAPTION, paraphrase, negation) == reasons


def test_negation_equal_to_paraphrase_is_reported():
    reasons = check_triple(CAPTION, "A man not riding a horse on the beach.", "A man not riding a horse on the beach")
    assert reasons == ["paraphrase_polarity", "negation_equals_paraphrase"]


def test_output_character_limit():
    config = CheckConfig(max_output_chars=20)
    assert check_triple(CAPTION, "On a beach, a man is riding a horse.", "No man on a beach.", config) == [
        "paraphrase_too_long"
    ]


def test_already_negated_caption_is_negated_by_removing_the_cue():
    caption = "A clean kitchen with no one in it."
    assert check_triple(caption, "A clean kitchen where nobody is present.", "A clean kitchen with people in it.") == []
    assert check_triple(caption, "A clean kitchen with people in it.", "A clean kitchen without anyone in it.") == [
        "paraphrase_polarity",
        "negation_polarity",
    ]


def test_a_negation_may_rewrite_but_must_stay_on_the_caption():
    caption = "A man riding a horse on a beach."
    assert check_triple(caption, "On a beach, a man rides a horse.", "Nobody is riding a horse.") == []
    assert check_triple(caption, "On a beach, a man rides a horse.", "There is no dog.") == ["negation_unrelated"]
    assert check_triple(caption, "On a beach, a man rides a horse.", "There is no dog.",
                        CheckConfig(min_negation_overlap=0.0)) == []


def test_short_captions_may_grow_a_little():
    assert check_triple("Two dogs.", "A pair of dogs standing together.", "No dogs.") == []


def test_every_code_is_described_and_json_safe():
    codes = {
        "empty_caption", "caption_too_long", "invalid_json", "missing_field", "truncated", "backend_error",
        "empty_paraphrase", "empty_negation", "paraphrase_copy", "negation_copy", "paraphrase_polarity",
        "negation_polarity", "paraphrase_too_long", "negation_too_long", "paraphrase_too_short",
        "negation_too_short", "negation_equals_paraphrase", "low_paraphrase_similarity",
    }
    assert codes <= REASONS.keys()
    assert all(code.isidentifier() and text for code, text in REASONS.items())
    json.dumps(REASONS)


def test_codes_returned_are_all_registered():
    cases = [(None, None), ("x", "x"), (CAPTION, CAPTION), ("Sure: a caption.", "A negated caption.")]
    for paraphrase, negation in cases:
        assert set(check_triple(CAPTION, paraphrase, negation)) <= REASONS.keys()


def test_human_paraphrases_of_sugarcrepe_pass(sugarcrepe_dir):
    items = [item for path in sorted(sugarcrepe_dir.glob("*.json")) for item in json.loads(path.read_text())]
    failing = [
        item for item in items
        if any(r.startswith("paraphrase") for r in check_triple(item["caption"], item["caption2"], None))
    ]
    # The few failures (26 of 4,757) are real: copies, lexical negations ("shirtless" -> "without shirts"),
    # padding, cut-off sentences, typos ("in her armsin") and a few that do change the meaning
    # ("a large white ball" -> "a small white ball").
    assert len(failing) / len(items) < 0.006


# --- what passed wrongly before: cut-off sentences, padding, "X is not a X" -------------------


@pytest.mark.parametrize("paraphrase", [
    "A sign on a brick wall that says",  # accepted by the checks of earlier versions
    "A large green sign on a brick wall next to the",
    "A sign on the wall of",
    "A sign on a brick wall and",
    'A sign on a brick wall says "Stop',
    "A sign on a brick wall (with lights",
    "A sign on a brick wall,",
    "A brick wall with a sign reading",
])
def test_a_cut_off_paraphrase_is_unfinished(paraphrase):
    caption = 'A sign on a brick wall that says "Stop".'
    assert check_triple(caption, paraphrase, 'A sign on a brick wall that does not say "Stop".') == [
        "paraphrase_unfinished"]


@pytest.mark.parametrize("text", ["A man with a hat on.", "A woman hugging her.", "A man reading.",
                                  "A trash can.", 'A sign reads "OPEN".',
                                  "The lights are on, but a clock tower is."])
def test_finished_sentences_that_end_on_a_small_word_pass(text):
    from triplegen.checks.lexical import unfinished

    assert not unfinished(text)


def test_a_caption_that_is_cut_off_itself_does_not_fail_its_outputs():
    assert check_triple("A sign that says", "A sign which says", "No sign that says") == []


def test_padding_with_a_repeated_phrase_fails_and_the_captions_own_repeats_do_not():
    caption = "A red stop sign with a green street sign posted above it."
    reasons = check_triple(caption, "A red stop sign with a green street sign is posted above a red stop sign.",
                           "A red stop sign without a green street sign above it.")
    assert reasons == ["paraphrase_repeats"]
    assert check_triple("A young person kissing the head of a young person.",
                        "A young person is kissing the head of another young person.",
                        "A young person is not kissing the head of a young person.") == []


@pytest.mark.parametrize("negation", ["A crate on top of a car is not a crate.", "A baseball player isn't a baseball player.",
                                      "Two giraffes are not the giraffes."])
def test_a_negation_that_denies_what_it_named_is_a_tautology(negation):
    from triplegen.checks.lexical import tautology

    assert tautology(negation)


def test_the_tautology_check_rejects_a_row():
    assert check_triple("A crate on top of a car holding luggage.", "On top of a car, a crate holds luggage.",
                        "A crate on top of a car is not a crate.") == ["negation_tautology"]


@pytest.mark.parametrize("negation", ["A dog is not a cat.", "A room that is not very clean.",
                                      "The bike is not on a skate park."])
def test_other_is_not_sentences_are_not_tautologies(negation):
    from triplegen.checks.lexical import tautology

    assert not tautology(negation)


def test_every_new_code_is_described():
    for code in ("paraphrase_unfinished", "negation_unfinished", "paraphrase_repeats", "negation_repeats",
                 "negation_tautology"):
        assert REASONS[code]


# --- paraphrases that are hard negatives, words that are none ----------------------------------


@pytest.mark.parametrize("caption, paraphrase", [
    ("A motorcycle is parked inside of a building.", "A motorcycle is parked outside of a building."),
    ("A red bus on a city street.", "A blue bus is on a city street."),
    ("A man holding an umbrella in the rain.", "A woman is holding an umbrella in the rain."),
    ("A small dog on a large bed.", "A small dog is lying on a tiny bed."),
    ("An empty glass on a wooden table.", "A full glass is standing on a wooden table."),
])
def test_a_paraphrase_that_trades_a_word_for_its_opposite_fails(caption, paraphrase):
    assert check_triple(caption, paraphrase, None)[0] == "paraphrase_opposite"


@pytest.mark.parametrize("caption, paraphrase", [
    ("A large dog on a bed.", "A big dog is lying on a bed."),  # a synonym
    ("A dog in front of a fence.", "A fence is behind a dog."),  # a converse relation
    ("A dog on a bed.", "A small brown dog is lying on a bed."),  # added detail
    ("A grey cat on a sofa.", "A gray cat is lying on a sofa."),  # one colour, two spellings
    ("A man and a woman at a table.", "A woman and a man are sitting at a table."),
])
def test_synonyms_converses_and_added_detail_are_not_opposites(caption, paraphrase):
    assert not [r for r in check_triple(caption, paraphrase, None) if r == "paraphrase_opposite"]


@pytest.mark.parametrize("paraphrase", ["A herdof giraffes is walking in a field.",
                                        "A herd of giraffes walks in a roomwitha field.",
                                        "A pizzadescriticalheterokoupelicol herd of giraffes in a field."])
def test_letters_glued_into_a_word_are_garbled(paraphrase):
    assert check_triple("A herd of giraffes walking in a field.", paraphrase, None)[0] == "paraphrase_garbled"


def test_unknown_real_words_and_the_captions_own_words_are_not_garbled():
    assert check_triple("A kiteboarder riding a wave.", "A snowboarder-like kiteboarder rides a wave.",
                        "A kiteboarder is not riding a wave.") == []
    assert check_triple("A cat sits atop a fridgeof sorts.", "Atop a fridgeof sorts, a cat is sitting.",
                        "A cat does not sit atop a fridgeof sorts.") == []
    assert REASONS["paraphrase_opposite"] and REASONS["paraphrase_garbled"] and REASONS["negation_garbled"]
