"""The evaluation metrics of the SemCLIP paper and its benchmarks, as pure functions of embeddings.

Inputs are embeddings with one row per item, in any scale: they are L2-normalised here, so every
similarity is a cosine. torch tensors are the native type; numpy arrays (or nested lists) are
converted with `torch.as_tensor`. The arithmetic runs in float64 on the input's device and results
are python floats.

Ties are decided deterministically and against the model: a comparison that must be won is strict
(cos(I, t) > cos(I, t-)), and a correct item's rank counts every other candidate scoring at least
as high as it. A tie therefore counts as a miss for the correct item: a model that maps everything
to one point scores 0, never chance by the luck of an argmax. Cosines closer than TIE_TOLERANCE
are equal, so that a tie in the data ([1, 1] against [3, 3]) is not broken by the last bit of
the normalisation.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F

from semclip_train.errors import SemClipError

# float64 rounding of a cosine is ~1e-16; float32 embeddings differ by ~1e-7 when they differ.
TIE_TOLERANCE = 1e-12
# Query rows scored at once in retrieval: bounds memory at CHUNK x items similarities.
CHUNK = 1024


def _embeddings(values, name: str) -> torch.Tensor:
    tensor = torch.as_tensor(values)
    if tensor.ndim != 2 or tensor.shape[0] == 0:
        raise SemClipError(f"{name} must be a non-empty [items, dim] matrix, got shape {tuple(tensor.shape)}")
    return F.normalize(tensor.to(torch.float64), dim=-1)


def _paired(**named) -> list[torch.Tensor]:
    """Normalised embeddings that describe the same items, row for row."""
    tensors = [_embeddings(value, name) for name, value in named.items()]
    shapes = {name: tuple(t.shape) for name, t in zip(named, tensors)}
    if len(set(shapes.values())) != 1:
        raise SemClipError(f"these embeddings must have the same shape: {shapes}")
    device = tensors[0].device
    return [t.to(device) for t in tensors]


def _cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise cosine of normalised rows: [N, d], [N, d] -> [N]."""
    return (a * b).sum(dim=-1)


def _ks(ks: Iterable[int]) -> tuple[int, ...]:
    ks = tuple(ks)
    if not ks or any(not isinstance(k, int) or isinstance(k, bool) or k < 1 for k in ks):
        raise SemClipError(f"ks must be positive integers, got {ks}")
    return ks


def _beats(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a > b, strictly and beyond rounding: a tie is a loss for a."""
    return a > b + TIE_TOLERANCE


def _fraction(mask: torch.Tensor) -> float:
    return mask.to(torch.float64).mean().item()


def ccneg_wins(image, caption, negation) -> torch.Tensor:
    """Per item, 1[cos(I, t) > cos(I, t-)]: which items a model gets right, to split a score by another."""
    image, caption, negation = _paired(image=image, caption=caption, negation=negation)
    return _beats(_cos(image, caption), _cos(image, negation))


def ccneg_accuracy(image, caption, negation) -> float:
    """CC-Neg "original over negation": mean of 1[cos(I, t) > cos(I, t-)]; chance is 0.5."""
    return _fraction(ccneg_wins(image, caption, negation))


def scaled_negation_score(accuracy: float) -> float:
    """max(0, 2 (acc - 0.5)): 0 at or below chance, 1 for a perfect score."""
    _check_fraction(accuracy=accuracy)
    return max(0.0, 2.0 * (accuracy - 0.5))


def combined_score(r1_original: float, r1_paraphrase: float, ccneg_acc: float) -> float:
    """The reference code's model-selection score: mean of three fractions.

    r1_original and r1_paraphrase are caption-to-image Recall@1 with the original and the
    paraphrased captions (`retrieval_recall(...)["text_to_image"][1]`); ccneg_acc is the raw
    CC-Neg accuracy, scaled here by `scaled_negation_score`.
    """
    _check_fraction(r1_original=r1_original, r1_paraphrase=r1_paraphrase)
    return (r1_original + r1_paraphrase + scaled_negation_score(ccneg_acc)) / 3.0


def _check_fraction(**values: float) -> None:
    for name, value in values.items():
        if not 0.0 <= value <= 1.0:
            raise SemClipError(f"{name} must be a fraction in [0, 1] (not a percentage), got {value}")


def _ranks(queries: torch.Tensor, keys: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """0-based rank of each query's target among all keys; ties rank the target last.

    rank = number of other keys whose cosine with the query is >= the target's. [Q]
    """
    ranks = []
    for start in range(0, queries.shape[0], CHUNK):
        scores = queries[start : start + CHUNK] @ keys.T  # [chunk, K]
        target = targets[start : start + CHUNK, None]
        own = scores.gather(1, target)
        ranks.append((scores >= own - TIE_TOLERANCE).sum(dim=1) - 1)
    return torch.cat(ranks)


def _recall(ranks: torch.Tensor, ks: Sequence[int]) -> dict[int, float]:
    """Fraction of queries whose target is in the top k; k >= the candidate count gives 1."""
    return {k: _fraction(ranks < k) for k in ks}


def retrieval_recall(image, text, ks: Iterable[int] = (1, 5, 10)) -> dict[str, dict[int, float]]:
    """Recall@k in both directions, where item i's image matches item i's text.

    {"image_to_text": {k: r}, "text_to_image": {k: r}}: image-to-text queries with each image and
    looks for its caption among all captions; text-to-image the reverse.
    """
    ks = _ks(ks)
    image, text = _paired(image=image, text=text)
    targets = torch.arange(image.shape[0], device=image.device)
    return {
        "image_to_text": _recall(_ranks(image, text, targets), ks),
        "text_to_image": _recall(_ranks(text, image, targets), ks),
    }


def _tot(caption: torch.Tensor, caption2: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
    between = _cos(caption, caption2)
    return _beats(between, _cos(caption, negative)) & _beats(between, _cos(caption2, negative))


def sugarcrepe_pp(image, caption, caption2, negative) -> dict[str, float]:
    """SugarCrepe++ (Dumpala et al., 2024) on one subset: {"itt": acc, "tot": acc}.

    ITT: cos(I, P1) > cos(I, N) and cos(I, P2) > cos(I, N).
    TOT: cos(P1, P2) > cos(P1, N) and cos(P1, P2) > cos(P2, N).
    """
    image, caption, caption2, negative = _paired(
        image=image, caption=caption, caption2=caption2, negative=negative
    )
    with_negative = _cos(image, negative)
    itt = _beats(_cos(image, caption), with_negative) & _beats(_cos(image, caption2), with_negative)
    return {"itt": _fraction(itt), "tot": _fraction(_tot(caption, caption2, negative))}


def sugarcrepe_pp_tot(caption, caption2, negative) -> float:
    """SugarCrepe++ TOT alone: text only, for users without the COCO images."""
    return _fraction(_tot(*_paired(caption=caption, caption2=caption2, negative=negative)))


def _labels(labels, items: int, classes: int, device: torch.device) -> torch.Tensor:
    tensor = torch.as_tensor(labels)
    if tensor.ndim != 1 or tensor.shape[0] != items:
        raise SemClipError(f"labels must be one class index per image ({items}), got shape {tuple(tensor.shape)}")
    if tensor.dtype.is_floating_point or tensor.dtype == torch.bool:
        raise SemClipError(f"labels must be integer class indices, got {tensor.dtype}")
    if tensor.numel() and (tensor.min() < 0 or tensor.max() >= classes):
        raise SemClipError(f"labels must lie in 0..{classes - 1}, got {tensor.min().item()}..{tensor.max().item()}")
    return tensor.to(device=device, dtype=torch.long)


def zeroshot_accuracy(image, class_text, labels, ks: Iterable[int] = (1, 5)) -> dict[int, float]:
    """Top-k zero-shot accuracy: each image against one text embedding per class.

    image [N, d], class_text [C, d] (row c is the prompt of class c), labels [N] in 0..C-1.
    With k >= C every image counts as correct.
    """
    ks = _ks(ks)
    image, class_text = _embeddings(image, "image"), _embeddings(class_text, "class_text")
    if image.shape[1] != class_text.shape[1]:
        raise SemClipError(f"image dim {image.shape[1]} != class_text dim {class_text.shape[1]}")
    class_text = class_text.to(image.device)
    targets = _labels(labels, image.shape[0], class_text.shape[0], image.device)
    return _recall(_ranks(image, class_text, targets), ks)


def negated_prompt_gap(
    image, class_text, negated_class_text, labels, ks: Iterable[int] = (1, 5)
) -> dict[str, dict[int, float]]:
    """Zero-shot accuracy with "this is a photo of a {label}" minus with "this is not a photo of a {label}".

    A model that understands negation should score far lower with the negated prompts, so a larger
    gap is better. Returns {"original": {k: acc}, "negated": {k: acc}, "gap": {k: original - negated}}.
    """
    original = zeroshot_accuracy(image, class_text, labels, ks)
    negated = zeroshot_accuracy(image, negated_class_text, labels, ks)
    return {
        "original": original,
        "negated": negated,
        "gap": {k: original[k] - negated[k] for k in original},
    }


def option_cosines(image, options) -> torch.Tensor:
    """cos(image i, option j of item i): image [N, d], options [N, K, d] -> [N, K] float64."""
    image = _embeddings(image, "image")
    options = torch.as_tensor(options)
    if options.ndim != 3 or options.shape[0] != image.shape[0] or options.shape[2] != image.shape[1] or options.shape[1] < 2:
        raise SemClipError(
            f"options must be [items, options >= 2, dim] = [{image.shape[0]}, K, {image.shape[1]}], got shape {tuple(options.shape)}"
        )
    options = F.normalize(options.to(device=image.device, dtype=torch.float64), dim=-1)
    return torch.einsum("nd,nkd->nk", image, options)


def multiple_choice(image, options, correct) -> tuple[float, torch.Tensor]:
    """Multiple-choice accuracy (NegBench's MCQ): each image picks its most similar option.

    image [N, d], options [N, K, d] (item i's K candidate captions), correct [N] in 0..K-1.
    Returns (accuracy, predicted [N]). The correct option is picked only if it beats every wrong
    one; otherwise the pick is the best wrong option (the first, if several tie), so a correct
    option tied with a wrong one is a miss and the error is charged to that wrong option.
    """
    scores = option_cosines(image, options)  # [N, K]
    correct = _labels(correct, scores.shape[0], scores.shape[1], scores.device)
    own = scores.gather(1, correct[:, None]).squeeze(1)
    wrong = scores.scatter(1, correct[:, None], float("-inf"))
    best_wrong, wrong_index = wrong.max(dim=1)
    predicted = torch.where(_beats(own, best_wrong), correct, wrong_index)
    return _fraction(predicted == correct), predicted
