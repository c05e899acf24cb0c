"""Words a paraphrase must not trade for their opposite: "inside" -> "outside", "red" -> "blue".

A small model's paraphrase sometimes keeps every word but one and turns that one into its opposite
("A motorcycle is parked outside of a building" for "... inside of a building"). That is the shape
of SugarCrepe++'s hard negatives (replace an attribute or a relation), so such a row would teach
the model that a false caption means the same as the true one. The test is lexical and one-sided:
it fires only when the output brings in a word of one side that the caption lacks and drops the
caption's word of the other side, so synonyms ("big" for "large") and added detail pass.
"""

from __future__ import annotations

from collections.abc import Iterable

# (one side, the other side): words of a side are near-synonyms of each other. Relations that have a
# converse ("in front of" / "behind", "above" / "below") are left out: the human paraphrases of
# SugarCrepe++ swap subject and object with them.
OPPOSITES: tuple[tuple[frozenset[str], frozenset[str]], ...] = tuple(
    (frozenset(a.split()), frozenset(b.split())) for a, b in (
        ("inside indoors indoor", "outside outdoors outdoor"),
        ("open opened", "closed shut"),
        ("empty", "full"),
        ("day daytime", "night nighttime"),
        ("large big huge giant", "small little tiny"),
        ("tall", "short"),
        ("wet", "dry"),
        ("young", "old elderly"),
        ("man men boy boys male", "woman women girl girls female lady ladies"),
        ("standing stands", "sitting sits seated"),
    )
)
# Colours exclude each other pairwise; "gray" and "grey" are one colour.
COLOURS = frozenset("red orange yellow green blue purple pink brown black white gray grey".split())


def _colours(words: set[str]) -> set[str]:
    return {"gray" if word == "grey" else word for word in words & COLOURS}


def swapped_opposite(caption: Iterable[str], output: Iterable[str]) -> tuple[str, str] | None:
    """(the caption's word, the output's word) when the output trades one for its opposite, else None.

    Both texts are given as lower-case words.
    """
    said, written = set(caption), set(output)
    for one, other in OPPOSITES:
        for side, opposite in ((one, other), (other, one)):
            dropped, brought = (said & side) - written, (written & opposite) - said
            if dropped and brought and not written & side:
                return min(dropped), min(brought)
    dropped, brought = _colours(said) - _colours(written), _colours(written) - _colours(said)
    if dropped and brought:
        return min(dropped), min(brought)
    return None
