"""Evaluation on a real (tiny, random) CLIP: embeddings, the cache, each benchmark, the training hook."""

from __future__ import annotations

import os

import pyarrow.parquet as pq
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from semclip_train.errors import SemClipError  # noqa: E402
from semclip_train.evaluation.embed import Embedder, best_device  # noqa: E402
from semclip_train.evaluation.eval_data import CCNegSet, load_image_folder, load_sugarcrepe, load_triples  # noqa: E402
from semclip_train.evaluation.evaluate import (  # noqa: E402
    EvalSpec,
    evaluate_ccneg,
    evaluate_retrieval,
    evaluate_sugarcrepe,
    evaluate_synthetic,
    evaluate_zeroshot,
    run_during_training,
)
from semclip_train.evaluation.synthetic import generate_items  # noqa: E402
from semclip_train.evaluation.synthetic_data import write_benchmark  # noqa: E402

SCPP_SIZES = {"replace_att": 788, "replace_obj": 1652, "replace_rel": 1406, "swap_att": 666, "swap_obj": 245}


@pytest.fixture(scope="module")
def tiny_clip():
    from semclip_train.random_model import build_random_clip

    texts = [t for item in generate_items(100, 0) for t in (item.caption, item.paraphrase, item.negation)]
    model, processor = build_random_clip(texts, seed=0, vocab_size=200)
    return model.eval(), processor


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return write_benchmark(tmp_path_factory.mktemp("bench"), train_count=8, test_count=40, seed=0)


def direct_text(model, processor, texts):
    tokens = processor.tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        out = model.get_text_features(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
    return F.normalize(out if isinstance(out, torch.Tensor) else out.pooler_output, dim=-1)


def direct_image(model, processor, images):
    pixels = processor.image_processor(images=images, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        out = model.get_image_features(pixel_values=pixels)
    return F.normalize(out if isinstance(out, torch.Tensor) else out.pooler_output, dim=-1)


def test_embeddings_match_the_model_row_for_row_with_duplicates(tiny_clip, bench):
    model, processor = tiny_clip
    embedder = Embedder(model, processor, device="cpu", batch_size=3)
    texts = ["a red circle", "no blue square", "a red circle", "there is a green triangle"]
    rows = embedder.texts(texts)
    assert rows.shape == (4, model.config.projection_dim)
    assert embedder.encoder_calls["text"] == 1  # three distinct texts, one batch of 3
    torch.testing.assert_close(rows, direct_text(model, processor, texts), atol=1e-5, rtol=1e-4)
    data = load_triples(bench["test"])
    images = embedder.images(data.images[:5])
    expected = direct_image(model, processor, [ref.open() for ref in data.images[:5]])
    torch.testing.assert_close(images, expected, atol=1e-5, rtol=1e-4)


def test_a_second_metric_on_the_same_data_does_not_encode_again(tiny_clip, bench):
    model, processor = tiny_clip
    data = load_triples(bench["test"])
    embedder = Embedder(model, processor, device="cpu", batch_size=16)
    evaluate_ccneg(embedder, CCNegSet(data.images, data.captions, data.negations), "test")
    after_ccneg = dict(embedder.encoder_calls)
    assert after_ccneg == {"image": 3, "text": 6}  # batches of 16: 40 images, 40 captions, 40 negations
    evaluate_retrieval(embedder, data, "test")
    assert embedder.encoder_calls["image"] == after_ccneg["image"]
    assert embedder.encoder_calls["text"] == after_ccneg["text"] + 3  # only the 40 paraphrases
    evaluate_synthetic(embedder, data, "test")
    assert embedder.encoder_calls == {"image": 3, "text": 9}


def test_the_disk_cache_serves_the_same_model_and_not_another(tiny_clip, bench, tmp_path):
    from semclip_train.random_model import build_random_clip

    model, processor = tiny_clip
    data = load_triples(bench["test"])
    first = Embedder(model, processor, device="cpu", cache_dir=tmp_path)
    expected = evaluate_synthetic(first, data, str(bench["test"]))
    assert len(list((tmp_path / first.fingerprint).glob("*.safetensors"))) == 2  # texts, images
    again = Embedder(model, processor, device="cpu", cache_dir=tmp_path)
    assert evaluate_synthetic(again, data, str(bench["test"])).rows == expected.rows
    assert again.encoder_calls == {"text": 0, "image": 0}
    other, _ = build_random_clip(["a red circle"], seed=1, vocab_size=200)
    fresh = Embedder(other, processor, device="cpu", cache_dir=tmp_path)
    assert fresh.fingerprint != first.fingerprint
    evaluate_synthetic(fresh, data, str(bench["test"]))
    assert fresh.encoder_calls["image"] > 0 and fresh.encoder_calls["text"] > 0


def test_ccneg_accuracy_is_the_fraction_of_images_closer_to_their_caption(tiny_clip, bench):
    model, processor = tiny_clip
    data = load_triples(bench["test"])
    result = evaluate_ccneg(Embedder(model, processor, device="cpu"), CCNegSet(data.images, data.captions, data.negations))
    images = direct_image(model, processor, [ref.open() for ref in data.images])
    caption = direct_text(model, processor, data.captions)
    negation = direct_text(model, processor, data.negations)
    wins = sum(float(i @ c) > float(i @ n) for i, c, n in zip(images, caption, negation))
    row = result.rows["ccneg"]
    assert row["n"] == 40 and row["accuracy"] == pytest.approx(wins / 40)
    assert row["scaled_score"] == pytest.approx(max(0.0, 2 * (wins / 40 - 0.5)))
    true, false = result.similarities.values()
    assert sum(t > f for t, f in zip(true, false)) == wins


def test_real_sugarcrepe_files_text_only_tot(tiny_clip, sugarcrepe_dir):
    model, processor = tiny_clip
    subsets = load_sugarcrepe(sugarcrepe_dir)
    embedder = Embedder(model, processor, device="cpu", batch_size=512)
    result = evaluate_sugarcrepe(embedder, subsets)
    assert {name: result.rows[name]["n"] for name in SCPP_SIZES} == SCPP_SIZES
    assert all(set(result.rows[name]) == {"tot", "n"} for name in SCPP_SIZES)  # no images: no ITT
    swap = subsets["swap_obj"]
    p1, p2, n = (direct_text(model, processor, texts) for texts in (swap.captions, swap.captions2, swap.negatives))
    between = (p1 * p2).sum(-1)
    expected = ((between > (p1 * n).sum(-1)) & (between > (p2 * n).sum(-1))).double().mean().item()
    assert result.rows["swap_obj"]["tot"] == pytest.approx(expected, abs=1 / 245)
    mean = sum(result.rows[name]["tot"] for name in SCPP_SIZES) / 5
    assert result.rows["mean"]["tot"] == pytest.approx(mean)


def test_sugarcrepe_with_images_reports_itt_and_tot(tiny_clip, tmp_path):
    import json

    model, processor = tiny_clip
    items = [{"id": i, "filename": f"{i}.png", "caption": f"a red circle {i}", "caption2": f"there is a red circle {i}",
              "negative_caption": f"no red circle {i}"} for i in range(4)]
    (tmp_path / "swap_obj.json").write_text(json.dumps(items))
    for i in range(4):
        Image.new("RGB", (32, 32), (60 * i, 10, 10)).save(tmp_path / f"{i}.png")
    subsets = load_sugarcrepe(tmp_path, image_root=tmp_path, subsets=["swap_obj"])
    result = evaluate_sugarcrepe(Embedder(model, processor, device="cpu"), subsets)
    assert set(result.rows) == {"swap_obj"} and set(result.rows["swap_obj"]) == {"itt", "tot", "n"}


def test_zeroshot_gap_is_original_minus_negated(tiny_clip, tmp_path):
    model, processor = tiny_clip
    for k, name in enumerate(["red", "blue", "green"]):
        (tmp_path / name).mkdir()
        for j in range(2):
            Image.new("RGB", (32, 32), (80 * k, 40 * j, 0)).save(tmp_path / name / f"{j}.png")
    result = evaluate_zeroshot(Embedder(model, processor, device="cpu"), load_image_folder(tmp_path))
    rows = result.rows
    assert rows["original"]["n"] == 6 and rows["original"]["top5"] == 1.0  # 3 classes: top-5 is trivial
    assert rows["gap"]["top1"] == pytest.approx(rows["original"]["top1"] - rows["negated"]["top1"])
    with pytest.raises(SemClipError, match="exactly one"):
        evaluate_zeroshot(Embedder(model, processor, device="cpu"), load_image_folder(tmp_path), prompt="a photo")


def test_run_during_training_returns_flat_metrics_and_restores_train_modes(tiny_clip, bench, tmp_path):
    model, processor = tiny_clip
    table = pq.read_table(bench["test"]).select(["image", "caption", "negation"])
    pq.write_table(table, tmp_path / "val.parquet")
    model.train()
    model.vision_model.eval()  # a frozen tower stays in eval mode during training
    results = run_during_training(model, processor, ["ccneg:" + str(tmp_path / "val.parquet"), f"retrieval:{bench['test']}"], "cpu")
    assert model.training and model.text_model.training and not model.vision_model.training
    assert 0.0 <= results["ccneg/accuracy"] <= 1.0 and results["ccneg/n"] == 40
    assert results["retrieval/caption/t2i_r1"] >= 0.0 and "retrieval/combined/score" in results
    model.eval()


def test_eval_specs_and_devices_fail_with_one_line():
    assert EvalSpec.parse("sugarcrepe-pp:data/scpp").kind == "sugarcrepe-pp"
    with pytest.raises(SemClipError, match="KIND:PATH"):
        EvalSpec.parse("ccneg")
    with pytest.raises(SemClipError, match="unknown kind 'cc-neg'"):
        EvalSpec.parse("cc-neg:x.parquet")
    assert best_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(SemClipError, match="CUDA is not available"):
            best_device("cuda")


def test_plot_writes_a_png_per_model(tiny_clip, bench, tmp_path):
    from semclip_train.evaluation.plots import plot_similarities

    model, processor = tiny_clip
    result = evaluate_synthetic(Embedder(model, processor, device="cpu"), load_triples(bench["test"]))
    path = plot_similarities({"a": result, "b": result}, tmp_path / "plots" / "sim.png")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] > image.size[1]  # two columns side by side
    assert not list((tmp_path / "plots").glob(".*"))  # no temp file left behind


def test_the_trainer_logs_evaluations_every_n_steps(tmp_path):
    import json

    from semclip_train import TrainConfig, train
    from semclip_train.random_model import write_random_clip_folder

    paths = write_benchmark(tmp_path / "data", train_count=64, test_count=20, seed=0)
    texts = pq.read_table(paths["train"], columns=["caption", "paraphrase", "negation"]).to_pylist()
    model_dir = write_random_clip_folder(tmp_path / "model", [t for row in texts for t in row.values()], vocab_size=300)
    config = TrainConfig(
        triples=paths["train"], clip_config=model_dir, loss="semclip", freeze_vision=False, val_fraction=0.0,
        workers=0, batch_size=16, max_steps=4, warmup_steps=1, output=tmp_path / "run", device="cpu",
        eval_every=2, eval=[f"ccneg:{paths['test']}", f"synthetic:{paths['test']}"], quiet=True,
    )
    train(config)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    evaluations = [r for r in records if r.get("event") == "evaluation"]
    assert [r["step"] for r in evaluations] == [2, 4]
    assert all(0.0 <= r["eval/ccneg/accuracy"] <= 1.0 and r["eval/synthetic/n"] == 20 for r in evaluations)
