"""Readers for the evaluation sets: SugarCrepe++, CC-Neg, an image folder, the triple Parquet.

Each reader returns plain columns (texts and image references) and checks up front that every
image exists, so a run never fails after an hour of encoding because image 39,812 is missing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from semclip_core.files import atomic_path, refuse_folder, refuse_overwriting_inputs
from semclip_train.errors import SemClipError
from semclip_train.triples import ImageRef, image_ref, image_root_for, read_triples

SUGARCREPE_SUBSETS = ("replace_att", "replace_obj", "replace_rel", "swap_att", "swap_obj")
SUGARCREPE_FIELDS = ("id", "filename", "caption", "caption2", "negative_caption")
CCNEG_EVAL_SIZE = 40_000  # CC-Neg's evaluation split: the last 40,000 entries (as its authors split it)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def check_images_exist(images: list[ImageRef], image_root: Path | None) -> None:
    """One error naming how many images are missing and the first few."""
    missing = [ref.path for ref in images if ref.path is not None and not ref.path.is_file()]
    if missing:
        shown = ", ".join(str(path) for path in missing[:3])
        where = f" under {image_root}" if image_root else ""
        raise SemClipError(f"{len(missing)} of {len(images)} images are missing{where} (first: {shown})")


def _read_table(path: Path, columns: list[str], what: str) -> dict[str, list]:
    import pyarrow.parquet as pq

    if not path.is_file():
        raise SemClipError(f"{what} file not found: {path}")
    try:
        schema = pq.read_schema(path)
    except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
        raise SemClipError(f"{path} is not a readable Parquet file: {exc}") from exc
    absent = [name for name in columns if name not in schema.names]
    if absent:
        raise SemClipError(f"{path} has no column {', '.join(absent)} (columns: {', '.join(schema.names)})")
    try:
        table = pq.read_table(path, columns=columns)
    except Exception as exc:  # a corrupt page is found only as it is read
        raise SemClipError(f"{path} is not a readable Parquet file: {str(exc).strip().splitlines()[0]}") from None
    if table.num_rows == 0:
        raise SemClipError(f"{path} has no rows: nothing to evaluate")
    data = table.to_pydict()
    for name in columns:
        empty = sum(1 for value in data[name] if value is None or value == "")
        if empty:
            raise SemClipError(f"{path}: column {name!r} has {empty} empty values")
    return data


@dataclass
class CCNegSet:
    """CC-Neg-style items: an image, its true caption and its negated (false) caption."""

    images: list[ImageRef]
    captions: list[str]
    negations: list[str]


def load_ccneg(
    path: str | Path,
    image_root: str | Path | None = None,
    caption_col: str = "caption",
    negation_col: str = "negation",
    image_col: str = "image",
    check_images: bool = True,
) -> CCNegSet:
    """A Parquet with image, caption and negation columns (`ccneg-convert` writes one; a triple
    Parquet also qualifies). Relative image paths are read under `image_root` (default: the
    Parquet's folder); absolute paths as they are."""
    path = Path(path)
    root = image_root_for(path, image_root)
    data = _read_table(path, [image_col, caption_col, negation_col], "CC-Neg")
    images = [image_ref(value, root, f"{path}, row {row}") for row, value in enumerate(data[image_col])]
    if check_images:
        check_images_exist(images, root)
    return CCNegSet(images, data[caption_col], data[negation_col])


@dataclass
class TripleSet:
    """The triple Parquet for retrieval: image i matches caption i and paraphrase i."""

    images: list[ImageRef]
    captions: list[str]
    paraphrases: list[str]
    negations: list[str]


def load_triples(path: str | Path, image_root: str | Path | None = None, check_images: bool = True) -> TripleSet:
    """The triple Parquet, read as training reads it (`semclip_train.triples.read_triples`), one image per row."""
    triples = read_triples(Path(path), Path(image_root) if image_root else None)
    images = [triples.images[i] for i in triples.image_index]
    if check_images:
        check_images_exist(triples.images, image_root_for(Path(path), image_root))
    return TripleSet(images, triples.texts["caption"], triples.texts["paraphrase"], triples.texts["negation"])


@dataclass
class SugarCrepeSubset:
    """One SugarCrepe++ file: P1 (caption), P2 (caption2, a paraphrase), N (negative_caption)."""

    name: str
    ids: list
    filenames: list[str]
    captions: list[str]
    captions2: list[str]
    negatives: list[str]
    images: list[ImageRef] | None = None  # None: text-only (TOT)


def load_sugarcrepe(
    data_dir: str | Path, image_root: str | Path | None = None, subsets: list[str] | None = None
) -> dict[str, SugarCrepeSubset]:
    """The five JSON files of `data_dir`; images (COCO val2017) only when `image_root` is given."""
    data_dir = Path(data_dir)
    names = list(subsets or SUGARCREPE_SUBSETS)
    unknown = [name for name in names if name not in SUGARCREPE_SUBSETS]
    if unknown:
        raise SemClipError(f"unknown SugarCrepe++ subset {', '.join(unknown)} (choose from {', '.join(SUGARCREPE_SUBSETS)})")
    root = image_root_for(data_dir, image_root) if image_root else None
    result = {}
    for name in names:
        result[name] = _sugarcrepe_file(data_dir / f"{name}.json", name, root)
    if root is not None:
        check_images_exist([ref for subset in result.values() for ref in subset.images], root)
    return result


def _sugarcrepe_file(path: Path, name: str, root: Path | None) -> SugarCrepeSubset:
    if not path.is_file():
        raise SemClipError(f"SugarCrepe++ file not found: {path}")
    try:
        items = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SemClipError(f"{path} is not valid JSON: {exc}") from exc
    if isinstance(items, dict):  # also accept {"0": {...}, "1": {...}}
        items = list(items.values())
    if not isinstance(items, list) or not items:
        raise SemClipError(f"{path} holds no items")
    for position, item in enumerate(items):
        absent = [key for key in SUGARCREPE_FIELDS if not isinstance(item, dict) or item.get(key) in (None, "")]
        if absent:
            raise SemClipError(f"{path}: item {position} lacks {', '.join(absent)}")
    columns = {key: [item[key] for item in items] for key in SUGARCREPE_FIELDS}
    images = [image_ref(str(filename), root, f"{path}, item {n}") for n, filename in enumerate(columns["filename"])
              ] if root else None
    return SugarCrepeSubset(
        name=name,
        ids=columns["id"],
        filenames=columns["filename"],
        captions=columns["caption"],
        captions2=columns["caption2"],
        negatives=columns["negative_caption"],
        images=images,
    )


@dataclass
class ImageFolderSet:
    """Zero-shot classification: images with integer labels into `class_names`."""

    images: list[ImageRef]
    labels: list[int]
    class_names: list[str]  # the words put into the prompts


def load_image_folder(folder: str | Path, classes_file: str | Path | None = None) -> ImageFolderSet:
    """`folder/<class>/*.jpg`; `classes.txt` lists one class folder per line, optionally followed by
    a tab and the name used in prompts (default: the folder name with "_" read as a space)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SemClipError(f"image folder not found: {folder}")
    present = sorted(path.name for path in folder.iterdir() if path.is_dir())
    if classes_file is not None:
        entries = _read_classes(Path(classes_file))
    else:
        entries = [(name, name.replace("_", " ")) for name in present]
    listed = {directory for directory, _ in entries}
    unlisted = [name for name in present if name not in listed]
    if unlisted:
        raise SemClipError(f"{len(unlisted)} class folders are not in {classes_file}: {', '.join(unlisted[:5])}")
    images, labels = [], []
    for label, (directory, _) in enumerate(entries):
        class_dir = folder / directory
        if not class_dir.is_dir():
            raise SemClipError(f"class {directory!r} from {classes_file} has no folder {class_dir}")
        files = sorted(path for path in class_dir.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES)
        images += [ImageRef(key=str(path.resolve()), path=path) for path in files]
        labels += [label] * len(files)
    if not images:
        raise SemClipError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) found in the class folders of {folder}")
    return ImageFolderSet(images, labels, [name for _, name in entries])


def _read_classes(path: Path) -> list[tuple[str, str]]:
    if not path.is_file():
        raise SemClipError(f"classes file not found: {path}")
    entries = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        directory, _, name = line.partition("\t")
        directory = directory.strip()
        entries.append((directory, name.strip() or directory.replace("_", " ")))
    if not entries:
        raise SemClipError(f"{path} lists no classes")
    return entries


def convert_ccneg(
    source: str | Path,
    output: str | Path,
    split: str = "eval",
    strip_prefix: str | None = None,
    keep_commas: bool = False,
) -> int:
    """CC-Neg's `ccneg_preprocessed.pt` (lists `image_paths` and `annotations`, each annotation with
    `json.caption` and `sop_data.negative-prompt`) -> Parquet with id, image, caption, negation.

    `split="eval"` keeps the last 40,000 entries (the evaluation split), "train" the rest, "all"
    everything. The reference evaluation deletes commas from the negated caption; so do we, unless
    `keep_commas`. The file is read with `weights_only=True`: plain containers, nothing executed.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    import torch

    source, output = Path(source), Path(output)
    if not source.is_file():
        raise SemClipError(f"CC-Neg annotation file not found: {source}")
    refuse_folder(output, "-o")
    refuse_overwriting_inputs({"-o": output}, [source])
    try:
        data = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as exc:  # the unpickler's errors have no common type
        raise SemClipError(f"cannot read {source} as CC-Neg annotations: {str(exc).splitlines()[0]}") from exc
    if not isinstance(data, dict) or "image_paths" not in data or "annotations" not in data:
        raise SemClipError(f"{source} lacks the CC-Neg keys 'image_paths' and 'annotations'")
    paths, annotations = list(data["image_paths"]), list(data["annotations"])
    if len(paths) != len(annotations):
        raise SemClipError(f"{source}: {len(paths)} image paths but {len(annotations)} annotations")
    ranges = {"eval": slice(-CCNEG_EVAL_SIZE, None), "train": slice(None, -CCNEG_EVAL_SIZE), "all": slice(None)}
    if split not in ranges:
        raise SemClipError(f"split must be one of {', '.join(ranges)}, got {split!r}")
    offset = range(len(paths))[ranges[split]]
    rows = {"id": [], "image": [], "caption": [], "negation": []}
    for index in offset:
        try:
            caption = annotations[index]["json"]["caption"]
            negation = annotations[index]["sop_data"]["negative-prompt"]
        except (KeyError, TypeError) as exc:
            raise SemClipError(f"{source}: annotation {index} lacks json.caption or sop_data.negative-prompt") from exc
        path = str(paths[index])
        if strip_prefix and path.startswith(strip_prefix):
            path = path[len(strip_prefix) :].lstrip("/")
        rows["id"].append(str(index))
        rows["image"].append(path)
        rows["caption"].append(caption)
        rows["negation"].append(negation if keep_commas else negation.replace(",", ""))
    table = pa.table(rows, schema=pa.schema([(name, pa.string()) for name in rows]))
    metadata = {"source": str(source), "split": split, "strip_prefix": strip_prefix, "keep_commas": keep_commas}
    table = table.replace_schema_metadata({b"semclip_eval": json.dumps(metadata).encode()})
    with atomic_path(output) as tmp:
        pq.write_table(table, tmp)
    return table.num_rows
