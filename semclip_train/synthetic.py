"""The synthetic shapes benchmark: images whose captions, paraphrases and negations are exactly true
or false, so a model's grasp of negation can be measured without any download.

A scene is one or two coloured shapes in the cells of a 2 x 2 grid. A caption is a conjunction of
clauses (an object exists, an object is absent, one object is above/below/left/right of another),
each checked against the scene. The paraphrase says the same with other words (relation inverted,
clauses reordered, "without", "there is"); the negation flips one clause, so it shares almost every
word with the caption and a bag-of-words model cannot tell them apart ("a red circle above a blue
square" / "no red circle above a blue square"; "a red circle and no blue square" / "a red circle
and a blue square").
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Iterator

GENERATOR = "semclip-synthetic-shapes"
GENERATOR_VERSION = "1"

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 180, 60),
    "blue": (50, 90, 230),
    "yellow": (235, 215, 40),
    "purple": (150, 60, 200),
}
SHAPES = ("circle", "square", "triangle")
BACKGROUND = (20, 20, 20)
# The relation of the first object's cell to the second's; each has an inverse for paraphrases.
INVERSE = {"above": "below", "below": "above", "left of": "right of", "right of": "left of"}
RELATION_WORDS = {"above": "above", "below": "below", "left of": "to the left of", "right of": "to the right of"}

Kind = tuple[str, str]  # (colour, shape)
# A clause: ("exists", kind) | ("absent", kind) | ("rel", kind, relation, kind) | ("norel", kind, relation, kind)
Clause = tuple


@dataclass(frozen=True)
class SceneObject:
    colour: str
    shape: str
    row: int  # 0 = top
    col: int  # 0 = left

    @property
    def kind(self) -> Kind:
        return (self.colour, self.shape)


@dataclass(frozen=True)
class Scene:
    objects: tuple[SceneObject, ...]

    def kinds(self) -> set[Kind]:
        return {obj.kind for obj in self.objects}

    def to_json(self) -> list[dict]:
        return [asdict(obj) for obj in self.objects]


def all_kinds() -> list[Kind]:
    return [(colour, shape) for colour in COLOURS for shape in SHAPES]


def relation_between(a: SceneObject, b: SceneObject) -> str | None:
    """Where a's cell lies relative to b's, for two objects in adjacent cells (else None)."""
    if a.col == b.col and a.row != b.row:
        return "above" if a.row < b.row else "below"
    if a.row == b.row and a.col != b.col:
        return "left of" if a.col < b.col else "right of"
    return None


def holds(clause: Clause, scene: Scene) -> bool:
    """The truth of one clause in a scene (the ground truth every caption is checked against)."""
    tag = clause[0]
    if tag == "exists":
        return clause[1] in scene.kinds()
    if tag == "absent":
        return clause[1] not in scene.kinds()
    related = any(
        a.kind == clause[1] and b.kind == clause[3] and relation_between(a, b) == clause[2]
        for a in scene.objects
        for b in scene.objects
        if a is not b
    )
    return related if tag == "rel" else not related


def holds_all(clauses: list[Clause], scene: Scene) -> bool:
    return all(holds(clause, scene) for clause in clauses)


def kind_words(kind: Kind) -> str:
    return f"{kind[0]} {kind[1]}"


def object_labels(scene: Scene) -> list[str]:
    """The scene's objects as labels ("red circle"), as a detector or COCO's categories would give."""
    return [kind_words(obj.kind) for obj in scene.objects]


def clause_text(clause: Clause) -> str:
    tag = clause[0]
    if tag in ("exists", "absent"):
        return ("a " if tag == "exists" else "no ") + kind_words(clause[1])
    head = "a " if tag == "rel" else "no "
    return f"{head}{kind_words(clause[1])} {RELATION_WORDS[clause[2]]} a {kind_words(clause[3])}"


def realise(clauses: list[Clause], without: bool = False, there_is: bool = False) -> str:
    """Clauses joined by "and"; `without` writes a non-first absent clause as "without a X"."""
    parts = [clause_text(clauses[0])]
    for clause in clauses[1:]:
        if without and clause[0] == "absent":
            parts.append(f"without a {kind_words(clause[1])}")
        else:
            parts.append(f"and {clause_text(clause)}")
    text = " ".join(parts)
    return f"there is {text}" if there_is else text


def random_scene(rng: random.Random) -> Scene:
    """One object in any cell, or two different objects in horizontally/vertically adjacent cells."""
    kinds = all_kinds()
    if rng.random() < 0.3:
        colour, shape = rng.choice(kinds)
        return Scene((SceneObject(colour, shape, rng.randrange(2), rng.randrange(2)),))
    first, second = rng.sample(kinds, 2)
    if rng.random() < 0.5:  # vertical pair in one column
        col = rng.randrange(2)
        cells = [(0, col), (1, col)]
    else:  # horizontal pair in one row
        row = rng.randrange(2)
        cells = [(row, 0), (row, 1)]
    rng.shuffle(cells)
    return Scene(
        (SceneObject(*first, *cells[0]), SceneObject(*second, *cells[1]))
    )


def scope_pairs(scenes: list[Scene], seed: int) -> dict[str, tuple[list[str], list[str]]]:
    """Per scene, a true and a false caption with the same words and one "no" each, which only the
    scope of the "no" tells apart: "a A and no B" / "a B and no A" (A shown, B absent).

    `after` and `before` are the two clause orders (a model that learned the position of the denied
    object instead of the scope of "no" wins one and loses the other); `other` uses other wordings.
    """
    rng = random.Random(f"scope/{seed}")
    forms = {
        "after": ("a {a} and no {b}", "a {b} and no {a}"),
        "before": ("no {b} and a {a}", "no {a} and a {b}"),
        "other": ("a {a} without a {b}", "a {b} without a {a}"),
        "other2": ("there is no {b} but there is a {a}", "there is no {a} but there is a {b}"),
    }
    pairs: dict[str, tuple[list[str], list[str]]] = {name: ([], []) for name in forms}
    for scene in scenes:
        a = kind_words(rng.choice(sorted(scene.kinds())))
        b = kind_words(absent_kind(scene, rng))
        for name, (true, false) in forms.items():
            pairs[name][0].append(true.format(a=a, b=b))
            pairs[name][1].append(false.format(a=a, b=b))
    return pairs


def absent_kind(scene: Scene, rng: random.Random) -> Kind:
    """A kind not in the scene, preferring one that shares a colour or shape with a present one."""
    present = scene.kinds()
    candidates = [kind for kind in all_kinds() if kind not in present]
    close = [k for k in candidates if any(k[0] == p[0] or k[1] == p[1] for p in present)]
    return rng.choice(close if close and rng.random() < 0.8 else candidates)


def caption_clauses(scene: Scene, rng: random.Random, absent_rate: float = 0.5) -> list[Clause]:
    """All objects named (with their relation), plus an absent object at `absent_rate`."""
    if len(scene.objects) == 1:
        clauses: list[Clause] = [("exists", scene.objects[0].kind)]
    else:
        a, b = scene.objects if rng.random() < 0.5 else scene.objects[::-1]
        clauses = [("rel", a.kind, relation_between(a, b), b.kind)]
    if rng.random() < absent_rate:
        clauses.append(("absent", absent_kind(scene, rng)))
    return clauses


def paraphrase_of(clauses: list[Clause], rng: random.Random) -> str:
    """The same clauses with at least one change of wording, so the text differs from the caption."""
    caption = realise(clauses)
    while True:
        variant = [
            ("rel", c[3], INVERSE[c[2]], c[1]) if c[0] == "rel" and rng.random() < 0.6 else c
            for c in clauses
        ]
        if len(variant) > 1 and rng.random() < 0.4:
            variant = variant[::-1]
        text = realise(variant, without=rng.random() < 0.5, there_is=rng.random() < 0.4)
        if text != caption:
            return text


def negation_of(clauses: list[Clause], rng: random.Random) -> list[Clause]:
    """Flip one clause: the result is false in the scene and keeps the caption's words."""
    index = rng.randrange(len(clauses))
    clause = clauses[index]
    tag = clause[0]
    if tag == "exists":
        flipped = [("absent", clause[1])]
    elif tag == "absent":
        flipped = [("exists", clause[1])]
    elif rng.random() < 0.5:
        flipped = [("norel",) + clause[1:]]
    else:  # deny one of the two related objects
        keep, deny = (clause[1], clause[3]) if rng.random() < 0.5 else (clause[3], clause[1])
        flipped = [("exists", keep), ("absent", deny)] if keep == clause[1] else [("absent", deny), ("exists", keep)]
    return clauses[:index] + flipped + clauses[index + 1 :]


@dataclass(frozen=True)
class SyntheticItem:
    """One row of the benchmark: a scene, a true caption, a true paraphrase, a false negation."""

    id: str
    scene: Scene
    caption: str
    paraphrase: str
    negation: str
    clauses: tuple  # the caption's (and paraphrase's) logical form
    negation_clauses: tuple


def generate_items(count: int, seed: int, absent_rate: float = 0.5) -> Iterator[SyntheticItem]:
    rng = random.Random(seed)
    for index in range(count):
        scene = random_scene(rng)
        clauses = caption_clauses(scene, rng, absent_rate)
        negated = negation_of(clauses, rng)
        assert holds_all(clauses, scene) and not holds_all(negated, scene)
        yield SyntheticItem(
            id=f"synthetic-{seed}-{index}",
            scene=scene,
            caption=realise(clauses),
            paraphrase=paraphrase_of(clauses, rng),
            negation=realise(negated),
            clauses=tuple(clauses),
            negation_clauses=tuple(negated),
        )


def generate_test_items(count: int, seed: int, absent_rate: float = 0.5) -> list[SyntheticItem]:
    """Items whose captions are true of their own scene only, so that retrieval has one answer.

    Two-object scenes are taken first: a one-object caption ("a red circle") is true of every
    scene holding that object, so taking those early would exclude many scenes.
    """
    pool = generate_items(min(count * 20, 20_000), seed, absent_rate)  # 420 distinct scenes at most
    candidates = sorted(pool, key=lambda item: -len(item.scene.objects))
    items: list[SyntheticItem] = []
    rejected = 0  # in a row; the pool of distinct scenes is finite (a few hundred)
    for item in candidates:
        if any(
            holds_all(list(item.clauses), other.scene) or holds_all(list(other.clauses), item.scene)
            for other in items
        ):
            rejected += 1
            if rejected > 3000:
                break
            continue
        rejected = 0
        items.append(item)
        if len(items) == count:
            return items
    raise ValueError(f"only {len(items)} mutually distinct scenes were found; ask for fewer test items")
