"""Absent-object rows right by construction: per-row JSON-schema patterns for the `absent` task.

The plan of an absent-object row (`triplegen.absent.AbsentSpec`) fixes everything but the words of
the paraphrase: which object is denied, where and how, and how the false version changes the truth.
So, as `--constrain polarity` does for ordinary negations (triplegen.constraints), the decoder is
made to write what the rules writer (`absent_row`) would write where a model has nothing to add:

- `caption`: the caption's own words with the absent object denied in the planned wording, or in
  another wording that fits the caption at the same position (", with no dog" / ", with no dog in
  sight"), in the caption's case, with or without its full stop;
- `negation`: the same text with the denial affirmed (absent-assert: ", with a dog") or moved onto
  the shown object (absent-swap: the caption with the absent object in the shown one's place, and
  the shown one denied), in one of the caption's wordings;
- `paraphrase`: either the caption's words with the denial in a wording the caption may not take
  (at the other position, as the rules paraphrase), or free words, one sentence, that deny the
  absent word once ("no dog", "without a dog").

Why literal captions and negations: SmolLM2-135M, told the phrase to add, still denied a shown
object, dropped words of the caption or wrote "with no dog in sight of a dog"; 1 of 20 rows passed.
A regex that is the rules writer's own text leaves it nothing to get wrong, and its false version
is the caption's twin, so a text-only model cannot tell them apart by style.

The patterns use the plain syntax that constraints.py explains (no lookaround, no `?` on a group,
no length bounds): escaped literals, alternation, the word classes of constraints.py.
"""

from __future__ import annotations

import copy
import re
from collections import Counter
from dataclasses import dataclass, replace

from triplegen.absent import AbsentSpec, absent_row
from triplegen.constraints import _IN_SENTENCE, _WORD, escape, word_not_in
from triplegen.denials import WORDINGS, caption_form, is_plural_word, render, wordings_for
from triplegen.lexicon import split_ending
from triplegen.synonyms import plurals

FIELDS = ("caption", "paraphrase", "negation")
# A plan whose schema holds every kind of pattern: the start-up probe of a backend (an absent-swap of
# a sentence, whose paraphrase may be free words).
SAMPLE_CAPTION = "A cat sleeps on a red sofa."
SAMPLE_SPEC = AbsentSpec(1, ("cat", "couch"), "bed", "absent-swap", "couch", "end", "in sight", "around",
                         absent_word="bed", shown_word="sofa", swapped="A cat sleeps on a red bed")
SAMPLE_SCHEMA = {"type": "object", "additionalProperties": False, "required": list(FIELDS),
                 "properties": {name: {"type": "string", "minLength": 1, "maxLength": 500} for name in FIELDS}}
_ENDING = "(?:[.!]|)"
DENIALS = ("no", "not", "without")  # what a paraphrase's free words may not say: its denial is the wording's
EXTRA_WORDS = 3  # a paraphrase's free words: at most the caption's number of words and these
_SLOT = "\x00"  # where the free words go in a paraphrase wording


@dataclass(frozen=True)
class AbsentRowSchema:
    """The schema of one absent-object request and what each field is held to (the card counts them)."""

    schema: dict
    kinds: dict[str, str]  # field -> "denial", "affirm", "swap", "reworded or free", "template"

    def counts(self) -> Counter:
        """The card's counter keys: "absent caption: denial", ... (one per field of one row)."""
        return Counter(f"absent {name}: {kind}" for name, kind in self.kinds.items())


def _wordings(caption: str, spec: AbsentSpec) -> tuple[list[str], list[str]]:
    """(the wordings the caption may take, those only its paraphrase may take).

    The caption takes the planned wording and the others of its position; the paraphrase's reworded
    form takes a wording of the other position, so it can never be a copy. A caption that fits one
    position only keeps its planned wording, and the paraphrase takes the rest.
    """
    body = split_ending(" ".join(caption.split()))[0]
    fitting = wordings_for(caption_form(body), body) or [spec.style]
    same = [spec.style] + [w for w in fitting if w != spec.style and WORDINGS[w].position == spec.position]
    other = [w for w in fitting if w not in same]
    if other:
        return same, other
    return [spec.style], [w for w in fitting if w != spec.style]


def _literal(text: str) -> str:
    """One text as the rules wrote it: any case at the start, its full stop optional."""
    body, ending = split_ending(text)
    return escape(body if ending in (".", "!") else text, first_any_case=True)


def _any_of(texts: list[str]) -> str:
    unique = list(dict.fromkeys(_literal(t) for t in texts))
    return "(?:" + "|".join(unique) + ")"


def _word_forms(word: str) -> str:
    """The absent word, singular or plural, any case at its start ("dog", "dogs", "Dog")."""
    forms = sorted({word, *plurals(word)}, key=len, reverse=True)
    return "(?:" + "|".join(escape(form, first_any_case=True) for form in forms) + ")"


def free_denial(word: str) -> str:
    """One sentence of free words that denies `word` once: "... no dog ...", "Without a dog, ..."
    (the paraphrase of a caption whose paraphrase wordings do not fit it)."""
    article = "" if is_plural_word(word) else "(?: an| a| any|)"
    denial = f"(?:[nN]o|[wW]ithout{article}) {_word_forms(word)}"
    words = f"{_WORD}(?:{_IN_SENTENCE}+{_WORD})*"
    return f"(?:{words}{_IN_SENTENCE}+|){denial}(?:{_IN_SENTENCE}+{words}|){_ENDING}"


def free_words(word: str, most: int) -> str:
    """Two to `most` words of one sentence, none of them a denial word or the absent word.

    Bounded, because a 135M model that may write any number of words rambles to `max_tokens`.
    Without "no" and the absent word, because it otherwise copies the caption's own denial into its
    paraphrase ("There is no bus in this picture of ..., with no bus in sight"). Other negation
    words are left to the polarity check: refusing them all costs xgrammar a second per row.
    """
    refused = word_not_in(tuple(sorted({*DENIALS, *(form.lower() for form in (word, *plurals(word)))})))
    return f"{refused}(?:{_IN_SENTENCE}+{refused})+"


def reworded(wordings: list[str], word: str, most: int) -> str:
    """The paraphrase wordings' own phrases around free words ("With no dog around, <free words>"),
    the free words written once per position (the word pattern is long: xgrammar compiles each copy)."""
    parts = {"start": [], "end": []}
    for wording in wordings:
        before, after = render(wording, _SLOT, word, deny=True).split(_SLOT)
        parts[WORDINGS[wording].position].append(escape(before, first_any_case=True) if before else escape(after))
    free = free_words(word, most)
    options = []
    if parts["start"]:
        options.append(f"(?:{'|'.join(dict.fromkeys(parts['start']))}){free}")
    if parts["end"]:
        options.append(f"{free}(?:{'|'.join(dict.fromkeys(parts['end']))})")
    return "|".join(f"{option}{_ENDING}" for option in options)


def absent_patterns(caption: str, spec: AbsentSpec) -> dict[str, tuple[str, str]]:
    """field -> (kind, pattern) for one planned row."""
    own, others = _wordings(caption, spec)
    rows = {style: absent_row(caption, replace(spec, style=style)) for style in own}
    negation_kind = "swap" if spec.swapped is not None else "affirm"
    most = len(caption.split()) + EXTRA_WORDS
    paraphrase = reworded(others, spec.word, most) if others else free_denial(spec.word)
    return {
        "caption": ("denial", f"^{_any_of([rows[s][0] for s in own])}{_ENDING}$"),
        "paraphrase": ("reworded", f"^(?:{paraphrase})$"),
        "negation": (negation_kind, f"^{_any_of([rows[s][2] for s in own])}{_ENDING}$"),
    }


def absent_row_schema(caption: str, spec: AbsentSpec, template_schema: dict) -> AbsentRowSchema:
    """The `absent` template's schema with the row's plan built into its three fields.

    A field the template pins with its own `pattern` keeps it (as in constraints.row_schema); the
    others lose their length bounds, which xgrammar cannot combine with a pattern (the checks bound
    the lengths).
    """
    schema = copy.deepcopy(template_schema)
    kinds = {}
    for field, (kind, pattern) in absent_patterns(caption, spec).items():
        spec_of_field = schema["properties"][field]
        if "pattern" in spec_of_field:
            kinds[field] = "template"
            continue
        schema["properties"][field] = {key: value for key, value in spec_of_field.items()
                                       if key not in ("minLength", "maxLength")} | {"pattern": pattern}
        kinds[field] = kind
    return AbsentRowSchema(schema, kinds)


def sample_absent_schema(template_schema: dict | None = None) -> dict:
    """A row schema with every kind of absent pattern, for a backend's start-up probe."""
    return absent_row_schema(SAMPLE_CAPTION, SAMPLE_SPEC, template_schema or SAMPLE_SCHEMA).schema


def matches(pattern: str, text: str) -> bool:
    """Whether a field's pattern admits `text` as the decoder sees it (JSON-escaped)."""
    import json

    return re.fullmatch(pattern, json.dumps(text, ensure_ascii=False)[1:-1]) is not None
