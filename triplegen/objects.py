"""Object labels per image, and the choice of objects an image does not show.

Captions written for images are almost always affirmative, so a model trained on them alone learns
"a text with 'no' is false" rather than negation. An input column of object labels per image
(COCO instance categories, detector labels) lets triplegen write captions that are *true* and
contain a negation: "..., and no dog" for an image without a dog. As NegBench does, the absent
object is preferably one that often appears with the present ones in the same data (a plausible
absence, "no fork" beside a plate) rather than a random word ("no giraffe" in a kitchen).

Every choice is seeded by the run seed, the row id and the row's number, never by chunking or
order, so a resumed or sharded run chooses exactly what an uninterrupted one does.
"""

from __future__ import annotations

import bisect
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any, Iterable

from triplegen.errors import TripleGenError
from triplegen.scope import mentions

# Share of absent objects drawn among those seen with the present ones (the rest: by frequency).
PLAUSIBLE_SHARE = 0.8
KINDS = ("absent-assert", "absent-swap")
POSITIONS = ("end", "start")
# How the missing object is denied; absent.py writes each, and the LLM template names it.
STYLES = ("and no", "with no", "without", "there is no", "but not", "but no")
ABSENT_SUFFIX = "#absent-"


def derived_id(source_id: str, index: int) -> str:
    """The id of a source row's index-th absent-object row (1-based)."""
    return f"{source_id}{ABSENT_SUFFIX}{index}"


def parse_labels(value: Any) -> list[str]:
    """Labels from a list column, or from text: a JSON array or comma-separated names (CSV input).

    Labels are stripped and lower-cased, repeats dropped (order kept): "Dog" and "dog " are one object.
    """
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                raise TripleGenError(f"objects value {text[:60]!r} is not a JSON list of names") from None
        else:
            value = text.split(",")
    if not isinstance(value, (list, tuple)):
        raise TripleGenError(f"objects must be a list of names, got {type(value).__name__}")
    labels: dict[str, None] = {}
    for item in value:
        if item is None:
            continue
        if not isinstance(item, str):
            raise TripleGenError(f"object names must be text, got {item!r}")
        label = " ".join(item.lower().split())
        if label:
            labels[label] = None
    return list(labels)


@dataclass
class ObjectVocabulary:
    """How often each label occurs in the input, and with which others (per image row)."""

    counts: Counter = field(default_factory=Counter)
    together: dict[str, Counter] = field(default_factory=dict)
    _labels: list[str] = field(default_factory=list, repr=False)
    _cumulative: list[int] = field(default_factory=list, repr=False)

    def add(self, labels: Iterable[str]) -> None:
        labels = list(labels)
        self.counts.update(labels)
        for label in labels:
            others = self.together.setdefault(label, Counter())
            others.update(other for other in labels if other != label)

    def freeze(self) -> "ObjectVocabulary":
        """Fix the sampling order (sorted labels) once all rows are counted."""
        self._labels = sorted(self.counts)
        self._cumulative = list(accumulate(self.counts[label] for label in self._labels))
        return self

    def __len__(self) -> int:
        return len(self.counts)

    def choose_absent(self, present: list[str], caption: str, rng: random.Random, exclude=()) -> str | None:
        """A label the image does not show and the caption does not name, or None if none is left."""

        def allowed(label: str) -> bool:
            return label not in present and label not in exclude and not mentions(caption, label)

        if rng.random() < PLAUSIBLE_SHARE:
            seen_with: Counter = Counter()
            for label in present:
                seen_with.update(self.together.get(label, {}))
            candidates = sorted(label for label in seen_with if allowed(label))
            if candidates:
                return rng.choices(candidates, weights=[seen_with[c] for c in candidates])[0]
        # by frequency: a few tries cover the usual case; the scan is the rare fallback
        for _ in range(8):
            label = self._labels[bisect.bisect_right(self._cumulative, rng.randrange(self._cumulative[-1]))]
            if allowed(label):
                return label
        rest = [label for label in self._labels if allowed(label)]
        return rng.choice(rest) if rest else None


@dataclass(frozen=True)
class AbsentSpec:
    """What one absent-object row is about; chosen before generation, so any backend writes it."""

    index: int  # 1-based number of the row among its source row's absent-object rows
    objects: tuple[str, ...]  # what the image shows (its labels): no row may deny one of them
    absent: str  # the object the image does not show
    kind: str  # "absent-assert": the negation claims the absent object; "absent-swap": it denies `present`
    present: str  # an object the image shows (the swap's target; context for an LLM)
    position: str  # where the negated phrase goes: "end" or "start" of the caption
    style: str  # how the caption denies the absent object (one of STYLES)
    paraphrase_style: str  # another of STYLES, so the paraphrase differs from the caption

    def to_json(self) -> dict[str, Any]:
        return {name: list(value) if isinstance(value, tuple) else value
                for name, value in ((name, getattr(self, name)) for name in self.__dataclass_fields__)}


def plan_absent(row_id: str, caption: str, present: list[str], count: int, vocabulary: ObjectVocabulary,
                seed: int) -> list[AbsentSpec]:
    """Up to `count` absent-object rows for one caption (fewer when the vocabulary runs out)."""
    if not present or count < 1 or not caption or not caption.strip():
        return []
    named = [label for label in present if mentions(caption, label)]
    specs: list[AbsentSpec] = []
    for index in range(1, count + 1):
        rng = random.Random(f"{seed}\x1f{row_id}\x1f{index}")
        absent = vocabulary.choose_absent(present, caption, rng, exclude={s.absent for s in specs})
        if absent is None:
            break
        style = rng.choice(STYLES)
        specs.append(AbsentSpec(
            index=index, objects=tuple(present), absent=absent, kind=rng.choice(KINDS), present=rng.choice(named or present),
            position=rng.choice(POSITIONS), style=style,
            paraphrase_style=rng.choice([s for s in STYLES if s != style]),
        ))
    return specs
