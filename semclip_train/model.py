"""The CLIP model and its processor: loading, encoding, freezing.

Training and evaluation both go through `encode_images` / `encode_text`, so the difference between
transformers 4.x (`get_*_features` returns a tensor) and 5.x (it returns a
`BaseModelOutputWithPooling` whose `pooler_output` is the *projected* embedding) is handled once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from semclip_train.errors import SemClipError

if TYPE_CHECKING:
    from PIL import Image
    from transformers import CLIPModel, CLIPProcessor


def load_clip(name_or_path: str) -> tuple["CLIPModel", "CLIPProcessor"]:
    """A pretrained `CLIPModel` and its processor from a hub name or a local folder; refused when
    a weight is not finite (a diverged training) or the tokenizer does not fit the text tower."""
    from transformers import CLIPModel

    try:
        model = CLIPModel.from_pretrained(name_or_path)
    except (OSError, ValueError) as exc:
        raise SemClipError(f"cannot load CLIP model {name_or_path!r}: {_first_line(exc)}") from exc
    broken = next((name for name, tensor in model.state_dict().items()
                   if tensor.is_floating_point() and not torch.isfinite(tensor).all()), None)
    if broken is not None:
        raise SemClipError(f"CLIP model {name_or_path!r} has non-finite weights (nan or inf, e.g. in {broken}); "
                           "did its training diverge?")
    processor = load_processor(name_or_path)
    check_processor_fits(model, processor, name_or_path)
    return model, processor


def check_processor_fits(model: "CLIPModel", processor: "CLIPProcessor", name: str) -> None:
    """Refuse a tokenizer whose ids the text tower cannot embed or whose end token is not the one it
    pools at (either gives an index error or silently wrong embeddings); cap its length at the
    tower's positions."""
    tokenizer = getattr(processor, "tokenizer", processor)
    text = model.config.text_config
    if len(tokenizer) > text.vocab_size:
        raise SemClipError(f"the tokenizer of {name!r} has {len(tokenizer):,} tokens but the model's text tower "
                           f"embeds {text.vocab_size:,}: use the tokenizer the model was trained with")
    # eos_token_id 2 is the original CLIP configs' placeholder: transformers then pools at the highest id
    if text.eos_token_id not in (None, 2) and tokenizer.eos_token_id != text.eos_token_id:
        raise SemClipError(f"the tokenizer of {name!r} ends texts with token {tokenizer.eos_token_id} but the "
                           f"model pools at token {text.eos_token_id}: use the tokenizer the model was trained with")
    if tokenizer.model_max_length > text.max_position_embeddings:
        tokenizer.model_max_length = text.max_position_embeddings


def load_processor(name_or_path: str | Path) -> "CLIPProcessor":
    """The processor (tokenizer + image processor) saved beside a model, or on the hub."""
    from transformers import AutoProcessor

    try:
        return AutoProcessor.from_pretrained(str(name_or_path))
    except (OSError, ValueError, TypeError) as exc:
        raise SemClipError(f"cannot load a processor from {str(name_or_path)!r}: {_first_line(exc)}") from exc


def clip_config_from(source: str | Path | dict[str, Any]) -> Any:
    """A `CLIPConfig` from a dict, a JSON file, or a folder holding `config.json`."""
    from transformers import CLIPConfig

    if isinstance(source, dict):
        return CLIPConfig.from_dict(source)
    path = Path(source)
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise SemClipError(f"model config not found: {path}")
    try:
        return CLIPConfig.from_dict(json.loads(path.read_text()))
    except (json.JSONDecodeError, TypeError, ValueError) as exc:
        raise SemClipError(f"{path} is not a valid CLIP config: {_first_line(exc)}") from exc


def random_clip(config: Any, seed: int = 0) -> "CLIPModel":
    """A randomly initialised `CLIPModel` (tests, ablations), the same for the same seed."""
    from transformers import CLIPModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return CLIPModel(config)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _features(output: Any, attr: str) -> torch.Tensor:
    """The projected embedding from whatever `get_*_features` returned."""
    if isinstance(output, torch.Tensor):  # transformers 4.x
        return output
    embeds = getattr(output, attr, None)  # e.g. a full CLIPOutput
    if isinstance(embeds, torch.Tensor):
        return embeds
    pooled = getattr(output, "pooler_output", None)  # transformers 5.x: projected already
    if isinstance(pooled, torch.Tensor):
        return pooled
    raise TypeError(f"cannot find {attr} in {type(output).__name__}")


def encode_images(model: "CLIPModel", pixel_values: torch.Tensor) -> torch.Tensor:
    """[B, 3, H, W] pixels -> [B, d] projected, unnormalised image embeddings."""
    return _features(model.get_image_features(pixel_values=pixel_values), "image_embeds")


def encode_text(
    model: "CLIPModel", input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """[B, L] token ids -> [B, d] projected, unnormalised text embeddings."""
    output = model.get_text_features(input_ids=input_ids, attention_mask=attention_mask)
    return _features(output, "text_embeds")


@torch.no_grad()
def embed_texts(
    model: "CLIPModel",
    processor: "CLIPProcessor",
    texts: Sequence[str],
    device: torch.device | str = "cpu",
    batch_size: int = 256,
) -> torch.Tensor:
    """[N, d] L2-normalised float32 embeddings of `texts` (evaluation helper; model in eval mode)."""
    chunks = []
    for start in range(0, len(texts), batch_size):
        tokens = tokenize(processor, list(texts[start : start + batch_size]))
        tokens = {key: value.to(device) for key, value in tokens.items()}
        chunks.append(F.normalize(encode_text(model, **tokens).float(), dim=-1))
    return torch.cat(chunks) if chunks else torch.empty(0, model.config.projection_dim)


@torch.no_grad()
def embed_images(
    model: "CLIPModel",
    processor: "CLIPProcessor",
    images: Sequence["Image.Image"],
    device: torch.device | str = "cpu",
    batch_size: int = 64,
) -> torch.Tensor:
    """[N, d] L2-normalised float32 embeddings of PIL images, with the model's own preprocessing."""
    chunks = []
    for start in range(0, len(images), batch_size):
        pixels = preprocess_images(processor, list(images[start : start + batch_size])).to(device)
        chunks.append(F.normalize(encode_images(model, pixels).float(), dim=-1))
    return torch.cat(chunks) if chunks else torch.empty(0, model.config.projection_dim)


def tokenize(processor: "CLIPProcessor", texts: list[str]) -> dict[str, torch.Tensor]:
    """Pad to the longest text in the batch and truncate to the model's context length."""
    tokenizer = getattr(processor, "tokenizer", processor)
    encoded = tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
    return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}


def preprocess_images(processor: "CLIPProcessor", images: list["Image.Image"]) -> torch.Tensor:
    """The model's own resize + centre crop + normalisation: [B, 3, H, W] float32."""
    image_processor = getattr(processor, "image_processor", processor)
    return image_processor(images=[image.convert("RGB") for image in images], return_tensors="pt")[
        "pixel_values"
    ]


def vision_parameters(model: "CLIPModel") -> list[nn.Parameter]:
    return [*model.vision_model.parameters(), *model.visual_projection.parameters()]


def text_parameters(model: "CLIPModel") -> list[nn.Parameter]:
    return [*model.text_model.parameters(), *model.text_projection.parameters()]


def freeze_towers(model: "CLIPModel", vision: bool, text: bool) -> None:
    """Stop gradients into a tower; the logit scale stays trainable (the paper trains it)."""
    for parameter in vision_parameters(model):
        parameter.requires_grad_(not vision)
    for parameter in text_parameters(model):
        parameter.requires_grad_(not text)


def set_train_mode(model: "CLIPModel", vision_frozen: bool, text_frozen: bool) -> None:
    """Train mode for the trained towers; frozen towers stay in eval mode (no dropout noise)."""
    model.train()
    if vision_frozen:
        model.vision_model.eval()
    if text_frozen:
        model.text_model.eval()


def enable_gradient_checkpointing(model: "CLIPModel") -> None:
    """Recompute activations in backward: less memory for larger batches (more negatives)."""
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def fingerprint(modules: Sequence[nn.Module], *settings: str) -> str:
    """The one model fingerprint: a short hash of the weights of `modules` and of `settings` (the
    preprocessing, the precision). A cache keyed by it is never read for another model."""
    import hashlib

    digest = hashlib.sha256()
    for module in modules:
        for name, tensor in sorted(module.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    for setting in settings:
        digest.update(setting.encode())
    return digest.hexdigest()[:16]


def processor_settings(processor: "CLIPProcessor") -> list[str]:
    """What of a processor changes embeddings: the image preprocessing and the tokenizer itself."""
    image_processor = getattr(processor, "image_processor", None)
    tokenizer = getattr(processor, "tokenizer", None)
    settings = [image_processor.to_json_string() if image_processor is not None else ""]
    if tokenizer is not None:
        backend = getattr(tokenizer, "backend_tokenizer", None)
        settings.append(backend.to_str() if backend is not None else json.dumps(tokenizer.get_vocab(), sort_keys=True))
        settings.append(str(tokenizer.model_max_length))
    return settings


class DualEncoder(nn.Module):
    """The CLIP towers plus the loss as one module, so DDP sees a single forward per step.

    Images come either as pixels or as cached image embeddings (frozen vision tower). The texts the
    loss needs (its `required_texts`, e.g. caption, paraphrase, negation) arrive as one [kB, L]
    token batch in that order, so the text tower runs once per step.
    """

    def __init__(self, clip: "CLIPModel", loss: nn.Module):
        super().__init__()
        self.clip = clip
        self.loss = loss
        self.texts: tuple[str, ...] = tuple(getattr(loss, "required_texts", ("caption",)))

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        pixel_values: torch.Tensor | None = None,
        image_embeds: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        if image_embeds is None:
            image_embeds = encode_images(self.clip, pixel_values)
        image_features = F.normalize(image_embeds, dim=-1)  # [B, d]
        text = F.normalize(encode_text(self.clip, input_ids, attention_mask), dim=-1)  # [kB, d]
        chunks = dict(zip(self.texts, text.split(image_features.shape[0])))
        return self.loss(
            image_features,
            chunks["caption"],
            chunks.get("paraphrase"),
            chunks.get("negation"),
            self.clip.logit_scale.exp(),
        )
