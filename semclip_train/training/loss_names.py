"""The names of the training objectives, apart from `semclip_train.training.losses` because that module needs
torch: the config validates `loss` against these names and `semclip-train --help` offers them on a
machine without PyTorch. `losses.build_loss` builds each one (its registry holds exactly these)."""

from __future__ import annotations

from typing import Literal

SEMCLIP_HARDNEG, CLIP, SEMCLIP = "semclip-hardneg", "clip", "semclip"
PARAPHRASE_ONLY, NEGATION_ONLY = "paraphrase-only", "negation-only"
NEGCLIP, CONCLIP = "negclip", "conclip"
# the first is the default: it learns negation in both directions and its scope (docs/benchmarks.md);
# `semclip` is the paper's exact objective, for reproduction
LOSS_NAMES = (SEMCLIP_HARDNEG, CLIP, SEMCLIP, PARAPHRASE_ONLY, NEGATION_ONLY, NEGCLIP, CONCLIP)
DEFAULT_LOSS = LOSS_NAMES[0]
LossName = Literal[LOSS_NAMES]  # type: ignore[valid-type]
