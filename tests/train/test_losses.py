"""Each loss against a direct computation written with explicit loops, values and gradients.

The references below use python loops over items and plain scalar arithmetic, so they share no
code with the vectorised implementation; float64 keeps the comparison tight.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from semclip_train.errors import SemClipError
from semclip_train.training.losses import (
    LOSS_NAMES,
    ClipLoss,
    ConClipLoss,
    NegClipLoss,
    SemClipLoss,
    build_loss,
    orthonormal_basis,
)

B, D = 5, 6


def _features(seed: int, *shape: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, generator=generator, dtype=torch.float64) * 3).requires_grad_()


@pytest.fixture
def batch():
    """Unnormalised image, caption, paraphrase, negation and distractor features, and a scale."""
    return {
        "image": _features(1, B, D),
        "text": _features(2, B, D),
        "paraphrase": _features(3, B, D),
        "negation": _features(4, B, D),
        "distractor": _features(5, B, D),
        "scale": torch.tensor(7.5, dtype=torch.float64, requires_grad=True),
    }


# ---- references with loops --------------------------------------------------------------------


def _unit(v):
    norm = sum(x * x for x in v) ** 0.5
    return [x / norm for x in v]


def _dot(u, v):
    return sum(a * b for a, b in zip(u, v))


def _rows(t):
    return [_unit(list(row)) for row in t]


def _cross_entropy(logits: list, target: int):
    """-log softmax(logits)[target], one row at a time."""
    return -(logits[target] - torch.log(sum(torch.exp(x) for x in logits)))


def _mean(values: list):
    return sum(values) / len(values)


def _infonce(queries, keys, scale):
    return _mean([_cross_entropy([scale * _dot(q, k) for k in keys], i) for i, q in enumerate(queries)])


def ref_clip(image, text, scale):
    i, t = _rows(image), _rows(text)
    return (_infonce(i, t, scale) + _infonce(t, i, scale)) / 2


def _cos(u, v):
    return _dot(u, v) / (_dot(u, u) ** 0.5 * _dot(v, v) ** 0.5)


def _project(x, basis):
    d, n = basis.shape
    return [sum(basis[k, j] * x[k] for k in range(d)) for j in range(n)]


def ref_semclip(image, text, paraphrase, negation, scale, basis, a, b, g):
    t, p, n = _rows(text), _rows(paraphrase), _rows(negation)
    para = _mean([1 - _cos(_project(t[i], basis), _project(p[i], basis)) for i in range(len(t))])
    neg = _mean(
        [torch.clamp(_cos(_project(t[i], basis), _project(n[i], basis)), min=0) for i in range(len(t))]
    )
    con = ref_clip(image, text, scale)
    return {"contrastive_loss": con, "paraphrase_loss": para, "negation_loss": neg,
            "loss": (a * con + b * para + g * neg) / (a + b + g)}


def ref_negclip(image, text, negation, scale):
    i, t, n = _rows(image), _rows(text), _rows(negation)
    columns = t + n
    image_to_text = _mean([_cross_entropy([scale * _dot(q, k) for k in columns], r) for r, q in enumerate(i)])
    text_to_image = _infonce(t, i, scale)
    return image_to_text, text_to_image


def ref_own_negation(image, text, negation, scale):
    """Each image against every caption and its own negated caption only."""
    i, t, n = _rows(image), _rows(text), _rows(negation)
    image_to_text = _mean([_cross_entropy([scale * _dot(q, k) for k in t] + [scale * _dot(q, n[r])], r)
                           for r, q in enumerate(i)])
    return image_to_text, _infonce(t, i, scale)


def ref_conclip(image, text, negation, distractor, scale):
    i, t, n, d = _rows(image), _rows(text), _rows(negation), _rows(distractor)
    l1 = _mean([_cross_entropy([scale * _dot(q, k) for k in t + n], r) for r, q in enumerate(i)])
    l2 = _mean([_cross_entropy([scale * _dot(q, k) for k in i + d], r) for r, q in enumerate(t)])
    l3 = _mean([_cross_entropy([scale * _dot(q, k) for k in n], r) for r, q in enumerate(d)])
    return l1, l2, l3


def _assert_same_grads(ours, theirs, inputs):
    grads_ours = torch.autograd.grad(ours, inputs, allow_unused=True)
    grads_theirs = torch.autograd.grad(theirs, inputs, allow_unused=True)
    for mine, ref in zip(grads_ours, grads_theirs):
        if ref is None:
            assert mine is None or torch.count_nonzero(mine) == 0
        else:
            torch.testing.assert_close(mine, ref)


def _call(loss, batch, **extra):
    return loss(batch["image"], batch["text"], batch["paraphrase"], batch["negation"], batch["scale"], **extra)


# ---- ClipLoss ---------------------------------------------------------------------------------


def test_clip_loss_matches_loop_value_and_gradients(batch):
    out = _call(ClipLoss(), batch)
    ref = ref_clip(batch["image"], batch["text"], batch["scale"])
    assert set(out) == {"contrastive_loss", "loss"}
    torch.testing.assert_close(out["loss"], ref)
    _assert_same_grads(out["loss"], ref, [batch["image"], batch["text"], batch["scale"]])


def test_clip_loss_matches_the_clip_paper_pseudocode(batch):
    """CLIP paper, Fig. 3: logits = I_e T_e^T * exp(t); (CE over rows + CE over columns) / 2."""
    image = batch["image"].detach().numpy()
    text = batch["text"].detach().numpy()
    i_e = image / np.linalg.norm(image, axis=1, keepdims=True)
    t_e = text / np.linalg.norm(text, axis=1, keepdims=True)
    logits = i_e @ t_e.T * batch["scale"].item()

    def cross_entropy(lg, axis):
        log_softmax = lg - np.log(np.exp(lg).sum(axis=axis, keepdims=True))
        return -np.mean(np.diagonal(log_softmax))

    expected = (cross_entropy(logits, 1) + cross_entropy(logits, 0)) / 2
    got = ClipLoss()(batch["image"], batch["text"], logit_scale=batch["scale"])["loss"]
    assert got.item() == pytest.approx(expected, rel=1e-12)


def test_clip_loss_closed_form_on_orthonormal_pairs():
    """Image i = text i = e_i: every row is log(1 + (B-1) e^-s)."""
    eye = torch.eye(4, dtype=torch.float64)
    got = ClipLoss()(eye, eye, logit_scale=3.0)["loss"].item()
    assert got == pytest.approx(math.log(1 + 3 * math.exp(-3.0)))


def test_clip_loss_normalises_features(batch):
    """The reference code's pitfall: rescaling an embedding must not change the loss."""
    scaled = batch["image"].detach() * torch.arange(1, B + 1, dtype=torch.float64)[:, None]
    a = ClipLoss()(batch["image"], batch["text"], logit_scale=2.0)["loss"]
    b = ClipLoss()(scaled, batch["text"], logit_scale=2.0)["loss"]
    torch.testing.assert_close(a, b)


def test_missing_logit_scale_is_a_clear_error(batch):
    with pytest.raises(TypeError, match="logit_scale is required"):
        ClipLoss()(batch["image"], batch["text"])


# ---- SemClipLoss ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"n_projections": 1},
        {"n_projections": 3, "normalize_projections": False},
        {"learnable_projections": True},
        {"alpha": 2.0, "beta": 0.5, "gamma": 1.5},
    ],
)
def test_semclip_matches_loop_term_by_term_with_gradients(batch, options):
    loss = SemClipLoss(embed_dim=D, seed=3, **options).double()
    out = _call(loss, batch)
    ref = ref_semclip(
        batch["image"], batch["text"], batch["paraphrase"], batch["negation"], batch["scale"],
        loss.projection, loss.alpha, loss.beta, loss.gamma,
    )
    for key in ("contrastive_loss", "paraphrase_loss", "negation_loss", "loss"):
        torch.testing.assert_close(out[key], ref[key], msg=key)
    inputs = [batch[k] for k in ("image", "text", "paraphrase", "negation", "scale")]
    if loss.learnable_projections:
        inputs.append(loss.basis)
    _assert_same_grads(out["loss"], ref["loss"], inputs)


def test_semclip_hardneg_scores_each_image_against_its_own_negation_plus_the_semclip_terms(batch):
    """The default loss: the paper's text terms at a tenth of the contrastive term's weight, and each
    image scored against its own negated caption too (not the other items' negations, which are
    often true of it: "there is no dog")."""
    loss = build_loss("semclip-hardneg", embed_dim=D, seed=3).double()
    out = _call(loss, batch)
    ref = ref_semclip(batch["image"], batch["text"], batch["paraphrase"], batch["negation"], batch["scale"],
                      loss.projection, 1.0, 1.0, 1.0)
    image_to_text, text_to_image = ref_own_negation(batch["image"], batch["text"], batch["negation"],
                                                    batch["scale"])
    contrastive = (image_to_text + text_to_image) / 2
    torch.testing.assert_close(out["contrastive_loss"], contrastive)
    for key in ("paraphrase_loss", "negation_loss"):
        torch.testing.assert_close(out[key], ref[key], msg=key)
    total = (contrastive + 0.1 * ref["paraphrase_loss"] + 0.1 * ref["negation_loss"]) / 1.2  # the text terms at 0.1
    torch.testing.assert_close(out["loss"], total)
    _assert_same_grads(out["loss"], total, [batch[k] for k in ("image", "text", "paraphrase", "negation", "scale")])
    assert loss.hard_negatives and not build_loss("semclip", embed_dim=D).hard_negatives
    paper = build_loss("semclip-hardneg", embed_dim=D, beta=1.0, gamma=1.0)  # --beta 1 --gamma 1
    assert (paper.alpha, paper.beta, paper.gamma) == (1.0, 1.0, 1.0)


def test_semclip_learnable_basis_gets_the_gradient_of_the_projection_terms(batch):
    loss = SemClipLoss(embed_dim=D, seed=0, learnable_projections=True).double()
    _call(loss, batch)["loss"].backward()
    assert loss.basis.grad is not None and torch.count_nonzero(loss.basis.grad) > 0


def test_identical_paraphrase_gives_zero_paraphrase_loss(batch):
    text = batch["text"]
    out = SemClipLoss(embed_dim=D).double()(batch["image"], text, text * 4.0, -text, 1.0)
    assert out["paraphrase_loss"].item() == pytest.approx(0.0, abs=1e-12)


def test_opposite_negation_gives_zero_negation_loss_and_a_copy_gives_one(batch):
    text = batch["text"]
    loss = SemClipLoss(embed_dim=D).double()
    assert loss(batch["image"], text, text, -text, 1.0)["negation_loss"].item() == 0.0
    assert loss(batch["image"], text, text, text, 1.0)["negation_loss"].item() == pytest.approx(1.0)
    assert loss(batch["image"], text, -text, text, 1.0)["paraphrase_loss"].item() == pytest.approx(2.0)


def test_negation_term_is_hinged_at_zero_per_item():
    """max(0, cos) per item before the mean: one item at cos=-1 does not cancel one at cos=+1."""
    text = torch.eye(2, 4, dtype=torch.float64)
    negation = torch.stack([text[0], -text[1]])
    loss = SemClipLoss(embed_dim=4, n_projections=4).double()  # V spans everything: p keeps cos
    assert loss.negation_term(text, negation).item() == pytest.approx(0.5)


def test_projection_has_orthonormal_columns_and_is_seeded():
    v = SemClipLoss(embed_dim=16, n_projections=3, seed=7).projection
    assert v.shape == (16, 3)
    torch.testing.assert_close(v.T @ v, torch.eye(3), atol=1e-6, rtol=0)
    torch.testing.assert_close(v, SemClipLoss(embed_dim=16, n_projections=3, seed=7).projection)
    assert not torch.allclose(v, SemClipLoss(embed_dim=16, n_projections=3, seed=8).projection)


def test_basis_is_gram_schmidt_of_seeded_gaussians():
    gaussian = torch.randn(8, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    first = gaussian[:, 0] / gaussian[:, 0].norm()
    second = gaussian[:, 1] - (gaussian[:, 1] @ first) * first
    expected = torch.stack([first, second / second.norm()], dim=1).float()
    torch.testing.assert_close(orthonormal_basis(8, 2, seed=5), expected)


def test_fixed_basis_is_a_buffer_and_learnable_basis_a_parameter():
    fixed = SemClipLoss(embed_dim=8)
    assert list(fixed.parameters()) == [] and "basis" in fixed.state_dict()
    learnable = SemClipLoss(embed_dim=8, learnable_projections=True)
    assert [name for name, _ in learnable.named_parameters()] == ["basis"]


def test_learnable_projection_stays_orthonormal_after_optimizer_steps(batch):
    loss = SemClipLoss(embed_dim=D, learnable_projections=True).double()
    before = loss.projection.detach().clone()
    optimizer = torch.optim.SGD(loss.parameters(), lr=5.0)
    for _ in range(3):
        optimizer.zero_grad()
        _call(loss, batch)["loss"].backward()
        optimizer.step()
    v = loss.projection.detach()
    assert not torch.allclose(v, before)
    torch.testing.assert_close(v.T @ v, torch.eye(2, dtype=torch.float64))


def test_normalize_projections_does_not_change_the_cosine(batch):
    on = _call(SemClipLoss(embed_dim=D).double(), batch)
    off = _call(SemClipLoss(embed_dim=D, normalize_projections=False).double(), batch)
    for key in on:
        torch.testing.assert_close(on[key], off[key])


@pytest.mark.parametrize(
    "name, weights",
    [("clip", (1, 0, 0)), ("paraphrase-only", (1, 1, 0)), ("negation-only", (1, 0, 1)), ("semclip", (1, 1, 1))],
)
def test_variants_set_the_paper_weights_and_normalise_by_their_sum(batch, name, weights):
    loss = SemClipLoss.from_variant(name, embed_dim=D).double()
    assert (loss.alpha, loss.beta, loss.gamma) == weights
    out = _call(loss, batch)
    a, b, g = weights
    expected = (a * out["contrastive_loss"] + b * out["paraphrase_loss"] + g * out["negation_loss"]) / (a + b + g)
    torch.testing.assert_close(out["loss"], expected)


def test_clip_variant_equals_clip_loss_and_sends_no_gradient_to_paraphrases(batch):
    out = _call(SemClipLoss.from_variant("clip", embed_dim=D).double(), batch)
    torch.testing.assert_close(out["loss"], _call(ClipLoss(), batch)["loss"])
    assert out["paraphrase_loss"].item() > 0  # still reported, for comparable logs
    grads = torch.autograd.grad(out["loss"], [batch["paraphrase"], batch["negation"]], allow_unused=True)
    assert grads == (None, None)


def test_custom_weights_are_normalised_by_their_sum(batch):
    out = _call(SemClipLoss(alpha=2, beta=1, gamma=1, embed_dim=D).double(), batch)
    expected = (2 * out["contrastive_loss"] + out["paraphrase_loss"] + out["negation_loss"]) / 4
    torch.testing.assert_close(out["loss"], expected)


def test_variant_cannot_switch_on_a_term_it_switches_off():
    assert SemClipLoss.from_variant("semclip", gamma=0.5, embed_dim=4).gamma == 0.5
    with pytest.raises(SemClipError, match="gamma=0"):
        SemClipLoss.from_variant("paraphrase-only", gamma=1.0, embed_dim=4)
    with pytest.raises(SemClipError, match="unknown SemCLIP variant"):
        SemClipLoss.from_variant("semclip++", embed_dim=4)


def test_invalid_semclip_options_are_refused():
    with pytest.raises(SemClipError, match="positive sum"):
        SemClipLoss(alpha=0, beta=0, gamma=0)
    with pytest.raises(SemClipError, match="n_projections"):
        SemClipLoss(n_projections=9, embed_dim=8)
    with pytest.raises(TypeError, match="needs negation features"):
        SemClipLoss(embed_dim=D)(torch.ones(2, D), torch.ones(2, D), torch.ones(2, D), None, 1.0)


# ---- NegClipLoss and ConClipLoss --------------------------------------------------------------


def test_negclip_matches_loop_value_and_gradients(batch):
    out = _call(NegClipLoss(), batch)
    image_to_text, text_to_image = ref_negclip(batch["image"], batch["text"], batch["negation"], batch["scale"])
    torch.testing.assert_close(out["image_to_text_loss"], image_to_text)
    torch.testing.assert_close(out["text_to_image_loss"], text_to_image)
    reference = (image_to_text + text_to_image) / 2
    torch.testing.assert_close(out["loss"], reference)
    inputs = [batch[k] for k in ("image", "text", "negation", "scale")]
    _assert_same_grads(out["loss"], reference, inputs)


def test_negclip_negations_make_the_loss_larger_than_clip(batch):
    """Extra negative columns can only add mass to the image-to-text softmax denominators."""
    assert _call(NegClipLoss(), batch)["loss"] > _call(ClipLoss(), batch)["loss"]


def test_conclip_with_distractors_matches_loop(batch):
    out = _call(ConClipLoss(), batch, distractor_features=batch["distractor"])
    l1, l2, l3 = ref_conclip(batch["image"], batch["text"], batch["negation"], batch["distractor"], batch["scale"])
    for key, ref in (("image_loss", l1), ("caption_loss", l2), ("distractor_loss", l3)):
        torch.testing.assert_close(out[key], ref, msg=key)
    reference = (l1 + l2 + l3) / 3
    torch.testing.assert_close(out["loss"], reference)
    inputs = [batch[k] for k in ("image", "text", "negation", "distractor", "scale")]
    _assert_same_grads(out["loss"], reference, inputs)


def test_conclip_without_distractors_is_l1_plus_l2_over_two_which_is_negclip(batch):
    out = _call(ConClipLoss(), batch)
    assert "distractor_loss" not in out
    i, t, n = (batch[k] for k in ("image", "text", "negation"))
    l1, l2 = ref_negclip(i, t, n, batch["scale"])
    torch.testing.assert_close(out["image_loss"], l1)
    torch.testing.assert_close(out["caption_loss"], l2)
    torch.testing.assert_close(out["loss"], (l1 + l2) / 2)
    torch.testing.assert_close(out["loss"], _call(NegClipLoss(), batch)["loss"])


# ---- registry ---------------------------------------------------------------------------------


def test_registry_builds_every_named_loss_with_one_call_convention(batch):
    assert set(LOSS_NAMES) == {"semclip-hardneg", "clip", "semclip", "paraphrase-only", "negation-only", "negclip",
                               "conclip"}
    for name in LOSS_NAMES:
        loss = build_loss(name, rank=0, world_size=1, embed_dim=D, seed=1).double()
        out = _call(loss, batch)
        assert torch.isfinite(out["loss"]) and out["loss"].requires_grad
        assert all(key == "loss" or key.endswith("_loss") for key in out)
        assert "caption" in loss.required_texts


def test_registry_passes_options_and_refuses_ones_that_do_not_apply():
    loss = build_loss("negation-only", embed_dim=8, n_projections=1, learnable_projections=True)
    assert isinstance(loss, SemClipLoss) and loss.beta == 0 and loss.projection.shape == (8, 1)
    assert isinstance(build_loss("clip", embed_dim=8, seed=3), ClipLoss)
    with pytest.raises(SemClipError, match="do not apply to the 'clip' loss"):
        build_loss("clip", beta=1.0)
    with pytest.raises(SemClipError, match="unknown loss 'infonce'; choose from semclip-hardneg, clip, semclip"):
        build_loss("infonce")


def test_rank_outside_the_world_is_refused():
    with pytest.raises(SemClipError, match="rank 2 is not in a world of size 2"):
        ClipLoss(rank=2, world_size=2)


def test_paraphrase_positives_score_the_image_against_caption_and_paraphrase_alike(batch):
    """The contrastive term is the mean of the term on the captions and on the paraphrases, both
    against the same negations; the text terms are unchanged."""
    loss = build_loss("semclip-hardneg", embed_dim=D, seed=3, paraphrase_positives=True).double()
    out = _call(loss, batch)
    on_captions = sum(ref_own_negation(batch["image"], batch["text"], batch["negation"], batch["scale"])) / 2
    on_paraphrases = sum(ref_own_negation(batch["image"], batch["paraphrase"], batch["negation"],
                                          batch["scale"])) / 2
    contrastive = (on_captions + on_paraphrases) / 2
    torch.testing.assert_close(out["contrastive_loss"], contrastive)
    plain = _call(build_loss("semclip-hardneg", embed_dim=D, seed=3).double(), batch)
    for key in ("paraphrase_loss", "negation_loss"):
        torch.testing.assert_close(out[key], plain[key], msg=key)
    total = (contrastive + 0.1 * plain["paraphrase_loss"] + 0.1 * plain["negation_loss"]) / 1.2
    _assert_same_grads(out["loss"], total, [batch[k] for k in ("image", "text", "paraphrase", "negation", "scale")])
    assert not build_loss("semclip", embed_dim=D).paraphrase_positives


def test_paraphrase_positives_belong_to_the_semclip_family_only():
    with pytest.raises(SemClipError, match="paraphrase_positives do not apply to the 'negclip' loss"):
        build_loss("negclip", embed_dim=D, paraphrase_positives=True)
