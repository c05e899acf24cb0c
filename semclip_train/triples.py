"""The triples Parquet and its images, read the same way by training and evaluation.

Images are local files under `--image-root` or bytes embedded in the file (the HF-datasets image
struct `{bytes, path}`). One policy for training and evaluation (`image_ref`): a path, relative or
absolute, must lie inside the image root (default: the data file's folder), and a link under the
root is followed only to a file inside it; URLs are refused (download first). Each image carries a
digest of its bytes once read, which is what embedding caches are keyed by: another root or a
replaced file never returns a stale embedding.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from semclip_core.parquet import unreadable
from semclip_train.errors import SemClipError

TEXT_COLUMNS = ("caption", "paraphrase", "negation")
ORDINARY_KIND = "caption"  # the `kind` of an ordinary row; "absent-assert"/"absent-swap" are absent-object rows
URL_PREFIXES = ("http://", "https://", "s3://", "gs://", "ftp://", "hf://", "data:")


@dataclass(frozen=True)
class ImageRef:
    """One distinct image: `key` names it (the split by image); `content_key()` identifies its bytes."""

    key: str
    path: Path | None = None  # a local file ...
    data: bytes | None = None  # ... or embedded bytes
    digest: str | None = None  # of the bytes, once read

    def read(self) -> bytes:
        return self.data if self.data is not None else self.path.read_bytes()

    def open(self, data: bytes | None = None):
        from PIL import Image

        image = Image.open(io.BytesIO(data if data is not None else self.read()))
        image.load()
        return image.convert("RGB")

    def content_key(self) -> str:
        """What embedding caches are keyed by: a digest of the image's bytes (read if not known yet)."""
        return self.digest or content_digest(self.read())


def content_digest(data: bytes) -> str:
    return "blake2b:" + hashlib.blake2b(data, digest_size=16).hexdigest()


@dataclass
class Triples:
    """Rows (id, image index, caption, paraphrase, negation, kind) over a table of distinct images."""

    ids: list[str]
    image_index: list[int]
    texts: dict[str, list[str]]
    images: list[ImageRef]
    skipped_images: dict[str, str] = field(default_factory=dict)  # key -> reason
    skipped_rows: int = 0
    kinds: list[str] | None = None  # each row's `kind`; None: every row an ordinary "caption" row

    def __post_init__(self) -> None:
        if self.kinds is None:
            self.kinds = [ORDINARY_KIND] * len(self.ids)

    def __len__(self) -> int:
        return len(self.ids)

    def absent_rows(self) -> list[int]:
        """The absent-object rows (triplegen --absent-objects: kind absent-assert or absent-swap)."""
        return [row for row, kind in enumerate(self.kinds) if kind != ORDINARY_KIND]

    def ordinary_rows(self) -> list[int]:
        return [row for row, kind in enumerate(self.kinds) if kind == ORDINARY_KIND]

    def subset(self, rows: list[int]) -> "Triples":
        return Triples(
            ids=[self.ids[i] for i in rows],
            image_index=[self.image_index[i] for i in rows],
            texts={name: [column[i] for i in rows] for name, column in self.texts.items()},
            images=self.images,
            skipped_images=self.skipped_images,
            skipped_rows=self.skipped_rows,
            kinds=[self.kinds[i] for i in rows],
        )


def read_triples(path: Path, image_root: Path | None = None) -> Triples:
    """Read and check the triple records (training and evaluation); image paths follow `image_ref`.
    `path` may be a dataset folder written by `triplegen generate -o DIR` (its triples file is read)."""
    from triplegen.io.layout import resolve_triples

    path = resolve_triples(Path(path))
    if not path.is_file():
        raise SemClipError(f"triples file not found: {path}")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise unreadable(path, exc) from None
    missing = [name for name in ("image", *TEXT_COLUMNS) if name not in table.column_names]
    if missing:
        raise SemClipError(f"{path} lacks the column(s) {', '.join(missing)} of the triple record")
    if table.num_rows == 0:
        raise SemClipError(f"{path} has no rows")
    root = image_root_for(path, image_root)
    ids = [str(v) for v in table.column("id").to_pylist()] if "id" in table.column_names else [
        str(i) for i in range(table.num_rows)
    ]
    texts = {name: table.column(name).to_pylist() for name in TEXT_COLUMNS}
    kinds = ([kind or ORDINARY_KIND for kind in table.column("kind").to_pylist()]  # null: an ordinary row
             if "kind" in table.column_names else None)  # files from before absent-object rows
    for name, column in texts.items():
        empty = [ids[i] for i, text in enumerate(column) if not isinstance(text, str) or not text.strip()]
        if empty:
            raise SemClipError(f"{path}: empty {name} in {len(empty)} row(s), e.g. id {empty[0]}")
    keys: dict[str, int] = {}
    images: list[ImageRef] = []
    image_index = []
    for row, value in enumerate(table.column("image").to_pylist()):
        ref = image_ref(value, root, f"row id {ids[row]}")
        if ref.key not in keys:
            keys[ref.key] = len(images)
            images.append(ref)
        image_index.append(keys[ref.key])
    return Triples(ids=ids, image_index=image_index, texts=texts, images=images, kinds=kinds)


def image_root_for(data_file: Path, image_root: Path | None) -> Path:
    """The folder image paths are read under: `--image-root`, else the data file's own folder."""
    return Path(os.path.abspath(Path(image_root or Path(data_file).parent).expanduser()))


def image_ref(value: Any, root: Path, where: str) -> ImageRef:
    """The one image-path policy of training and evaluation: embedded bytes, or a path (relative to
    `root`, or absolute) that lies inside `root`; never a URL. `where` names the row for errors."""
    if isinstance(value, dict):  # HF-datasets image struct
        if value.get("bytes"):
            data = bytes(value["bytes"])
            return ImageRef(key="sha1:" + hashlib.sha1(data).hexdigest(), data=data, digest=content_digest(data))
        value = value.get("path")
    if not isinstance(value, str) or not value.strip():
        raise SemClipError(f"{where}: no image (neither a path nor embedded bytes)")
    if value.lower().startswith(URL_PREFIXES) or "://" in value:
        raise SemClipError(f"{where}: image {value!r} is a URL; only local files are read: "
                           "download the images and pass their folder as --image-root")
    path = Path(os.path.normpath(root / value))  # ".." resolved by name first, for the key and the message
    if not path.is_relative_to(root):
        raise SemClipError(f"{where}: image path {value!r} escapes --image-root {root}")
    real_root = _real(root)
    target = Path(os.path.realpath(path))
    if not target.is_relative_to(real_root):  # a link in the root is followed only as far as the root
        raise SemClipError(f"{where}: image {value!r} is a link to {target}, outside --image-root {root}; "
                           "copy the file into the root, or pass the folder that holds it as --image-root")
    return ImageRef(key=str(path.relative_to(root)), path=path)


@functools.lru_cache(maxsize=64)
def _real(root: Path) -> Path:
    """The image root with its own links resolved (a root that is itself a link is fine)."""
    return Path(os.path.realpath(root))
