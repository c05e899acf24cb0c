"""The triples as a training set: images checked once, a split by image, batches.

The file is read by `semclip_train.triples` (one reader and one image-path policy for training and
evaluation). Every image is opened once before training; unreadable ones are skipped with their
rows and counted (or, with `--strict-images`, the run stops at the first one), so no batch ever
comes up short. Reading it also gives each image a digest of its bytes, which is what embedding
caches are keyed by.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, Iterator

import torch
from torch.utils.data import Dataset, Sampler

from semclip_train.errors import SemClipError
from semclip_train.triples import ImageRef, Triples, content_digest


def check_images(triples: Triples, strict: bool, threads: int = 8) -> Triples:
    """Open every distinct image once; drop the rows of unreadable ones and record why. The images
    kept carry the digest of their bytes (read once for both)."""

    def verdict(ref: ImageRef) -> tuple[str | None, str | None]:
        if ref.path is not None and not ref.path.is_file():
            return "missing", None
        try:
            data = ref.read()
            ref.open(data)
        except Exception as exc:  # PIL raises many types for a corrupt file
            return f"unreadable ({type(exc).__name__})", None
        return None, content_digest(data)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        verdicts = list(pool.map(verdict, triples.images))
    bad = {i: reason for i, (reason, _) in enumerate(verdicts) if reason is not None}
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
        images=[replace(triples.images[i], digest=verdicts[i][1]) for i in good],
        skipped_images={triples.images[i].key: reason for i, reason in bad.items()},
        skipped_rows=len(triples) - len(keep),
        kinds=[triples.kinds[row] for row in keep],
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


def absent_per_batch(triples: Triples, share: float, batch_size: int, world_size: int) -> int:
    """How many of a global batch's `batch_size * world_size` rows `--absent-share` makes
    absent-object rows: round(share * global batch); a share the training split or the batch cannot
    give is a one-line error."""
    n_absent, n_ordinary = len(triples.absent_rows()), len(triples.ordinary_rows())
    if share > 0 and n_absent == 0:
        raise SemClipError(f"--absent-share {share:g} needs absent-object rows "
                           "(triplegen generate --absent-objects 1); the training data has none")
    if share < 1 and n_ordinary == 0:
        raise SemClipError(f"--absent-share {share:g} needs ordinary rows too; the training data has only "
                           f"absent-object rows ({n_absent}): use --absent-share 1 to train on them alone")
    global_batch = batch_size * world_size

    def fits(size: int) -> bool:
        count = round(share * size)
        return (share == 0 or count > 0) and (share == 1 or count < size)

    if not fits(global_batch):
        batch = (f"a global batch of {global_batch} (--batch-size {batch_size} x {world_size} ranks)"
                 if world_size > 1 else f"a batch of {global_batch}")
        start = max(1, int(0.5 / min(share, 1 - share)) // world_size)  # the first fit is just above
        fewest = next(size for size in itertools.count(start) if fits(size * world_size))
        what = "no absent-object row" if round(share * global_batch) == 0 else "no ordinary row"
        raise SemClipError(f"--absent-share {share:g} leaves {what} in {batch}; --batch-size {fewest} or more would "
                           f"give {round(share * fewest * world_size)} of {fewest * world_size}")
    return round(share * global_batch)


class MixedBatchSampler(Sampler[list[int]]):
    """`GlobalBatchSampler` with `n_absent` absent-object rows and the rest ordinary rows in every
    global batch (`--absent-share`), under the same rules: global batch g is the same items in the
    same order for any number of ranks (rank r takes positions r*B..(r+1)*B), it depends only on
    (seed, epoch), and `start` skips batches already trained when resuming mid-epoch.

    The ordinary rows drive the epoch (the absent rows when every row is one): each is used once in
    a shuffled order and the incomplete remainder is dropped. The other group comes from an endless
    stream of its own shuffled passes, each pass re-shuffled, running on across epochs, so every one
    of its rows is used before any repeats. A seeded shuffle of each global batch then mixes the two
    groups, so no rank's slice is all one kind.
    """

    def __init__(self, triples: Triples, n_absent: int, batch_size: int, rank: int, world_size: int, seed: int):
        self.batch_size, self.rank, self.world_size, self.seed = batch_size, rank, world_size, seed
        global_batch = batch_size * world_size
        ordinary, absent = triples.ordinary_rows(), triples.absent_rows()
        # (rows, per global batch) of the group that drives the epoch, then of the one that is cycled
        self.driver, self.cycled = (ordinary, global_batch - n_absent), (absent, n_absent)
        if n_absent == global_batch:
            self.driver, self.cycled = self.cycled, self.driver
        self.epoch, self.start = 0, 0
        self._orders: dict[tuple[str, int], list[int]] = {}  # the last epoch's driver order, the last pass

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    @property
    def global_batches(self) -> int:
        rows, per_batch = self.driver
        return len(rows) // per_batch

    def __len__(self) -> int:
        return self.global_batches - self.start

    def _order(self, group: str, number: int) -> list[int]:
        """The driver's rows in epoch `number`'s order, or the cycled group's in its pass `number`."""
        if (group, number) not in self._orders:
            rows = (self.driver if group == "driver" else self.cycled)[0]
            self._orders = {key: value for key, value in self._orders.items() if key[0] != group}
            self._orders[group, number] = [rows[i] for i in _permutation(len(rows), self.seed, group, number)]
        return self._orders[group, number]

    def global_batch(self, g: int) -> list[int]:
        """Global batch g of the current epoch: every rank's rows, in rank order."""
        n_driver, (cycled, n_cycled) = self.driver[1], self.cycled
        items = self._order("driver", self.epoch)[g * n_driver : (g + 1) * n_driver]
        first = (self.epoch * self.global_batches + g) * n_cycled  # where this batch's draw starts in the stream
        items += [self._order("cycled", p // len(cycled))[p % len(cycled)] for p in range(first, first + n_cycled)]
        return [items[i] for i in _permutation(len(items), self.seed, "mix", self.epoch, g)]

    def __iter__(self) -> Iterator[list[int]]:
        first = self.rank * self.batch_size
        for g in range(self.start, self.global_batches):
            yield self.global_batch(g)[first : first + self.batch_size]


def _permutation(size: int, *key: Any) -> list[int]:
    """A permutation of range(size) that depends only on `key` (seed and what it is for)."""
    digest = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
    generator = torch.Generator().manual_seed(int.from_bytes(digest, "big") >> 1)
    return torch.randperm(size, generator=generator).tolist()
