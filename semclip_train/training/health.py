"""Is the training still sound? Checks that stop a diverged run before it writes a broken model.

Three ways a run goes wrong without an exception: a loss or gradient that is not finite (seen at the
step, before its update), a weight that is not finite, and weights that are finite but so large
that the forward pass overflows (lr 1e30: every weight finite, every text embedding NaN). The last
two are checked before each checkpoint and before `final/`, the last one on the step's own batch,
so no checkpoint or final model is written that would evaluate to NaN.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from semclip_train.errors import TrainingDiverged
from semclip_train.training import distributed

if TYPE_CHECKING:
    from semclip_train.training.trainer import Run


def check_finite(run: "Run", step: int, loss: torch.Tensor, grad_norm: torch.Tensor) -> None:
    """Stop a diverged run (the same verdict on every rank) before its update, keeping the last good
    checkpoint and writing nothing to final/."""
    health = distributed.all_reduce_mean(torch.stack([loss.detach().float(), grad_norm.detach().float()]))
    if torch.isfinite(health).all():
        return
    loss_value, norm = health.tolist()
    raise TrainingDiverged(f"training diverged at step {step}: the loss is {loss_value:.4g} and the gradient norm "
                           f"{norm:.4g}; lower --lr (now {run.config.lr:g}) or check the data; {kept(run)}")


def check_model(run: "Run", step: int, probe: dict[str, torch.Tensor] | None) -> None:
    """No checkpoint or final model with a weight that is not finite, or whose embeddings of the
    batch `probe` (the last one trained on) are not."""
    broken = next((name for name, tensor in run.module.state_dict().items()
                   if tensor.is_floating_point() and not torch.isfinite(tensor).all()), None)
    if broken is not None:
        raise TrainingDiverged(f"training diverged by step {step}: {broken} is not finite; lower --lr (now "
                               f"{run.config.lr:g}); {kept(run)}")
    kind = _non_finite_embeddings(run, probe) if probe is not None else None
    if kind is not None:
        raise TrainingDiverged(f"training diverged by step {step}: the weights are finite but the {kind} embeddings "
                               f"are not (the forward pass overflows); lower --lr (now {run.config.lr:g}); {kept(run)}")


@torch.no_grad()
def _non_finite_embeddings(run: "Run", probe: dict[str, Any]) -> str | None:
    """'text' or 'image' when the model's embeddings of `probe` are not finite, else None."""
    from semclip_train.model import encode_images, encode_text

    clip = run.module.clip
    with run.autocast():
        texts = encode_text(clip, probe["input_ids"], probe["attention_mask"])
        if not torch.isfinite(texts).all():
            return "text"
        images = probe.get("image_embeds")  # cached: the frozen tower's own, computed before training
        if images is None:
            images = encode_images(clip, probe["pixel_values"])
        if not torch.isfinite(images).all():
            return "image"
    return None


def kept(run: "Run") -> str:
    if run.checkpoint is None:
        return "no checkpoint was saved yet and nothing was written to final/"
    return f"the last good checkpoint is {run.checkpoint} (--resume continues from it); nothing was written to final/"
