"""Frozen-vision image-embedding cache: loss and gradients equal to recomputing the images."""

from __future__ import annotations

import contextlib

import torch

from semclip_train import TrainConfig, train
from semclip_train.model import set_train_mode
from semclip_train.training.cache import ImageEmbeddingCache, cache_fingerprint
from semclip_train.training.components import build_data, build_loader, build_model


def _loss_and_grads(module, inputs):
    module.zero_grad(set_to_none=True)
    terms = module(**inputs)
    terms["loss"].backward()
    grads = {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}
    return {k: v.detach() for k, v in terms.items()}, grads


def test_cached_embeddings_give_the_same_loss_and_gradients(base_config, tmp_path):
    """Equal up to float32 rounding: encoding images in other batches reorders GEMM sums (~1e-7)."""
    config = TrainConfig(**base_config)
    module, processor = build_model(config, 0, 1)
    set_train_mode(module.clip, vision_frozen=True, text_frozen=False)
    data = build_data(config)
    fingerprint = cache_fingerprint(module.clip, processor, "fp32")
    folder = tmp_path / "cache"
    cache = ImageEmbeddingCache.build(module.clip, processor, data.all.images, torch.device("cpu"),
                                      contextlib.nullcontext,
                                      fingerprint, folder, batch_size=5)
    assert cache.computed == 12 and cache.embeddings.shape == (12, 16)
    loader, sampler = build_loader(data.train, processor, module.texts, config, 0, 1, True, False)
    sampler.set_epoch(0)
    batch = next(iter(loader))
    text = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    fresh_terms, fresh_grads = _loss_and_grads(module, {**text, "pixel_values": batch["pixel_values"]})
    cached_terms, cached_grads = _loss_and_grads(module, {**text, "image_embeds": cache.lookup(batch["image_index"])})
    assert fresh_terms.keys() == cached_terms.keys()
    for name in fresh_terms:
        torch.testing.assert_close(cached_terms[name], fresh_terms[name], rtol=1e-6, atol=1e-6)
    assert fresh_grads.keys() == cached_grads.keys() and "clip.logit_scale" in fresh_grads
    assert not any(name.startswith("clip.vision_model") for name in fresh_grads)
    for name in fresh_grads:
        torch.testing.assert_close(cached_grads[name], fresh_grads[name], rtol=1e-4, atol=1e-6)

    again = ImageEmbeddingCache.build(module.clip, processor, data.all.images, torch.device("cpu"),
                                      contextlib.nullcontext, fingerprint, folder)
    assert again.computed == 0 and torch.equal(again.embeddings, cache.embeddings)


def test_fingerprint_follows_the_vision_weights_and_preprocessing(base_config):
    module, processor = build_model(TrainConfig(**base_config), 0, 1)
    first = cache_fingerprint(module.clip, processor, "fp32")
    assert cache_fingerprint(module.clip, processor, "bf16") != first
    with torch.no_grad():
        module.clip.visual_projection.weight[0, 0] += 1.0
    assert cache_fingerprint(module.clip, processor, "fp32") != first
    with torch.no_grad():
        module.clip.text_projection.weight.add_(1.0)
    second = cache_fingerprint(module.clip, processor, "fp32")
    assert cache_fingerprint(module.clip, processor, "fp32") == second  # text weights do not matter


def test_training_with_and_without_the_cache_ends_with_the_same_weights(base_config, tmp_path):
    from safetensors.torch import load_file

    options = {**base_config, "epochs": 2, "val_fraction": 0.0}
    cached = train(TrainConfig(**{**options, "output": tmp_path / "cached"}))
    fresh = train(TrainConfig(**{**options, "cache_image_embeddings": False, "output": tmp_path / "fresh"}))
    assert list((tmp_path / "cached" / "image_cache").glob("*.safetensors"))
    assert not (tmp_path / "fresh" / "image_cache").exists()
    a = load_file(str(cached.final_dir / "model.safetensors"))
    b = load_file(str(fresh.final_dir / "model.safetensors"))
    # Adam turns ~1e-7 gradient rounding in near-zero entries into ~1e-6 weight differences,
    # against a training movement of ~1e-2 (8 steps at lr 1e-3).
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=5e-5)
    before = _initial_text_projection(options)
    assert (a["text_projection.weight"] - before).abs().max() > 1e-3
    assert abs(cached.last_metrics["loss"] - fresh.last_metrics["loss"]) < 1e-5


def _initial_text_projection(options):
    module, _ = build_model(TrainConfig(**options), 0, 1)
    return module.clip.text_projection.weight.detach()
