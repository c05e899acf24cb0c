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

import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from triplegen.cooccurrence import Cooccurrence, read_cooccurrence
from triplegen.errors import TripleGenError
from triplegen.synonyms import ObjectLexicon

if TYPE_CHECKING:
    from triplegen.readers import CaptionSource

# An absent object whose fit with the scene (ObjectVocabulary.fit) is below this is implausible. A lift
# of 1 is chance; in a world of one or two objects per image any label meets another specific one
# about half as often as chance (fit ~0.5: benchmarks/synthetic_negation.py), which must pass; a
# label that never meets the scene's objects in data where chance expects it a few times scores ~0.1.
MIN_FIT = 0.25
SCENE_CACHE = 65_536  # scenes whose plausible labels are kept (COCO has 5 captions per image)
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
    """Which objects an image may lack, and how well each fits its scene.

    The statistics are counted per row of the input (a row with labels is one image), or read from a
    co-occurrence table (`triplegen.cooccurrence`, `generate --cooccurrence`). They merge so that a
    small input still gets the table's knowledge and a label the table lacks still counts: a label's
    count comes from the table when the table knows it, a pair's when the table knows both labels,
    else from the input; each lift is computed within one of the two, never one's counts over the
    other's total. The labels a row may deny are those of the input and of the table.

    An absent object must fit every object the image shows (`fit`): a kitchen's absent object is a
    fork, not skis because people are seen with both. Only labels seen with at least one shown
    object are candidates, and those whose fit is below MIN_FIT are not plausible: then there is no
    absent object (None), rather than a random one.
    """

    own: Cooccurrence = field(default_factory=Cooccurrence)
    lexicon: ObjectLexicon = field(default_factory=ObjectLexicon.builtin)  # which words name which label
    table: Cooccurrence | None = None
    _scenes: dict = field(default_factory=dict, repr=False)  # scene -> plausible (label, weight): a cache

    def add(self, labels: Iterable[str]) -> None:
        """Count one input row's labels (rows without labels say nothing about which objects meet)."""
        labels = list(labels)
        if labels:
            self.own.add(labels)

    def freeze(self) -> "ObjectVocabulary":
        """Start choosing once all rows are counted (a scene's plausible labels were cached on old counts)."""
        self._scenes.clear()
        return self

    def __len__(self) -> int:
        return len(self.own.counts)

    def fit(self, label: str, present: Iterable[str]) -> float:
        """How well `label` fits a scene: the geometric mean over the shown labels p of the lift
        (n(label, p) + 1) / (n(label) n(p) / N + 1), weighted by log((N + 1) / n(p)).

        A lift is how much more often the two meet than chance would have them (1: independent, 0:
        never together although chance expects them to); the + 1 on both sides keeps a label from
        looking plausible or implausible on the evidence of an image or two. The geometric mean needs
        the label to fit every shown object, and the weight makes one seen everywhere (person in
        COCO) count little, so that it cannot make skis plausible in a living room.
        """
        total = weights = 0.0
        for other in present:
            own_total, own_count = self._count(other)
            weight = math.log((own_total + 1) / max(own_count, 1))
            source = self._source(label, other)
            expected = source.counts[label] * source.counts[other] / max(source.images, 1)
            total += weight * math.log((source.together(label, other) + 1) / (expected + 1))
            weights += weight
        return math.exp(total / weights) if weights else 0.0

    def plausible(self, present: Iterable[str]) -> list[tuple[str, int]]:
        """The labels (sorted) seen with the scene whose fit reaches MIN_FIT, each with its weight in the
        draw: the squared fit, which favours the labels that fit best (benchmarks/absent_plausibility.py),
        in millionths (integers add up the same on every machine, so a choice never differs)."""
        scene = tuple(sorted(set(present)))
        if scene not in self._scenes:
            if len(self._scenes) >= SCENE_CACHE:
                self._scenes.clear()
            seen = sorted({label for other in scene for label in self._seen_with(other)} - set(scene))
            fits = ((label, self.fit(label, scene)) for label in seen)
            self._scenes[scene] = [(label, max(1, round(1e6 * fit ** 2))) for label, fit in fits if fit >= MIN_FIT]
        return self._scenes[scene]

    def choose_absent(self, present: list[str], caption: str, rng: random.Random, exclude=()) -> str | None:
        """A plausible label the image does not show and the caption does not name, drawn by fit with
        one draw of `rng`; None when none is left (the caller then writes fewer rows)."""
        candidates = [(label, weight) for label, weight in self.plausible(present)
                      if label not in exclude and not self.lexicon.name(label).named_anywhere(caption)]
        if not candidates:
            return None
        return rng.choices([label for label, _ in candidates], weights=[weight for _, weight in candidates])[0]

    def _source(self, label: str, other: str) -> Cooccurrence:
        table = self.table
        return table if table is not None and label in table.counts and other in table.counts else self.own

    def _count(self, label: str) -> tuple[int, int]:
        """(images, images with `label`) where the label's own count comes from."""
        source = self.table if self.table is not None and label in self.table.counts else self.own
        return source.images, source.counts[label]

    def _seen_with(self, label: str) -> set[str]:
        """The labels that met `label` in at least one image, each by the counts its pair is read from."""
        met = {other for other, n in self.own.pairs.get(label, {}).items()
               if n > 0 and self._source(other, label) is self.own}
        if self.table is not None and label in self.table.counts:
            met |= {other for other, n in self.table.pairs.get(label, {}).items() if n > 0}
        return met


def read_vocabulary(source: CaptionSource, objects_col: str, cooccurrence: Path | None = None,
                    object_synonyms: Path | None = None) -> ObjectVocabulary:
    """The labels of the whole input (any shard: the choice must not depend on it), with the table."""
    names = source.raw_schema.names
    if objects_col not in names:
        raise TripleGenError(f"--absent-objects needs object labels per image: {source.path} has no column "
                             f"{objects_col!r} (--objects-col); available: {', '.join(names)}")
    vocabulary = ObjectVocabulary(table=read_cooccurrence(cooccurrence) if cooccurrence else None,
                                  lexicon=ObjectLexicon.load(object_synonyms))
    for batch in source.raw_batches([objects_col]):
        for value in batch.column(0).to_pylist():
            vocabulary.add(parse_labels(value))
    if len(vocabulary) < 2:
        raise TripleGenError(f"--absent-objects needs at least two distinct object labels in column "
                             f"{objects_col!r}; found {len(vocabulary)}")
    return vocabulary.freeze()
