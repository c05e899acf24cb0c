"""The names of the training objectives, apart from `semclip_train.losses` because that module needs
torch: the config validates `loss` against these names and `semclip-train --help` offers them on a
machine without PyTorch. `losses.build_loss` builds each one (its registry holds exactly these)."""

from __future__ import annotations

from typing import Literal

# the first is the default: it learns negation in both directions and its scope (docs/benchmarks.md);
# `semclip` is the paper's exact objective, for reproduction
LOSS_NAMES = ("semclip-hardneg", "clip", "semclip", "paraphrase-only", "negation-only", "negclip", "conclip")
DEFAULT_LOSS = LOSS_NAMES[0]
LossName = Literal[LOSS_NAMES]  # type: ignore[valid-type]
