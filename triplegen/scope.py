"""Which objects a caption asserts and which it denies: the scope of its negation cues.

Cue counts (`triplegen.polarity`) cannot tell "a dog and no cat" from "a cat and no dog": both
have one "no". An absent-object row is only right when the "no" lands on the object the image
lacks, so its checks need the scope of each cue over the image's object labels.

The scope of a cue is read from the words after it, up to the end of its clause (punctuation, or a
word that starts another clause: "and", "but", "while", "which", ...). A cue that works like a
determiner ("no", "without", "not a", "lacks", "free of") governs one noun phrase, which also ends
at a preposition ("no dog on the sofa next to a cat" denies the dog, not the sofa or the cat). Any
other cue ("is not holding", "never", "nobody") is read as denying everything up to the end of its
clause: a conservative reading, since a check built on it must never miss a denied object.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from triplegen.lexicon import PREPOSITIONS
from triplegen.polarity import cue_spans

_CLAUSE_END = re.compile(
    r"[,;:.!?()\u2014]|\b(?:and|but|while|whereas|though|although|yet|where|which|who|whose|that|because|so)\b",
    re.IGNORECASE,
)
_NOUN_PHRASE_CUES = frozenset(
    "no without neither nor lack lacks lacked lacking free of devoid of void of empty of absence of absent".split()
)
_DETERMINERS_AFTER_NOT = frozenset("a an any the one single even".split())
_WORD = re.compile(r"[a-z]+(?:['\u2019-][a-z]+)*")
_IRREGULAR = {
    "person": "people", "man": "men", "woman": "women", "child": "children", "mouse": "mice",
    "foot": "feet", "tooth": "teeth", "goose": "geese", "knife": "knives", "leaf": "leaves",
    "wolf": "wolves", "shelf": "shelves", "loaf": "loaves", "sheep": "sheep", "deer": "deer",
    "fish": "fish",
}
_PLURAL_ONLY = frozenset(
    "people men women children mice feet teeth geese knives leaves wolves shelves loaves skis scissors glasses "
    "pants jeans shorts trousers clothes".split()
)


def plural(label: str) -> str:
    """The plural of an object label ("dining table" -> "dining tables", "person" -> "people")."""
    head, _, last = label.rpartition(" ")
    word = last.lower()
    if word in _IRREGULAR:
        form = _IRREGULAR[word]
    elif is_plural_label(word):
        form = word
    elif word.endswith(("s", "x", "z", "ch", "sh")):
        form = word + "es"
    elif word.endswith("y") and len(word) > 1 and word[-2] not in "aeiou":
        form = word[:-1] + "ies"
    else:
        form = word + "s"
    return f"{head} {form}" if head else form


def _looks_plural(word: str) -> bool:
    return word.endswith("s") and not word.endswith(("ss", "us", "is")) and len(word) > 3


def is_plural_label(label: str) -> bool:
    """COCO writes some labels in the plural ("skis", "scissors"): they take no article."""
    word = label.rsplit(" ", 1)[-1].lower()
    return word in _PLURAL_ONLY or (_looks_plural(word) and word not in _IRREGULAR)


@lru_cache(maxsize=8192)
def _label_pattern(label: str) -> re.Pattern[str]:
    forms = sorted({label.lower(), plural(label).lower()}, key=len, reverse=True)
    words = ["\\s+".join(re.escape(w) for w in form.split()) for form in forms]
    return re.compile(r"(?<![\w-])(?:" + "|".join(words) + r")(?![\w-])", re.IGNORECASE)


def mentions(text: str, label: str) -> list[tuple[int, int]]:
    """(start, end) of every mention of `label` (singular or plural) as whole words."""
    return [m.span() for m in _label_pattern(label).finditer(text)]


@dataclass(frozen=True)
class Reading:
    """How a text treats one object label: mentioned outside any negation, inside one, or both."""

    asserted: bool
    denied: bool

    @property
    def mentioned(self) -> bool:
        return self.asserted or self.denied


def denied_spans(text: str) -> list[tuple[int, int]]:
    """Character ranges governed by a negation cue (see the module docstring)."""
    spans = []
    for start, end, cue in cue_spans(text):
        clause_end = _CLAUSE_END.search(text, end)
        limit = clause_end.start() if clause_end else len(text)
        if _governs_noun_phrase(text, end, cue):
            limit = _noun_phrase_end(text, end, limit)
        spans.append((start, limit))
    return spans


def _governs_noun_phrase(text: str, end: int, cue: str) -> bool:
    if cue in _NOUN_PHRASE_CUES:
        return True
    if cue == "not":
        following = _WORD.match(text[end:].lstrip().lower())
        return following is not None and following.group(0) in _DETERMINERS_AFTER_NOT
    return False


def _noun_phrase_end(text: str, start: int, limit: int) -> int:
    """The first preposition after at least one word of the phrase ends it."""
    seen_word = False
    for match in _WORD.finditer(text.lower(), start, limit):
        word = match.group(0)
        if seen_word and word in PREPOSITIONS:
            return match.start()
        if word not in ("of",):
            seen_word = True
    return limit


def read_objects(text: str, labels: list[str] | tuple[str, ...]) -> dict[str, Reading]:
    """For each label: is it mentioned outside a negation (asserted), inside one (denied)?

    Longer labels are matched first and their words taken, so "hot dog" is not also a "dog".
    """
    denied = denied_spans(text)
    taken: list[tuple[int, int]] = []
    readings = {}
    for label in sorted(set(labels), key=len, reverse=True):
        asserted = negated = False
        for start, end in mentions(text, label):
            if any(start < t_end and t_start < end for t_start, t_end in taken):
                continue
            taken.append((start, end))
            if any(d_start <= start < d_end for d_start, d_end in denied):
                negated = True
            else:
                asserted = True
        readings[label] = Reading(asserted, negated)
    return readings
