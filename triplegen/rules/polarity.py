"""Negation cues of English captions: the evidence behind the polarity checks.

A caption's polarity is read from explicit negation cues only ("no", "not", "n't", "never",
"without", "free of", ...). Lexical look-alikes are word-bounded away ("note", "knot", "snow",
"Nokia", "nonetheless"), and fixed phrases whose "no"/"not" asserts rather than denies are
removed before matching: "nothing but" (= only), "not only ... but", "no doubt", "cannot help but",
"none other than", and sign text such as "a no parking sign", which names an object instead of
denying one. Adjectives of absence ("empty", "bare") and quasi-negators ("hardly", "barely") are
not cues: "an empty room" affirms a room, and treating it as negated would make the checks demand
that a paraphrase keep a word rather than a meaning.

The checks compare cue counts, not just presence, so that an already negated caption ("a room
with no people") can be negated by removing its cue and an extra cue in a paraphrase is noticed.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal

Polarity = Literal["positive", "negative"]

_APOSTROPHE = "['\u2019]"

# Phrases whose negation word does not deny anything in the scene; blanked before cue matching.
_NOT_NEGATIONS = re.compile(
    r"""
    \bnothing\s+but\b
    | \bnot\s+only\b
    | \bnot\s+to\s+mention\b
    | \bnone\s+other\s+than\b
    | \bno\s+(?:doubt|wonder|matter)\b
    | \bwithout\s+(?:a\s+)?doubt\b
    | \bno\s+(?:less|fewer)\s+than\b
    | \b(?:can\s*not|can""" + _APOSTROPHE + r"""t|could\s*not|couldn""" + _APOSTROPHE + r"""t)\s+help\s+but\b
    | \bno\.\s*\d                                   # "No. 5": a number, not a denial
    # sign text ("a no parking sign", "No bicycles, skates or skateboards sign"), not "no stop sign"
    | \bno[\s-]+["\u201c']?(?:[\w-]*ing|entry|dogs|pets|bikes|bicycles|trucks|vehicles|turns?|left|right|u-turns?
        |outlet|thru|through|exit|food|drinks|alcohol|skateboards?)\b
      (?:["\u201d']?,?\s+(?:or\s+)?(?!(?:and|a|an|the|with|in|on|of|at|near|by)\b)[\w-]+){0,3}?["\u201d']?\s+signs?\b
    | \b(?:says|say|saying|reads|read|reading|marked)\s*:?\s*["\u201c]?\s*no\b
    """,
    re.IGNORECASE | re.VERBOSE,
)

# The explicit negation cues: a closed class, narrowed by choice (no "empty room", no "hardly": see above).
_CUES = re.compile(
    r"""
    \bno[\s-]one\b
    | \b(?:no|not|never|none|nobody|nothing|nowhere|neither|nor|without|cannot)\b
    | \b\w+n""" + _APOSTROPHE + r"""t\b
    | \b(?:free|devoid|void|empty)\s+of\b
    | \black(?:s|ed|ing)?\b
    | \babsen(?:t|ce\s+of)\b
    """,
    re.IGNORECASE | re.VERBOSE,
)


# Every word a cue is made of, so that a caption with none of them skips the patterns.
_CUE_WORDS = frozenset(
    "no not never none nobody nothing nowhere neither nor without cannot free devoid void empty absent absence "
    "lack lacks lacked lacking".split()
)
_WORDS = re.compile(r"[a-z]+")


@lru_cache(maxsize=4096)
def cue_spans(text: str | None) -> tuple[tuple[int, int, str], ...]:
    """(start, end, cue) of every negation cue, so a generator can remove exactly those words."""
    if not text:
        return ()
    lowered = text.lower()
    if "n't" not in lowered and "n\u2019t" not in lowered and _CUE_WORDS.isdisjoint(_WORDS.findall(lowered)):
        return ()  # the common case, checked without the slower cue pattern
    cleaned = _NOT_NEGATIONS.sub(lambda m: " " * len(m.group(0)), text)
    return tuple(
        (m.start(), m.end(), " ".join(m.group(0).lower().replace("\u2019", "'").split()))
        for m in _CUES.finditer(cleaned)
    )


def negation_cues(text: str | None) -> list[str]:
    """Every negation cue in `text`, lower-cased, in reading order ([] for none or no text)."""
    return [cue for _, _, cue in cue_spans(text)]


def is_negated(text: str | None) -> bool:
    """True when `text` carries at least one negation cue."""
    return bool(negation_cues(text))


def polarity(text: str | None) -> Polarity:
    """"negative" when `text` carries a negation cue, else "positive"."""
    return "negative" if is_negated(text) else "positive"


def keeps_polarity(original: str, other: str) -> bool:
    """A paraphrase keeps polarity when it has the same number of cues as the original.

    Counting (not just presence) catches a paraphrase that adds a second negation to an
    already negated caption ("no people" -> "no people and no chairs").
    """
    return len(negation_cues(original)) == len(negation_cues(other))


def flips_polarity(original: str, other: str) -> bool:
    """A negation flips polarity when it adds or removes at least one cue.

    An affirmative caption needs a cue in its negation; an already negated caption is negated by
    removing one ("a room with no people" -> "a room with people"), so any change in the count
    counts as a flip. Two cues that cancel ("not without") are not recognised as a double negation.
    """
    return len(negation_cues(original)) != len(negation_cues(other))
