"""Which objects a caption asserts and which it denies: the scope of its negation cues.

Cue counts (`triplegen.rules.polarity`) cannot tell "a dog and no cat" from "a cat and no dog": both
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

from triplegen.rules.lexicon import PREPOSITIONS
from triplegen.rules.object_names import ObjectLexicon
from triplegen.rules.polarity import cue_spans

# Clause ends, cues that work like determiners, and what may follow "not" to make it one ("not a"): the
# reading of scope described above, over closed classes.
_CLAUSE_END = re.compile(
    r"[,;:.!?()\u2014]|\b(?:and|but|while|whereas|though|although|yet|where|which|who|whose|that|because|so)\b",
    re.IGNORECASE,
)
_NOUN_PHRASE_CUES = frozenset(
    "no without neither nor lack lacks lacked lacking free of devoid of void of empty of absence of absent".split()
)
_DETERMINERS_AFTER_NOT = frozenset("a an any the one single even".split())
_WORD = re.compile(r"[a-z]+(?:['\u2019-][a-z]+)*")


def mentions(text: str, label: str, lexicon: ObjectLexicon | None = None) -> list[tuple[int, int]]:
    """(start, end) of every word that names `label` (its synonyms, kinds and plurals: triplegen.rules.object_names)."""
    return (lexicon or ObjectLexicon.builtin()).mentions(text, label)


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


def read_objects(text: str, labels: list[str] | tuple[str, ...],
                 lexicon: ObjectLexicon | None = None) -> dict[str, Reading]:
    """For each label: is it mentioned outside a negation (asserted), inside one (denied)?

    Longer mentions are matched first and their words taken, so "hot dog" is not also a "dog" and
    "a teddy bear" no bear; a word that names several labels ("bag") counts for each.
    """
    lexicon = lexicon or ObjectLexicon.builtin()
    denied = denied_spans(text)
    found = [(span, label) for label in sorted(set(labels)) for span in lexicon.mentions(text, label)]
    found.sort(key=lambda item: item[0][0] - item[0][1])  # longest first
    taken: list[tuple[int, int]] = []
    readings = {label: Reading(False, False) for label in labels}
    for (start, end), label in found:
        if any(start < t_end and t_start < end and (t_start, t_end) != (start, end) for t_start, t_end in taken):
            continue
        taken.append((start, end))
        negated = any(d_start <= start < d_end for d_start, d_end in denied)
        before = readings[label]
        readings[label] = Reading(before.asserted or not negated, before.denied or negated)
    return readings
