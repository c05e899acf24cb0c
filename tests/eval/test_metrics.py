"""Each metric against a direct python loop, on small hand-made cases and on random ones.

Hand-made cases pin the conventions a user relies on: strict comparisons, ties counted as misses
for the correct item, k larger than the number of candidates, inputs in any scale, numpy inputs.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

from semclip_train.errors import SemClipError
from semclip_train.evaluation import metrics
from semclip_train.evaluation.metrics import (
    ccneg_accuracy,
    combined_score,
    negated_prompt_gap,
    retrieval_recall,
    scaled_negation_score,
    sugarcrepe_pp,
    sugarcrepe_pp_tot,
    zeroshot_accuracy,
)


def _cos(u, v):
    dot = sum(a * b for a, b in zip(u, v))
    return dot / (math.sqrt(sum(a * a for a in u)) * math.sqrt(sum(b * b for b in v)))


def _rows(seed: int, n: int, d: int = 4) -> list[list[float]]:
    rng = random.Random(seed)
    return [[rng.gauss(0, 1) for _ in range(d)] for _ in range(n)]


def loop_rank(query, keys, target: int) -> int:
    """How many other keys score at least as high as the target: ties go against it."""
    own = _cos(query, keys[target])
    return sum(1 for j, key in enumerate(keys) if j != target and _cos(query, key) >= own)


def loop_recall(queries, keys, targets, k) -> float:
    return sum(loop_rank(q, keys, t) < k for q, t in zip(queries, targets)) / len(queries)


# ---- CC-Neg -----------------------------------------------------------------------------------


def test_ccneg_accuracy_hand_made_with_a_tie():
    image = [[1, 0], [0, 1], [1, 1], [1, 0]]
    caption = [[1, 0.1], [1, 0], [1, 1], [0, 1]]
    negation = [[0, 1], [0, 1], [3, 3], [1, 0]]  # item 2: same direction as the caption, a tie
    # item 0 wins; item 1 and 3 lose; item 2 ties, which is not "original over negation"
    assert ccneg_accuracy(image, caption, negation) == 0.25


def test_ccneg_accuracy_matches_loop_on_random_embeddings():
    image, caption, negation = _rows(1, 30), _rows(2, 30), _rows(3, 30)
    expected = sum(_cos(i, t) > _cos(i, n) for i, t, n in zip(image, caption, negation)) / 30
    assert ccneg_accuracy(torch.tensor(image), torch.tensor(caption), torch.tensor(negation)) == expected


def test_metrics_accept_numpy_and_any_scale():
    image, caption, negation = (np.array(_rows(s, 12), dtype=np.float32) for s in (4, 5, 6))
    scale = np.arange(1, 13, dtype=np.float32)[:, None]
    assert ccneg_accuracy(image, caption * scale, negation / scale) == ccneg_accuracy(
        torch.from_numpy(image), torch.from_numpy(caption), torch.from_numpy(negation)
    )


def test_scaled_and_combined_scores():
    assert scaled_negation_score(0.781) == pytest.approx(0.562)
    assert scaled_negation_score(0.5) == 0.0 and scaled_negation_score(0.3) == 0.0
    assert scaled_negation_score(1.0) == 1.0
    assert combined_score(0.6, 0.3, 0.75) == pytest.approx((0.6 + 0.3 + 0.5) / 3)
    assert combined_score(0.6, 0.3, 0.4) == pytest.approx(0.3)
    with pytest.raises(SemClipError, match="not a percentage"):
        combined_score(60.0, 30.0, 0.75)


# ---- retrieval --------------------------------------------------------------------------------


def test_retrieval_hand_made_ties_count_against_the_correct_item():
    image = [[1, 0], [1, 0], [0, 1]]
    text = [[1, 0], [2, 0], [-1, 1]]
    got = retrieval_recall(image, text, ks=(1, 2, 3))
    # image 0 and 1 tie between texts 0 and 1 (rank 1 each); image 2 finds text 2 first
    assert got["image_to_text"] == {1: pytest.approx(1 / 3), 2: 1.0, 3: 1.0}
    # text 0 and 1 tie between images 0 and 1; text 2 prefers image 2 (cos .71) to 0 and 1 (-.71)
    assert got["text_to_image"] == {1: pytest.approx(1 / 3), 2: 1.0, 3: 1.0}


def test_retrieval_of_a_collapsed_model_is_zero_not_chance():
    same = [[0.3, 0.4]] * 5
    got = retrieval_recall(same, same, ks=(1, 4, 5))
    assert got["image_to_text"] == {1: 0.0, 4: 0.0, 5: 1.0}


def test_retrieval_with_k_larger_than_the_item_count_is_one():
    image, text = _rows(7, 4), _rows(8, 4)
    got = retrieval_recall(image, text, ks=(1, 10))
    assert got["image_to_text"][10] == 1.0 and got["text_to_image"][10] == 1.0


def test_retrieval_matches_loop_on_random_embeddings():
    image, text = _rows(9, 25), _rows(10, 25)
    targets = list(range(25))
    got = retrieval_recall(np.array(image), np.array(text))
    for k in (1, 5, 10):
        assert got["image_to_text"][k] == loop_recall(image, text, targets, k)
        assert got["text_to_image"][k] == loop_recall(text, image, targets, k)
    assert set(got) == {"image_to_text", "text_to_image"}


def test_retrieval_is_the_same_in_chunks(monkeypatch):
    image, text = torch.tensor(_rows(11, 23)), torch.tensor(_rows(12, 23))
    whole = retrieval_recall(image, text)
    monkeypatch.setattr(metrics, "CHUNK", 4)
    assert retrieval_recall(image, text) == whole


def test_retrieval_refuses_mismatched_or_bad_input():
    with pytest.raises(SemClipError, match="same shape"):
        retrieval_recall(_rows(1, 3), _rows(2, 4))
    with pytest.raises(SemClipError, match="positive integers"):
        retrieval_recall(_rows(1, 3), _rows(2, 3), ks=(0, 1))
    with pytest.raises(SemClipError, match="non-empty"):
        retrieval_recall(torch.zeros(0, 4), torch.zeros(0, 4))


# ---- SugarCrepe++ -----------------------------------------------------------------------------


def loop_sugarcrepe(image, p1, p2, neg):
    itt = [_cos(i, a) > _cos(i, n) and _cos(i, b) > _cos(i, n) for i, a, b, n in zip(image, p1, p2, neg)]
    tot = [_cos(a, b) > _cos(a, n) and _cos(a, b) > _cos(b, n) for a, b, n in zip(p1, p2, neg)]
    return sum(itt) / len(itt), sum(tot) / len(tot)


def test_sugarcrepe_hand_made():
    image = [[1, 0], [1, 0], [1, 0]]
    p1 = [[1, 0], [1, 0], [1, 1]]
    p2 = [[1, 0.2], [0, 1], [1, 1]]
    neg = [[0, 1], [1, 1], [1, 1]]
    # item 0: both ITT checks and both TOT checks pass
    # item 1: ITT fails (cos(I,P2)=0 < cos(I,N)); TOT fails (cos(P1,P2)=0 < cos(P1,N))
    # item 2: everything ties with the negative: a miss both ways
    got = sugarcrepe_pp(image, p1, p2, neg)
    assert got == {"itt": pytest.approx(1 / 3), "tot": pytest.approx(1 / 3)}
    assert sugarcrepe_pp_tot(p1, p2, neg) == got["tot"]


def test_sugarcrepe_tot_needs_both_paraphrases_closer_than_the_negative():
    p1, p2 = [[1, 0]], [[0.6, 0.8]]
    assert sugarcrepe_pp_tot(p1, p2, [[0, -1]]) == 1.0  # far from both
    assert sugarcrepe_pp_tot(p1, p2, [[1, 0.1]]) == 0.0  # close to P1 only: one check fails
    assert sugarcrepe_pp_tot(p1, p2, [[0.5, 0.9]]) == 0.0  # close to P2 only: the other fails


def test_sugarcrepe_matches_loop_on_random_embeddings():
    image, p1, p2, neg = (_rows(s, 40) for s in (13, 14, 15, 16))
    itt, tot = loop_sugarcrepe(image, p1, p2, neg)
    assert sugarcrepe_pp(image, p1, p2, neg) == {"itt": itt, "tot": tot}


# ---- zero-shot --------------------------------------------------------------------------------


def test_zeroshot_hand_made_with_a_tie_and_k_beyond_the_class_count():
    classes = [[1, 0], [0, 1], [-1, 0]]
    image = [[1, 0.1], [0.1, 1], [1, 1], [-1, 0]]
    labels = [0, 1, 0, 1]
    # image 2 ties classes 0 and 1: a miss at top-1, found at top-2;
    # image 3 looks like class 2, with its class 1 second: a miss at top-1, found at top-2
    got = zeroshot_accuracy(image, classes, labels, ks=(1, 2, 5))
    assert got == {1: 0.5, 2: 1.0, 5: 1.0}


def test_zeroshot_matches_loop_on_random_embeddings():
    image, classes = _rows(17, 30), _rows(18, 7)
    labels = [random.Random(19).randrange(7) for _ in range(30)]
    got = zeroshot_accuracy(torch.tensor(image), np.array(classes), labels, ks=(1, 5))
    for k in (1, 5):
        assert got[k] == loop_recall(image, classes, labels, k)


def test_negated_prompt_gap_is_original_minus_negated():
    classes = [[1, 0], [0, 1]]
    negated = [[0, 1], [1, 0]]  # a model that reads "not a photo of a dog" as "a photo of a cat"
    image, labels = [[1, 0.1], [0.1, 1], [1, 0.2]], [0, 1, 0]
    got = negated_prompt_gap(image, classes, negated, labels, ks=(1,))
    assert got == {"original": {1: 1.0}, "negated": {1: 0.0}, "gap": {1: 1.0}}
    same = negated_prompt_gap(image, classes, classes, labels, ks=(1, 2))
    assert same["gap"] == {1: 0.0, 2: 0.0}


def test_zeroshot_refuses_bad_labels():
    with pytest.raises(SemClipError, match=r"lie in 0\.\.1"):
        zeroshot_accuracy([[1, 0]], [[1, 0], [0, 1]], [2])
    with pytest.raises(SemClipError, match="one class index per image"):
        zeroshot_accuracy([[1, 0], [0, 1]], [[1, 0], [0, 1]], [0])
    with pytest.raises(SemClipError, match="integer class indices"):
        zeroshot_accuracy([[1, 0]], [[1, 0], [0, 1]], [0.0])


def test_ties_in_the_data_survive_the_rounding_of_the_normalisation():
    """[1, 1] and [3, 3] are the same direction; the last bit of 3/sqrt(18) must not break the tie."""
    assert ccneg_accuracy([[1, 1]], [[1, 1]], [[3, 3]]) == 0.0
    assert ccneg_accuracy([[1, 1]], [[3, 3]], [[1, 1]]) == 0.0
    got = retrieval_recall([[1, 1], [1, 1]], [[3, 3], [1, 1]], ks=(1,))
    assert got == {"image_to_text": {1: 0.0}, "text_to_image": {1: 0.0}}
    assert zeroshot_accuracy([[1, 1]], [[3, 3], [1, 1]], [0], ks=(1,)) == {1: 0.0}
    assert zeroshot_accuracy([[1, 1]], [[1, 1], [3, 3]], [0], ks=(1,)) == {1: 0.0}
    assert sugarcrepe_pp([[1, 1]], [[3, 3]], [[1, 1]], [[2, 2]]) == {"itt": 0.0, "tot": 0.0}
