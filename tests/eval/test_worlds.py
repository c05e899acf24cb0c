"""The family of synthetic worlds: drawn from a seed, recorded in the files, scored by semclip-eval."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image
from typer.testing import CliRunner

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from semclip_train.evaluation.synthetic import (  # noqa: E402
    BACKGROUND, generate_items, generate_test_items, holds_all, scope_pairs,
)
from semclip_train.evaluation.synthetic_data import load_scenes, load_world, write_benchmark  # noqa: E402
from semclip_train.evaluation.worlds import (  # noqa: E402
    DEFAULT, PALETTE, SCOPE_AFTER, SCOPE_BEFORE, World, world_from_spec,
)

WORLDS = [World.sample(n) for n in (1, 2, 3, 5, 101, 104)]
NEVER_WRITTEN = {t[1:] for t in SCOPE_AFTER + SCOPE_BEFORE if t.startswith("*")}


def test_a_world_is_the_same_from_the_same_number_and_differs_between_numbers():
    assert World.sample(7) == World.sample(7)
    drawn = [World.sample(n) for n in range(1, 21)]
    assert len({json.dumps(w.to_json()) for w in drawn}) == 20
    # what a recipe could overfit to varies across the family
    assert {len(w.kinds()) for w in drawn} >= {15, 36}
    assert {w.max_objects for w in drawn} == {2, 3}
    assert {g for w in drawn for g in w.grammars} == {"phrase", "there is", "sentence", "with"}
    assert any(w.sizes for w in drawn) and any(w.textures for w in drawn) and any(w.capitalised for w in drawn)
    assert {w.relation_words["above"] for w in drawn} != {("above",)}


def test_world_specs_and_their_json_round_trip(tmp_path):
    world = World.sample(101)
    assert World.from_json(json.loads(json.dumps(world.to_json()))) == world
    assert world_from_spec("default") is DEFAULT and world_from_spec(None) is DEFAULT
    assert world_from_spec("101") == world
    path = tmp_path / "world.json"
    path.write_text(json.dumps(world.to_json()))
    assert world_from_spec(str(path)) == world
    with pytest.raises(ValueError, match="neither 'default', a number nor a JSON file"):
        world_from_spec("no-such-world")
    path.write_text('{"name": "x"}')
    with pytest.raises(ValueError, match="not a world description"):
        world_from_spec(str(path))
    teal = world.to_json()
    teal["colours"]["teal"] = [0, 128, 128]  # the renderer draws the palette's colours only
    path.write_text(json.dumps(teal))
    with pytest.raises(ValueError, match="unknown colour 'teal'"):
        world_from_spec(str(path))


def test_the_project_world_is_unchanged():
    """The default world's items are those every earlier benchmark number was measured on."""
    items = list(generate_items(300, 3))
    digest = hashlib.sha256(json.dumps([(i.id, i.caption, i.paraphrase, i.negation, i.scene.to_json())
                                        for i in items]).encode()).hexdigest()
    assert digest == "ad3fe99c8bc0c666fdaa27e4f734bd779ff300dd4fc5963e45f87a35a80db7c5"
    assert items[0].id == "synthetic-3-0" and all(set(o) == {"colour", "shape", "row", "col"}
                                                  for i in items for o in i.scene.to_json())


@pytest.mark.parametrize("world", WORLDS, ids=lambda w: w.name)
def test_captions_follow_the_worlds_words_and_grammar(world):
    items = list(generate_items(300, 0, 0.5, world))
    kinds = {" ".join(k) for k in world.kinds()}
    relation_words = {w for words in world.relation_words.values() for w in words}
    for item in items:
        assert holds_all(list(item.clauses), item.scene) and not holds_all(list(item.negation_clauses), item.scene)
        assert item.paraphrase != item.caption and item.id.startswith(f"synthetic-{world.name}-0-")
        assert len(item.scene.objects) <= world.max_objects
        for text in (item.caption, item.paraphrase, item.negation):
            assert text.endswith(".") == world.capitalised and text[0].isupper() == world.capitalised
        named = re.findall(r"\b(?:a|no) ((?:\w+ ){1,3}?(?:" + "|".join(world.shapes) + r"))\b", item.caption.lower())
        assert named and set(named) <= kinds, (item.caption, named)
    captions = " ".join(item.caption.lower() for item in items)
    assert any(f" {word} " in captions for word in relation_words)
    if world.grammars == ("sentence",):
        assert all(" is " in item.caption or item.caption.lower().startswith("there is") for item in items)
    if "with" in world.grammars:
        assert re.search(r" with an? .+ it\b", captions)


@pytest.mark.parametrize("world", WORLDS, ids=lambda w: w.name)
def test_scope_pairs_in_both_orders_with_wordings_triplegen_never_writes(world):
    items = generate_test_items(60, 1, 0.5, world)
    pairs = scope_pairs([item.scene for item in items], 1, world)
    groups = {name.split("/")[0] for name in pairs}
    assert groups == {"after", "before", "other"}
    for group in ("after", "before"):
        templates = [t for t, _ in world.scope_forms[group]]
        assert len(templates) == 2 and set(templates) & NEVER_WRITTEN
    for name, (true, false) in pairs.items():
        for item, t, f in zip(items, true, false):
            assert sorted(re.findall(r"\w+", t.lower())) == sorted(re.findall(r"\w+", f.lower())) and t != f
            assert len(re.findall(r"\b(no|without|not)\b", t.lower())) == 1
            shown = {" ".join(k) for k in item.scene.kinds()}
            first = re.search(r"\b(?:a|no) ((?:\w+ ){1,3}?(?:" + "|".join(world.shapes) + r"))\b", t.lower()).group(1)
            # "after": the shown object comes first; "before": the denied (absent) one does
            assert (first in shown) == name.startswith(("after", "other/0")), (name, t)


def test_images_draw_every_shape_size_and_texture(tmp_path):
    world = World(name="all", colours={"red": PALETTE["red"], "white": PALETTE["white"]},
                  shapes=("circle", "square", "triangle", "diamond", "cross", "hexagon"), sizes=("small", "big"),
                  textures=("hollow", "solid"), max_objects=3, relation_words=DEFAULT.relation_words,
                  scope_forms=DEFAULT.scope_forms)
    test = write_benchmark(tmp_path, test_count=80, seed=2, image_size=64, splits=("test",), world=world)["test"]
    assert load_world(test) == world
    area = {"small": [], "big": []}
    fill = {"hollow": [], "solid": []}
    for row, scene in zip(pq.read_table(test).to_pylist(), load_scenes(test)):
        pixels = np.asarray(Image.open(io.BytesIO(row["image"]["bytes"])).convert("RGB")).astype(int)
        for obj in scene.objects:
            cell = pixels[obj.row * 32:(obj.row + 1) * 32, obj.col * 32:(obj.col + 1) * 32]
            mask = np.abs(cell - np.array(BACKGROUND)).sum(-1) > 60
            colour = min(world.colours, key=lambda name: np.abs(cell[mask].mean(0) - PALETTE[name]).sum())
            assert colour == obj.colour, row["id"]
            ys, xs = np.nonzero(mask)
            area[obj.size].append(mask.sum())
            fill[obj.texture].append(mask.sum() / ((ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)))
    assert min(area["big"]) > np.median(area["small"]) and np.mean(fill["hollow"]) < 0.6 * np.mean(fill["solid"])


def test_semclip_eval_scores_a_model_on_any_world(tmp_path):
    from semclip_train.evaluation.eval_cli import app
    from semclip_train.random_model import build_random_clip

    world = World.sample(101)
    texts = [t for item in generate_items(100, 0, 0.5, world) for t in (item.caption, item.paraphrase, item.negation)]
    model, processor = build_random_clip(texts, seed=0, vocab_size=200)
    model.save_pretrained(tmp_path / "m")
    processor.save_pretrained(tmp_path / "m")
    runner = CliRunner()
    result = runner.invoke(app, ["synthetic", "--model", str(tmp_path / "m"), "--world", "101", "--count", "40",
                                 "--json", str(tmp_path / "w.json"), "-q"])
    assert result.exit_code == 0, result.output
    row = json.loads((tmp_path / "w.json").read_text())["results"]["synthetic"]
    assert row["n"] == 40 and row["scope"] == (row["scope_after"] + row["scope_before"]) / 2 and "scope_other" in row
    forms = [t.format(a="A", b="B") for group in ("after", "before") for t, _ in world.scope_forms[group]]
    assert row["scope_after"] == (row[f"scope[{forms[0]}]"] + row[f"scope[{forms[1]}]"]) / 2
    # a file written for a world is scored on that world's wordings, without --world
    test = write_benchmark(tmp_path / "bench", test_count=40, seed=0, splits=("test",), world=world)["test"]
    result = runner.invoke(app, ["synthetic", "--model", str(tmp_path / "m"), "--data", str(test),
                                 "--json", str(tmp_path / "d.json"), "-q"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "d.json").read_text())["results"]["synthetic"] == row
    shown = runner.invoke(app, ["synthetic", "--model", str(tmp_path / "m"), "--data", str(test)])
    assert shown.exit_code == 0 and f"scope[{forms[0]}]" in shown.output  # the table prints the name whole
    for args, message in ((["--world", "nonsense"], "--world: world 'nonsense' is neither"),
                          (["--world", "7", "--data", str(test)], "give one")):
        result = runner.invoke(app, ["synthetic", "--model", str(tmp_path / "m"), *args])
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert result.exit_code == 2 and len(lines) == 1 and message in lines[0], result.output


def test_a_test_split_holds_at_most_the_scenes_a_world_tells_apart(tmp_path):
    """Asking a small world for more scenes than it has is an error, unless the count is an upper bound."""
    with pytest.raises(ValueError, match="mutually distinct scenes"):
        generate_test_items(2000, 1, 0.5, DEFAULT)
    items = generate_test_items(2000, 1, 0.5, DEFAULT, at_most=True)
    assert 300 < len(items) < 2000
    for item in items[::7]:
        assert [other for other in items if holds_all(list(item.clauses), other.scene)] == [item]
    test = write_benchmark(tmp_path, test_count=2000, seed=0, splits=("test",), test_at_most=True)["test"]
    assert pq.read_metadata(test).num_rows == len(items)
