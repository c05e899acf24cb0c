"""The synthetic shapes benchmark: images whose captions, paraphrases and negations are exactly true
or false, so a model's grasp of negation can be measured without any download.

A scene is one or two coloured shapes in the cells of a 2 x 2 grid. A caption is a conjunction of
clauses (an object exists, an object is absent, one object is above/below/left/right of another),
each checked against the scene. The paraphrase says the same with other words (relation inverted,
clauses reordered, "without", "there is"); the negation flips one clause, so it shares almost every
word with the caption and a bag-of-words model cannot tell them apart ("a red circle above a blue
square" / "no red circle above a blue square"; "a red circle and no blue square" / "a red circle
and a blue square").

That is the project's world (`worlds.DEFAULT`); every function takes another world of the family
(`worlds.World.sample`: other objects and attributes, up to three objects, other relation words,
grammars and scope wordings) and gives the default world's items unchanged without one.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, replace
from typing import Iterator

from semclip_train.evaluation.worlds import DEFAULT, INVERSE, World

GENERATOR = "semclip-synthetic-shapes"
GENERATOR_VERSION = "1"
COLOURS = DEFAULT.colours
BACKGROUND = (20, 20, 20)

Kind = tuple[str, ...]  # its words: (size, texture,) colour, shape
# A clause: ("exists", kind) | ("absent", kind) | ("rel", kind, relation, kind) | ("norel", kind, relation, kind)
Clause = tuple


@dataclass(frozen=True)
class SceneObject:
    colour: str
    shape: str
    row: int  # 0 = top
    col: int  # 0 = left
    size: str = ""  # in worlds with sizes: "small" or "big"
    texture: str = ""  # in worlds with textures: "solid", "striped" or "hollow"

    @property
    def kind(self) -> Kind:
        return tuple(w for w in (self.size, self.texture, self.colour, self.shape) if w)


@dataclass(frozen=True)
class Scene:
    objects: tuple[SceneObject, ...]

    def kinds(self) -> set[Kind]:
        return {obj.kind for obj in self.objects}

    def to_json(self) -> list[dict]:
        return [{key: value for key, value in asdict(obj).items() if value != ""} for obj in self.objects]


def scene_object(kind: Kind, row: int, col: int, world: World) -> SceneObject:
    words = list(kind)
    size = words.pop(0) if world.sizes else ""
    texture = words.pop(0) if world.textures else ""
    return SceneObject(words[0], words[1], row, col, size, texture)


def relation_between(a: SceneObject, b: SceneObject) -> str | None:
    """Where a's cell lies relative to b's, for two objects in the same row or column (else None)."""
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
    return " ".join(kind)


def object_labels(scene: Scene) -> list[str]:
    """The scene's objects as labels ("red circle"), as a detector or COCO's categories would give."""
    return [kind_words(obj.kind) for obj in scene.objects]


def clause_text(clause: Clause, world: World = DEFAULT, grammar: str = "phrase", rng: random.Random | None = None) -> str:
    """One clause in one of the world's grammars (worlds.GRAMMARS)."""
    tag = clause[0]
    head = "a " if tag in ("exists", "rel") else "no "
    if tag in ("exists", "absent"):
        text = head + kind_words(clause[1])
        return f"there is {text}" if grammar == "sentence" else text
    relation = world.relation_word(clause[2], rng)
    if grammar == "with":  # "a blue square with a red circle above it"
        return f"a {kind_words(clause[3])} with {head}{kind_words(clause[1])} {relation} it"
    verb = " is" if grammar == "sentence" else ""
    return f"{head}{kind_words(clause[1])}{verb} {relation} a {kind_words(clause[3])}"


def realise(clauses: list[Clause], without: bool = False, there_is: bool = False, world: World = DEFAULT,
            grammar: str = "phrase", rng: random.Random | None = None) -> str:
    """Clauses joined by "and" in a grammar of the world; `without` writes a non-first absent clause
    as "without a X"; `there_is` puts "there is" before a phrase."""
    there_is = there_is or grammar == "there is"
    grammar = "phrase" if grammar == "there is" else grammar
    parts = [clause_text(clauses[0], world, grammar, rng)]
    joiner = ", and " if grammar == "sentence" else " and "
    for clause in clauses[1:]:
        if without and clause[0] == "absent":
            parts.append(f"{',' if grammar == 'sentence' else ''} without a {kind_words(clause[1])}")
        else:
            parts.append(joiner + clause_text(clause, world, grammar, rng))
    text = "".join(parts)
    text = f"there is {text}" if there_is and grammar == "phrase" else text
    return world.cased(text)


def random_scene(rng: random.Random, world: World = DEFAULT) -> Scene:
    """One object in any cell, or two (three) different objects, two of them in one row or column."""
    kinds = world.kinds()
    if rng.random() < world.one_object_share:
        kind = rng.choice(kinds)
        return Scene((scene_object(kind, rng.randrange(2), rng.randrange(2), world),))
    count = 2 if world.max_objects == 2 else rng.randint(2, world.max_objects)
    chosen = rng.sample(kinds, count)
    if rng.random() < 0.5:  # vertical pair in one column
        col = rng.randrange(2)
        cells = [(0, col), (1, col)]
    else:  # horizontal pair in one row
        row = rng.randrange(2)
        cells = [(row, 0), (row, 1)]
    rng.shuffle(cells)
    free = [(r, c) for r in range(2) for c in range(2) if (r, c) not in cells]
    cells += rng.sample(free, count - 2)
    return Scene(tuple(scene_object(kind, *cell, world) for kind, cell in zip(chosen, cells)))


def scope_pairs(scenes: list[Scene], seed: int, world: World = DEFAULT) -> dict[str, tuple[list[str], list[str]]]:
    """Per scene and wording, a true and a false text with the same words and one "no" each, which
    only the scope of the "no" tells apart: "a A and no B" / "a B and no A" (A shown, B absent).

    Keys are "GROUP/N" for the world's wordings (worlds.World.scope_forms): groups "after" and
    "before" are the two clause orders (a model that learned the position of the denied object
    instead of the scope of "no" wins one and loses the other).
    """
    forms = {f"{group}/{n}": pair for group, pairs in world.scope_forms.items() for n, pair in enumerate(pairs)}
    return _pairs_of(forms, scenes, seed, world)


def object_pairs(scenes: list[Scene], seed: int, world: World = DEFAULT) -> tuple[list[str], list[str]]:
    """"a A" / "a B" for the objects of `scope_pairs`: a model that cannot tell A from B in an image
    cannot read the scope of a "no" between them either, so this bounds the scope scores."""
    return _pairs_of({"objects": ("a {a}", "a {b}")}, scenes, seed, world)["objects"]


def _pairs_of(forms: dict[str, tuple[str, str]], scenes: list[Scene], seed: int,
              world: World) -> dict[str, tuple[list[str], list[str]]]:
    """Each (true, false) template filled per scene with a shown object A and an absent one B, drawn
    by `seed` alike for any set of templates."""
    rng = random.Random(f"scope/{seed}")
    pairs: dict[str, tuple[list[str], list[str]]] = {name: ([], []) for name in forms}
    for scene in scenes:
        a = kind_words(rng.choice(sorted(scene.kinds())))
        b = kind_words(absent_kind(scene, rng, world))
        for name, (true, false) in forms.items():
            pairs[name][0].append(world.cased(true.format(a=a, b=b)))
            pairs[name][1].append(world.cased(false.format(a=a, b=b)))
    return pairs


def absent_kind(scene: Scene, rng: random.Random, world: World = DEFAULT) -> Kind:
    """A kind not in the scene, preferring one that shares a word (colour, shape...) with a present one."""
    present = scene.kinds()
    candidates = [kind for kind in world.kinds() if kind not in present]
    close = [k for k in candidates if any(set(k) & set(p) for p in present)]
    return rng.choice(close if close and rng.random() < 0.8 else candidates)


def caption_clauses(scene: Scene, rng: random.Random, absent_rate: float = 0.5, world: World = DEFAULT) -> list[Clause]:
    """All objects named (two of them with their relation), plus an absent object at `absent_rate`."""
    if len(scene.objects) == 1:
        clauses: list[Clause] = [("exists", scene.objects[0].kind)]
    else:
        a, b = scene.objects[:2] if rng.random() < 0.5 else scene.objects[1::-1]
        clauses = [("rel", a.kind, relation_between(a, b), b.kind)]
        clauses += [("exists", obj.kind) for obj in scene.objects[2:]]
    if rng.random() < absent_rate:
        clauses.append(("absent", absent_kind(scene, rng, world)))
    return clauses


def paraphrase_of(clauses: list[Clause], rng: random.Random, world: World = DEFAULT, caption: str | None = None) -> str:
    """The same clauses with at least one change of wording, so the text differs from the caption."""
    caption = caption or realise(clauses, world=world)
    while True:
        variant = [
            ("rel", c[3], INVERSE[c[2]], c[1]) if c[0] == "rel" and rng.random() < 0.6 else c
            for c in clauses
        ]
        if len(variant) > 1 and rng.random() < 0.4:
            variant = variant[::-1]
        grammars = tuple(dict.fromkeys((*world.grammars, "phrase")))  # a one-clause "there is" caption needs another
        grammar = rng.choice(grammars) if len(grammars) > 1 else grammars[0]
        text = realise(variant, without=rng.random() < 0.5, there_is=rng.random() < 0.4, world=world,
                       grammar=grammar, rng=rng)
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


def _phrasing(world: World, rng: random.Random) -> World:
    """The world with one word per relation, so an item's caption and negation say it alike."""
    if all(len(words) == 1 for words in world.relation_words.values()):
        return world
    return replace(world, relation_words={rel: (world.relation_word(rel, rng),) for rel in world.relation_words})


def generate_items(count: int, seed: int, absent_rate: float = 0.5, world: World = DEFAULT) -> Iterator[SyntheticItem]:
    rng = random.Random(seed)
    for index in range(count):
        scene = random_scene(rng, world)
        clauses = caption_clauses(scene, rng, absent_rate, world)
        negated = negation_of(clauses, rng)
        assert holds_all(clauses, scene) and not holds_all(negated, scene)
        grammar = rng.choice(world.grammars) if len(world.grammars) > 1 else world.grammars[0]
        said = _phrasing(world, random.Random(f"{seed}/{index}"))
        caption = realise(clauses, world=said, grammar=grammar)
        yield SyntheticItem(
            id=f"synthetic-{seed}-{index}" if world is DEFAULT else f"synthetic-{world.name}-{seed}-{index}",
            scene=scene,
            caption=caption,
            paraphrase=paraphrase_of(clauses, rng, world, caption),
            negation=realise(negated, world=said, grammar=grammar),
            clauses=tuple(clauses),
            negation_clauses=tuple(negated),
        )


def generate_test_items(count: int, seed: int, absent_rate: float = 0.5, world: World = DEFAULT, *,
                        at_most: bool = False) -> list[SyntheticItem]:
    """Items whose captions are true of their own scene only, so that retrieval has one answer.

    Scenes with more objects are taken first: a one-object caption ("a red circle") is true of every
    scene holding that object, so taking those early would exclude many scenes. A small world has
    few such scenes: asking for more is an error, unless `at_most`, which returns all that were found.
    """
    pool = generate_items(min(count * 20, 40_000), seed, absent_rate, world)
    candidates = sorted(pool, key=lambda item: -len(item.scene.objects))
    items: list[SyntheticItem] = []
    kept: list[tuple[frozenset, set[Kind]]] = []  # per item: the kinds its caption names, its scene's kinds
    rejected = 0  # in a row; the pool of distinct scenes is finite
    for item in candidates:
        named = frozenset(kind for clause in item.clauses if clause[0] in ("exists", "rel") for kind in clause[1::2])
        kinds = item.scene.kinds()
        if any(
            (named <= other_kinds and holds_all(list(item.clauses), other.scene))
            or (other_named <= kinds and holds_all(list(other.clauses), item.scene))
            for other, (other_named, other_kinds) in zip(items, kept)
        ):
            rejected += 1
            if rejected > 3000:
                break
            continue
        rejected = 0
        items.append(item)
        kept.append((named, kinds))
        if len(items) == count:
            return items
    if at_most:
        return items
    raise ValueError(f"only {len(items)} mutually distinct scenes were found; ask for fewer test items")
