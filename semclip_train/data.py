"""The triples Parquet as a training set: images, the three captions, a split by image, batches.

Images are local files under `--image-root` (a path that escapes it is refused, URLs are refused:
download first) or bytes embedded in the file (the HF-datasets image struct `{bytes, path}`).
Every image is opened once before training; unreadable ones are skipped with their rows and counted
(or, with `--strict-images`, the run stops at the first one), so no batch ever comes up short.
"""

from __future__ import annotations

import hashlib
import io
import math
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch.utils.data import Dataset, Sampler

from semclip_train.errors import SemClipError

TEXT_COLUMNS = ("caption", "paraphrase", "negation")
URL_PREFIXES = ("http://", "https://", "s3://", "gs://", "ftp://", "hf://", "data:")


@dataclass(frozen=True)
class ImageRef:
    """One distinct image: `key` names it for the split and the embedding cache."""

    key: str
    path: Path | None = None  # a local file ...
    data: bytes | None = None  # ... or embedded bytes

    def open(self):
        from PIL import Image

        image = Image.open(self.path if self.path is not None else io.BytesIO(self.data))
        image.load()
        return image.convert("RGB")


@dataclass
class Triples:
    """Rows (id, image index, caption, paraphrase, negation) over a table of distinct images."""

    ids: list[str]
    image_index: list[int]
    texts: dict[str, list[str]]
    images: list[ImageRef]
    skipped_images: dict[str, str] = field(default_factory=dict)  # key -> reason
    skipped_rows: int = 0

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, rows: list[int]) -> "Triples":
        return Triples(
            ids=[self.ids[i] for i in rows],
            image_index=[self.image_index[i] for i in rows],
            texts={name: [column[i] for i in rows] for name, column in self.texts.items()},
            images=self.images,
            skipped_images=self.skipped_images,
            skipped_rows=self.skipped_rows,
        )


def read_triples(path: Path, image_root: Path | None = None) -> Triples:
    """Read and check the triple records; image paths are resolved and confined to `image_root`.
    `path` may be a dataset folder written by `triplegen generate -o DIR` (its triples file is read)."""
    from triplegen.layout import resolve_triples

    path = resolve_triples(Path(path))
    if not path.is_file():
        raise SemClipError(f"triples file not found: {path}")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise SemClipError(f"cannot read {path} as Parquet: {exc}") from exc
    missing = [name for name in ("image", *TEXT_COLUMNS) if name not in table.column_names]
    if missing:
        raise SemClipError(f"{path} lacks the column(s) {', '.join(missing)} of the triple record")
    root = (image_root or path.parent).expanduser().resolve()
    ids = [str(v) for v in table.column("id").to_pylist()] if "id" in table.column_names else [
        str(i) for i in range(table.num_rows)
    ]
    texts = {name: table.column(name).to_pylist() for name in TEXT_COLUMNS}
    for name, column in texts.items():
        empty = [ids[i] for i, text in enumerate(column) if not isinstance(text, str) or not text.strip()]
        if empty:
            raise SemClipError(f"{path}: empty {name} in {len(empty)} row(s), e.g. id {empty[0]}")
    keys: dict[str, int] = {}
    images: list[ImageRef] = []
    image_index = []
    for row, value in enumerate(table.column("image").to_pylist()):
        ref = _image_ref(value, root, ids[row])
        if ref.key not in keys:
            keys[ref.key] = len(images)
            images.append(ref)
        image_index.append(keys[ref.key])
    return Triples(ids=ids, image_index=image_index, texts=texts, images=images)


def _image_ref(value: Any, root: Path, row_id: str) -> ImageRef:
    if isinstance(value, dict):  # HF-datasets image struct
        if value.get("bytes"):
            data = bytes(value["bytes"])
            return ImageRef(key="sha1:" + hashlib.sha1(data).hexdigest(), data=data)
        value = value.get("path")
    if not isinstance(value, str) or not value.strip():
        raise SemClipError(f"row id {row_id}: no image (neither a path nor embedded bytes)")
    if value.lower().startswith(URL_PREFIXES):
        raise SemClipError(
            f"row id {row_id}: image {value!r} is a URL; semclip-train reads local files only: "
            "download the images and pass their folder as --image-root"
        )
    resolved = (root / value).resolve()
    if not resolved.is_relative_to(root):
        raise SemClipError(f"row id {row_id}: image path {value!r} escapes --image-root {root}")
    return ImageRef(key=str(resolved.relative_to(root)), path=resolved)


def check_images(triples: Triples, strict: bool, threads: int = 8) -> Triples:
    """Open every distinct image once; drop the rows of unreadable ones and record why."""

    def problem(ref: ImageRef) -> str | None:
        if ref.path is not None and not ref.path.is_file():
            return "missing"
        try:
            ref.open()
        except Exception as exc:  # PIL raises many types for a corrupt file
            return f"unreadable ({type(exc).__name__})"
        return None

    with ThreadPoolExecutor(max_workers=threads) as pool:
        problems = list(pool.map(problem, triples.images))
    bad = {i: reason for i, reason in enumerate(problems) if reason is not None}
    if bad and strict:
        index, reason = next(iter(bad.items()))
        raise SemClipError(f"image {triples.images[index].key} is {reason} (--strict-images)")
    good = [i for i in range(len(triples.images)) if i not in bad]
    renumber = {old: new for new, old in enumerate(good)}
    keep = [row for row, image in enumerate(triples.image_index) if image not in bad]
    return Triples(
        ids=[triples.ids[row] for row in keep],
        image_index=[renumber[triples.image_index[row]] for row in keep],
        texts={name: [column[row] for row in keep] for name, column in triples.texts.items()},
        images=[triples.images[i] for i in good],
        skipped_images={triples.images[i].key: reason for i, reason in bad.items()},
        skipped_rows=len(triples) - len(keep),
    )


def split_by_image(triples: Triples, val_fraction: float, seed: int) -> tuple[Triples, Triples]:
    """Train/val split of the distinct images (never of rows), the same for the same seed."""
    used = sorted({triples.images[i].key for i in triples.image_index})
    random.Random(seed).shuffle(used)
    n_val = math.ceil(len(used) * val_fraction) if val_fraction > 0 else 0
    if n_val >= len(used) and used:
        raise SemClipError(f"--val-fraction {val_fraction} leaves no training image ({len(used)} in all)")
    val_keys = set(used[:n_val])
    in_val = [triples.images[i].key in val_keys for i in triples.image_index]
    train = [row for row, v in enumerate(in_val) if not v]
    val = [row for row, v in enumerate(in_val) if v]
    return triples.subset(train), triples.subset(val)


class TripleDataset(Dataset):
    """Items: the three captions and either the preprocessed image or its index (cached embeddings)."""

    def __init__(self, triples: Triples, processor: Any, load_pixels: bool = True):
        self.triples = triples
        self.processor = processor
        self.load_pixels = load_pixels

    def __len__(self) -> int:
        return len(self.triples)

    def __getitem__(self, row: int) -> dict[str, Any]:
        from semclip_train.model import preprocess_images

        image = self.triples.image_index[row]
        item: dict[str, Any] = {"image_index": image}
        item.update({name: column[row] for name, column in self.triples.texts.items()})
        if self.load_pixels:
            ref = self.triples.images[image]
            try:
                pil = ref.open()
            except Exception as exc:  # readable at start-up, broken since: not recoverable
                raise SemClipError(f"image {ref.key} became unreadable during training: {exc}") from exc
            item["pixel_values"] = preprocess_images(self.processor, [pil])[0]  # [3, H, W]
        return item


class TextCollator:
    """Stack the images and tokenize the texts the loss needs as one padded [kB, L] batch."""

    def __init__(self, processor: Any, texts: tuple[str, ...]):
        self.processor = processor
        self.texts = texts

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        from semclip_train.model import tokenize

        batch = tokenize(self.processor, [item[name] for name in self.texts for item in items])
        batch["image_index"] = torch.tensor([item["image_index"] for item in items])
        if "pixel_values" in items[0]:
            batch["pixel_values"] = torch.stack([item["pixel_values"] for item in items])
        return batch


class GlobalBatchSampler(Sampler[list[int]]):
    """Rank r's share of each global batch of one shuffled epoch.

    The epoch's permutation depends only on (seed, epoch), so global batch g is the same items in
    the same order for any number of ranks: rank r takes positions r*B..(r+1)*B of it. The last,
    incomplete global batch is dropped (every rank needs full, equal batches for the gather).
    `start` skips batches already trained when resuming mid-epoch.
    """

    def __init__(self, size: int, batch_size: int, rank: int, world_size: int, seed: int):
        self.size, self.batch_size, self.rank, self.world_size, self.seed = size, batch_size, rank, world_size, seed
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def __len__(self) -> int:
        return self.size // (self.batch_size * self.world_size) - self.start

    def __iter__(self) -> Iterator[list[int]]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.size, generator=generator).tolist()
        global_batch = self.batch_size * self.world_size
        for g in range(self.start, self.size // global_batch):
            first = g * global_batch + self.rank * self.batch_size
            yield order[first : first + self.batch_size]
