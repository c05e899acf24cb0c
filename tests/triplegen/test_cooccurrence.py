"""Plausible absent objects: the label co-occurrence table (`coco --cooccurrence`), `generate
--cooccurrence`, and the fit of an absent object with every object the image shows."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from triplegen.cli import app
from triplegen.io.coco import coco_cooccurrence
from triplegen.config import GenerateConfig
from triplegen.cooccurrence import Cooccurrence, read_cooccurrence, write_cooccurrence
from triplegen.errors import TripleGenError
from triplegen.objects import MIN_FIT, ObjectVocabulary
from triplegen.orchestration.resume import WorkFolder
from triplegen.rules.absent import plan_absent
from triplegen.orchestration.run import generate

runner = CliRunner()

CATEGORIES = [{"id": i, "name": name, "supercategory": "x"} for i, name in
              enumerate(["person", "fork", "knife", "oven", "sink", "skis", "Dining  Table"], start=1)]
# image id -> category ids of its instances (repeats: two of a kind count once; 7 is a crowd)
SCENES = {1: [1, 2, 3, 7], 2: [2, 3, 7], 3: [4, 5, 1, 1], 4: [6, 1], 5: [1, 7], 6: []}


def _coco(folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    images = [{"id": i, "file_name": f"{i:012d}.jpg"} for i in SCENES]
    instances = [{"id": 100 * image + k, "image_id": image, "category_id": c, "area": 10.0 * (k + 1),
                  "iscrowd": int(c == 7), "bbox": [0, 0, 1, 1]}
                 for image, cats in SCENES.items() for k, c in enumerate(cats)]
    captions = [{"id": i, "image_id": i, "caption": f"Picture number {i}."} for i in SCENES]
    (folder / "captions.json").write_text(json.dumps({"images": images, "annotations": captions}))
    (folder / "instances.json").write_text(json.dumps({"images": images, "annotations": instances,
                                                       "categories": CATEGORIES}))
    return folder / "captions.json", folder / "instances.json"


def _one_line_error(result, message: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.output


# --- the table -------------------------------------------------------------------------------------

def test_coco_writes_the_table_with_image_counts_per_label_and_pair(tmp_path):
    captions, instances = _coco(tmp_path / "coco")
    table_path = tmp_path / "out" / "cooc.parquet"
    result = runner.invoke(app, ["coco", str(captions), str(instances), "-o", str(tmp_path / "out" / "caps.parquet"),
                                 "--cooccurrence", str(table_path)])
    assert result.exit_code == 0, result.output
    assert f"{table_path}: label co-occurrence table" in result.output
    rows = {(r["label"], r["other"]): r["images"] for r in pl.read_parquet(table_path).to_dicts()}
    own = {label: n for (label, other), n in rows.items() if other is None}
    assert own == {"person": 4, "fork": 2, "knife": 2, "dining table": 3, "oven": 1, "sink": 1, "skis": 1}
    assert rows[("fork", "knife")] == rows[("knife", "fork")] == 2
    assert rows[("dining table", "person")] == 2  # the crowd's table counts
    assert rows[("oven", "person")] == 1 and ("skis", "fork") not in rows
    assert json.loads(pq.read_schema(table_path).metadata[b"semclip.cooccurrence"]) == {
        "images": 6, "source": "instances.json", "version": 1}  # image 6 has no instances and counts
    loaded = read_cooccurrence(table_path)
    assert loaded == coco_cooccurrence(instances)  # the same from Python
    assert loaded.together("sink", "oven") == 1 and loaded.images == 6


def test_the_table_round_trips_and_is_written_the_same_every_time(tmp_path):
    table = Cooccurrence.of_images([["Cat", "couch"], ["cat"], [], ["couch", "tv", "cat"]], source="hand")
    first = write_cooccurrence(table, tmp_path / "a.parquet")
    second = write_cooccurrence(Cooccurrence.of_images([["cat", "couch"], ["cat"], [], ["tv", "couch", "cat"]],
                                                       source="hand"), tmp_path / "b.parquet")
    assert first.read_bytes() == second.read_bytes()
    assert read_cooccurrence(first) == table and table.counts["cat"] == 3 and table.together("tv", "cat") == 1


def test_coco_refuses_bad_table_outputs(tmp_path):
    captions, instances = _coco(tmp_path / "coco")
    out = ["-o", str(tmp_path / "caps.parquet")]
    _one_line_error(runner.invoke(app, ["coco", str(captions), *out, "--cooccurrence", str(tmp_path / "c.parquet")]),
                    "counts the labels of the instances file")
    _one_line_error(runner.invoke(app, ["coco", str(captions), str(instances), *out, "--cooccurrence",
                                        str(instances), "--overwrite"]), "is the instances input")
    _one_line_error(runner.invoke(app, ["coco", str(captions), str(instances), *out, "--cooccurrence",
                                        str(tmp_path / "caps.parquet")]), "is the captions output")
    (tmp_path / "c.parquet").write_bytes(b"old")
    _one_line_error(runner.invoke(app, ["coco", str(captions), str(instances), *out, "--cooccurrence",
                                        str(tmp_path / "c.parquet")]), "already exists; pass --overwrite")
    assert (tmp_path / "c.parquet").read_bytes() == b"old" and not (tmp_path / "caps.parquet").exists()


# --- the fit of an absent object -------------------------------------------------------------------

def _vocabulary(rows, table: Cooccurrence | None = None) -> ObjectVocabulary:
    vocabulary = ObjectVocabulary(table=table)
    for labels in rows:
        vocabulary.add(labels)
    return vocabulary.freeze()


# COCO's proportions: people in half the images, skis only with people, living rooms, kitchens, cars
WORLD = 10 * ([["person", "skis"]] * 40 + [["person", "couch", "tv"]] * 30 + [["couch", "tv", "remote"]] * 20
              + [["person", "couch", "remote"]] * 10 + [["oven", "sink", "fork"]] * 30 + [["oven", "sink"]] * 30
              + [["person"]] * 420 + [["car"]] * 420)


def test_a_label_seen_with_people_is_not_plausible_in_a_living_room():
    vocabulary = _vocabulary(WORLD)
    assert vocabulary.fit("skis", ["person", "couch"]) < MIN_FIT <= vocabulary.fit("remote", ["person", "couch"])
    chosen = Counter(vocabulary.choose_absent(["person", "couch"], "A man on a sofa.", random.Random(i))
                     for i in range(300))
    assert set(chosen) == {"tv", "remote"}  # never skis, though summed counts would favour it
    assert vocabulary.choose_absent(["oven", "sink"], "A kitchen.", random.Random(0)) == "fork"


def test_nothing_plausible_gives_none():
    vocabulary = _vocabulary(WORLD)
    assert vocabulary.choose_absent(["skis"], "Skiing.", random.Random(0)) == "person"
    assert vocabulary.choose_absent(["oven", "sink"], "A kitchen with a fork.", random.Random(0)) is None  # named
    assert vocabulary.choose_absent(["oven", "sink"], "A kitchen.", random.Random(0), exclude={"fork"}) is None
    assert vocabulary.choose_absent(["giraffe"], "A giraffe.", random.Random(0)) is None  # never seen with anything
    assert vocabulary.choose_absent(["person", "skis"], "Skiers.", random.Random(0)) is None  # only living rooms met
    assert plan_absent("r", "A giraffe.", ["giraffe"], 2, vocabulary, seed=0) == []


def test_choices_are_seeded_and_ignore_the_order_of_the_labels():
    vocabulary = _vocabulary(WORLD)
    draws = [vocabulary.choose_absent(["couch", "person"], "A room.", random.Random(f"0\x1fr{i}")) for i in range(50)]
    again = _vocabulary(list(reversed(WORLD)))
    assert draws == [again.choose_absent(["person", "couch"], "A room.", random.Random(f"0\x1fr{i}"))
                     for i in range(50)]
    assert len(set(draws)) == 2


def test_the_table_replaces_the_inputs_counts_for_the_labels_it_knows():
    table = Cooccurrence.of_images([["plate", "fork"]] * 30 + [["person", "skis"]] * 30 + [["plate", "person"]] * 5)
    # the input alone: one plate, seen once with skis (a wrong label, say); "napkin" is unknown to the table
    vocabulary = _vocabulary([["plate", "skis"], ["plate", "napkin"], ["person"]], table)
    chosen = Counter(vocabulary.choose_absent(["plate"], "A plate.", random.Random(i)) for i in range(200))
    assert "skis" not in chosen and {"fork", "napkin"} <= set(chosen) <= {"fork", "person", "napkin"}


# --- generate --cooccurrence -----------------------------------------------------------------------

def _kitchen_input(path: Path) -> Path:
    """Scenes whose labels never meet across rows: the input alone has no statistics to choose from."""
    pl.DataFrame({"id": ["k1", "k2", "s1"], "caption": ["A kitchen with an oven.", "A sink by a window.",
                                                        "A skier on a slope."],
                  "objects": [["oven"], ["sink"], ["person", "skis"]]}).write_parquet(path)
    return path


def _kitchen_table(path: Path, fork: int = 50) -> Path:
    rows = [["oven", "sink", "fork"]] * fork + [["oven", "sink", "knife"]] * 50 + [["person", "skis"]] * 50
    return write_cooccurrence(Cooccurrence.of_images(rows + [["person"]] * 100), path, overwrite=True)


def test_generate_with_a_table_gives_the_kitchen_a_kitchen_object(tmp_path):
    captions = _kitchen_input(tmp_path / "caps.parquet")
    table = _kitchen_table(tmp_path / "cooc.parquet")
    args = ["generate", str(captions), "--absent-objects", "2", "--quiet"]
    result = runner.invoke(app, [*args, "-o", str(tmp_path / "alone")])
    assert result.exit_code == 0, result.output
    assert pl.read_parquet(tmp_path / "alone" / "triples.parquet").filter(pl.col("kind") != "caption").height == 0
    result = runner.invoke(app, [*args, "-o", str(tmp_path / "with"), "--cooccurrence", str(table)])
    assert result.exit_code == 0, result.output
    out = pl.read_parquet(tmp_path / "with" / "triples.parquet")
    absent = dict(out.filter(pl.col("kind") != "caption").select("id", "absent_object").iter_rows())
    assert {absent["k1#absent-1"], absent["k1#absent-2"]} <= {"sink", "fork", "knife"}
    assert {absent["k2#absent-1"], absent["k2#absent-2"]} <= {"oven", "fork", "knife"}
    assert not any(key.startswith("s1#") for key in absent)  # skis and people meet nothing else


def test_a_resumed_run_with_another_table_is_refused(tmp_path, monkeypatch):
    captions = _kitchen_input(tmp_path / "caps.parquet")
    table = _kitchen_table(tmp_path / "cooc.parquet")
    config = GenerateConfig(input=captions, output=tmp_path / "t.parquet", absent_objects=1, chunk_size=1,
                            cooccurrence=table, quiet=True)
    monkeypatch.setattr(WorkFolder, "remove", lambda self: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        generate(config)
    monkeypatch.undo()
    _kitchen_table(table, fork=51)  # the same file, edited in place
    with pytest.raises(TripleGenError, match="different cooccurrence"):
        generate(config)
    with pytest.raises(TripleGenError, match="different cooccurrence"):
        generate(config.model_copy(update={"cooccurrence": None}))
    assert generate(config.model_copy(update={"overwrite": True})).rows == 3


def _bad_tables(tmp_path: Path) -> dict[str, Path]:
    good = _kitchen_table(tmp_path / "good.parquet")
    plain = tmp_path / "plain.parquet"
    pq.write_table(pq.read_table(good).replace_schema_metadata(None), plain)
    lopsided = tmp_path / "lopsided.parquet"
    table = pq.read_table(good)
    images = [n + 1 if (label, other) == ("fork", "oven") else n for label, other, n in
              zip(*(table.column(c).to_pylist() for c in ("label", "other", "images")))]
    pq.write_table(table.set_column(2, table.schema.field("images"), pa.array(images, pa.int64())), lopsided)
    (tmp_path / "text.parquet").write_text("label,other,images\n")
    return {"not found": tmp_path / "missing.parquet", "is not a Parquet file": tmp_path / "text.parquet",
            "is not a co-occurrence table": plain, "one way and": lopsided}


def test_a_bad_table_is_one_line_and_exit_2(tmp_path):
    captions = _kitchen_input(tmp_path / "caps.parquet")
    for message, path in _bad_tables(tmp_path).items():
        result = runner.invoke(app, ["generate", str(captions), "-o", str(tmp_path / "t"), "--absent-objects", "1",
                                     "--cooccurrence", str(path)])
        _one_line_error(result, message)
        assert not (tmp_path / "t" / "triples.parquet").exists()
    _one_line_error(runner.invoke(app, ["generate", str(captions), "-o", str(tmp_path / "t"), "--cooccurrence",
                                        str(tmp_path / "good.parquet")]), "add --absent-objects")
