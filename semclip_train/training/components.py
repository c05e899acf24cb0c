"""Build the parts of a training run from its config: model + loss, data, loaders, image cache.

Kept apart from `trainer.py` so that the loop there reads top to bottom without set-up detail.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch.utils.data import DataLoader

from semclip_train.training.config import TrainConfig
from semclip_train.training.data import (
    GlobalBatchSampler, MixedBatchSampler, TextCollator, TripleDataset, absent_per_batch,
)
from semclip_train.errors import SemClipError
from semclip_train.triples import Triples


def precision_context(config: TrainConfig, device: torch.device) -> Callable[[], contextlib.AbstractContextManager]:
    """bf16 autocast on CUDA (the paper's precision), plain fp32 elsewhere."""
    bf16 = config.precision == "bf16" or (config.precision == "auto" and device.type == "cuda")
    if bf16 and device.type != "cuda":
        raise SemClipError("--precision bf16 is for CUDA devices; use --precision fp32 on a CPU")
    if bf16:
        return lambda: torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext


def precision_name(config: TrainConfig, device: torch.device) -> str:
    return "bf16" if config.precision == "bf16" or (config.precision == "auto" and device.type == "cuda") else "fp32"


def build_model(config: TrainConfig, rank: int, world_size: int):
    """(DualEncoder with CLIP and loss, processor), towers frozen as configured, on the CPU."""
    from semclip_train.training.losses import build_loss
    from semclip_train.model import (
        DualEncoder, clip_config_from, enable_gradient_checkpointing, freeze_towers, load_clip,
        load_processor, random_clip,
    )

    if config.model is not None:
        clip, processor = load_clip(config.model)
        if config.processor is not None:
            processor = load_processor(config.processor)
    else:
        clip = random_clip(clip_config_from(config.clip_config), seed=config.seed)
        processor = load_processor(config.processor_source)
    try:
        loss = build_loss(
            config.loss, rank=rank, world_size=world_size, embed_dim=clip.config.projection_dim,
            seed=config.seed, **config.loss_options(),
        )
    except ValueError as exc:
        raise SemClipError(f"--loss {config.loss}: {exc}") from None
    freeze_towers(clip, vision=config.freeze_vision, text=config.freeze_text)
    if config.grad_checkpointing:
        enable_gradient_checkpointing(clip)
    return DualEncoder(clip, loss), processor


@dataclass
class Data:
    train: Triples
    val: Triples
    all: Triples  # after dropping unreadable images; its `images` are what the cache holds


def build_data(config: TrainConfig) -> Data:
    from semclip_train.training.data import check_images, split_by_image
    from semclip_train.triples import read_triples

    triples = check_images(read_triples(config.triples, config.image_root), strict=config.strict_images)
    if len(triples) == 0:
        raise SemClipError(f"{config.triples}: no usable rows ({triples.skipped_rows} skipped for their images)")
    train, val = split_by_image(triples, config.val_fraction, config.seed)
    return Data(train=train, val=val, all=triples)


def build_loader(
    triples: Triples, processor: Any, texts: tuple[str, ...], config: TrainConfig, rank: int,
    world_size: int, load_pixels: bool, pin_memory: bool, absent_share: float | None = None,
) -> tuple[DataLoader, GlobalBatchSampler | MixedBatchSampler]:
    """Batches of the same rows for any number of ranks; with `absent_share` (`--absent-share`) that
    share of every global batch is absent-object rows."""
    if absent_share is None:
        sampler = GlobalBatchSampler(len(triples), config.batch_size, rank, world_size, config.seed)
    else:
        n_absent = absent_per_batch(triples, absent_share, config.batch_size, world_size)
        sampler = MixedBatchSampler(triples, n_absent, config.batch_size, rank, world_size, config.seed)
    loader = DataLoader(
        TripleDataset(triples, processor, load_pixels=load_pixels),
        batch_sampler=sampler,
        collate_fn=TextCollator(processor, texts),
        num_workers=config.workers,
        pin_memory=pin_memory,
        persistent_workers=False,
    )
    return loader, sampler


def build_image_cache(config: TrainConfig, module, processor, data: Data, device, context, rank, world_size):
    """The frozen vision tower's embeddings of every usable image, or None when not caching."""
    if not (config.freeze_vision and config.cache_image_embeddings):
        return None
    from semclip_train.training.cache import ImageEmbeddingCache, cache_fingerprint

    clip = module.clip
    fingerprint = cache_fingerprint(clip, processor, precision_name(config, device))
    folder = config.image_cache_dir or config.run_dir / "image_cache"
    return ImageEmbeddingCache.build(
        clip, processor, data.all.images, device, context, fingerprint, folder,
        batch_size=max(config.batch_size, 1), rank=rank, world_size=world_size,
    )


def param_groups(module: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: no weight decay on biases, norms, embeddings' 1-d params, the logit scale
    or the loss's own parameters (as OpenCLIP: decay only matrices of the towers)."""
    decay, no_decay = [], []
    for name, parameter in module.named_parameters():
        if not parameter.requires_grad:
            continue
        exempt = parameter.ndim < 2 or "logit_scale" in name or "norm" in name or name.startswith("loss.")
        (no_decay if exempt else decay).append(parameter)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def build_optimizer(module: torch.nn.Module, config: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    return torch.optim.AdamW(
        param_groups(module, config.weight_decay),
        lr=config.lr, betas=(config.beta1, config.beta2), eps=config.eps,
        fused=device.type == "cuda",
    )
