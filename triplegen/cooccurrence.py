"""The label co-occurrence table: in how many images each object label appears, alone and in pairs.

`generate --absent-objects` prefers to deny an object that fits the scene ("no fork" beside a
plate). Judged from the input's own labels alone, a small input has too few images for that: two
labels that never met in 500 captions may meet often in COCO. `triplegen coco ... --cooccurrence
cooc.parquet` counts the whole instances file once; `generate --cooccurrence cooc.parquet` reads
those counts instead.

The file is a Parquet table, one row per count, so any tool reads it:

    label   other    images
    fork    None     1024     # images that show a fork
    fork    plate    512      # images that show a fork and a plate
    plate   fork     512      # every pair twice, once each way: filter on `label` for a label's row

and the total number of images (also those without any label) as JSON in the key-value metadata
`semclip.cooccurrence`: `{"images": 5000, "version": 1, "source": "instances_val2017.json"}`.
Labels are lower-cased with runs of spaces collapsed, as `generate` reads an objects column.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from semclip_core.files import same_file
from triplegen.errors import TripleGenError
from triplegen.io.writer import write_parquet_atomic

METADATA_KEY = b"semclip.cooccurrence"
VERSION = 1
SCHEMA = pa.schema([
    pa.field("label", pa.string(), nullable=False),
    pa.field("other", pa.string()),  # null: the images that show `label`; else those that show both
    pa.field("images", pa.int64(), nullable=False),
])


def normal_label(name: str) -> str:
    """One spelling per label, as `triplegen.objects.parse_labels` reads an objects column."""
    return " ".join(name.lower().split())


@dataclass
class Cooccurrence:
    """Image counts per label and per pair of labels, out of `images` images."""

    images: int = 0
    counts: Counter = field(default_factory=Counter)
    pairs: dict[str, Counter] = field(default_factory=dict)  # symmetric: pairs[a][b] == pairs[b][a]
    source: str | None = None

    @classmethod
    def of_images(cls, label_sets: Iterable[Iterable[str]], source: str | None = None) -> "Cooccurrence":
        """Count one image per set of labels (an empty set is an image without objects: it counts in the total)."""
        table = cls(source=source)
        for labels in label_sets:
            table.add(labels)
        return table

    def add(self, labels: Iterable[str]) -> None:
        unique = sorted({normal_label(label) for label in labels} - {""})
        self.images += 1
        self.counts.update(unique)
        for a, b in combinations(unique, 2):
            self.pairs.setdefault(a, Counter())[b] += 1
            self.pairs.setdefault(b, Counter())[a] += 1

    def together(self, label: str, other: str) -> int:
        return self.pairs.get(label, {}).get(other, 0)

    def digest(self) -> str:
        """A hash of the counts (not the source name): a resumed run must choose from the same ones."""
        import hashlib

        rows = self.to_table().select(["label", "other", "images"]).to_pylist()
        return hashlib.blake2b(json.dumps([self.images, rows]).encode(), digest_size=16).hexdigest()

    def to_table(self) -> pa.Table:
        """Sorted rows (label, then its own count before its pairs), so the same counts give the same file."""
        rows = []
        for label in sorted(self.counts):
            rows.append((label, None, self.counts[label]))
            rows.extend((label, other, n) for other, n in sorted(self.pairs.get(label, {}).items()))
        columns = list(zip(*rows)) if rows else [(), (), ()]
        metadata = {"images": self.images, "version": VERSION, "source": self.source}
        schema = SCHEMA.with_metadata({METADATA_KEY: json.dumps(metadata, sort_keys=True).encode()})
        return pa.table([pa.array(column, type=f.type) for column, f in zip(columns, SCHEMA)], schema=schema)


def write_cooccurrence(table: Cooccurrence, output: Path | str, inputs: dict[str, Path] | None = None,
                       overwrite: bool = False, made_from: dict[bytes, str] | None = None) -> Path:
    """Write atomically; refuse to replace an input (`inputs`: role -> path) or, without `overwrite`, any file.
    `made_from`: more key-value metadata (what the table was counted from, triplegen.io.coco)."""
    refuse_cooccurrence_output(Path(output), inputs or {}, overwrite)
    arrow = table.to_table()
    if made_from:
        arrow = arrow.replace_schema_metadata({**arrow.schema.metadata, **made_from})
    return write_parquet_atomic(Path(output), arrow, arrow.schema).path


def refuse_cooccurrence_output(output: Path, inputs: dict[str, Path], overwrite: bool) -> None:
    for role, source in inputs.items():
        if same_file(output, source):
            raise TripleGenError(f"--cooccurrence {output} is the {role}; name another file")
    if output.suffix.lower() != ".parquet":
        raise TripleGenError(f"--cooccurrence {output} must end in .parquet")
    if output.is_dir():
        raise TripleGenError(f"--cooccurrence {output} is a folder; name a .parquet file")
    if output.exists() and not overwrite:
        raise TripleGenError(f"{output} already exists; pass --overwrite to replace it")


def file_digest(path: Path | str) -> str:
    """The table's content hash (a run's fingerprint holds it: a resumed run must use the same counts)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_cooccurrence(path: Path | str) -> Cooccurrence:
    """A table written by `write_cooccurrence`, checked: a wrong file is one line, not wrong absences."""
    path = Path(path)
    if not path.is_file():
        raise TripleGenError(f"co-occurrence table {path} " + ("is a folder" if path.is_dir() else "not found"))
    try:
        arrow = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise TripleGenError(f"co-occurrence table {path} is not a Parquet file: {exc}") from None
    raw = (arrow.schema.metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise TripleGenError(f"{path} is not a co-occurrence table (no {METADATA_KEY.decode()} metadata); "
                             "write one with triplegen coco CAPTIONS INSTANCES -o OUT --cooccurrence FILE")
    try:
        images = json.loads(raw)["images"]
    except (ValueError, KeyError, TypeError):
        raise TripleGenError(f"{path}: its {METADATA_KEY.decode()} metadata has no image total") from None
    if isinstance(images, bool) or not isinstance(images, int) or images < 0:
        raise TripleGenError(f"{path}: the image total {images!r} is not a count")
    for column in SCHEMA:
        if column.name not in arrow.column_names or not arrow.schema.field(column.name).type.equals(column.type):
            raise TripleGenError(f"{path}: a co-occurrence table needs the columns label (string), other "
                                 "(string) and images (int64)")
    table = Cooccurrence(images=images, source=json.loads(raw).get("source"))
    for row in arrow.select(["label", "other", "images"]).to_pylist():
        _add_row(table, row, path)
    _check(table, path)
    return table


def _add_row(table: Cooccurrence, row: dict, path: Path) -> None:
    label, other, n = row["label"], row["other"], row["images"]
    if not label or n is None or n < 0:
        raise TripleGenError(f"{path}: row {row} needs a label and a count of images >= 0")
    label = normal_label(label)
    if other is None:
        if label in table.counts:
            raise TripleGenError(f"{path}: the label {label!r} has two counts of its own")
        table.counts[label] = n
        return
    other = normal_label(other)
    if other == label or other in table.pairs.get(label, {}):
        raise TripleGenError(f"{path}: the pair ({label!r}, {other!r}) is listed twice or with itself")
    table.pairs.setdefault(label, Counter())[other] = n


def _check(table: Cooccurrence, path: Path) -> None:
    for label, n in table.counts.items():
        if n > table.images:
            raise TripleGenError(f"{path}: {label!r} is in {n} images, more than the total of {table.images}")
    for label, others in table.pairs.items():
        for other, n in others.items():
            if label not in table.counts or other not in table.counts:
                missing = label if label not in table.counts else other
                raise TripleGenError(f"{path}: the pair ({label!r}, {other!r}) names {missing!r}, which has no "
                                     "count of its own")
            if table.together(other, label) != n:
                raise TripleGenError(f"{path}: the pair ({label!r}, {other!r}) counts {n} images one way and "
                                     f"{table.together(other, label)} the other")
            if n > min(table.counts[label], table.counts[other]):
                raise TripleGenError(f"{path}: the pair ({label!r}, {other!r}) is in more images than one of "
                                     "its labels")
