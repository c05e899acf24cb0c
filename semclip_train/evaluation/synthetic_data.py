"""The synthetic benchmark's files: scenes drawn as images, items written as Parquet.

`semclip_train.evaluation.synthetic` is the world and its language; this module turns items into what the
trainer, `triplegen` and `semclip-eval` read: the triple record with the scene and the logical forms
as extra columns (`train`, `test`), or bare captions with object labels (`captions`).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import TYPE_CHECKING

from semclip_train.evaluation.synthetic import (
    BACKGROUND, GENERATOR, GENERATOR_VERSION, Scene, SceneObject, SyntheticItem, generate_items, generate_test_items,
    object_labels,
)
from semclip_train.evaluation.worlds import DEFAULT, PALETTE, World
from semclip_core.files import atomic_path, write_bytes_atomic

if TYPE_CHECKING:
    from PIL import Image


HALF_SIZE = {"": (0.28, 0.4), "small": (0.2, 0.27), "big": (0.36, 0.44)}  # of a cell


def render(scene: Scene, size: int, rng: random.Random) -> "Image.Image":
    """Each object drawn in its grid cell, with a little jitter in size, place and colour."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (size, size), BACKGROUND)
    draw = ImageDraw.Draw(image)
    cell = size / 2
    for obj in scene.objects:
        half = cell * rng.uniform(*HALF_SIZE[obj.size])
        cx = (obj.col + 0.5) * cell + rng.uniform(-0.08, 0.08) * cell
        cy = (obj.row + 0.5) * cell + rng.uniform(-0.08, 0.08) * cell
        fill = tuple(min(255, max(0, c + rng.randint(-20, 20))) for c in PALETTE[obj.colour])
        _draw_shape(draw, obj.shape, cx, cy, half, fill, outline_only=obj.texture == "hollow")
        if obj.texture == "striped":
            for y in range(int(cy - half) + 1, int(cy + half) + 1, 3):
                draw.line([(cx - half, y), (cx + half, y)], fill=BACKGROUND)
    return image


def _draw_shape(draw, shape: str, cx: float, cy: float, half: float, fill: tuple, outline_only: bool) -> None:
    box = [cx - half, cy - half, cx + half, cy + half]
    paint = {"outline": fill, "width": max(1, round(half / 3))} if outline_only else {"fill": fill}
    if shape == "circle":
        draw.ellipse(box, **paint)
    elif shape == "square":
        draw.rectangle(box, **paint)
    elif shape == "cross":
        arm = half / 3
        if outline_only:
            draw.line([(cx - half, cy), (cx + half, cy)], fill=fill, width=paint["width"])
            draw.line([(cx, cy - half), (cx, cy + half)], fill=fill, width=paint["width"])
        else:
            draw.rectangle([cx - half, cy - arm, cx + half, cy + arm], fill=fill)
            draw.rectangle([cx - arm, cy - half, cx + arm, cy + half], fill=fill)
    else:
        corners = {
            "triangle": [(0, -1), (-1, 1), (1, 1)],
            "diamond": [(0, -1), (-1, 0), (0, 1), (1, 0)],
            "hexagon": [(-0.5, -1), (0.5, -1), (1, 0), (0.5, 1), (-0.5, 1), (-1, 0)],
        }[shape]
        points = [(cx + dx * half, cy + dy * half) for dx, dy in corners]
        if outline_only:
            draw.line(points + points[:1], fill=fill, width=paint["width"])
        else:
            draw.polygon(points, fill=fill)


def _png(image: "Image.Image") -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def items_table(items: list[SyntheticItem], seed: int, image_size: int, image_dir: Path | None):
    """The triple record (triplegen.io.schema) with the scene and logical forms as extra columns.

    Images are embedded as the HF-datasets struct {bytes, path}, or written as PNG files under
    `image_dir` with paths relative to it (use it as `--image-root`).
    """
    import pyarrow as pa

    from triplegen.io.schema import triple_schema

    images, image_type = _images(items, image_size, image_dir)
    extra = [pa.field(name, pa.string()) for name in ("scene", "caption_form", "negation_form")]
    extra.append(pa.field("objects", pa.list_(pa.string())))
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
        "objects": [object_labels(item.scene) for item in items],
        "kind": ["caption"] * len(items),
        "source_id": [None] * len(items),
        "absent_object": [None] * len(items),
    }
    return pa.Table.from_pydict(columns, schema=schema)


def _images(items: list[SyntheticItem], image_size: int, image_dir: Path | None):
    """Each item's image as the HF struct {bytes, path}, or as a PNG under `image_dir` (its path)."""
    import pyarrow as pa

    images = []
    for item in items:
        image = render(item.scene, image_size, random.Random(f"{item.id}/image"))
        name = f"{item.id}.png"
        if image_dir is None:
            images.append({"bytes": _png(image), "path": name})
        else:
            write_bytes_atomic(image_dir / name, _png(image))
            images.append(name)
    image_type = pa.string() if image_dir is not None else pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    return images, image_type


def captions_table(items: list[SyntheticItem], image_size: int, image_dir: Path | None):
    """Captions with object labels and no triples: the input of `triplegen generate --absent-objects`."""
    import pyarrow as pa

    images, image_type = _images(items, image_size, image_dir)
    return pa.table({
        "id": pa.array([item.id for item in items], pa.string()),
        "image": pa.array(images, image_type),
        "caption": pa.array([item.caption for item in items], pa.string()),
        "objects": pa.array([object_labels(item.scene) for item in items], pa.list_(pa.string())),
        "scene": pa.array([json.dumps(item.scene.to_json()) for item in items], pa.string()),
    })


def load_world(path: str | Path) -> World:
    """The world a benchmark file was written for (files without one are the default world's)."""
    import pyarrow.parquet as pq

    from triplegen.io.schema import METADATA_KEY

    metadata = pq.read_schema(path).metadata or {}
    config = json.loads(metadata.get(METADATA_KEY) or b"{}")
    return World.from_json(config["world"]) if "world" in config else DEFAULT


def load_scenes(path: str | Path) -> list[Scene] | None:
    """The scenes of a benchmark file (its `scene` column), or None for a file without them."""
    import pyarrow.parquet as pq

    if "scene" not in pq.read_schema(path).names:
        return None
    rows = pq.read_table(path, columns=["scene"]).column("scene").to_pylist()
    return [Scene(tuple(SceneObject(**obj) for obj in json.loads(row))) for row in rows]


def write_benchmark(
    out_dir: str | Path,
    train_count: int = 20000,
    test_count: int = 300,
    seed: int = 0,
    image_size: int = 32,
    embed_images: bool = True,
    splits: tuple[str, ...] = ("train", "test"),
    absent_rate: float = 0.5,
    world: World = DEFAULT,
    test_at_most: bool = False,
) -> dict[str, Path]:
    """`train.parquet` and `test.parquet` (held-out images, one right answer per caption; with
    `test_at_most`, up to `test_count` of them where the world has fewer).

    `absent_rate` is the share of captions that also name an absent object ("... and no green
    triangle"); at 0 the captions never negate, and "no" appears only in the negations, as in web
    captions and CC-Neg. The split `captions` is the training items' captions and object labels
    only, for `triplegen generate` (`captions.parquet`).
    """
    import pyarrow.parquet as pq

    from triplegen.io.schema import METADATA_KEY

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    image_dir = None if embed_images else out_dir / "images"
    if image_dir is not None:
        image_dir.mkdir(exist_ok=True)
    makers = {
        "train": lambda: list(generate_items(train_count, seed, absent_rate, world)),
        "captions": lambda: list(generate_items(train_count, seed, absent_rate, world)),
        "test": lambda: generate_test_items(test_count, seed + 1, absent_rate, world, at_most=test_at_most),
    }
    paths = {}
    for split in splits:
        items = makers[split]()
        config = {"generator": GENERATOR, "version": GENERATOR_VERSION, "split": split, "seed": seed,
                  "count": len(items), "image_size": image_size, "absent_rate": absent_rate}
        if world is not DEFAULT:
            config["world"] = world.to_json()
        if split == "captions":
            table = captions_table(items, image_size, image_dir)
        else:
            table = items_table(items, seed, image_size, image_dir)
        table = table.replace_schema_metadata({METADATA_KEY: json.dumps(config).encode()})
        path = out_dir / f"{split}.parquet"
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp)
        paths[split] = path
    return paths


