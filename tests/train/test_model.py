"""Model loading and encoding: transformers 4.x and 5.x feature outputs, errors, frozen towers."""

from __future__ import annotations

import pytest
import torch
from transformers.modeling_outputs import BaseModelOutputWithPooling

from semclip_train.errors import SemClipError
from semclip_train.model import (
    _features, clip_config_from, embed_images, embed_texts, encode_images, encode_text, freeze_towers,
    load_clip, random_clip,
)


def test_feature_outputs_of_transformers_4_and_5_are_unwrapped():
    projected = torch.randn(3, 16)
    assert _features(projected, "text_embeds") is projected  # 4.x: a tensor
    v5 = BaseModelOutputWithPooling(last_hidden_state=torch.randn(3, 5, 32), pooler_output=projected)
    assert _features(v5, "text_embeds") is projected  # 5.x: projected pooler_output

    class FullOutput:  # e.g. a CLIPOutput carrying image_embeds and a different pooler
        image_embeds = projected
        pooler_output = torch.randn(3, 32)

    assert _features(FullOutput(), "image_embeds") is projected


def test_encoders_return_projected_embeddings(tiny_clip_dir):
    from semclip_train.model import load_processor

    model = random_clip(clip_config_from(tiny_clip_dir), seed=0).eval()
    processor = load_processor(tiny_clip_dir)
    tokens = processor.tokenizer(["a red circle", "no blue square"], padding=True, return_tensors="pt")
    text = encode_text(model, tokens["input_ids"], tokens["attention_mask"])
    assert text.shape == (2, 16)
    pooled = model.text_model(**tokens).pooler_output
    torch.testing.assert_close(text, model.text_projection(pooled))
    images = encode_images(model, torch.rand(2, 3, 32, 32))
    assert images.shape == (2, 16)
    from PIL import Image

    unit = embed_images(model, processor, [Image.new("RGB", (40, 30), "red"), Image.new("L", (20, 50), 128)])
    assert torch.allclose(unit.norm(dim=-1), torch.ones(2))
    assert torch.allclose(embed_texts(model, processor, ["a red circle"]).norm(), torch.tensor(1.0))


def test_saved_model_loads_and_missing_one_is_a_clear_error(tiny_clip_dir, tmp_path):
    from semclip_train.model import load_processor

    model = random_clip(clip_config_from(tiny_clip_dir), seed=0)
    model.save_pretrained(tmp_path / "m")
    load_processor(tiny_clip_dir).save_pretrained(tmp_path / "m")
    loaded, processor = load_clip(str(tmp_path / "m"))
    assert torch.equal(loaded.text_projection.weight, model.text_projection.weight)
    assert processor.tokenizer.eos_token_id == loaded.config.text_config.eos_token_id
    with pytest.raises(SemClipError, match="cannot load CLIP model"):
        load_clip(str(tmp_path / "absent"))
    with pytest.raises(SemClipError, match="model config not found"):
        clip_config_from(tmp_path / "absent")


def test_freezing_leaves_the_logit_scale_trainable(tiny_clip_dir):
    model = random_clip(clip_config_from(tiny_clip_dir), seed=0)
    freeze_towers(model, vision=True, text=False)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert "logit_scale" in trainable and "text_projection.weight" in trainable
    assert not any(n.startswith(("vision_model", "visual_projection")) for n in trainable)


def test_the_random_models_tokenizer_lower_cases_as_clips_does_also_after_saving(tmp_path):
    """A sentence-opening "No" must be the token of "no", or a capitalised world tests a word no
    training text holds (real CLIP tokenizers lower-case every text)."""
    from transformers import AutoTokenizer

    from semclip_train.random_model import train_tokenizer

    tokenizer = train_tokenizer(["No red circle here, only a blue square.", "a red circle and no blue square"] * 20,
                                vocab_size=300)
    tokenizer.save_pretrained(tmp_path)
    for loaded in (tokenizer, AutoTokenizer.from_pretrained(tmp_path)):
        assert loaded("No Red circle")["input_ids"] == loaded("no red circle")["input_ids"]
        assert loaded("no red circle")["input_ids"] != loaded("no blue circle")["input_ids"]
