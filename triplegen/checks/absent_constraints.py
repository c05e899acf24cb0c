"""Absent-object rows right by construction: per-row JSON-schema patterns for the `absent` task.

The plan of an absent-object row (`triplegen.rules.absent.AbsentSpec`) fixes everything but the words of
the paraphrase: which object is denied, where and how, and how the false version changes the truth.
So, as `--constrain polarity` does for ordinary negations (triplegen.checks.constraints), the decoder is
made to write what the rules writer (`absent_row`) would write where a model has nothing to add:

- `caption`: the caption's own words with the absent object denied in the planned wording, or in
  another wording that fits the caption at the same position (", with no dog" / ", with no dog in
  sight"), in the caption's case, with or without its full stop;
- `negation`: the same text with the denial affirmed (absent-assert: ", with a dog") or moved onto
  the shown object (absent-swap: the caption with the absent object in the shown one's place, and
  the shown one denied), in one of the caption's wordings;
- `paraphrase`: the caption's words with the denial in a wording the caption may not take (at the
  other position, as the rules paraphrase: "With no dog around, a man rides ...").

Why literal texts: SmolLM2-135M, told the phrase to add, still denied a shown object, dropped words
of the caption or wrote "with no dog in sight of a dog"; 1 of 20 rows passed. A pattern that is the
rules writer's own text leaves it nothing to get wrong, and the false version is the caption's twin,
so a text-only model cannot tell them apart by style. A freer paraphrase was measured and refused
(15 planned rows of 20 SugarCrepe++ captions, one attempt): a wording's phrase around free words
passed 9 (6 rambled to `max_tokens`, and it glued letters on where "no" was refused: "with nodog"),
around at most the caption's number of words plus 3 passed 7 (6 copied the caption's own denial in:
two "no"s). The caption is copied into every paraphrase anyway; only the wording changes.

The patterns use the plain syntax that constraints.py explains (no lookaround, no `?` on a group,
no length bounds): escaped literals and alternation.
"""

from __future__ import annotations

import copy
import json
import re
from collections import Counter
from dataclasses import dataclass, replace

from triplegen.checks.constraints import escape
from triplegen.rules.absent import AbsentSpec, absent_row
from triplegen.rules.denials import PAIR_WORDINGS, WORDINGS, caption_form, wordings_for
from triplegen.rules.lexicon import split_ending

FIELDS = ("caption", "paraphrase", "negation")
# A plan whose schema holds every kind of pattern: the start-up probe of a backend.
SAMPLE_CAPTION = "A cat sleeps on a red sofa."
SAMPLE_SPEC = AbsentSpec(1, ("cat", "couch"), "bed", "absent-swap", "couch", "end", "in sight", "around",
                         absent_word="bed", shown_word="sofa", swapped="A cat sleeps on a red bed")
SAMPLE_SCHEMA = {"type": "object", "additionalProperties": False, "required": list(FIELDS),
                 "properties": {name: {"type": "string", "minLength": 1, "maxLength": 500} for name in FIELDS}}
_ENDING = "(?:[.!]|)"


@dataclass(frozen=True)
class AbsentRowSchema:
    """The schema of one absent-object request and what each field is held to (the card counts them)."""

    schema: dict
    kinds: dict[str, str]  # field -> "denial", "reworded", "affirm", "swap" or "template"

    def counts(self) -> Counter:
        """The card's counter keys: "absent caption: denial", ... (one per field of one row)."""
        return Counter(f"absent {name}: {kind}" for name, kind in self.kinds.items())


def _wordings(caption: str, spec: AbsentSpec) -> tuple[list[str], list[str]]:
    """(the wordings the caption may take, those only its paraphrase may take).

    The caption takes the planned wording and the others of its position; the paraphrase's reworded
    form takes a wording of the other position, so it can never be a copy. A caption that fits one
    position only keeps its planned wording, and the paraphrase takes the rest.
    """
    if spec.style in PAIR_WORDINGS:  # its two wordings, one per position
        return [spec.style], [spec.paraphrase_style]
    body = split_ending(" ".join(caption.split()))[0]
    fitting = wordings_for(caption_form(body), body, asserting=spec.kind == "absent-assert") or [spec.style]
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


def absent_patterns(caption: str, spec: AbsentSpec) -> dict[str, tuple[str, str]]:
    """field -> (kind, pattern) for one planned row."""
    own, others = _wordings(caption, spec)
    rows = {style: absent_row(caption, replace(spec, style=style)) for style in own + others}
    negation_kind = "swap" if spec.kind == "absent-swap" else "affirm"
    return {
        "caption": ("denial", f"^{_any_of([rows[s][0] for s in own])}{_ENDING}$"),
        "paraphrase": ("reworded", f"^{_any_of([rows[s][0] for s in others or own])}{_ENDING}$"),
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
    return re.fullmatch(pattern, json.dumps(text, ensure_ascii=False)[1:-1]) is not None
