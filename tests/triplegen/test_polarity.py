"""Negation cues: what the polarity checks of every generated triple rest on."""

from __future__ import annotations

import pytest

from triplegen.rules.polarity import flips_polarity, is_negated, keeps_polarity, negation_cues, polarity


@pytest.mark.parametrize(
    ("text", "cues"),
    [
        ("There are no cats on the bed.", ["no"]),
        ("A man not wearing a hat.", ["not"]),
        ("A dog doesn't chase the ball.", ["doesn't"]),
        ("A dog doesn\u2019t chase the ball.", ["doesn't"]),
        ("The kids can't reach the shelf.", ["can't"]),
        ("A cat cannot reach the fish.", ["cannot"]),
        ("A train that never stops.", ["never"]),
        ("None of the plates are clean.", ["none"]),
        ("Nobody is on the beach.", ["nobody"]),
        ("Nothing is on the table.", ["nothing"]),
        ("The keys are nowhere in sight.", ["nowhere"]),
        ("A dog without a leash.", ["without"]),
        ("Neither the cat nor the dog is asleep.", ["neither", "nor"]),
        ("A clean kitchen with no one in it.", ["no one"]),
        ("A room free of clutter.", ["free of"]),
        ("A wall lacking paint.", ["lacking"]),
        ("A kitchen empty of people.", ["empty of"]),
        ("The driver is absent.", ["absent"]),
        ("NO DOGS ON THE BEACH", ["no"]),
        ("A bathroom with no toilets and a red sign.", ["no"]),
    ],
)
def test_finds_each_negation_cue(text, cues):
    assert negation_cues(text) == cues
    assert is_negated(text) and polarity(text) == "negative"


@pytest.mark.parametrize(
    "text",
    [
        "A note pinned to a knot of wood.",
        "I know the snow is deep.",
        "A Nokia phone beside a notebook.",
        "Nonetheless the game goes on.",
        "A plate with nothing but crumbs.",
        "Not only a dog but also a cat on the sofa.",
        "No doubt the team is winning.",
        "She cannot help but smile at the puppy.",
        "A man who can't help but laugh.",
        "A residential street has an orange no parking sign.",
        "PASSENGER TRAIN WITH NO SMOKING SIGN, AND TWO persons",
        "A No bicycles, skates or skateboards sign on a pole.",
        "A train with a \"No Smoking\" sign.",
        "People walk near a sign that says no peddling.",
        "The No. 5 bus at the stop.",
        "An empty room with a wooden floor.",
        "",
    ],
)
def test_is_not_fooled_by_look_alikes(text):
    assert negation_cues(text) == []
    assert polarity(text) == "positive"


def test_none_text_has_no_cues():
    assert negation_cues(None) == [] and not is_negated(None)


def test_negation_of_a_negated_caption_removes_the_cue():
    caption = "A room with no people."
    assert flips_polarity(caption, "A room with people.")
    assert not flips_polarity(caption, "A room without anyone.")
    assert keeps_polarity(caption, "A room without anyone.")


def test_a_paraphrase_that_adds_a_second_negation_changes_polarity():
    assert not keeps_polarity("A room with no people.", "A room with no people and no chairs.")
