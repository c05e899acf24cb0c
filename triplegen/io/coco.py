"""COCO annotations to a captions Parquet with object labels: the input of `triplegen generate`.

COCO keeps captions (`captions_*.json`) and object instances (`instances_*.json`) in separate files
keyed by image id; a triples run wants one row per caption. Each row carries the image's object
category names, most salient (largest total area) first, so that a generator or a later filter can
tell which objects a negation may safely deny.

Both files are read whole with `json.load`: there is no streaming JSON parser in the standard library,
and the largest file (train2017 instances, about 450 MB) fits in memory once its segmentation polygons,
by far its bulk, are dropped as each annotation is decoded. Converting train2017 (590k captions,
860k instances) peaks at about 1.5 GB and takes about 15 s (measured on a synthetic file of the same
size and shape); val2017 needs a tenth of that.

Each output records what it was made from (key `semclip.made_from` of its Parquet metadata: the
inputs' names, sizes and SHA-256 digests, and the settings), so the same command run again finds it
complete and rewrites nothing, and one with other inputs or settings is refused unless `--overwrite`.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from semclip_core.files import same_file
from triplegen.cooccurrence import Cooccurrence, file_digest, refuse_cooccurrence_output, write_cooccurrence
from triplegen.errors import TripleGenError
from triplegen.io.readers import PARQUET_SUFFIXES
from triplegen.io.writer import write_parquet_atomic

# The captions file's columns, declared once. `objects` is left out when no instances file is given:
# an empty list would read as "this image has no objects", which nobody has checked.
COCO_FIELDS: list[pa.Field] = [
    pa.field("id", pa.string(), nullable=False),  # the caption annotation's id
    pa.field("image", pa.string(), nullable=False),  # image prefix + file_name, relative to --image-root
    pa.field("caption", pa.string(), nullable=False),
    pa.field("objects", pa.list_(pa.string()), nullable=False),
    pa.field("image_id", pa.int64(), nullable=False),
]
OBJECTS = "objects"
MADE_FROM = b"semclip.made_from"  # the inputs and settings an output was made from: a rerun compares them


def coco_schema(with_objects: bool) -> pa.Schema:
    return pa.schema([f for f in COCO_FIELDS if with_objects or f.name != OBJECTS])


@dataclass(frozen=True)
class CocoSummary:
    output: Path
    rows: int
    images: int
    empty_captions: int
    images_without_objects: int | None  # None: no instances file, so no objects column
    categories: int | None  # distinct category names that occur in the rows
    bytes: int
    cooccurrence: Path | None = None  # the label co-occurrence table, when asked for
    complete: tuple[Path, ...] = ()  # outputs an earlier run made from the same inputs: not rewritten


@dataclass(frozen=True)
class Instances:
    """What the instances file says: its image ids, and the category names of those with instances."""

    images: list[int]
    objects: dict[int, list[str]]

    def cooccurrence(self, source: str | None = None) -> Cooccurrence:
        return Cooccurrence.of_images((self.objects.get(image_id, []) for image_id in self.images), source)


def coco_captions(captions_json: Path | str, instances_json: Path | str | None = None,
                  image_prefix: str = "") -> pa.Table:
    """One row per caption annotation, ordered by image id then caption id, so reruns give the same file.

    Empty captions are kept (as ""): `triplegen generate` rejects them with the reason `empty_caption`,
    so they are counted in its rejects file instead of vanishing here.
    """
    return _convert(captions_json, instances_json, image_prefix)[0]


def coco_cooccurrence(instances_json: Path | str) -> Cooccurrence:
    """The label co-occurrence table of every image of an instances file (triplegen.cooccurrence)."""
    return _read_objects(Path(instances_json), None, None).cooccurrence(Path(instances_json).name)


def _convert(captions_json: Path | str, instances_json: Path | str | None,
             image_prefix: str) -> tuple[pa.Table, Instances | None]:
    captions_json = Path(captions_json)
    files, rows = _read_captions(captions_json, _as_folder(image_prefix))
    columns = {
        "id": [row[2] for row in rows],
        "image": [files[row[0]] for row in rows],
        "caption": [row[3] for row in rows],
    }
    instances = None
    if instances_json is not None:
        instances = _read_objects(Path(instances_json), {row[0] for row in rows}, captions_json)
        columns[OBJECTS] = [instances.objects.get(row[0], []) for row in rows]
    columns["image_id"] = [row[0] for row in rows]
    return pa.table(columns, schema=coco_schema(instances_json is not None)), instances


def write_coco_captions(captions_json: Path | str, output: Path | str, instances_json: Path | str | None = None,
                        image_prefix: str = "", overwrite: bool = False,
                        cooccurrence: Path | str | None = None) -> CocoSummary:
    """Convert and write atomically; refuse to replace an input or, without `overwrite`, any file.

    With `cooccurrence`, also write the label co-occurrence table of the instances file there.
    """
    output = Path(output)
    inputs = {"captions": Path(captions_json)}
    if instances_json is not None:
        inputs["instances"] = Path(instances_json)
    if cooccurrence is not None:
        _check_cooccurrence_output(Path(cooccurrence), output, inputs, overwrite)
    for role, source in inputs.items():
        if same_file(output, source):
            raise TripleGenError(f"the output {output} is the {role} input; name another output file")
    if output.suffix.lower() not in PARQUET_SUFFIXES:
        raise TripleGenError(f"the output {output} must end in .parquet (triplegen generate reads by suffix)")
    if output.is_dir():
        raise TripleGenError(f"the output {output} is a folder; name a .parquet file")
    wanted = {output: _made_from(inputs, image_prefix=_as_folder(image_prefix))}
    if cooccurrence is not None:
        wanted[Path(cooccurrence)] = _made_from({"instances": inputs["instances"]}, table="cooccurrence")
    complete = tuple(path for path, made_from in wanted.items() if not overwrite and _is_complete(path, made_from))
    if output in complete:
        table, instances = pq.read_table(output), None
    else:
        table, instances = _convert(captions_json, instances_json, image_prefix)
        table = table.replace_schema_metadata({MADE_FROM: json.dumps(wanted[output], sort_keys=True)})
        write_parquet_atomic(output, table, table.schema)
    cooc = None
    if cooccurrence is not None:
        cooc = Path(cooccurrence)
        if cooc not in complete:
            counts = (instances.cooccurrence(Path(instances_json).name) if instances
                      else coco_cooccurrence(instances_json))
            write_cooccurrence(counts, cooc, {f"{role} input": path for role, path in inputs.items()}, True,
                               made_from={MADE_FROM: json.dumps(wanted[cooc], sort_keys=True)})
    return replace(_summarise(table, output, output.stat().st_size, cooc), complete=complete)


def _made_from(inputs: dict[str, Path], **settings) -> dict:
    """What an output is made from: each input's name, size and content digest, and the settings."""
    files = {role: {"name": path.name, "bytes": path.stat().st_size, "sha256": file_digest(path)}
             for role, path in inputs.items() if path.is_file()}
    return {"inputs": files, **settings}


def _is_complete(path: Path, made_from: dict) -> bool:
    """True when `path` was made from these inputs and settings; a file made otherwise is refused here."""
    if not path.exists():
        return False
    try:
        raw = (pq.read_schema(path).metadata or {}).get(MADE_FROM)
        recorded = json.loads(raw) if raw else None
    except (OSError, ValueError):  # not Parquet, or not ours
        recorded = None
    if recorded == made_from:
        return True
    why = "" if recorded is None else " (it was made from other inputs or settings)"
    raise TripleGenError(f"{path} already exists; pass --overwrite to replace it{why}")


def _check_cooccurrence_output(path: Path, output: Path, inputs: dict[str, Path], overwrite: bool) -> None:
    """Refused before any work: the table needs the instances file, and is not the captions output."""
    if "instances" not in inputs:
        raise TripleGenError("--cooccurrence counts the labels of the instances file; name it after the captions file")
    if same_file(path, output):
        raise TripleGenError(f"--cooccurrence {path} is the captions output -o; name another file")
    # an existing table is compared with what this run would write (write_coco_captions)
    refuse_cooccurrence_output(path, {f"{role} input": source for role, source in inputs.items()}, overwrite=True)


def load_json(path: Path, role: str) -> dict:
    """A COCO file's top-level object, without segmentations.

    The polygons and RLE masks are dropped as each annotation is decoded, so they are never all in
    memory together: an instances file then needs about 2.2 times its size (the text, read as str
    rather than bytes to avoid a second copy, plus what is kept), against 7 times with a plain load.
    """
    if not path.exists():
        raise TripleGenError(f"{role} file not found: {path}")
    if path.is_dir():
        raise TripleGenError(f"{role} file {path} is a folder; name the {role}_*.json file")
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle, object_hook=_without_segmentation)
    except json.JSONDecodeError as exc:
        raise TripleGenError(f"{path} is not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except UnicodeDecodeError:
        raise TripleGenError(f"{path} is not JSON: it is not UTF-8 text") from None
    except RecursionError:  # arrays or objects nested thousands deep: no COCO file is
        raise TripleGenError(f"{path} is not a COCO {role} file: its JSON is nested too deeply to read") from None
    except OSError as exc:
        raise TripleGenError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not isinstance(data, dict):
        raise TripleGenError(f"{path} is not a COCO {role} file: its top level is a JSON "
                             f"{type(data).__name__}, not an object")
    return data


def _without_segmentation(entry: dict) -> dict:
    entry.pop("segmentation", None)
    return entry


def _read_captions(path: Path, prefix: str) -> tuple[dict[int, str], list[tuple]]:
    """Image paths by image id, and (image id, sort key, id, caption) per caption, sorted."""
    data = load_json(path, "captions")
    annotations = _list(data, "annotations", path, "captions")
    if annotations and isinstance(annotations[0], dict) and "category_id" in annotations[0]:
        raise TripleGenError(f"{path} looks like an instances file (its annotations have category_id, no "
                             "caption); the captions_*.json file comes first")
    files: dict[int, str] = {}
    for i, image in enumerate(_list(data, "images", path, "captions")):
        image_id = _int(image, "id", path, f"images[{i}]")
        if image_id in files:
            raise TripleGenError(f"{path}: image id {image_id} appears twice in 'images'")
        files[image_id] = prefix + _text(image, "file_name", path, f"images[{i}]")
    rows, seen = [], {}
    for i, annotation in enumerate(annotations):
        where = f"annotations[{i}]"
        caption_id = _get(annotation, "id", path, where)
        if isinstance(caption_id, bool) or not isinstance(caption_id, (int, str)):
            raise TripleGenError(f"{path}: {where} has id {caption_id!r}; expected an integer or a string")
        key = str(caption_id)
        if key in seen:
            raise TripleGenError(f"{path}: caption id {key} appears twice (annotations[{seen[key]}] and {where})")
        seen[key] = i
        image_id = _int(annotation, "image_id", path, where)
        if image_id not in files:
            raise TripleGenError(f"{path}: caption {key} ({where}) points to image id {image_id}, "
                                 "which is not in its 'images' list")
        caption = _get(annotation, "caption", path, where)
        if caption is not None and not isinstance(caption, str):
            raise TripleGenError(f"{path}: caption {key} ({where}) is {caption!r}, not text")
        rows.append((image_id, (isinstance(caption_id, str), caption_id), key, " ".join((caption or "").split())))
    rows.sort(key=lambda row: row[:2])
    return files, rows


def _read_objects(path: Path, image_ids: set[int] | None, captions_json: Path | None) -> Instances:
    """Category names per image of the instances file, largest total area first (ties by name).

    Crowd annotations count like any other: a crowd of people is still people, and a negation that
    denies them would be false. `image_ids` (the captioned images) must all be in the file.
    """
    data = load_json(path, "instances")
    annotations = _list(data, "annotations", path, "instances")
    if annotations and isinstance(annotations[0], dict) and "caption" in annotations[0]:
        raise TripleGenError(f"{path} looks like a captions file (its annotations have captions); the "
                             "instances_*.json file comes second")
    names: dict[int, str] = {}
    for i, category in enumerate(_list(data, "categories", path, "instances")):
        category_id = _int(category, "id", path, f"categories[{i}]")
        if category_id in names:
            raise TripleGenError(f"{path}: category id {category_id} appears twice in 'categories'")
        names[category_id] = _text(category, "name", path, f"categories[{i}]")
    images = _list(data, "images", path, "instances")
    known = {_int(image, "id", path, f"images[{i}]") for i, image in enumerate(images)}
    missing = set() if image_ids is None else image_ids - known
    if missing:
        raise TripleGenError(
            f"{path} describes other images than {captions_json}: {len(missing):,} of {len(image_ids):,} "
            f"captioned images have no entry in its 'images' list (e.g. image id {min(missing)}); "
            "use the instances file of the same split")
    areas: dict[int, dict[str, float]] = defaultdict(dict)
    for i, annotation in enumerate(annotations):
        where = f"annotations[{i}]"
        image_id = _int(annotation, "image_id", path, where)
        if image_id not in known:
            raise TripleGenError(f"{path}: {where} points to image id {image_id}, which is not in its 'images' list")
        category_id = _int(annotation, "category_id", path, where)
        if category_id not in names:
            raise TripleGenError(f"{path}: {where} points to category id {category_id}, "
                                 "which is not in its 'categories' list")
        area = annotation.get("area", 0)
        if isinstance(area, bool) or not isinstance(area, (int, float)):
            raise TripleGenError(f"{path}: {where} has area {area!r}; expected a number")
        per_name = areas[image_id]
        name = names[category_id]
        per_name[name] = per_name.get(name, 0.0) + area
    objects = {image_id: sorted(per_name, key=lambda name: (-per_name[name], name))
               for image_id, per_name in areas.items()}
    return Instances(sorted(known), objects)


def _list(data: dict, key: str, path: Path, role: str) -> list:
    value = data.get(key)
    if not isinstance(value, list):
        state = f"it has no {key!r} list" if value is None else f"its {key!r} is a {type(value).__name__}, not a list"
        raise TripleGenError(f"{path} is not a COCO {role} file: {state}")
    return value


def _get(entry, key: str, path: Path, where: str):
    if not isinstance(entry, dict):
        raise TripleGenError(f"{path}: {where} is {type(entry).__name__}, not an object")
    if key not in entry:
        raise TripleGenError(f"{path}: {where} has no {key!r}")
    return entry[key]


def _int(entry, key: str, path: Path, where: str) -> int:
    value = _get(entry, key, path, where)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TripleGenError(f"{path}: {where} has {key} {value!r}; expected an integer")
    return value


def _text(entry, key: str, path: Path, where: str) -> str:
    value = _get(entry, key, path, where)
    if not isinstance(value, str) or not value:
        raise TripleGenError(f"{path}: {where} has {key} {value!r}; expected a non-empty string")
    return value


def _as_folder(prefix: str) -> str:
    """`val2017` and `val2017/` both mean the folder: a bare prefix would glue the folder to the name."""
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


def _summarise(table: pa.Table, output: Path, size: int, cooccurrence: Path | None = None) -> CocoSummary:
    images = len(pc.unique(table.column("image_id")))
    empty = pc.sum(pc.equal(table.column("caption"), "")).as_py() or 0
    without = categories = None
    if OBJECTS in table.column_names:
        objects = table.column(OBJECTS)
        bare = pc.equal(pc.list_value_length(objects), 0)
        without = len(pc.unique(table.column("image_id").filter(bare)))
        categories = len(pc.unique(pc.list_flatten(objects)))
    return CocoSummary(output, table.num_rows, images, empty, without, categories, size, cooccurrence)
