"""The synthetic benchmark's files: scenes drawn as images, items written as Parquet.

`semclip_train.synthetic` is the world and its language; this module turns items into what the
trainer, `triplegen` and `semclip-eval` read: the triple record with the scene and the logical forms
as extra columns (`train`, `test`), or bare captions with object labels (`captions`).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import TYPE_CHECKING

from semclip_train.synthetic import (
    BACKGROUND, COLOURS, GENERATOR, GENERATOR_VERSION, Scene, SceneObject, SyntheticItem, generate_items,
    generate_test_items, object_labels,
)
from triplegen.files import atomic_path, write_bytes_atomic

if TYPE_CHECKING:
    from PIL import Image


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
    """The triple record (triplegen.schema) with the scene and logical forms as extra columns.

    Images are embedded as the HF-datasets struct {bytes, path}, or written as PNG files under
    `image_dir` with paths relative to it (use it as `--image-root`).
    """
    import pyarrow as pa

    from triplegen.schema import triple_schema

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
) -> dict[str, Path]:
    """`train.parquet` and `test.parquet` (held-out images, one right answer per caption).

    `absent_rate` is the share of captions that also name an absent object ("... and no green
    triangle"); at 0 the captions never negate, and "no" appears only in the negations, as in web
    captions and CC-Neg. The split `captions` is the training items' captions and object labels
    only, for `triplegen generate` (`captions.parquet`).
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
        "captions": lambda: list(generate_items(train_count, seed, absent_rate)),
        "test": lambda: generate_test_items(test_count, seed + 1, absent_rate),
    }
    paths = {}
    for split in splits:
        items = makers[split]()
        config = {"generator": GENERATOR, "version": GENERATOR_VERSION, "split": split, "seed": seed,
                  "count": len(items), "image_size": image_size, "absent_rate": absent_rate}
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


