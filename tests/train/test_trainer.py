"""The training loop on the tiny CPU model: optimizer groups, schedule, clamp, frozen towers,
gradient accumulation, checkpoints and the saved model."""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import load_file

from semclip_train import TrainConfig, train
from semclip_train.training.components import build_model, param_groups
from semclip_train.training.trainer import clamp_logit_scale, lr_at


def _weights(folder) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def _initial(base_config) -> dict[str, torch.Tensor]:
    module, _ = build_model(TrainConfig(**base_config), rank=0, world_size=1)
    return {k: v.clone() for k, v in module.clip.state_dict().items()}


def test_lr_schedule_warms_up_then_follows_a_cosine_to_min_lr():
    values = [lr_at(step, 1.0, 0.1, warmup_steps=4, total_steps=14) for step in range(15)]
    assert values[:4] == [0.25, 0.5, 0.75, 1.0]
    assert values[4] == 1.0 and values[9] == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi / 2)))
    assert values[14] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(values[3:], values[4:]))
    assert lr_at(0, 5e-5, 0.0, 0, 10) == 5e-5  # no warm-up


def test_no_weight_decay_on_biases_norms_and_logit_scale(base_config):
    module, _ = build_model(TrainConfig(**{**base_config, "freeze_vision": False}), 0, 1)
    names = {id(p): n for n, p in module.named_parameters()}
    decay, no_decay = param_groups(module, 0.2)
    assert decay["weight_decay"] == 0.2 and no_decay["weight_decay"] == 0.0
    decayed = {names[id(p)] for p in decay["params"]}
    exempt = {names[id(p)] for p in no_decay["params"]}
    assert "clip.logit_scale" in exempt
    assert "clip.text_model.encoder.layers.0.self_attn.q_proj.weight" in decayed
    assert "clip.text_model.encoder.layers.0.self_attn.q_proj.bias" in exempt
    assert "clip.text_model.final_layer_norm.weight" in exempt
    assert "clip.vision_model.pre_layrnorm.weight" in exempt
    assert all(not n.endswith("bias") and "norm" not in n for n in decayed)
    assert decayed | exempt == {n for n, p in module.named_parameters() if p.requires_grad}
    frozen, _ = build_model(TrainConfig(**base_config), 0, 1)  # vision frozen: not in any group
    groups = param_groups(frozen, 0.2)
    assert not any("vision" in n for n, p in frozen.named_parameters()
                   if any(p is q for g in groups for q in g["params"]))


def test_logit_scale_is_clamped_to_ln_100(base_config):
    module, _ = build_model(TrainConfig(**base_config), 0, 1)
    with torch.no_grad():
        module.clip.logit_scale.fill_(7.0)
    clamp_logit_scale(module.clip, math.log(100))
    assert module.clip.logit_scale.item() == pytest.approx(math.log(100))
    with torch.no_grad():
        module.clip.logit_scale.fill_(-3.0)
    clamp_logit_scale(module.clip, math.log(100))
    assert module.clip.logit_scale.item() == 0.0


def test_training_clamps_a_logit_scale_pushed_past_100(base_config, tiny_clip_dir, tmp_path):
    import json

    config = json.loads((tiny_clip_dir / "config.json").read_text())
    config["logit_scale_init_value"] = 6.0  # exp(6) = 403 > 100
    folder = tmp_path / "hot"
    folder.mkdir()
    for file in tiny_clip_dir.iterdir():
        (folder / file.name).write_bytes(file.read_bytes())
    (folder / "config.json").write_text(json.dumps(config))
    result = train(TrainConfig(**{**base_config, "clip_config": folder, "max_steps": 1}))
    assert _weights(result.final_dir)["logit_scale"].item() == pytest.approx(math.log(100))


@pytest.mark.parametrize("frozen", ["vision", "text"])
def test_frozen_tower_keeps_its_weights(base_config, frozen):
    options = {**base_config, "max_steps": 3,
               "freeze_vision": frozen == "vision", "freeze_text": frozen == "text"}
    before = _initial(options)
    after = _weights(train(TrainConfig(**options)).final_dir)
    for name, value in before.items():
        tower = "vision" if name.startswith(("vision_model", "visual_projection")) else (
            "text" if name.startswith(("text_model", "text_projection")) else "other")
        if tower == frozen or "position_ids" in name:
            assert torch.equal(after[name], value), name
    trained = "text_model" if frozen == "vision" else "vision_model"
    moved = [n for n in before if n.startswith(trained) and not torch.equal(after[n], before[n])]
    assert len(moved) > 10


def test_grad_accumulation_equals_a_larger_batch_for_per_item_losses(base_config, tmp_path):
    """alpha=0 leaves only the per-item SemCLIP terms: k micro-batches of B/k == one batch of B.
    For InfoNCE it does not hold (each micro-batch has only its own negatives), checked too."""
    common = {**base_config, "max_steps": 2, "val_fraction": 0.0, "grad_clip": None}
    per_item = {**common, "alpha": 0.0, "beta": 1.0, "gamma": 1.0}
    big = train(TrainConfig(**{**per_item, "batch_size": 8, "output": tmp_path / "big"}))
    small = train(TrainConfig(**{**per_item, "batch_size": 4, "grad_accum": 2, "output": tmp_path / "acc"}))
    a, b = _weights(big.final_dir), _weights(small.final_dir)
    assert all(torch.allclose(a[k], b[k], atol=1e-6, rtol=1e-5) for k in a)
    assert big.last_metrics["loss"] == pytest.approx(small.last_metrics["loss"], rel=1e-5)
    clip_big = train(TrainConfig(**{**common, "loss": "clip", "batch_size": 8, "output": tmp_path / "cb"}))
    clip_acc = train(TrainConfig(**{**common, "loss": "clip", "batch_size": 4, "grad_accum": 2,
                                    "output": tmp_path / "ca"}))
    c, d = _weights(clip_big.final_dir), _weights(clip_acc.final_dir)
    assert not torch.allclose(c["text_projection.weight"], d["text_projection.weight"], atol=1e-6)


def test_checkpoint_loads_with_weights_only_and_final_with_from_pretrained(base_config):
    from transformers import AutoProcessor, CLIPModel

    result = train(TrainConfig(**{**base_config, "checkpoint_every": 2}))
    folders = sorted((result.run_dir / "checkpoints").glob("step-*"))
    assert [f.name for f in folders] == ["step-00000002", "step-00000004"]
    assert (result.run_dir / "checkpoints" / "latest").read_text() == "step-00000004"
    state = torch.load(folders[-1] / "state.pt", weights_only=True)
    assert state["step"] == 4 and state["samples_seen"] == 16 and state["epoch"] == 1
    assert state["config"]["loss"] == "semclip" and state["optimizer"]["state"]
    assert {"python", "numpy", "torch"} <= set(state["rng"])
    model = CLIPModel.from_pretrained(result.final_dir)
    processor = AutoProcessor.from_pretrained(result.final_dir)
    checkpoint = _weights(folders[-1])
    for name, value in model.state_dict().items():
        assert torch.equal(value, checkpoint[f"clip.{name}"]), name
    tokens = processor(text=["a red circle"], return_tensors="pt")
    assert model.get_text_features(**tokens).pooler_output.shape == (1, 16)


def test_embedded_image_bytes_train(base_config, embedded_triples_file):
    result = train(TrainConfig(**{**base_config, "triples": embedded_triples_file, "max_steps": 2,
                                  "cache_image_embeddings": False}))
    assert result.steps == 2 and result.skipped_images == 0


def test_unreadable_images_are_skipped_counted_and_logged(base_config, triples_file):
    from semclip_train.errors import SemClipError
    from semclip_train.training.metrics_log import read_metrics

    (triples_file.parent / "img" / "yellow_square.png").write_bytes(b"garbage")
    result = train(TrainConfig(**{**base_config, "max_steps": 1}))
    assert result.skipped_images == 1 and result.skipped_rows == 2
    data = next(r for r in read_metrics(result.run_dir) if r.get("event") == "data")
    assert data["skipped"] == {"img/yellow_square.png": "unreadable (UnidentifiedImageError)"}
    assert data["train_rows"] + data["val_rows"] == 22
    with pytest.raises(SemClipError, match="yellow_square.png is unreadable"):
        train(TrainConfig(**{**base_config, "strict_images": True, "output": base_config["output"].parent / "s"}))


def test_training_without_negated_captions_says_what_the_model_cannot_learn(base_config, capsys):
    from semclip_train.training.metrics_log import read_metrics

    result = train(TrainConfig(**{**base_config, "max_steps": 1, "quiet": False}))
    data = next(r for r in read_metrics(result.run_dir) if r.get("event") == "data")
    assert data["captions_with_negation"] == 0
    assert "triplegen generate --absent-objects" in capsys.readouterr().err.replace("\n", " ")


def test_gradient_checkpointing_gives_the_same_loss_and_gradients(base_config):
    options = TrainConfig(**{**base_config, "freeze_vision": False})
    plain, processor = build_model(options, 0, 1)
    checkpointed, _ = build_model(options.model_copy(update={"grad_checkpointing": True}), 0, 1)
    assert checkpointed.clip.text_model.encoder.gradient_checkpointing
    tokens = processor.tokenizer(["a red circle", "a blue square"] * 3, padding=True, return_tensors="pt")
    pixels = torch.rand(2, 3, 32, 32)
    grads = []
    for module in (plain, checkpointed):
        module.train()
        terms = module(tokens["input_ids"], tokens["attention_mask"], pixel_values=pixels)
        terms["loss"].backward()
        grads.append({n: p.grad for n, p in module.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], rtol=1e-5, atol=1e-7)


def test_learnable_projection_trains_and_is_checkpointed(base_config):
    options = {**base_config, "max_steps": 2, "learnable_projections": True, "checkpoint_every": 1}
    module, _ = build_model(TrainConfig(**options), 0, 1)
    before = module.loss.projection.detach().clone()
    result = train(TrainConfig(**options))
    saved = load_file(str(result.run_dir / "checkpoints" / "step-00000002" / "model.safetensors"))
    learned = [v for k, v in saved.items() if k.startswith("loss.")]
    assert learned and not any(torch.equal(v.reshape(before.shape), before) for v in learned
                               if v.numel() == before.numel())


def test_evaluation_during_training_is_logged(base_config, triples_file):
    from semclip_train.training.metrics_log import read_metrics

    result = train(TrainConfig(**{**base_config, "max_steps": 2, "eval_every": 2,
                                  "eval": [f"retrieval:{triples_file}"]}))
    records = [r for r in read_metrics(result.run_dir) if r.get("event") == "evaluation"]
    assert len(records) == 1 and records[0]["step"] == 2
    assert any(key.startswith("eval/") for key in records[0])
