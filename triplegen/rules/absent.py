"""Absent-object rows: a true caption that denies an object the image lacks, planned and written.

From "A cat sleeping on a sofa" with the image's objects {cat, couch} and the absent object "bed":

    caption     "A cat sleeping on a sofa, with no bed in sight."          (true)
    paraphrase  "With no bed around, a cat is sleeping on a sofa."         (true, other words)
    negation    "A cat sleeping on a sofa, with a bed nearby."             (absent-assert: false)
             or "A cat sleeping on a bed, with no sofa in sight."          (absent-swap: false)

"absent-assert" drops the "no", so a caption with "no" can be the true one; "absent-swap" keeps the
same words and moves the "no" onto an object the image shows, so a model must read which object a
"no" governs. Where and how the denial is written varies (triplegen.rules.denials), because a model
trained on one clause order learns the position instead of the scope; the wording is chosen from
the caption's form, so every row reads like a caption.

The plan (which object, which kind, which wording) is made before generation and seeded per row id
and row number, never by chunking or order, so any backend writes it and a resumed or sharded run
chooses exactly what an uninterrupted one does. Captions no wording fits (questions, imperatives,
several sentences) and scenes without a plausible absent object get no row; a swap that no shown
object can take becomes an assert row. Both are counted with their reason (`NOTES`).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from triplegen.rules.denials import PAIR_WORDINGS, SKIPS, Swap, caption_form, render, swap_site, wordings_for
from triplegen.rules.lexicon import keeps_capital, split_ending

if TYPE_CHECKING:  # the rows' object labels are read by the run (triplegen.objects), not by the grammar
    from triplegen.objects import ObjectVocabulary

POSITIONS = ("end", "start")
SWAP_SHARE = 0.5  # of the rows whose caption names an object that can be swapped
# Why an absent-object row was not written as drawn (counted per run, shown in the dataset card).
NOTES = {
    "question": "the caption is a question: no row",
    "imperative": "the caption is an instruction (\"Look at ...\"): no row",
    "unparsed": "the caption has several sentences, brackets or an open quote: no row",
    "no_absent_object": "no object the caption does not name fits the scene: no row",
    "swap_as_assert": "no object the caption names can give its place to the absent one (another group, "
                      "named twice, in a compound, or the number does not fit), and the image shows none "
                      "that the caption leaves unnamed: written as absent-assert",
}


@dataclass(frozen=True)
class AbsentSpec:
    """What one absent-object row is about; chosen before generation, so any backend writes it."""

    index: int  # 1-based number of the row among its source row's absent-object rows
    objects: tuple[str, ...]  # what the image shows (its labels): no row may deny one of them
    absent: str  # the object the image does not show (a label)
    kind: str  # "absent-assert": the negation claims the absent object; "absent-swap": it denies `present`
    present: str  # an object the image shows (the swap's target; context for an LLM)
    position: str  # where the denial goes: "end" or "start" of the caption
    style: str  # how the caption denies the absent object (a name of triplegen.rules.denials.WORDINGS)
    paraphrase_style: str  # another wording at the other position, so the paraphrase differs
    absent_word: str = ""  # how the text names the absent object ("table" for dining table)
    shown_word: str = ""  # absent-swap: how the caption names `present` ("sofa")
    swapped: str | None = None  # absent-swap: the caption body with the absent object in its place

    @property
    def word(self) -> str:
        return self.absent_word or self.absent

    def to_json(self) -> dict[str, Any]:
        return {name: list(value) if isinstance(value, tuple) else value
                for name, value in ((name, getattr(self, name)) for name in self.__dataclass_fields__)}


def plan_absent(row_id: str, caption: str, present: list[str], count: int, vocabulary: ObjectVocabulary,
                seed: int, notes: Counter | None = None) -> list[AbsentSpec]:
    """Up to `count` absent-object rows for one caption; why fewer (or fewer swaps) goes into `notes`."""
    notes = notes if notes is not None else Counter()
    if not present or count < 1 or not caption or not caption.strip():
        return []
    form = caption_form(caption)
    if form in SKIPS:
        notes[form] += count
        return []
    body = split_ending(" ".join(caption.split()))[0]
    lexicon = vocabulary.lexicon
    named = [label for label in present if lexicon.mentions(body, label)]
    unnamed = [label for label in present if not lexicon.name(label).named_anywhere(body)]
    specs: list[AbsentSpec] = []
    for index in range(1, count + 1):
        rng = random.Random(f"{seed}\x1f{row_id}\x1f{index}")
        wants_swap = rng.random() < SWAP_SHARE
        taken = {s.absent for s in specs}
        absent, swap = _swap_choice(body, present, named, vocabulary, rng, taken) if wants_swap else (None, None)
        if absent is None:
            absent = vocabulary.choose_absent(present, caption, rng, exclude=taken)
        if absent is None:
            notes["no_absent_object"] += count - len(specs)
            break
        pair = wants_swap and swap is None and bool(unnamed) and form != "negated"
        if wants_swap and swap is None and not pair:
            notes["swap_as_assert"] += 1
        if pair:
            position = rng.choice(POSITIONS)
            style, other = (w.name for w in sorted(PAIR_WORDINGS.values(), key=lambda w: w.position != position))
            shown = rng.choice(unnamed)
        else:
            asserting = swap is None
            position = rng.choice([p for p in POSITIONS if wordings_for(form, body, p, asserting)])
            style = rng.choice(wordings_for(form, body, position, asserting))
            others = [w for w in wordings_for(form, body) if w != style]
            other = rng.choice(others) if others else style
            shown = swap.present if swap else rng.choice(named or present)
        specs.append(AbsentSpec(
            index=index, objects=tuple(present), absent=absent,
            kind="absent-swap" if swap or pair else "absent-assert", present=shown, position=position, style=style,
            paraphrase_style=other, absent_word=lexicon.name(absent).word,
            shown_word=swap.shown_word if swap else lexicon.name(shown).word if pair else "",
            swapped=swap.body if swap else None,
        ))
    return specs


def _swap_choice(body: str, present: list[str], named: list[str], vocabulary: ObjectVocabulary,
                 rng: random.Random, taken: set[str]) -> tuple[str | None, Swap | None]:
    """An absent object that one of the named objects can give its place to, and that swap."""
    lexicon = vocabulary.lexicon
    fitting = {label for label, _ in vocabulary.plausible(present)}
    others = {label for label in fitting if not any(lexicon.share_group(label, shown) for shown in named)}
    absent = vocabulary.choose_absent(present, body, rng, exclude=taken | others)
    swap = swap_site(body, named, absent, lexicon) if absent is not None else None
    return (absent, swap) if swap is not None else (None, None)


def absent_row(caption: str, spec: AbsentSpec) -> tuple[str, str, str]:
    """(true caption, its paraphrase, a false negation) for one absent-object row."""
    text = " ".join(caption.split())
    body, ending = split_ending(text)
    ending = ending if ending in ("", ".", "!") else "."
    texts = (true_text(body, spec), true_text(body, spec, _paraphrase_style(body, spec)), false_text(body, spec))
    return tuple(_sentence(t, text) + ending for t in texts)  # type: ignore[return-value]


def true_text(body: str, spec: AbsentSpec, style: str | None = None) -> str:
    """`body` with the absent object denied in `style` (default: the plan's); a pair wording also
    names the shown object. The LLM prompt shows the same text with the caption as a slot."""
    style = style or spec.style
    shown = (spec.shown_word or spec.present) if style in PAIR_WORDINGS else ""
    return render(style, body, spec.word, deny=True, shown=shown)


def false_text(body: str, spec: AbsentSpec) -> str:
    """`body`'s false twin: in a pair wording the two objects change places; a swap denies the shown
    object in the swapped caption; otherwise the denial is affirmed."""
    shown = spec.shown_word or spec.present
    if spec.style in PAIR_WORDINGS:
        return render(spec.style, body, shown, deny=True, shown=spec.word)
    if spec.swapped is not None:
        return render(spec.style, spec.swapped, shown, deny=True)
    return render(spec.style, body, spec.word, deny=False)


def _paraphrase_style(body: str, spec: AbsentSpec) -> str:
    """Another wording for the paraphrase, preferably at the other position. The caption's own words
    are kept: the rules rewording of a caption is not always grammatical, and a row's paraphrase must
    read as well as its caption (an LLM backend writes its own)."""
    if spec.style in PAIR_WORDINGS:
        return spec.paraphrase_style
    form = caption_form(body)
    other = "start" if spec.position == "end" else "end"
    choices = [w for w in wordings_for(form, body, other) if w != spec.style] or \
        [w for w in wordings_for(form, body) if w != spec.style] or wordings_for(form, body)
    return spec.paraphrase_style if spec.paraphrase_style in choices else choices[spec.index % len(choices)]


def _sentence(text: str, like: str) -> str:
    """Written in the caption's case: "there is no dog in this picture of a man" for a lower-case one."""
    text = " ".join(text.split())
    if like.isupper():
        return text.upper()
    if like[:1].islower() and not keeps_capital(text.split(" ", 1)[0]):
        return text[:1].lower() + text[1:]
    return text[:1].upper() + text[1:]
