"""Caption readers: Parquet, CSV, JSONL or a folder of Parquet files, streamed in record batches.

Every reader yields batches in the same normalised shape (`id`, `caption`, optional `image`, then the
input's other columns, carried through), so the pipeline never needs to know the format. Batches are
bounded, so memory does not grow with the input. The row order is fixed (files sorted by name), which
is what lets a resumed run cut the input into the same chunks again.

CSV and JSONL files must be UTF-8: the whole file is checked when it is opened, before any row is
generated, and one with other bytes is refused with a one-line error that names the file and the line
and says how to re-encode it (rather than failing after hours, or captions silently altered by
replacement characters). The same pass finds the longest line, so a row of any size is read (the
reader's blocks are made larger than it). In a folder of Parquet files, names starting with "." or
"_" (Spark's `_SUCCESS`, hidden files) are not data; any other file that is not Parquet is refused.
The caption column must hold text: numbers or lists turned into text would be written about as
captions. Ids may be of any type that converts to text (COCO's are integers).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from semclip_core.parquet import unreadable
from triplegen.errors import TripleGenError
from triplegen.io.schema import IMAGE_COLUMN

BATCH_ROWS = 8192
_BLOCK_BYTES = 1 << 20
PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".tsv")
JSON_SUFFIXES = (".jsonl", ".ndjson", ".json")


@dataclass(frozen=True)
class Columns:
    """Which input columns hold the caption, the image and the id (None: absent / hashed)."""

    caption: str = "caption"
    image: str | None = IMAGE_COLUMN
    id: str | None = None


def stable_id(image_key: str, caption: str | None) -> str:
    """An id for inputs without one: the same image and caption give the same id on any machine."""
    digest = hashlib.blake2b(f"{image_key}\x1f{caption or ''}".encode(), digest_size=10)
    return digest.hexdigest()


def _image_key(value) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):  # the HF image struct {bytes, path}
        if value.get("path"):
            return str(value["path"])
        data = value.get("bytes") or b""
        return hashlib.blake2b(data, digest_size=16).hexdigest()
    return str(value)


def _format_of(path: Path) -> str:
    if path.is_dir():
        return "parquet-dir"
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    if suffix in CSV_SUFFIXES:
        return "csv"
    if suffix in JSON_SUFFIXES:
        return "jsonl"
    raise TripleGenError(
        f"{path}: unknown input format {suffix or '(no suffix)'!r}; expected a .parquet, .csv, "
        ".jsonl file or a folder of .parquet files"
    )


class CaptionSource:
    """An input opened for streaming; `batches()` yields normalised record batches."""

    def __init__(self, path: Path | str, columns: Columns = Columns(), batch_rows: int = BATCH_ROWS):
        self.path = Path(path)
        if not self.path.exists():
            raise TripleGenError(f"input not found: {self.path}")
        self.format = _format_of(self.path)
        self.batch_rows = batch_rows
        self.files = self._list_files()
        self.block_bytes = _BLOCK_BYTES
        if self.format in ("csv", "jsonl"):
            self.block_bytes = max(_BLOCK_BYTES, 2 * _check_text(self.path))
        self.raw_schema = self._read_schema()
        self.columns = self._resolve_columns(columns)
        self._check_caption_type()
        image_type = self._field(self.columns.image).type if self.columns.image else None
        if image_type is not None and pa.types.is_large_string(image_type):
            image_type = pa.string()
        self.image_type = image_type
        used = {self.columns.caption, self.columns.image, self.columns.id}
        self.extra_fields = [f for f in self.raw_schema if f.name not in used]
        fields = [pa.field("id", pa.string(), nullable=False), pa.field("caption", pa.string())]
        if image_type is not None:
            fields.append(pa.field(IMAGE_COLUMN, image_type))
        self.schema = pa.schema(fields + self.extra_fields)

    # -- opening ---------------------------------------------------------------------------------

    def _list_files(self) -> list[Path]:
        if self.format != "parquet-dir":
            if self.path.stat().st_size == 0:
                raise TripleGenError(f"{self.path} is empty (0 bytes)")
            return [self.path]
        data = [p for p in self.path.rglob("*") if p.is_file()
                and not any(part.startswith((".", "_")) for part in p.relative_to(self.path).parts)]
        others = sorted(str(p.relative_to(self.path)) for p in data if p.suffix.lower() not in PARQUET_SUFFIXES)
        if others:
            raise TripleGenError(f"{self.path} holds files that are not Parquet ({', '.join(others[:3])}"
                                 f"{', ...' if len(others) > 3 else ''}); move them out, or read them on their own")
        files = sorted(p for p in data if p.suffix.lower() in PARQUET_SUFFIXES)
        if not files:
            raise TripleGenError(f"{self.path} is a folder without .parquet files")
        return files

    def _read_schema(self) -> pa.Schema:
        if self.format in ("parquet", "parquet-dir"):
            schemas = [self._parquet_file(f).schema_arrow for f in self.files]
            try:
                return pa.unify_schemas(schemas, promote_options="permissive")
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise TripleGenError(f"{self.path}: the Parquet files disagree on column types: {exc}") from None
        if self.format == "csv":
            return pa.schema([pa.field(name, pa.string()) for name in self._csv_header()])
        with self._json_reader() as reader:
            return reader.schema

    @staticmethod
    def _parquet_file(path: Path) -> pq.ParquetFile:
        try:
            return pq.ParquetFile(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise unreadable(path, exc) from None

    def _csv_header(self) -> list[str]:
        try:
            with open(self.path, encoding="utf-8", newline="") as handle:
                header = next(csv.reader(handle, delimiter=self._delimiter()), None)
        except UnicodeDecodeError:
            raise TripleGenError(_not_utf8(self.path)) from None
        if not header:
            raise TripleGenError(f"{self.path} has no header row")
        return header

    def _delimiter(self) -> str:
        return "\t" if self.path.suffix.lower() == ".tsv" else ","

    def _json_reader(self):
        try:
            return pa_json.open_json(self.path, read_options=pa_json.ReadOptions(block_size=self.block_bytes))
        except (pa.ArrowInvalid, OSError) as exc:
            raise TripleGenError(f"cannot read {self.path} as JSON lines: {_first_line(exc)}") from None

    def _field(self, name: str) -> pa.Field:
        return self.raw_schema.field(name)

    def _resolve_columns(self, wanted: Columns) -> Columns:
        names = self.raw_schema.names
        available = ", ".join(names)

        def need(name: str, flag: str) -> str:
            if name not in names:
                raise TripleGenError(f"{self.path} has no column {name!r} ({flag}); available: {available}")
            return name

        caption = need(wanted.caption, "--caption-col")
        # The default image column is optional; a column the user named must exist.
        image = wanted.image
        if image is not None and image not in names:
            if image != IMAGE_COLUMN:
                need(image, "--image-col")
            image = None
        if wanted.id is not None:
            id_col = need(wanted.id, "--id-col")
        else:
            id_col = "id" if "id" in names else None
        return Columns(caption=caption, image=image, id=id_col)

    def _check_caption_type(self) -> None:
        """Captions must be text: a number or a list cast to text would be written about as a caption."""
        kind = self._field(self.columns.caption).type
        if pa.types.is_dictionary(kind):
            kind = kind.value_type
        if not (_is_text(kind) or pa.types.is_null(kind)):
            raise TripleGenError(f"{self.path}: column {self.columns.caption!r} (--caption-col) has type {kind}; "
                                 "captions must be text (string)")

    # -- streaming -------------------------------------------------------------------------------

    def raw_batches(self, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
        """Input batches as stored (restricted to `columns`), in a fixed order."""
        try:
            if self.format == "csv":
                yield from self._csv_batches(columns)
            elif self.format == "jsonl":
                yield from self._json_batches(columns)
            else:
                yield from self._parquet_batches(columns)
        except pa.ArrowInvalid as exc:
            message = _first_line(exc)
            if "UTF8" in message or "UTF-8" in message:
                raise TripleGenError(_not_utf8(self.path)) from None
            raise TripleGenError(f"cannot read {self.path}: {message}") from None

    def _parquet_batches(self, columns):
        schema = self.raw_schema if columns is None else pa.schema([self._field(c) for c in columns])
        for path in self.files:
            parquet = self._parquet_file(path)
            present = [c for c in schema.names if c in parquet.schema_arrow.names]
            for batch in parquet.iter_batches(batch_size=self.batch_rows, columns=present):
                yield _conform(batch, schema)

    def _csv_batches(self, columns):
        names = self.raw_schema.names
        convert = pa_csv.ConvertOptions(
            column_types={name: pa.string() for name in names},
            include_columns=columns or names,
            strings_can_be_null=False,
        )
        reader = pa_csv.open_csv(
            self.path,
            read_options=pa_csv.ReadOptions(block_size=self.block_bytes),
            parse_options=pa_csv.ParseOptions(delimiter=self._delimiter(), newlines_in_values=True),
            convert_options=convert,
        )
        yield from reader

    def _json_batches(self, columns):
        with self._json_reader() as reader:
            for batch in reader:
                batch = _conform(batch, self.raw_schema)
                yield batch if columns is None else batch.select(columns)

    def id_batches(self) -> Iterator[list[str]]:
        """Only the ids, batch by batch (a cheap pass: for counting rows and finding duplicates)."""
        needed = [self.columns.id] if self.columns.id else [self.columns.caption] + (
            [self.columns.image] if self.columns.image else []
        )
        for batch in self.raw_batches(needed):
            yield self._ids(batch)

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Normalised batches: id, caption, image (if any), then the carried-through columns."""
        for batch in self.raw_batches():
            arrays = [pa.array(self._ids(batch), pa.string()), _as_text(batch.column(self.columns.caption), self.columns.caption)]
            if self.columns.image:
                image = batch.column(self.columns.image)
                arrays.append(image.cast(self.image_type) if image.type != self.image_type else image)
            arrays += [batch.column(f.name) for f in self.extra_fields]
            yield pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def _ids(self, batch: pa.RecordBatch) -> list[str]:
        if self.columns.id:
            column = batch.column(self.columns.id)
            if column.null_count:
                raise TripleGenError(f"{self.path}: column {self.columns.id!r} has empty (null) ids")
            return _as_text(column, self.columns.id).to_pylist()
        captions = batch.column(self.columns.caption).to_pylist()
        if self.columns.image:
            images = [_image_key(v) for v in batch.column(self.columns.image).to_pylist()]
        else:
            images = [""] * len(captions)
        return [stable_id(image, caption) for image, caption in zip(images, captions)]

    def fingerprint(self) -> dict:
        """What identifies this input for a resumed run: files, sizes, modification times, columns."""
        files = [
            {"path": str(p.resolve()), "bytes": p.stat().st_size, "mtime_ns": p.stat().st_mtime_ns}
            for p in self.files
        ]
        return {"files": files, "columns": [self.columns.caption, self.columns.image, self.columns.id]}


def _conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """Give a batch exactly `schema`: missing columns as nulls, types promoted as unified."""
    if batch.schema.equals(schema):
        return batch
    arrays = []
    for field in schema:
        if field.name in batch.schema.names:
            column = batch.column(field.name)
            arrays.append(column if column.type == field.type else column.cast(field.type))
        else:
            arrays.append(pa.nulls(batch.num_rows, field.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)


def _as_text(column: pa.Array, name: str) -> pa.Array:
    if pa.types.is_string(column.type):
        return column
    try:
        return pc.cast(column, pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise TripleGenError(f"column {name!r} has type {column.type}, which is not text") from None


def _check_text(path: Path) -> int:
    """Refuse a file that is not UTF-8 throughout; return its longest line in bytes."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    longest = current = 0
    line = 1
    with open(path, "rb") as handle:
        while block := handle.read(_BLOCK_BYTES):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                raise TripleGenError(_not_utf8(path, line + block[: max(exc.start, 0)].count(b"\n"))) from None
            pieces = block.split(b"\n")
            current += len(pieces[0])
            if len(pieces) > 1:
                longest = max(longest, current, *(len(piece) for piece in pieces[1:-1]))
                current = len(pieces[-1])
            line += len(pieces) - 1
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise TripleGenError(_not_utf8(path, line)) from None
    return max(longest, current)


def _not_utf8(path: Path, line: int | None = None) -> str:
    where = f" (line {line:,})" if line is not None else ""
    return (
        f"{path} is not valid UTF-8{where}; re-encode it first, e.g. "
        f"iconv -f latin1 -t utf-8 {path.name} > {path.stem}.utf8{path.suffix}"
    )


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
