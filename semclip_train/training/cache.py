"""Image embeddings of a frozen vision tower, computed once and reused every epoch.

While the vision tower is frozen its output for an image never changes, so re-encoding every image
every epoch (as the reference code does) is wasted work. The cache holds the projected, unnormalised
embedding of each distinct image, computed in eval mode under the training precision, so the loss and
its gradients are those of recomputing. On disk it is one safetensors file per model fingerprint
(vision weights + image preprocessing + precision), with the images' content digests in its
metadata: a later run, or a resumed one, reuses the embeddings of the images it already holds, and
an image under another root or a file replaced since is never given another image's embedding.
"""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from semclip_train.triples import ImageRef

CacheContext = Callable[[], contextlib.AbstractContextManager]


def cache_fingerprint(model: Any, processor: Any, precision: str) -> str:
    """Changes whenever a cached embedding could differ: vision weights, preprocessing, precision."""
    from semclip_train.model import fingerprint

    image_processor = getattr(processor, "image_processor", processor)
    return fingerprint([model.vision_model, model.visual_projection], image_processor.to_json_string(), precision)


class ImageEmbeddingCache:
    """[n_images, d] embeddings in the order of `images`; look up rows with `embeddings[index]`."""

    def __init__(self, embeddings: torch.Tensor, keys: list[str], fingerprint: str):
        self.embeddings = embeddings
        self.keys = keys
        self.fingerprint = fingerprint
        self.computed = 0  # how many embeddings this run had to compute (the rest came from disk)

    def lookup(self, image_index: torch.Tensor) -> torch.Tensor:
        return self.embeddings[image_index.to(self.embeddings.device)]

    @classmethod
    def build(
        cls,
        model: Any,
        processor: Any,
        images: Sequence[ImageRef],
        device: torch.device,
        precision_context: CacheContext,
        fingerprint: str,
        folder: Path | None = None,
        batch_size: int = 64,
        rank: int = 0,
        world_size: int = 1,
    ) -> "ImageEmbeddingCache":
        """Load what `folder` holds for this fingerprint, compute the rest (split over ranks)."""
        keys = [image.content_key() for image in images]
        stored = _load(folder / f"{fingerprint}.safetensors") if folder is not None else {}
        todo = [i for i, key in enumerate(keys) if key not in stored]
        computed = _encode_shared(model, processor, [images[i] for i in todo], device,
                                  precision_context, batch_size, rank, world_size)
        rows = dict(zip((keys[i] for i in todo), computed))
        rows.update(stored)
        if not rows:
            embeddings = torch.empty(0, model.config.projection_dim)
        else:
            embeddings = torch.stack([rows[key] for key in keys])
        cache = cls(embeddings.to(device), keys, fingerprint)
        cache.computed = len(todo)
        if folder is not None and todo and rank == 0:
            _save(folder / f"{fingerprint}.safetensors", {**stored, **rows})
        return cache


@torch.no_grad()
def _encode(model, processor, images, device, precision_context, batch_size) -> list[torch.Tensor]:
    from semclip_train.model import encode_images, preprocess_images

    was_training = model.vision_model.training
    model.vision_model.eval()
    out = []
    for start in range(0, len(images), batch_size):
        pixels = preprocess_images(processor, [ref.open() for ref in images[start : start + batch_size]])
        with precision_context():
            out.extend(encode_images(model, pixels.to(device)).cpu())  # [b, d] each
    model.vision_model.train(was_training)
    return out


def _encode_shared(model, processor, images, device, precision_context, batch_size, rank, world_size):
    """Each rank encodes one contiguous share; the shares are gathered so every rank has all rows."""
    if world_size == 1:
        return _encode(model, processor, images, device, precision_context, batch_size)
    from semclip_train.training.distributed import all_gather_with_grad

    share = math.ceil(len(images) / world_size)
    mine = _encode(model, processor, images[rank * share : (rank + 1) * share], device,
                   precision_context, batch_size)
    # Gathered as float32 (exact for bf16 values) so that a rank with an empty share, which cannot
    # know the dtype, still matches; cast back to the encoder's output dtype afterwards.
    dtype = torch.tensor([_DTYPES.index(mine[0].dtype) if mine else -1], device=device)
    local = torch.zeros(share, model.config.projection_dim)
    if mine:
        local[: len(mine)] = torch.stack(mine).float()
    with torch.no_grad():
        gathered = all_gather_with_grad(local.to(device), world_size).cpu()  # [W*share, d]
        code = int(all_gather_with_grad(dtype, world_size).max())
    return list(gathered[: len(images)].to(_DTYPES[code]))


_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def _load(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        return {}
    from safetensors import safe_open

    from semclip_train.errors import SemClipError

    try:
        with safe_open(str(path), framework="pt") as handle:
            keys = json.loads(handle.metadata()["keys"])
            embeddings = handle.get_tensor("embeddings")
    except Exception as exc:  # safetensors raises its own error types for a damaged file
        raise SemClipError(f"image embedding cache {path} is damaged ({exc}); delete it and rerun") from None
    return dict(zip(keys, embeddings))


def _save(path: Path, rows: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save_file

    from semclip_core.files import atomic_path

    keys = list(rows)
    with atomic_path(path) as tmp:
        save_file({"embeddings": torch.stack([rows[k] for k in keys]).contiguous()}, str(tmp),
                  metadata={"keys": json.dumps(keys)})
