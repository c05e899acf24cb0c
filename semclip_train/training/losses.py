"""The training objectives: CLIP, SemCLIP (with its variants), NegCLIP and a CoN-CLIP-style loss.

Each loss is a small module and a pure function of embeddings. One call convention serves them all,
so the trainer never special-cases a loss:

    loss(image_features, text_features, paraphrase_features, negation_features, logit_scale)

Features are [B, d] rows of this rank's batch, unnormalised (they are L2-normalised here: the
reference fed raw features to the contrastive term). `logit_scale` is the exponentiated scale
(as in OpenCLIP), a scalar tensor or float. Arguments a loss does not use may be None; the texts a
loss needs are listed in its `required_texts`, so the trainer can skip encoding the others.
`forward` returns a dict of tensors: the named `*_loss` terms and their weighted total under "loss".

Several ranks (`world_size > 1`): this rank's image and text features are gathered from all ranks
with gradients (`distributed.gather_features`). The global batch is the concatenation of every
rank's local batch in rank order (W * B items). Each rank computes the rows of its own B items
against all W * B columns, with labels offset by `rank * B`, and averages over its rows. The mean
of the per-rank losses is the loss of the global batch, and with gradients averaged over ranks
(DDP) the update equals that of one process on the global batch. The text-to-text SemCLIP terms
need no gathering: they are per-item, averaged over the local batch, so their mean over ranks is
again the global-batch mean. Log the mean over ranks (`distributed.all_reduce_mean`), not rank 0's.
"""

from __future__ import annotations

import functools
import inspect
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from semclip_train.errors import SemClipError
from semclip_train.training.distributed import gather_features
from semclip_train.training.loss_names import (
    CLIP, CONCLIP, LOSS_NAMES, NEGATION_ONLY, NEGCLIP, PARAPHRASE_ONLY, SEMCLIP, SEMCLIP_HARDNEG,
)

Features = torch.Tensor | None


def _normalize(features: torch.Tensor) -> torch.Tensor:
    return F.normalize(features, dim=-1)


def _require(features: Features, what: str, loss: str) -> torch.Tensor:
    if features is None:
        raise TypeError(f"the {loss} loss needs {what} features, got None")
    return features


def _as_scale(logit_scale: torch.Tensor | float | None) -> torch.Tensor | float:
    if logit_scale is None:
        raise TypeError("logit_scale is required (the exponentiated scale, e.g. model.logit_scale.exp())")
    return logit_scale


def _local_labels(batch: int, rank: int, device: torch.device) -> torch.Tensor:
    """Column of each local item in the global batch: the labels offset by rank."""
    return torch.arange(batch, device=device) + rank * batch


class _RankAware(nn.Module):
    """Holds the rank and world size that decide whether features are gathered."""

    def __init__(self, rank: int = 0, world_size: int = 1):
        super().__init__()
        if world_size < 1 or not 0 <= rank < world_size:
            raise SemClipError(f"rank {rank} is not in a world of size {world_size}")
        self.rank = rank
        self.world_size = world_size

    def gather(self, *features: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return gather_features(*features, world_size=self.world_size)


class ClipLoss(_RankAware):
    """Symmetric InfoNCE on (image, original caption) pairs, as in CLIP.

    contrastive = (CE(s * I T^T, labels) + CE(s * T I^T, labels)) / 2 on L2-normalised features.

    With `negation` features (NegCLIP's hard negatives), each image is also scored against every
    negated caption: the image-to-text logits are [B, 2*W*B], originals then negations, and the
    negations are never queries of the text-to-image term.
    """

    required_texts = ("caption",)

    def get_logits(
        self, image: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor | float,
        negation: torch.Tensor | None = None, own_negation: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Local rows against the global batch: [B, W*B] (or [B, 2*W*B] with `negation`, or
        [B, W*B + 1] with `own_negation`: each image's own negated caption as one more column) and [B, W*B]."""
        image, text = _normalize(image), _normalize(text)
        if negation is None:
            all_image, all_text = self.gather(image, text)
            columns = all_text
        else:
            all_image, all_text, all_negation = self.gather(image, text, _normalize(negation))
            columns = torch.cat([all_text, all_negation])
        per_image = logit_scale * image @ columns.T
        if own_negation is not None:
            own = (image * _normalize(own_negation)).sum(-1, keepdim=True)
            per_image = torch.cat([per_image, logit_scale * own], dim=1)
        return per_image, logit_scale * text @ all_image.T

    def directions(self, image: torch.Tensor, text: torch.Tensor, logit_scale,
                   negation: torch.Tensor | None = None,
                   own_negation: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(image-to-text, text-to-image) cross-entropies."""
        per_image, per_text = self.get_logits(image, text, logit_scale, negation, own_negation)
        labels = _local_labels(image.shape[0], self.rank, image.device)
        return F.cross_entropy(per_image, labels), F.cross_entropy(per_text, labels)

    def contrastive(self, image: torch.Tensor, text: torch.Tensor, logit_scale,
                    negation: torch.Tensor | None = None, own_negation: torch.Tensor | None = None) -> torch.Tensor:
        return sum(self.directions(image, text, logit_scale, negation, own_negation)) / 2

    def forward(
        self,
        image_features: torch.Tensor,
        text_features: torch.Tensor,
        paraphrase_features: Features = None,
        negation_features: Features = None,
        logit_scale: torch.Tensor | float | None = None,
    ) -> dict[str, torch.Tensor]:
        loss = self.contrastive(image_features, text_features, _as_scale(logit_scale))
        return {"contrastive_loss": loss, "loss": loss}


def orthonormal_basis(embed_dim: int, n: int, seed: int) -> torch.Tensor:
    """[embed_dim, n] orthonormal columns: Gram-Schmidt on seeded Gaussian vectors.

    QR with the signs fixed so that diag(R) > 0 is exactly classical Gram-Schmidt, computed stably.
    """
    generator = torch.Generator().manual_seed(seed)
    gaussian = torch.randn(embed_dim, n, generator=generator, dtype=torch.float64)
    return _orthonormalize(gaussian).float()


def _orthonormalize(matrix: torch.Tensor) -> torch.Tensor:
    q, r = torch.linalg.qr(matrix)
    signs = torch.sign(torch.diagonal(r))
    signs = torch.where(signs == 0, torch.ones_like(signs), signs)
    return q * signs


class SemClipLoss(_RankAware):
    """SemCLIP (Ngan et al., arXiv 2511.16527): CLIP plus paraphrase and negation terms.

        L_total = (a * L_con + b * L_para + g * L_neg) / (a + b + g)
        L_para  = mean_i 1 - cos(p(t_i), p(t+_i))
        L_neg   = mean_i max(0, cos(p(t_i), p(t-_i)))
        p(x)    = V^T x / ||V^T x||,  x L2-normalised, V = `projection` ([d, n], orthonormal columns)

    L_con is `ClipLoss` (gathered across ranks). L_para and L_neg are text-to-text and per rank:
    averaged over the local batch (see the module docstring for why that is still the global mean).

    `hard_negatives=True` (the `semclip-hardneg` loss, this toolkit's default) also puts each row's
    negation into L_con: each image must prefer its caption over its own negated caption. The
    text-only L_neg only asks caption and negation to point apart in an n-dimensional projection and
    is often 0 within a few hundred steps (no gradient after that); the image-anchored softmax never
    saturates, and it is the term that reads a negation against what the image shows, which is what
    "a cat and no dog" versus "a dog and no cat" needs. Unlike NegCLIP, the other rows' negations
    are not columns: a denial such as "there is no dog on the sofa" is true of most other images, and
    scoring it as false for all of them teaches that a sentence with "no" is false.
    A term whose weight is 0 is still computed, without gradient, so every variant logs the same
    terms; that is why all three texts are always required.

    `paraphrase_positives=True` makes the paraphrase a second caption of its image in L_con (the mean
    of the term on captions and on paraphrases, against the same negations). triplegen writes an
    absent-object row's paraphrase with the denial at the other end of the sentence, so the image
    must match "a cat on a sofa, without a dog in sight" and "without a dog in sight, a cat on a
    sofa" alike: a model learns which object the "no" governs in both clause orders, not where the
    denied object usually sits.

    `normalize_projections` only decides whether p(x) is divided by its norm before the cosine.
    The cosine is scale invariant, so the values agree except where ||V^T x|| is near zero (the
    same holds for normalising t before projecting); the option is kept for parity with the
    reference code.

    The basis V is a buffer when fixed. When learnable, the nn.Parameter is `basis` and `projection`
    is its QR orthonormalisation (signs fixed), recomputed on every access: V stays exactly
    orthonormal whatever the optimizer does, and gradients flow through the QR. Keep `basis` out of
    weight decay (only its direction matters) and give it to the optimizer; when the loss is not
    inside the DDP-wrapped module, average its gradient with `distributed.all_reduce_gradients`.
    """

    required_texts = ("caption", "paraphrase", "negation")
    variants: dict[str, tuple[float, float, float]] = {
        "clip": (1.0, 0.0, 0.0),
        "paraphrase-only": (1.0, 1.0, 0.0),
        "negation-only": (1.0, 0.0, 1.0),
        "semclip": (1.0, 1.0, 1.0),
    }

    def __init__(
        self,
        alpha: float = 1.0,
        beta: float = 1.0,
        gamma: float = 1.0,
        n_projections: int = 2,
        learnable_projections: bool = False,
        normalize_projections: bool = True,
        hard_negatives: bool = False,
        paraphrase_positives: bool = False,
        embed_dim: int = 512,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ):
        super().__init__(rank, world_size)
        weights = (alpha, beta, gamma)
        if min(weights) < 0 or sum(weights) <= 0:
            raise SemClipError(f"loss weights must be >= 0 with a positive sum, got {weights}")
        if not 1 <= n_projections <= embed_dim:
            raise SemClipError(f"n_projections must be in 1..embed_dim={embed_dim}, got {n_projections}")
        self.alpha, self.beta, self.gamma = (float(w) for w in weights)
        self.n_projections = n_projections
        self.learnable_projections = learnable_projections
        self.normalize_projections = normalize_projections
        self.hard_negatives = hard_negatives
        self.paraphrase_positives = paraphrase_positives
        self.clip = ClipLoss(rank, world_size)
        basis = orthonormal_basis(embed_dim, n_projections, seed)
        if learnable_projections:
            self.basis = nn.Parameter(basis)
        else:
            self.register_buffer("basis", basis)

    def extra_repr(self) -> str:
        return (
            f"alpha={self.alpha}, beta={self.beta}, gamma={self.gamma}, "
            f"n_projections={self.n_projections}, learnable={self.learnable_projections}, "
            f"normalize_projections={self.normalize_projections}, hard_negatives={self.hard_negatives}, "
            f"paraphrase_positives={self.paraphrase_positives}, "
            f"embed_dim={self.basis.shape[0]}"
        )

    @classmethod
    def from_variant(cls, name: str, **kwargs) -> SemClipLoss:
        """A named variant of the paper: `clip`, `paraphrase-only`, `negation-only`, `semclip`.

        The variant switches terms off; a weight it keeps on may be changed (gamma=0.5), but a
        term it switches off cannot be switched back on.
        """
        if name not in cls.variants:
            raise SemClipError(f"unknown SemCLIP variant {name!r}; choose from {', '.join(cls.variants)}")
        weights = dict(zip(("alpha", "beta", "gamma"), cls.variants[name]))
        for key, default in weights.items():
            given = kwargs.pop(key, default)
            if default == 0 and given != 0:
                raise SemClipError(f"the {name!r} variant has {key}=0; got {key}={given}")
            weights[key] = given
        return cls(**weights, **kwargs)

    @property
    def projection(self) -> torch.Tensor:
        """V: [embed_dim, n_projections] with orthonormal columns."""
        return _orthonormalize(self.basis) if self.learnable_projections else self.basis

    def project(self, features: torch.Tensor) -> torch.Tensor:
        """p(x) for L2-normalised x: [B, d] -> [B, n]."""
        projected = _normalize(features) @ self.projection.to(features.dtype)
        return _normalize(projected) if self.normalize_projections else projected

    def paraphrase_term(self, text: torch.Tensor, paraphrase: torch.Tensor) -> torch.Tensor:
        return (1 - F.cosine_similarity(self.project(text), self.project(paraphrase), dim=-1)).mean()

    def negation_term(self, text: torch.Tensor, negation: torch.Tensor) -> torch.Tensor:
        return F.cosine_similarity(self.project(text), self.project(negation), dim=-1).clamp_min(0).mean()

    def forward(
        self,
        image_features: torch.Tensor,
        text_features: torch.Tensor,
        paraphrase_features: Features = None,
        negation_features: Features = None,
        logit_scale: torch.Tensor | float | None = None,
    ) -> dict[str, torch.Tensor]:
        paraphrase = _require(paraphrase_features, "paraphrase", "semclip")
        negation = _require(negation_features, "negation", "semclip")
        scale, own = _as_scale(logit_scale), negation if self.hard_negatives else None
        contrastive = self.clip.contrastive(image_features, text_features, scale, own_negation=own)
        if self.paraphrase_positives:
            contrastive = (contrastive + self.clip.contrastive(image_features, paraphrase, scale, own_negation=own)) / 2
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.beta > 0):
            paraphrase_loss = self.paraphrase_term(text_features, paraphrase)
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.gamma > 0):
            negation_loss = self.negation_term(text_features, negation)
        total = (
            self.alpha * contrastive + self.beta * paraphrase_loss + self.gamma * negation_loss
        ) / (self.alpha + self.beta + self.gamma)
        return {
            "contrastive_loss": contrastive,
            "paraphrase_loss": paraphrase_loss,
            "negation_loss": negation_loss,
            "loss": total,
        }


class NegClipLoss(ClipLoss):
    """NegCLIP (Yuksekgonul et al., ICLR 2023): negated captions as extra image-to-text negatives.

        image_to_text = CE(s * I [T; T-]^T)   [B, 2B]: each image against originals and negations
        text_to_image = CE(s * T I^T)         [B, B]: negations are never queries
        loss = (image_to_text + text_to_image) / 2

    Across ranks the columns are the global originals followed by the global negations.
    """

    required_texts = ("caption", "negation")

    def forward(
        self,
        image_features: torch.Tensor,
        text_features: torch.Tensor,
        paraphrase_features: Features = None,
        negation_features: Features = None,
        logit_scale: torch.Tensor | float | None = None,
    ) -> dict[str, torch.Tensor]:
        negation = _require(negation_features, "negation", "negclip")
        image_to_text, text_to_image = self.directions(image_features, text_features, _as_scale(logit_scale), negation)
        return {
            "image_to_text_loss": image_to_text,
            "text_to_image_loss": text_to_image,
            "loss": (image_to_text + text_to_image) / 2,
        }


class ConClipLoss(_RankAware):
    """CoN-CLIP-style loss (Singh et al., WACV 2025), on the images, captions and negations.

        image_loss      L1 = CE(s * I [T; T-]^T)   each image against all 2B captions
        caption_loss    L2 = CE(s * T [I; D]^T)    each true caption against all images and
                                                   all distractor images D (when given)
        distractor_loss L3 = CE(s * D T-^T)        each distractor image against all negated
                                                   captions, its own being the positive
        loss = (L1 + L2 + L3) / 3

    The triple record has no distractor images. Without them (`distractor_features=None`) there is
    no L3 and loss = (L1 + L2) / 2 with L2 over the images only: exactly NegCLIP's objective, which
    a test checks. Distractors, when given, are [B, d], one per item.
    """

    required_texts = ("caption", "negation")

    def forward(
        self,
        image_features: torch.Tensor,
        text_features: torch.Tensor,
        paraphrase_features: Features = None,
        negation_features: Features = None,
        logit_scale: torch.Tensor | float | None = None,
        distractor_features: Features = None,
    ) -> dict[str, torch.Tensor]:
        scale = _as_scale(logit_scale)
        image, text = _normalize(image_features), _normalize(text_features)
        negation = _normalize(_require(negation_features, "negation", "conclip"))
        labels = _local_labels(image.shape[0], self.rank, image.device)
        if distractor_features is None:
            all_image, all_text, all_negation = self.gather(image, text, negation)
            candidates = all_image
        else:
            distractor = _normalize(distractor_features)
            all_image, all_text, all_negation, all_distractor = self.gather(
                image, text, negation, distractor
            )
            candidates = torch.cat([all_image, all_distractor])
        terms = {
            "image_loss": F.cross_entropy(scale * image @ torch.cat([all_text, all_negation]).T, labels),
            "caption_loss": F.cross_entropy(scale * text @ candidates.T, labels),
        }
        if distractor_features is not None:
            terms["distractor_loss"] = F.cross_entropy(scale * distractor @ all_negation.T, labels)
        terms["loss"] = sum(terms.values()) / len(terms)
        return terms


# `clip` is plain ClipLoss: it needs no paraphrase or negation encodings.
_SEMCLIP_NAMES = (SEMCLIP, PARAPHRASE_ONLY, NEGATION_ONLY)
# The default weighs the text-only terms at a tenth of the contrastive one: at the paper's 1:1:1 they cost
# plain-caption retrieval on worlds the recipe was not tuned on (docs/benchmarks.md, third round).
_REGISTRY: dict[str, Callable[..., nn.Module]] = {
    SEMCLIP_HARDNEG: functools.partial(SemClipLoss.from_variant, SEMCLIP, hard_negatives=True, beta=0.1, gamma=0.1),
    CLIP: ClipLoss,
    **{name: functools.partial(SemClipLoss.from_variant, name) for name in _SEMCLIP_NAMES},
    NEGCLIP: NegClipLoss,
    CONCLIP: ConClipLoss,
}
# Facts about the run that every loss accepts; only the SemCLIP family uses embed_dim and seed.
_CONTEXT = ("rank", "world_size", "embed_dim", "seed")


def build_loss(name: str, **kwargs) -> nn.Module:
    """The loss called `name` (one of LOSS_NAMES).

    rank, world_size, embed_dim and seed describe the run and are accepted for every loss; any
    other option must belong to the chosen loss (beta for `clip` is an error, not ignored).
    """
    if name not in _REGISTRY:
        raise SemClipError(f"unknown loss {name!r}; choose from {', '.join(LOSS_NAMES)}")
    target = SemClipLoss if name in (*_SEMCLIP_NAMES, SEMCLIP_HARDNEG) else _REGISTRY[name]
    accepted = set(inspect.signature(target.__init__).parameters) - {"self"}
    extra = sorted(set(kwargs) - accepted - set(_CONTEXT))
    if extra:
        raise SemClipError(f"option(s) {', '.join(extra)} do not apply to the {name!r} loss")
    return _REGISTRY[name](**{k: v for k, v in kwargs.items() if k in accepted})
