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

import json
import os
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    from PIL import Image

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


def render(scene: Scene, size: int, rng: random.Random) -> "Image.Image":
    """Each object drawn in its grid cell, with a little jitter in size, place and colour."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (size, size), BACKGROUND)
    draw = ImageDraw.Draw(image)
    cell = size / 2
    for obj in scene.objects:
        half = cell * rng.uniform(0.28, 0.4)
        cx = (obj.col + 0.5) * cell + rng.uniform(-0.08, 0.08) * cell
        cy = (obj.row + 0.5) * cell + rng.uniform(-0.08, 0.08) * cell
        fill = tuple(min(255, max(0, c + rng.randint(-20, 20))) for c in COLOURS[obj.colour])
        box = [cx - half, cy - half, cx + half, cy + half]
        if obj.shape == "circle":
            draw.ellipse(box, fill=fill)
        elif obj.shape == "square":
            draw.rectangle(box, fill=fill)
        else:
            draw.polygon([(cx, cy - half), (cx - half, cy + half), (cx + half, cy + half)], fill=fill)
    return image


def _png(image: "Image.Image") -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def items_table(items: list[SyntheticItem], seed: int, image_size: int, image_dir: Path | None):
    """The triple record (design.md) with the scene and logical forms as extra columns.

    Images are embedded as the HF-datasets struct {bytes, path}, or written as PNG files under
    `image_dir` with paths relative to it (use it as `--image-root`).
    """
    import pyarrow as pa

    from triplegen.schema import triple_schema

    images = []
    for item in items:
        image = render(item.scene, image_size, random.Random(f"{item.id}/image"))
        name = f"{item.id}.png"
        if image_dir is None:
            images.append({"bytes": _png(image), "path": name})
        else:
            _write_atomic(image_dir / name, _png(image))
            images.append(name)
    image_type = pa.string() if image_dir is not None else pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    extra = [pa.field(name, pa.string()) for name in ("scene", "caption_form", "negation_form")]
    schema = triple_schema(image_type, extra)
    columns = {
        "id": [item.id for item in items],
        "image": images,
        "caption": [item.caption for item in items],
        "paraphrase": [item.paraphrase for item in items],
        "negation": [item.negation for item in items],
        "backend": ["synthetic"] * len(items),
        "model": [GENERATOR] * len(items),
        "prompt_name": [None] * len(items),
        "prompt_version": [GENERATOR_VERSION] * len(items),
        "prompt_hash": [None] * len(items),
        "seed": [seed] * len(items),
        "attempts": [1] * len(items),
        "finish_reason": [None] * len(items),
        "prompt_tokens": [0] * len(items),
        "completion_tokens": [0] * len(items),
        "scene": [json.dumps(item.scene.to_json()) for item in items],
        "caption_form": [json.dumps(item.clauses) for item in items],
        "negation_form": [json.dumps(item.negation_clauses) for item in items],
    }
    return pa.Table.from_pydict(columns, schema=schema)


def write_benchmark(
    out_dir: str | Path,
    train_count: int = 20000,
    test_count: int = 300,
    seed: int = 0,
    image_size: int = 32,
    embed_images: bool = True,
    splits: tuple[str, ...] = ("train", "test"),
    absent_rate: float = 0.5,
) -> dict[str, Path]:
    """`train.parquet` and `test.parquet` (held-out images, one right answer per caption).

    `absent_rate` is the share of captions that also name an absent object ("... and no green
    triangle"); at 0 the captions never negate, and "no" appears only in the negations, as in web
    captions and CC-Neg.
    """
    import pyarrow.parquet as pq

    from triplegen.schema import METADATA_KEY

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    image_dir = None if embed_images else out_dir / "images"
    if image_dir is not None:
        image_dir.mkdir(exist_ok=True)
    makers = {
        "train": lambda: list(generate_items(train_count, seed, absent_rate)),
        "test": lambda: generate_test_items(test_count, seed + 1, absent_rate),
    }
    paths = {}
    for split in splits:
        items = makers[split]()
        config = {"generator": GENERATOR, "version": GENERATOR_VERSION, "split": split, "seed": seed,
                  "count": len(items), "image_size": image_size, "absent_rate": absent_rate}
        table = items_table(items, seed, image_size, image_dir)
        table = table.replace_schema_metadata({METADATA_KEY: json.dumps(config).encode()})
        path = out_dir / f"{split}.parquet"
        tmp = path.with_name(f".{path.name}.tmp")
        pq.write_table(table, tmp)
        os.replace(tmp, path)
        paths[split] = path
    return paths


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
