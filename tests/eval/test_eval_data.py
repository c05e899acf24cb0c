"""Readers of the evaluation sets, on small files written here in the public formats."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from semclip_train.errors import SemClipError
from semclip_train.evaluation.eval_data import (
    SUGARCREPE_SUBSETS,
    convert_ccneg,
    load_ccneg,
    load_image_folder,
    load_sugarcrepe,
    load_triples,
)


def write_sugarcrepe(folder, names=SUGARCREPE_SUBSETS, rows=3):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        items = [
            {
                "id": i,
                "filename": f"{i:012d}.jpg",
                "caption": f"{name} caption {i}",
                "caption2": f"{name} paraphrase {i}",
                "negative_caption": f"{name} negative {i}",
            }
            for i in range(rows)
        ]
        (folder / f"{name}.json").write_text(json.dumps(items))
    return folder


def test_sugarcrepe_text_only_reads_all_five_files_in_order(tmp_path):
    subsets = load_sugarcrepe(write_sugarcrepe(tmp_path / "scpp"))
    assert list(subsets) == list(SUGARCREPE_SUBSETS)
    swap = subsets["swap_obj"]
    assert swap.captions[2] == "swap_obj caption 2"
    assert swap.captions2[0] == "swap_obj paraphrase 0"
    assert swap.negatives[1] == "swap_obj negative 1"
    assert swap.images is None  # no --image-root: TOT only


def test_sugarcrepe_with_images_names_how_many_are_missing_and_the_first(tmp_path):
    data = write_sugarcrepe(tmp_path / "scpp", names=["replace_att"], rows=4)
    coco = tmp_path / "coco"
    coco.mkdir()
    Image.new("RGB", (8, 8)).save(coco / "000000000001.jpg")
    with pytest.raises(SemClipError, match=r"3 of 4 images are missing under .*coco \(first: .*000000000000\.jpg"):
        load_sugarcrepe(data, image_root=coco, subsets=["replace_att"])
    for i in (0, 2, 3):
        Image.new("RGB", (8, 8)).save(coco / f"{i:012d}.jpg")
    subset = load_sugarcrepe(data, image_root=coco, subsets=["replace_att"])["replace_att"]
    assert [ref.path.name for ref in subset.images] == [f"{i:012d}.jpg" for i in range(4)]


def test_sugarcrepe_bad_files_are_one_line_errors(tmp_path):
    data = write_sugarcrepe(tmp_path / "scpp", names=["swap_att"])
    with pytest.raises(SemClipError, match="unknown SugarCrepe.. subset swap_color"):
        load_sugarcrepe(data, subsets=["swap_color"])
    with pytest.raises(SemClipError, match="not found: .*replace_obj.json"):
        load_sugarcrepe(data, subsets=["replace_obj"])
    (data / "swap_att.json").write_text(json.dumps([{"id": 0, "filename": "a.jpg", "caption": "x"}]))
    with pytest.raises(SemClipError, match="item 0 lacks caption2, negative_caption"):
        load_sugarcrepe(data, subsets=["swap_att"])


def write_images(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        Image.new("RGB", (8, 8), (i * 40 % 256, 0, 0)).save(folder / name)


def test_ccneg_parquet_with_paths_relative_to_its_folder_or_image_root(tmp_path):
    write_images(tmp_path / "imgs", ["a.jpg", "b.jpg"])
    table = pa.table({"image": ["imgs/a.jpg", "imgs/b.jpg"], "caption": ["a dog", "a cat"], "negation": ["no dog", "no cat"]})
    pq.write_table(table, tmp_path / "ccneg.parquet")
    data = load_ccneg(tmp_path / "ccneg.parquet")
    assert data.captions == ["a dog", "a cat"] and data.negations == ["no dog", "no cat"]
    assert data.images[1].open().size == (8, 8)
    elsewhere = tmp_path / "other"
    elsewhere.mkdir()
    pq.write_table(table, elsewhere / "ccneg.parquet")
    with pytest.raises(SemClipError, match=r"2 of 2 images are missing under .*other \(first: .*imgs/a.jpg"):
        load_ccneg(elsewhere / "ccneg.parquet")
    assert len(load_ccneg(elsewhere / "ccneg.parquet", image_root=tmp_path).images) == 2


def test_ccneg_parquet_needs_its_columns_and_no_urls(tmp_path):
    pq.write_table(pa.table({"image": ["a.jpg"], "caption": ["a dog"]}), tmp_path / "x.parquet")
    with pytest.raises(SemClipError, match="has no column negation"):
        load_ccneg(tmp_path / "x.parquet")
    pq.write_table(
        pa.table({"image": ["https://x/a.jpg"], "caption": ["a dog"], "negation": ["no dog"]}), tmp_path / "u.parquet"
    )
    with pytest.raises(SemClipError, match="is a URL"):
        load_ccneg(tmp_path / "u.parquet")
    pq.write_table(pa.table({"image": ["a.jpg"], "caption": ["a dog"], "negation": [""]}), tmp_path / "e.parquet")
    with pytest.raises(SemClipError, match="column 'negation' has 1 empty values"):
        load_ccneg(tmp_path / "e.parquet")


def test_ccneg_convert_keeps_the_last_40000_entries_as_the_evaluation_split(tmp_path):
    import torch

    n = 40_003
    annotations = [{"json": {"caption": f"caption {i}"}, "sop_data": {"negative-prompt": f"no, thing {i}"}} for i in range(n)]
    paths = [f"/workspace/ccneg_images/img{i}.jpg" for i in range(n)]
    torch.save({"image_paths": paths, "annotations": annotations}, tmp_path / "ccneg_preprocessed.pt")
    out = tmp_path / "ccneg_eval.parquet"
    rows = convert_ccneg(tmp_path / "ccneg_preprocessed.pt", out, strip_prefix="/workspace/ccneg_images")
    assert rows == 40_000
    table = pq.read_table(out).to_pydict()
    assert table["id"][0] == "3" and table["id"][-1] == str(n - 1)
    assert table["image"][0] == "img3.jpg"
    assert table["caption"][0] == "caption 3" and table["negation"][0] == "no thing 3"  # commas dropped, as the reference
    train = tmp_path / "ccneg_train.parquet"
    assert convert_ccneg(tmp_path / "ccneg_preprocessed.pt", train, split="train", keep_commas=True) == 3
    assert pq.read_table(train).to_pydict()["negation"] == ["no, thing 0", "no, thing 1", "no, thing 2"]


def test_ccneg_convert_rejects_other_files(tmp_path):
    import torch

    torch.save({"weights": torch.zeros(2)}, tmp_path / "model.pt")
    with pytest.raises(SemClipError, match="lacks the CC-Neg keys"):
        convert_ccneg(tmp_path / "model.pt", tmp_path / "out.parquet")
    (tmp_path / "junk.pt").write_bytes(b"not a pickle")
    with pytest.raises(SemClipError, match="cannot read .*junk.pt"):
        convert_ccneg(tmp_path / "junk.pt", tmp_path / "out.parquet")


def test_image_folder_labels_follow_the_classes_file(tmp_path):
    write_images(tmp_path / "imgs" / "golden_retriever", ["1.jpg", "2.png"])
    write_images(tmp_path / "imgs" / "cat", ["3.jpg"])
    (tmp_path / "imgs" / "cat" / "notes.txt").write_text("not an image")
    (tmp_path / "classes.txt").write_text("golden_retriever\ncat\tdomestic cat\n")
    data = load_image_folder(tmp_path / "imgs", tmp_path / "classes.txt")
    assert data.class_names == ["golden retriever", "domestic cat"]
    assert data.labels == [0, 0, 1]
    assert [ref.path.name for ref in data.images] == ["1.jpg", "2.png", "3.jpg"]
    assert load_image_folder(tmp_path / "imgs").class_names == ["cat", "golden retriever"]  # sorted folders


def test_image_folder_never_drops_a_class_silently(tmp_path):
    write_images(tmp_path / "imgs" / "dog", ["1.jpg"])
    write_images(tmp_path / "imgs" / "cat", ["2.jpg"])
    (tmp_path / "classes.txt").write_text("dog\n")
    with pytest.raises(SemClipError, match="1 class folders are not in .*classes.txt: cat"):
        load_image_folder(tmp_path / "imgs", tmp_path / "classes.txt")
    (tmp_path / "classes.txt").write_text("dog\ncat\nbird\n")
    with pytest.raises(SemClipError, match="class 'bird' .* has no folder"):
        load_image_folder(tmp_path / "imgs", tmp_path / "classes.txt")


def test_triples_with_embedded_images(tmp_path):
    from semclip_train.evaluation.synthetic_data import write_benchmark

    paths = write_benchmark(tmp_path, train_count=4, test_count=3, seed=0)
    data = load_triples(paths["test"])
    assert len(data.images) == len(data.captions) == len(data.paraphrases) == 3
    assert data.images[0].key.startswith("sha1:") and data.images[0].open().size == (32, 32)
