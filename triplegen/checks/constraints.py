"""Polarity by construction: per-row JSON-schema patterns that make a wrong-polarity answer impossible.

A caption's polarity is known before the call (`triplegen.rules.polarity`), so the answer's strings can be
constrained by the structured-output decoder itself instead of being rejected afterwards:

- the negation of an affirmative caption is a guided edit: it starts with the caption's own words up
  to the point where the rules negator (`triplegen.rules.negation`) puts its negation, then an optional
  auxiliary and a negation word ("A man | is not | drinking ..."), then any words, one sentence;
  a caption whose negation goes first ("a plate of pasta") starts with "No" or "There is/are no";
- the negation of a negated caption carries no negation word; its paraphrase must carry one.

The paraphrase of an affirmative caption is left free: a pattern refusing every negation word
costs xgrammar about half a second to compile, and it would be compiled with every row's schema,
while the 135M model adds a cue to about 1% of paraphrases, which the check catches (with a retry).

Why a guided edit rather than "a negation word somewhere": a 135M model that is only told it must
write "not" somewhere copies the caption and then appends nonsense until "not" fits ("A room is not
a room"). Why no pattern that forbids a copy: a regex can only refuse a word once it is complete,
so a model that wants to copy is left to glue letters onto it ("A herdof giraffes"); copies are
left to the check and a retry. Every pattern is built so that wherever it blocks the model, the
allowed continuations are whole words.

Patterns are written for the JSON-escaped text (how vLLM's xgrammar and llguidance apply them)
with plain syntax only (classes, groups, alternation, `*`, `+`): no lookaround, no `\\b`, no `?` on
a group (xgrammar 0.2 mis-compiles `(a+b)?`). xgrammar cannot combine `pattern` with
`minLength`/`maxLength`, and unrolls a `maxLength` into one state per character, so the length
bounds of both fields are dropped from a row's schema; the checks still apply them.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from functools import lru_cache

from triplegen.rules.negation import negate
from triplegen.rules.polarity import cue_spans

# Every single-word cue the checks count (polarity._CUES); a word "t" after an apostrophe is "n't".
CUE_WORDS = ("no", "not", "never", "none", "nobody", "nothing", "nowhere", "neither", "nor", "without",
             "cannot", "lack", "lacks", "lacked", "lacking", "absent", "absence")
# What a guided negation may insert: plain cues and the usual contractions, never a free "...n't"
# (a model allowed "[a-z]+n't" glues words until it can end on one).
PLAIN_CUES = ("no", "not", "never", "without", "nothing", "nobody", "none")
CONTRACTIONS = ("isn't", "aren't", "doesn't", "don't", "wasn't", "weren't", "hasn't", "haven't", "can't", "won't")
INSERTED_CUES = PLAIN_CUES + CONTRACTIONS
AUXILIARIES = ("is", "are", "was", "were", "does", "do", "did", "has", "have", "had", "can", "will")
OPENERS = ("No", "There is no", "There are no", "Nothing", "Nobody")
APOSTROPHE_SUFFIXES = ("s", "re", "ve", "ll", "d", "m")  # "man's", "they're"; not "t" (= "n't")
# Stems of "n't" contractions, refused so that a model cannot half-write one ("doesn's").
CONTRACTION_STEMS = ("isn", "aren", "doesn", "don", "wasn", "weren", "hasn", "haven", "hadn", "didn", "couldn",
                     "wouldn", "shouldn", "mustn", "needn", "ain")

# An affirmative and a negated caption: their schemas hold every kind of pattern (start-up probes).
SAMPLE_CAPTIONS = ("A man riding a horse on a beach.", "A kitchen with no people in it.")

# Words and separators as the checks read them (Python's Unicode word boundaries): a separator is an
# ASCII space or punctuation mark, a word character is anything else (ASCII letters and digits, "_",
# every non-ASCII character but the apostrophe \u2019). Control characters are never allowed: a
# negated class would otherwise let vLLM's decoder write them raw, which is not JSON.
_NOT_WORD = "\\x00-\\x2f\\x3a-\\x40\\x5b-\\x5e\\x60\\x7b-\\x7f\u2019"
_WORD_CHAR = f"[^{_NOT_WORD}]"
_QUOTE = '\\\\"'  # an escaped double quote, as it appears in JSON text
_SEPARATOR = f"(?:[ !#$%&()*+,\\-./:;<=>?@\\[\\]^`{{|}}~]|{_QUOTE})"  # inside a sentence or between sentences
_IN_SENTENCE = f"(?:[ #$%&()*+,\\-/<=>@\\[\\]^`{{|}}~]|{_QUOTE})"
_WORD = f"{_WORD_CHAR}+(?:['\u2019]{_WORD_CHAR}+)*"
_SPECIAL = set(".^$*+?{}[]()|\\")


@dataclass(frozen=True)
class RowSchema:
    """The schema of one request and what it constrains (counted per run for the dataset card)."""

    schema: dict
    paraphrase: str  # "cue" (of a negated caption), "free" or "template"
    negation: str  # "edit", "no-cue", "cue" or "template"


def escape(text: str, first_any_case: bool = False) -> str:
    """A pattern matching `text` exactly as it appears inside a JSON string."""
    out = []
    for i, char in enumerate(json.dumps(text, ensure_ascii=False)[1:-1]):
        if i == 0 and first_any_case and char.isascii() and char.isalpha():
            out.append(f"[{char.lower()}{char.upper()}]")
        else:
            out.append("\\" + char if char in _SPECIAL else char)
    return "".join(out)


def _any_case(word: str) -> str:
    return "".join(f"[{c}{c.upper()}]" if c.isalpha() else c for c in word)


def word_not_in(words: tuple[str, ...]) -> str:
    """A pattern for one word, any case, that is none of `words` (lower-case ASCII; a trie's complement)."""
    trie: dict = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def rest(node: dict, at_root: bool) -> str:
        children = sorted(key for key in node if key)
        excluded = "".join(sorted({c for child in children for c in (child, child.upper())}))
        alternatives = [f"[^{_NOT_WORD}{excluded}]{_WORD_CHAR}*"]
        alternatives += [_any_case(char) + rest(node[char], False) for char in children]
        if not at_root and "" not in node:
            alternatives.insert(0, "")  # the word may end here: it is a proper prefix of a cue only
        return "(?:" + "|".join(alternatives) + ")"

    return rest(trie, True)


@lru_cache(maxsize=1)
def no_cue_text() -> str:
    """Any text whose words are not negation cues (apostrophes only in "'s", "'re", ... suffixes)."""
    word = word_not_in(CUE_WORDS + CONTRACTION_STEMS) + "(?:['\u2019](?:" + "|".join(APOSTROPHE_SUFFIXES) + "))*"
    return f"^{_SEPARATOR}*(?:{word}{_SEPARATOR}+)*(?:{word}|)$"


@lru_cache(maxsize=1)
def cue_text() -> str:
    """Any text with at least one negation word."""
    cue = "(?:" + "|".join(_any_case(w) for w in INSERTED_CUES) + ")"
    return f"^{_SEPARATOR}*(?:{_WORD}{_SEPARATOR}+)*{cue}(?:{_SEPARATOR}+{_WORD})*{_SEPARATOR}*$"


def edit_point(caption: str) -> str | None:
    """The caption up to where the rules negator edits it ("A man " of "A man drinking ..."), "" when
    the negation goes first, None when the rules find no negation."""
    negation = negate(caption)
    if negation is None:
        return None
    words = list(re.finditer(r"[^\W_]+", caption))
    negated = re.findall(r"[^\W_]+", negation)
    k = 0
    while k < min(len(words), len(negated)) and words[k].group().lower() == negated[k].lower():
        k += 1
    return None if k >= len(words) else caption[: words[k].start()]


def guided_negation(caption: str) -> str | None:
    """The guided-edit pattern for an affirmative caption's negation (None: no edit point found)."""
    prefix = edit_point(caption)
    if prefix is None:
        return None
    tail = f"{_IN_SENTENCE}+{_WORD}(?:{_IN_SENTENCE}+{_WORD})*(?:[.!]|)"
    if not prefix.strip():
        openers = "|".join(escape(opener, first_any_case=True) for opener in OPENERS)
        return f"^(?:{openers}){tail}$"
    plain = "(?:" + "|".join(PLAIN_CUES) + ")"
    if prefix.split()[-1].lower() in AUXILIARIES + ("am", "be"):  # "There is " -> "no", not "are no"
        cue = plain
    else:
        cue = f"(?:(?:{'|'.join(AUXILIARIES)}) {plain}|{plain}|{'|'.join(CONTRACTIONS)})"  # not "is aren't"
    return f"^{escape(prefix, first_any_case=True)}{cue}{tail}$"


def _with_pattern(schema: dict, field: str, pattern: str) -> str:
    spec = schema["properties"][field]
    if "pattern" in spec:
        return "template"  # the template pins this field itself
    schema["properties"][field] = {key: value for key, value in spec.items()
                                   if key not in ("minLength", "maxLength")} | {"pattern": pattern}
    return ""


def row_schema(caption: str, template_schema: dict) -> RowSchema:
    """The template's schema with the caption's polarity built into the paraphrase and negation."""
    schema = copy.deepcopy(template_schema)
    if cue_spans(caption):
        constraints = {"paraphrase": ("cue", cue_text()), "negation": ("no-cue", no_cue_text())}
    else:
        guided = guided_negation(caption)
        constraints = {"negation": ("edit", guided) if guided else ("cue", cue_text())}
    kinds = {field: "free" for field in ("paraphrase", "negation")}
    for field in kinds:
        # xgrammar unrolls `maxLength: 400` into 400 states: 1.5 s to compile on a CPU core, paid
        # again for every row's own schema; the checks bound the lengths anyway
        spec = schema["properties"][field]
        if "pattern" not in spec:
            schema["properties"][field] = {k: v for k, v in spec.items() if k != "maxLength"}
    for field, (kind, pattern) in constraints.items():
        kinds[field] = _with_pattern(schema, field, pattern) or kind
    return RowSchema(schema, kinds["paraphrase"], kinds["negation"])


def choose_constraint(mode: str, backend_name: str, template, probe=None,
                      unprobed_note: str = "per-caption JSON-schema patterns", absent_template=None) -> dict:
    """Whether a run's rows get their own schemas, and why not: `{"mode", "applied", "note"}` (the card's).

    A backend that can say so (`probe`: its `check_schema`) is asked first, with one request per kind
    of pattern (and, with `absent_template`, one with the absent-object rows' patterns,
    triplegen.checks.absent_constraints), so that a server whose structured-output engine cannot read a
    pattern costs a notice, not a run. Without a probe the patterns are applied and `unprobed_note`
    says why it was not asked.
    """
    def off(note: str) -> dict:
        return {"mode": mode, "applied": False, "note": note}

    if mode == "none":
        return off("--constrain none: the template's schema only")
    if backend_name == "rules":
        return off("the rules backend writes its own negations")
    if template.task != "triple":
        return off(f"template task {template.task!r} keeps its own schema")
    if probe is None:
        return {"mode": mode, "applied": True, "note": unprobed_note}
    schemas = [row_schema(caption, template.output_schema).schema for caption in SAMPLE_CAPTIONS]
    if absent_template is not None:
        from triplegen.checks.absent_constraints import sample_absent_schema  # it builds on this module

        schemas.append(sample_absent_schema(absent_template.output_schema))
    for schema in schemas:
        refusal = probe(schema)
        if refusal is not None:
            return off(f"not applied: {refusal}")
    return {"mode": mode, "applied": True, "note": "per-caption JSON-schema patterns"}
