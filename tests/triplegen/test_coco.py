"""`triplegen coco`: COCO-format captions + instances to a captions Parquet that `generate` reads."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from triplegen.cli import app
from triplegen.io.coco import coco_captions, coco_schema
from triplegen.io.readers import CaptionSource

runner = CliRunner()

IMAGES = [
    {"id": 285, "file_name": "000000000285.jpg", "height": 640, "width": 586},
    {"id": 139, "file_name": "000000000139.jpg", "height": 426, "width": 640},
    {"id": 724, "file_name": "000000000724.jpg", "height": 500, "width": 375},  # no instances at all
    {"id": 632, "file_name": "000000000632.jpg", "height": 483, "width": 640},
    {"id": 776, "file_name": "000000000776.jpg", "height": 640, "width": 428},  # no captions: no row
]
# Out of order on purpose; 101 sorts after 3 (numbers, not text).
CAPTIONS = [
    {"id": 9, "image_id": 632, "caption": "A bedroom with a neatly made bed."},
    {"id": 101, "image_id": 139, "caption": " A living room with a couch and a TV.\n"},
    {"id": 3, "image_id": 139, "caption": "Two people   watching television in a living room."},
    {"id": 57, "image_id": 285, "caption": "A brown bear walking through the grass."},
    {"id": 12, "image_id": 285, "caption": "A large bear in a field."},
    {"id": 700, "image_id": 724, "caption": "A stop sign on a street corner."},
    {"id": 701, "image_id": 724, "caption": "A red stop sign next to a road."},
    {"id": 8, "image_id": 632, "caption": "A bed and a stack of books."},
]
CATEGORIES = [
    {"id": 1, "name": "person", "supercategory": "person"},
    {"id": 13, "name": "stop sign", "supercategory": "outdoor"},
    {"id": 23, "name": "bear", "supercategory": "animal"},
    {"id": 62, "name": "chair", "supercategory": "furniture"},
    {"id": 64, "name": "potted plant", "supercategory": "furniture"},
    {"id": 65, "name": "bed", "supercategory": "furniture"},
    {"id": 72, "name": "tv", "supercategory": "electronic"},
    {"id": 84, "name": "book", "supercategory": "indoor"},
]
POLYGON = [[10.0, 10.0, 50.0, 10.0, 50.0, 40.0, 10.0, 40.0]]
CROWD = {"counts": [120, 30, 400, 25], "size": [426, 640]}


def _instance(id, image_id, category_id, area, iscrowd=0):
    return {"id": id, "image_id": image_id, "category_id": category_id, "area": area, "iscrowd": iscrowd,
            "bbox": [10.0, 10.0, 40.0, 30.0], "segmentation": CROWD if iscrowd else POLYGON}


INSTANCES = [
    _instance(1, 139, 1, 1200.5),
    _instance(2, 139, 1, 5000.0, iscrowd=1),  # a crowd of people is still people
    _instance(3, 139, 72, 1500.0),
    _instance(4, 139, 62, 1500.0),  # ties with tv: by name
    _instance(5, 139, 64, 300.0),
    _instance(6, 285, 23, 50000.0),
    _instance(7, 285, 1, 100.0, iscrowd=1),  # person only as a crowd
    _instance(8, 632, 65, 40000.0),
    _instance(9, 632, 84, 200.0),
    _instance(10, 632, 84, 150.0),  # two books (350) outweigh one person (300)
    _instance(11, 632, 1, 300.0),
    _instance(12, 776, 13, 900.0),
]
OBJECTS = {139: ["person", "chair", "tv", "potted plant"], 285: ["bear", "person"], 632: ["bed", "book", "person"],
           724: []}
ORDER = [("3", 139), ("101", 139), ("12", 285), ("57", 285), ("8", 632), ("9", 632), ("700", 724), ("701", 724)]


def _write(path: Path, value) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value))
    return path


def _coco(folder: Path, captions=None, instances=None, images=None, instance_images=None, categories=None):
    """A COCO-shaped pair of files as the COCO download unpacks them, with any part replaced."""
    info = {"description": "hand-written test set", "version": "1.0"}
    caption_file = _write(folder / "annotations" / "captions_val2017.json", {
        "info": info, "images": IMAGES if images is None else images,
        "annotations": CAPTIONS if captions is None else captions})
    instance_file = _write(folder / "annotations" / "instances_val2017.json", {
        "info": info, "images": IMAGES if instance_images is None else instance_images,
        "annotations": INSTANCES if instances is None else instances,
        "categories": CATEGORIES if categories is None else categories})
    return caption_file, instance_file


def _run(*args):
    return runner.invoke(app, ["coco", *map(str, args)])


def _one_line_error(result, message: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.output


def test_one_row_per_caption_with_prefixed_paths_and_objects_by_area(tmp_path):
    captions, instances = _coco(tmp_path)
    table = coco_captions(captions, instances, image_prefix="val2017/")
    assert table.schema == coco_schema(with_objects=True)
    assert table.column_names == ["id", "image", "caption", "objects", "image_id"]
    rows = table.to_pylist()
    assert [(row["id"], row["image_id"]) for row in rows] == ORDER
    assert rows[0]["image"] == "val2017/000000000139.jpg"
    assert {row["image_id"]: row["objects"] for row in rows} == OBJECTS
    assert [row["caption"] for row in rows][:2] == ["Two people watching television in a living room.",
                                                    "A living room with a couch and a TV."]
    assert coco_captions(captions, instances, image_prefix="val2017").equals(table)  # the folder, with or without /
    assert coco_captions(captions, instances).column("image").to_pylist()[0] == "000000000139.jpg"


def test_without_instances_there_is_no_objects_column(tmp_path):
    captions, _ = _coco(tmp_path)
    table = coco_captions(captions)
    assert table.column_names == ["id", "image", "caption", "image_id"]
    result = _run(captions, "-o", tmp_path / "caps.parquet")
    assert result.exit_code == 0, result.output
    assert "8 captions of 4 images; no instances file, so no objects column" in result.output


def test_the_command_writes_a_file_that_captionsource_and_polars_read(tmp_path):
    captions, instances = _coco(tmp_path)
    output = tmp_path / "out" / "captions.parquet"
    result = _run(captions, instances, "-o", output, "--image-prefix", "val2017/")
    assert result.exit_code == 0, result.output
    assert result.output == f"{output}: 8 captions of 4 images; 1 image without objects; 7 categories\n"
    assert [p.name for p in output.parent.iterdir()] == ["captions.parquet"]

    source = CaptionSource(output)
    assert (source.columns.id, source.columns.image, source.columns.caption) == ("id", "image", "caption")
    assert [f.name for f in source.extra_fields] == ["objects", "image_id"]
    batch = pa.Table.from_batches(list(source.batches()))
    assert batch.column("id").to_pylist() == [row_id for row_id, _ in ORDER]

    frame = pl.read_parquet(output)
    assert frame.schema["objects"] == pl.List(pl.String) and frame.schema["image_id"] == pl.Int64
    assert frame.filter(pl.col("id") == "3")["objects"].to_list() == [OBJECTS[139]]
    assert frame.filter(pl.col("image_id") == 724)["objects"].to_list() == [[], []]


def test_then_generate_carries_the_objects_into_the_triples(tmp_path, monkeypatch):
    _coco(tmp_path / "coco")
    monkeypatch.chdir(tmp_path)
    made = ["coco", "coco/annotations/captions_val2017.json", "coco/annotations/instances_val2017.json",
            "-o", "captions.parquet", "--image-prefix", "val2017/"]
    generate = ["generate", "captions.parquet", "-o", "triples.parquet"]
    for argv in (made, generate, ["validate", "triples.parquet"]):
        result = runner.invoke(app, argv)
        assert result.exit_code == 0, result.output

    triples = pq.read_table(tmp_path / "triples.parquet")
    rejects = pq.read_table(tmp_path / "triples.rejects.parquet")
    assert triples.num_rows + rejects.num_rows == len(CAPTIONS) and triples.num_rows > 0
    assert triples.schema.field("objects").type == pa.list_(pa.string())
    for row in triples.select(["id", "image", "objects", "image_id"]).to_pylist():
        assert row["objects"] == OBJECTS[row["image_id"]]
        assert row["image"] == f"val2017/{row['image_id']:012d}.jpg"


def test_empty_captions_are_kept_and_generate_rejects_them(tmp_path):
    captions, instances = _coco(tmp_path, captions=CAPTIONS[:2] + [{"id": 5, "image_id": 285, "caption": "  "},
                                                                     {"id": 6, "image_id": 285, "caption": None}])
    output = tmp_path / "caps.parquet"
    result = _run(captions, instances, "-o", output)
    assert result.exit_code == 0, result.output
    assert "2 empty captions (generate rejects them as empty_caption)" in result.output
    assert pq.read_table(output).column("caption").to_pylist() == ["A living room with a couch and a TV.", "", "",
                                                                   "A bedroom with a neatly made bed."]
    result = runner.invoke(app, ["generate", str(output), "-o", str(tmp_path / "t.parquet"), "--quiet"])
    assert result.exit_code == 0, result.output
    rejects = pq.read_table(tmp_path / "t.rejects.parquet").to_pylist()
    assert {(r["id"], r["reason"]) for r in rejects} == {("5", "empty_caption"), ("6", "empty_caption")}


def test_an_existing_output_needs_overwrite_and_an_input_is_never_replaced(tmp_path):
    captions, instances = _coco(tmp_path)
    output = tmp_path / "caps.parquet"
    output.write_bytes(b"previous")
    _one_line_error(_run(captions, instances, "-o", output), "already exists; pass --overwrite")
    assert output.read_bytes() == b"previous"
    assert _run(captions, instances, "-o", output, "--overwrite").exit_code == 0
    assert pq.read_table(output).num_rows == len(CAPTIONS)
    for source, role in ((captions, "captions"), (instances, "instances")):
        before = source.read_bytes()
        _one_line_error(_run(captions, instances, "-o", source, "--overwrite"), f"is the {role} input")
        assert source.read_bytes() == before
    _one_line_error(_run(captions, instances, "-o", tmp_path / "caps.json"), "must end in .parquet")


def _without(entries, index, key):
    changed = [dict(entry) for entry in entries]
    del changed[index][key]
    return changed


BAD = {
    "captions not JSON": (lambda c, i: c.write_text('{"images": [}'), "captions", "is not JSON: Expecting value"),
    "instances not JSON": (lambda c, i: i.write_bytes(b"\xff\xfe{}"), "instances", "is not JSON"),
    "top level a list": (lambda c, i: c.write_text("[]"), "captions", "its top level is a JSON list"),
    "no annotations": (lambda c, i: _write(c, {"images": IMAGES}), "captions", "has no 'annotations' list"),
    "no images": (lambda c, i: _write(c, {"annotations": CAPTIONS}), "captions", "has no 'images' list"),
    "no categories": (lambda c, i: _write(i, {"images": IMAGES, "annotations": INSTANCES}), "instances",
                      "is not a COCO instances file: it has no 'categories' list"),
    "no instance images": (lambda c, i: _write(i, {"annotations": INSTANCES, "categories": CATEGORIES}), "instances",
                           "has no 'images' list"),
    "caption without text": (lambda c, i: _coco(c.parents[1], captions=_without(CAPTIONS, 2, "caption")), "captions",
                             "annotations[2] has no 'caption'"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_files_that_are_not_coco_shaped(tmp_path, name):
    spoil, which, message = BAD[name]
    captions, instances = _coco(tmp_path)
    spoil(captions, instances)
    output = tmp_path / "caps.parquet"
    _one_line_error(_run(captions, instances, "-o", output), message)
    assert str(captions if which == "captions" else instances) in _run(captions, instances, "-o", output).output
    assert not output.exists()


@pytest.mark.parametrize("change, message", [
    ({"captions": CAPTIONS + [{"id": 900, "image_id": 999, "caption": "A cat."}]},
     "caption 900 (annotations[8]) points to image id 999, which is not in its 'images' list"),
    ({"instances": INSTANCES + [_instance(13, 139, 77, 10.0)]},
     "annotations[12] points to category id 77, which is not in its 'categories' list"),
    ({"instances": INSTANCES + [_instance(13, 999, 1, 10.0)]},
     "annotations[12] points to image id 999, which is not in its 'images' list"),
    ({"captions": CAPTIONS + [{"id": 57, "image_id": 139, "caption": "A cat."}]},
     "caption id 57 appears twice (annotations[3] and annotations[8])"),
    ({"instance_images": [{"id": 139, "file_name": "000000000139.jpg"}]},
     "describes other images than"),
    ({"categories": CATEGORIES + [{"id": 1, "name": "human"}]}, "category id 1 appears twice"),
    ({"images": IMAGES + [{"id": 139, "file_name": "x.jpg"}]}, "image id 139 appears twice"),
    ({"captions": [{"id": 1, "image_id": "139", "caption": "A cat."}]}, "has image_id '139'; expected an integer"),
    ({"captions": [{"id": 1.5, "image_id": 139, "caption": "A cat."}]}, "expected an integer or a string"),
    ({"instances": INSTANCES + [{**_instance(13, 139, 1, 10.0), "area": "big"}]}, "has area 'big'; expected a number"),
])
def test_inconsistent_files_are_refused_in_one_line(tmp_path, change, message):
    captions, instances = _coco(tmp_path, **change)
    output = tmp_path / "caps.parquet"
    _one_line_error(_run(captions, instances, "-o", output), message)
    assert not output.exists()


def test_the_image_set_mismatch_says_how_many_captioned_images_are_missing(tmp_path):
    captions, instances = _coco(tmp_path, instance_images=IMAGES[:1], instances=[_instance(1, 285, 23, 10.0)])
    result = _run(captions, instances, "-o", tmp_path / "caps.parquet")
    _one_line_error(result, "3 of 4 captioned images have no entry in its 'images' list (e.g. image id 139)")
    assert "use the instances file of the same split" in result.output


def test_missing_files_and_swapped_files(tmp_path):
    captions, instances = _coco(tmp_path)
    output = tmp_path / "caps.parquet"
    _one_line_error(_run(tmp_path / "nope.json", "-o", output), "captions file not found")
    _one_line_error(_run(captions, tmp_path / "nope.json", "-o", output), "instances file not found")
    _one_line_error(_run(tmp_path, "-o", output), "is a folder")
    _one_line_error(_run(instances, captions, "-o", output), "looks like an instances file")
    _one_line_error(_run(captions, captions, "-o", output), "looks like a captions file")
    assert not output.exists()


def test_help_has_examples_and_the_group_help_names_the_command():
    result = runner.invoke(app, ["coco", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "Examples:" in result.output and "--image-prefix val2017/" in result.output
    assert "triplegen coco" in runner.invoke(app, ["--help"], env={"COLUMNS": "200"}).output


@pytest.mark.parametrize("role", ["captions", "instances"])
def test_json_nested_100000_deep_is_one_line(tmp_path, role):
    captions, instances = _coco(tmp_path)
    deep = captions if role == "captions" else instances
    deep.write_text('{"images": ' + "[" * 100_000 + "]" * 100_000 + "}")
    _one_line_error(_run(captions, instances, "-o", tmp_path / "caps.parquet"),
                    f"{deep} is not a COCO {role} file: its JSON is nested too deeply to read")
    assert not (tmp_path / "caps.parquet").exists()
