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
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import pyarrow as pa

from triplegen.cooccurrence import Cooccurrence, read_cooccurrence
from triplegen.errors import TripleGenError
from triplegen.rules.object_names import ObjectLexicon
from triplegen.rules.polarity import cue_spans

if TYPE_CHECKING:
    from triplegen.io.readers import CaptionSource

# An absent object whose fit with the scene (ObjectVocabulary.fit) is below this is implausible. A lift
# of 1 is chance; in a world of one or two objects per image any label meets another specific one
# about half as often as chance (fit ~0.5: benchmarks/synthetic_negation.py), which must pass; a
# label that never meets the scene's objects in data where chance expects it a few times scores ~0.1.
MIN_FIT = 0.25
SCENE_CACHE = 65_536  # scenes whose plausible labels are kept (COCO has 5 captions per image)
ABSENT_SUFFIX = "#absent-"
# Distinct labels one row may hold. The input's statistics count every pair of a row's labels, so a
# row of n labels costs n^2/2 counts: 5 rows of 20,000 labels took 8.4 GB and 498 s, of 2,000 20 s
# and 0.7 GB, of 256 0.7 s (reading and planning; docs/benchmarks.md).
MAX_LABELS = 256
MAX_LABEL_WORDS = 5  # COCO's and Open Images' longest labels have 2 and 4 words
_ARTICLES = frozenset({"a", "an", "the"})
_NOT_IN_NAMES = frozenset('|;[]{}<>"\\')  # delimiters, list and markup syntax


def derived_id(source_id: str, index: int) -> str:
    """The id of a source row's index-th absent-object row (1-based)."""
    return f"{source_id}{ABSENT_SUFFIX}{index}"


def parse_labels(value: Any) -> list[str]:
    """Labels from a list column, or from text: a JSON array or comma-separated names (CSV input).

    Labels are stripped and lower-cased, repeats dropped (order kept): "Dog" and "dog " are one object.
    In comma-separated text, commas with nothing between them name nothing ("cat, sofa,"). A label
    that cannot name an object (`label_problem`) and a row of more than MAX_LABELS labels are refused
    (TripleGenError): each would be written into rows as "no <label>".
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
            value = [piece for piece in text.split(",") if piece.strip()]
    if not isinstance(value, (list, tuple)):
        raise TripleGenError(f"objects must be a list of names, got {type(value).__name__}")
    labels: dict[str, None] = {}
    for item in value:
        if item is not None and not isinstance(item, str):
            raise TripleGenError(f"object names must be text, got {item!r}")
        label = " ".join((item or "").lower().split())
        problem = label_problem(label)
        if problem is not None:
            raise TripleGenError(f"object label {item!r} {problem}")
        labels[label] = None
    if len(labels) > MAX_LABELS:
        raise TripleGenError(f"{len(labels):,} distinct object labels in one row; at most {MAX_LABELS} per image are "
                             "read (every pair of an image's labels is counted, so the cost grows with the square "
                             "of their number): keep the objects the image shows")
    return list(labels)


def label_problem(label: str) -> str | None:
    """Why a normalised label cannot name an object, or None.

    Each rule stands for a wrong column or a wrong format rather than an odd vocabulary: a caption
    ("a cat sleeps on a sofa": an article, many words), labels joined by another delimiter ("cat|dog"),
    class ids instead of names, a broken export (a control character, an empty item), or a label that
    is itself a negation ("no", "not a dog"), which "no <label>" would turn into a double negation.
    """
    if not label:
        return "is empty (null or blank); drop it from the list"
    if any(unicodedata.category(char) == "Cc" for char in label):
        return "holds a control character (a broken export?)"
    odd = next((char for char in label if char in _NOT_IN_NAMES), None)
    if odd is not None:
        return (f"holds {odd!r}, which no object name does (labels joined by {odd!r}? give a list, "
                "or comma-separated names)")
    if not any(char.isalpha() for char in label):
        return "has no letters (class ids? map them to names)"
    words = label.split()
    if words[0] in _ARTICLES or len(words) > MAX_LABEL_WORDS:
        return ("is a phrase, not an object name (\"dog\", \"dining table\"): is --objects-col a column of "
                "captions?")
    cues = cue_spans(label)
    if cues:
        return f"holds the negation {cues[0][2]!r}: a label names an object that an image shows"
    return None


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
    _check_objects_column(source, objects_col)
    vocabulary = ObjectVocabulary(table=read_cooccurrence(cooccurrence) if cooccurrence else None,
                                  lexicon=ObjectLexicon.load(object_synonyms))
    row = 0
    for batch in source.raw_batches([objects_col]):
        for value in batch.column(0).to_pylist():
            row += 1
            try:
                labels = parse_labels(value)
            except TripleGenError as exc:
                where = f"{source.path}, row {row:,}, column {objects_col!r} (--objects-col)"
                raise TripleGenError(f"{where}: {exc}") from None
            vocabulary.add(labels)
    if len(vocabulary) < 2:
        raise TripleGenError(f"--absent-objects needs at least two distinct object labels in column "
                             f"{objects_col!r}; found {len(vocabulary)}")
    return vocabulary.freeze()


def _check_objects_column(source: CaptionSource, objects_col: str) -> None:
    """The column exists, is none of the caption, image and id columns, and holds lists of names or text."""
    names = source.raw_schema.names
    if objects_col not in names:
        raise TripleGenError(f"--absent-objects needs object labels per image: {source.path} has no column "
                             f"{objects_col!r} (--objects-col); available: {', '.join(names)}")
    columns = source.columns
    for role, name in (("caption", columns.caption), ("image", columns.image), ("id", columns.id)):
        if objects_col == name:
            raise TripleGenError(f"--objects-col {objects_col!r} is the {role} column of {source.path}; name the "
                                 "column that lists the objects each image shows")
    kind = source.raw_schema.field(objects_col).type
    if not _labels_type(kind):
        raise TripleGenError(f"{source.path}: column {objects_col!r} (--objects-col) has type {kind}; object labels "
                             "must be a list of names (list<string>), or text: a JSON array or comma-separated names")


def _labels_type(kind: pa.DataType, inside_list: bool = False) -> bool:
    """A list of text (or of nulls: every list empty), text (the JSON or comma-separated form), or nulls."""
    if _is_list(kind):
        return not inside_list and _labels_type(kind.value_type, inside_list=True)
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return pa.types.is_null(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind) \
        or pa.types.is_string_view(kind)


def _is_list(kind: pa.DataType) -> bool:
    return pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind) \
        or pa.types.is_list_view(kind) or pa.types.is_large_list_view(kind)
