"""The synthetic benchmark's captions must be exactly true of their images and negations exactly
false, or the benchmark measures noise. Checked independently of the generator's own logic: the
scene is read back from the pixels, and the captions are parsed from their text."""

from __future__ import annotations

import io
import torch
import json
import re
from collections import Counter

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from semclip_train.evaluation.synthetic import BACKGROUND, COLOURS, generate_items
from semclip_train.evaluation.synthetic_data import write_benchmark

RELATIONS = {"above": (1, 0), "below": (-1, 0), "to the left of": (0, 1), "to the right of": (0, -1)}
KIND = r"(red|green|blue|yellow|purple) (circle|square|triangle)"
CLAUSE = re.compile(rf"^(a|no) {KIND}(?: ({'|'.join(RELATIONS)}) a {KIND})?$")


def scene_from_pixels(image: Image.Image) -> dict[tuple[int, int], tuple[str, str]]:
    """(row, col) -> (colour, shape) of the object drawn in each cell of the 2 x 2 grid."""
    pixels = np.asarray(image.convert("RGB")).astype(int)
    half = pixels.shape[0] // 2
    found = {}
    for row in range(2):
        for col in range(2):
            cell = pixels[row * half : (row + 1) * half, col * half : (col + 1) * half]
            mask = np.abs(cell - np.array(BACKGROUND)).sum(-1) > 60
            if mask.sum() < 4:
                continue
            mean = cell[mask].mean(0)
            colour = min(COLOURS, key=lambda name: np.abs(mean - np.array(COLOURS[name])).sum())
            ys, xs = np.nonzero(mask)
            fill = mask.sum() / ((ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1))
            shape = "square" if fill > 0.9 else "circle" if fill > 0.65 else "triangle"
            found[(row, col)] = (colour, shape)
    return found


def truth(text: str, scene: dict[tuple[int, int], tuple[str, str]]) -> bool:
    """Parse one caption of the synthetic grammar and evaluate it on the scene read from pixels."""
    text = text.removeprefix("there is ")
    parts = re.split(r" and | without ", text)
    joiners = re.findall(r" (and|without) ", text)
    value = True
    for index, part in enumerate(parts):
        if index and joiners[index - 1] == "without":
            part = "no " + part.removeprefix("a ")
        match = CLAUSE.match(part)
        assert match, f"caption clause {part!r} is outside the grammar"
        quantifier, c1, s1, relation, c2, s2 = match.groups()
        if relation is None:
            present = (c1, s1) in scene.values()
        else:
            drow, dcol = RELATIONS[relation]
            present = any(
                kind == (c1, s1) and scene.get((r + drow, c + dcol)) == (c2, s2) for (r, c), kind in scene.items()
            )
        value = value and (present if quantifier == "a" else not present)
    return value


def shape_words(text: str) -> Counter:
    return Counter(re.findall(KIND, text))


@pytest.fixture(scope="module")
def benchmark(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic")
    return write_benchmark(out, train_count=300, test_count=120, seed=3)


@pytest.mark.parametrize("split", ["train", "test"])
def test_captions_and_paraphrases_are_true_and_negations_false_of_the_pixels(benchmark, split):
    rows = pq.read_table(benchmark[split]).to_pylist()
    assert rows
    for row in rows:
        scene = scene_from_pixels(Image.open(io.BytesIO(row["image"]["bytes"])))
        spec = {(obj["row"], obj["col"]): (obj["colour"], obj["shape"]) for obj in json.loads(row["scene"])}
        assert scene == spec, row["id"]
        assert truth(row["caption"], scene), row["caption"]
        assert truth(row["paraphrase"], scene), row["paraphrase"]
        assert not truth(row["negation"], scene), row["negation"]


def test_negations_reuse_the_captions_objects_and_paraphrases_change_the_words(benchmark):
    rows = pq.read_table(benchmark["train"]).to_pylist()
    for row in rows:
        assert shape_words(row["negation"]) == shape_words(row["caption"]), row
        assert shape_words(row["paraphrase"]) == shape_words(row["caption"]), row
        assert row["paraphrase"] != row["caption"]
    negated = sum(" no " in f" {row['negation']} " and " no " not in f" {row['caption']} " for row in rows)
    affirmed = sum(" no " in f" {row['caption']} " and " no " not in f" {row['negation']} " for row in rows)
    assert negated > 30 and affirmed > 30  # both directions of the flip occur


def test_each_test_caption_is_true_of_its_own_image_only(benchmark):
    rows = pq.read_table(benchmark["test"]).to_pylist()
    scenes = [scene_from_pixels(Image.open(io.BytesIO(row["image"]["bytes"]))) for row in rows]
    for i, row in enumerate(rows):
        matches = [j for j, scene in enumerate(scenes) if truth(row["caption"], scene)]
        assert matches == [i], row["caption"]


def test_the_file_is_a_triple_record_that_polars_and_datasets_load(benchmark):
    import polars as pl

    frame = pl.read_parquet(benchmark["test"])
    assert frame.columns[:5] == ["id", "image", "caption", "paraphrase", "negation"]
    assert set(frame["backend"]) == {"synthetic"}
    assert frame["id"].n_unique() == frame.height == 120
    metadata = pq.read_schema(benchmark["test"]).metadata[b"triplegen"]
    assert json.loads(metadata)["split"] == "test"
    from datasets import load_dataset

    loaded = load_dataset("parquet", data_files=str(benchmark["test"]), split="train")
    assert loaded.num_rows == 120 and loaded[0]["caption"] == frame["caption"][0]


def test_image_files_instead_of_embedded_bytes(tmp_path):
    paths = write_benchmark(tmp_path, train_count=10, test_count=5, seed=1, embed_images=False)
    rows = pq.read_table(paths["train"]).to_pylist()
    for row in rows:
        scene = scene_from_pixels(Image.open(tmp_path / "images" / row["image"]))
        assert truth(row["caption"], scene)


def test_same_seed_same_items_other_seed_other_items():
    first = [item.caption for item in generate_items(50, seed=7)]
    assert first == [item.caption for item in generate_items(50, seed=7)]
    assert first != [item.caption for item in generate_items(50, seed=8)]


def test_without_absent_clauses_no_appears_only_in_the_negations(tmp_path):
    paths = write_benchmark(tmp_path, train_count=200, test_count=50, seed=2, absent_rate=0.0)
    for split in ("train", "test"):
        for row in pq.read_table(paths[split]).to_pylist():
            assert "no" not in row["caption"].split() and "no" not in row["paraphrase"].split()
            assert "no" in row["negation"].split()
            scene = scene_from_pixels(Image.open(io.BytesIO(row["image"]["bytes"])))
            assert truth(row["paraphrase"], scene) and not truth(row["negation"], scene)
    assert json.loads(pq.read_schema(paths["train"]).metadata[b"triplegen"])["absent_rate"] == 0.0


# --- the splits that tell negation from a dislike of "no" ---------------------------------------

def test_scope_pairs_have_the_same_words_and_opposite_truth():
    from semclip_train.evaluation.synthetic import scope_pairs

    items = list(generate_items(200, 5))
    pairs = scope_pairs([item.scene for item in items], seed=5)
    assert set(pairs) == {"after/0", "before/0", "other/0", "other/1"}
    for name, (true, false) in pairs.items():
        for item, t, f in zip(items, true, false):
            assert sorted(t.split()) == sorted(f.split()) and len(re.findall(r"\b(no|without)\b", t)) == 1
            if name != "other/1":  # "there is no B but there is a A" is outside the caption grammar
                scene = {(o.row, o.col): o.kind for o in item.scene.objects}
                assert truth(t, scene) and not truth(f, scene), (t, f)
    assert pairs["after/0"][0][0].startswith("a ") and pairs["before/0"][0][0].startswith("no ")
    assert pairs == scope_pairs([item.scene for item in items], seed=5)


class NoHater:
    """A stand-in embedder for a model that has learned only "the more 'no', the more false"."""

    fingerprint = "no-hater"

    def images(self, images, dataset=None):
        return torch.tensor([[1.0, 0.0]] * len(images))

    def texts(self, texts, dataset=None):
        return torch.tensor([[1.0, 0.7 * len(re.findall(r"\b(no|without)\b", t))] for t in texts])


def test_direction_and_scope_splits_expose_a_model_that_only_dislikes_no(tmp_path):
    from semclip_train.evaluation.eval_data import load_triples
    from semclip_train.evaluation.evaluate import evaluate_synthetic
    from semclip_train.evaluation.synthetic_data import load_scenes

    test = write_benchmark(tmp_path, test_count=60, seed=4, splits=("test",))["test"]
    row = evaluate_synthetic(NoHater(), load_triples(test), "t", load_scenes(test), seed=4).rows["synthetic"]
    assert row["adds_no"] == 1.0 and row["drops_no"] == 0.0  # CC-Neg-style accuracy alone would look fine
    assert row["scope_after"] == row["scope_before"] == row["scope"] == 0.0  # ties count as misses
    assert 0.0 < row["ccneg_acc"] < 1.0
    assert "scope" not in evaluate_synthetic(NoHater(), load_triples(test), "t").rows["synthetic"]


class Reader:
    """A stand-in embedder that reads the scope of "no" exactly, and sees only the objects not in
    `blind_to` (colours): its image is the scene's kinds it sees, a text the kinds it names, a denied
    kind counting against."""

    fingerprint = "reader"
    KINDS = [f"{c} {s}" for c in ("red", "green", "blue", "yellow", "purple") for s in ("circle", "square", "triangle")]

    def __init__(self, scenes, blind_to=()):
        self.scenes, self.blind_to = scenes, set(blind_to)

    def images(self, images, dataset=None):
        assert len(images) == len(self.scenes)
        seen = [{" ".join(kind) for kind in scene.kinds() if kind[0] not in self.blind_to} for scene in self.scenes]
        return torch.tensor([[float(name in kinds) for name in self.KINDS] + [1.0] for kinds in seen])

    def texts(self, texts, dataset=None):
        rows = []
        for text in texts:
            row = [0.0] * len(self.KINDS) + [1.0]
            for match in re.finditer("|".join(self.KINDS), text.lower()):
                denied = re.search(r"\b(no|without|not)\b(?: an?)?\s*$", text.lower()[:match.start()])
                row[self.KINDS.index(match.group())] = -1.0 if denied else 1.0
            rows.append(row)
        return torch.tensor(rows)


def test_objects_bound_scope_and_scope_on_seen_objects_measures_the_reading_of_no(tmp_path):
    from semclip_train.evaluation.eval_data import load_triples
    from semclip_train.evaluation.evaluate import evaluate_synthetic
    from semclip_train.evaluation.synthetic_data import load_scenes

    test = write_benchmark(tmp_path, test_count=120, seed=4, splits=("test",))["test"]
    scenes = load_scenes(test)
    sharp = evaluate_synthetic(Reader(scenes), load_triples(test), "t", scenes, seed=4).rows["synthetic"]
    assert sharp["objects"] == sharp["scope_after"] == sharp["scope_before"] == 1.0
    assert sharp["scope_after_seen"] == sharp["scope_before_seen"] == 1.0

    dim = evaluate_synthetic(Reader(scenes, blind_to={"red"}), load_triples(test), "t", scenes, seed=4)
    row = dim.rows["synthetic"]
    assert 0.5 < row["objects"] < 1.0  # it misses the red objects
    assert row["scope_after"] < 1.0 and row["scope_before"] < 1.0  # and so fails some scope items
    assert row["scope_after_seen"] == row["scope_before_seen"] == 1.0  # but reads every "no" it can see
