"""SemCLIP training: fine-tune CLIP on (caption, paraphrase, negation) triples.

    from semclip_train import TrainConfig, train
    result = train(TrainConfig(triples="triples.parquet", model="openai/clip-vit-base-patch32",
                               output="runs/semclip"))

Importing the package is cheap: torch and transformers load only when `train` or a submodule is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from semclip_train.training.config import TrainConfig
    from semclip_train.training.trainer import TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "train"]


def __getattr__(name: str) -> Any:
    if name == "TrainConfig":
        from semclip_train.training.config import TrainConfig

        return TrainConfig
    if name in ("train", "TrainResult"):
        from semclip_train.training import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module 'semclip_train' has no attribute {name!r}")
