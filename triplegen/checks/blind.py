"""The blind check (`--blind-model`): can a text-only language model tell the true text from the false one?

SugarCrepe (Hsieh et al., NeurIPS 2023) found that the hard negatives of earlier benchmarks were
often ungrammatical or implausible, so a "blind" model that never sees the image picked the true
caption: a CLIP trained on such negatives learns text artifacts, not negation. Here a small causal
LM scores each text by its mean log-probability per token (the tokenizer's BOS token first, so the
first word is scored too; no chat template). A row is flagged

- `blind_detectable` when score(caption) - score(negation) exceeds DETECTABLE_MARGIN: the false
  text is far less likely than the true one, more than in all but 5% of SugarCrepe++'s human
  (caption, negative_caption) pairs;
- `blind_disfluent` (absent-object rows, whose caption is new text) when score(source caption) -
  score(caption) exceeds DISFLUENT_MARGIN: the new caption reads far worse than the one it came
  from, more than in all but 5% of SugarCrepe++'s human (caption, caption2) paraphrase pairs.

The share of rows in which the model prefers the true text (score(caption) > score(negation)) is
the dataset's blind bias; 50% is none (`preference_share`).

The margins are in nats per token and belong to the model they were measured with,
SmolLM2-135M-Instruct (`triplegen prepare-smollm2 models/smollm2`); for another blind model,
measure them again with `python benchmarks/blind_thresholds.py --model DIR`. torch and transformers
are imported only when a scorer is built, so `import triplegen` never needs them.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from triplegen.errors import MissingExtraError, TripleGenError
from triplegen.checks.judge import Outcome, fail
from triplegen.orchestration.pipeline import Chunk, Entry, Step
from triplegen.orchestration.records import BlindCounts

# `python benchmarks/blind_thresholds.py --model models/smollm2`: SmolLM2-135M-Instruct on all 4,757 SugarCrepe++
# items (docs/benchmarks.md). The 95th percentile of score(caption) - score(negative_caption) over the human
# hard negatives of the five files (p5 / p50 / p99: -0.995 / 0.042 / 1.503); it flags 5.0% of them, 2.7%
# (replace_obj) to 9.5% (swap_att) per file. The model prefers the human caption in 54.1% of those pairs.
DETECTABLE_MARGIN = 0.910
# The 95th percentile of score(caption) - score(caption2) over the human paraphrases (p5 / p50 / p99:
# -1.697 / -0.139 / 2.021); it flags 5.0% of them.
DISFLUENT_MARGIN = 1.288

_FEATURE = "the blind check (--blind-model)"
MAX_TOKENS = 256  # a caption is far shorter; longer texts are cut, not refused


def check_model_folder(folder: str | os.PathLike) -> Path:
    """The folder of a causal LM, refused as one line before any run starts (and before torch loads)."""
    for module in ("torch", "transformers"):
        if importlib.util.find_spec(module) is None:
            raise MissingExtraError(_FEATURE, "blind", module)
    path = Path(folder)
    if not (path / "config.json").is_file():
        raise TripleGenError(f"--blind-model {folder}: not a model folder (no config.json); give a causal LM saved "
                             "with save_pretrained, e.g. from `triplegen prepare-smollm2 models/smollm2`")
    return path


def blind_settings(model: str) -> dict:
    """The model and thresholds of a blind check: cards and reports show them, a resumed run must match them."""
    return {"model": model, "detectable_margin": DETECTABLE_MARGIN, "disfluent_margin": DISFLUENT_MARGIN}


class BlindScorer:
    """Mean log-probability per token of texts under a causal LM (float32, batched, no gradients)."""

    def __init__(self, folder: str | os.PathLike, batch_size: int = 32, device: str | None = None):
        self.name, self.batch_size = str(folder), batch_size
        self.tokenizer, self.model, self.device = _load(check_model_folder(folder), device)
        start = self.tokenizer.bos_token_id
        start = self.tokenizer.eos_token_id if start is None else start  # GPT-2 style: the separator starts a text
        if start is None:
            raise TripleGenError(f"--blind-model {folder}: the tokenizer has neither a BOS nor an EOS token to "
                                 "start a text with")
        self.start = start

    def score(self, texts: Sequence[str]) -> list[float]:
        """Each text's mean log-probability per token, in nats (higher: more fluent, more expected)."""
        import torch

        ids = [[self.start, *self.tokenizer(text, add_special_tokens=False).input_ids[:MAX_TOKENS]] for text in texts]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # similar lengths share a batch: less padding
        scores = [0.0] * len(texts)
        with torch.inference_mode():
            for begin in range(0, len(order), self.batch_size):
                batch = order[begin:begin + self.batch_size]
                for i, value in zip(batch, self._batch([ids[i] for i in batch])):
                    scores[i] = value
        return scores

    def _batch(self, sequences: list[list[int]]) -> list[float]:
        import torch

        width = max(map(len, sequences))
        tokens = torch.zeros(len(sequences), width, dtype=torch.long)  # (B, T), right-padded
        mask = torch.zeros_like(tokens)
        for row, sequence in enumerate(sequences):
            tokens[row, :len(sequence)] = torch.tensor(sequence)
            mask[row, :len(sequence)] = 1
        tokens, mask = tokens.to(self.device), mask.to(self.device)
        logits = self.model(input_ids=tokens, attention_mask=mask).logits[:, :-1].float()  # (B, T-1, V)
        picked = torch.log_softmax(logits, dim=-1).gather(-1, tokens[:, 1:, None]).squeeze(-1)  # (B, T-1)
        scored = mask[:, 1:].float()  # every real token after the start token
        return ((picked * scored).sum(1) / scored.sum(1).clamp(min=1)).tolist()


def _load(folder: Path, device: str | None) -> tuple[Any, Any, str]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from transformers.utils import logging as transformers_logging

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    bars = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()  # its "Loading weights" bar would cut through the run's progress
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, dtype=torch.float32)
    except (OSError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TripleGenError(f"--blind-model {folder}: not a causal language model transformers can load ({first})") \
            from None
    finally:
        if bars:
            transformers_logging.enable_progress_bar()
    return tokenizer, model.to(device).eval(), device


def preference_share(scorer: BlindScorer, true_texts: Sequence[str], false_texts: Sequence[str]) -> float:
    """The share of pairs in which the blind model scores the true text above the false one (0.5: no bias)."""
    if len(true_texts) != len(false_texts):
        raise ValueError("true_texts and false_texts must have the same length")
    if not true_texts:
        return float("nan")
    scores = scorer.score([*true_texts, *false_texts])
    n = len(true_texts)
    return sum(scores[i] > scores[n + i] for i in range(n)) / n


def blind_codes(caption: float, negation: float, source: float | None = None) -> list[str]:
    """The blind reason codes of one row from its scores (`source`: an absent-object row's source caption)."""
    codes = []
    if caption - negation > DETECTABLE_MARGIN:
        codes.append("blind_detectable")
    if source is not None and source - caption > DISFLUENT_MARGIN:
        codes.append("blind_disfluent")
    return codes


class BlindRows(Step):
    """Score every row the checks accepted in a chunk; reject those the blind model sees through.

    Each outcome keeps its margin (score(caption) - score(negation)), so the writer counts per kind
    how often the model prefers the true text; rows served from the dedupe cache were scored in
    their first chunk and are not scored again.
    """

    name = "blind check"

    def __init__(self, scorer: BlindScorer):
        self.scorer = scorer

    def run(self, chunks):
        for chunk in chunks:
            self._check(chunk)
            yield chunk

    def _check(self, chunk: Chunk) -> None:
        sources = chunk.rows.column("caption").to_pylist()
        rows: list[tuple[Outcome, str, str | None]] = [(chunk.outcomes[caption], caption, None)
                                                       for caption in chunk.groups]
        rows += [(row.outcome, row.outcome.caption or sources[row.position], sources[row.position])
                 for row in chunk.absent]
        rows = [row for row in rows if row[0].reason is None and row[0].blind_margin is None]
        texts = list({text: None for outcome, caption, source in rows
                      for text in (caption, outcome.negation, source) if text is not None})
        scores = dict(zip(texts, self.scorer.score(texts)))
        for outcome, caption, source in rows:
            true, false = scores[caption], scores[outcome.negation]
            outcome.blind_margin = true - false
            codes = blind_codes(true, false, None if source is None else scores[source])
            if codes:
                where = "" if source is None else f", source caption {scores[source]:.3f}"
                fail(outcome, codes, f"blind model: caption {true:.3f}, negation {false:.3f}{where} nats/token; "
                                     f"caption={caption!r} negation={outcome.negation!r}")


def tally(accepted: list[Entry], rejected: list[Entry]) -> dict[str, BlindCounts]:
    """Per kind, what the blind check made of a chunk's written rows (only rows it scored count)."""
    counts: dict[str, BlindCounts] = {}
    for entries, kept in ((accepted, True), (rejected, False)):
        for _, outcome, spec in entries:
            if outcome.blind_margin is not None:
                kind = "caption" if spec is None else spec.kind
                counts.setdefault(kind, BlindCounts()).count(outcome.blind_margin > 0, outcome.codes, kept)
    return counts


class FileCheck:
    """The blind check on rows read from triples files (`triplegen validate --blind-model`).

    An absent-object row's disfluency needs its source caption: the row whose id is its `source_id`,
    when that row came before it in the files or in the same batch, as `generate` writes them (caption
    scores are kept by id, one float per row); otherwise only detectability is checked.
    """

    def __init__(self, scorer: BlindScorer):
        self.scorer = scorer
        self.sources: dict[str, float] = {}  # id -> score of the caption of each kind-caption row seen
        self.counts: dict[str, BlindCounts] = {}

    def check(self, ids: list, kinds: list, captions: list, negations: list, source_ids: list) -> list[list[str]]:
        """The blind reason codes of each row; rows without a caption and a negation are not scored."""
        scored = [i for i in range(len(ids)) if _text(captions[i]) and _text(negations[i])]
        texts = list({text: None for i in scored for text in (captions[i], negations[i])})
        scores = dict(zip(texts, self.scorer.score(texts)))
        for i in scored:
            if kinds[i] in (None, "caption") and ids[i]:
                self.sources[ids[i]] = scores[captions[i]]
        verdicts: list[list[str]] = [[] for _ in ids]
        for i in scored:
            kind = kinds[i] or "caption"
            true, false = scores[captions[i]], scores[negations[i]]
            source = self.sources.get(source_ids[i]) if kind != "caption" and source_ids[i] else None
            verdicts[i] = blind_codes(true, false, source)
            self.counts.setdefault(kind, BlindCounts()).count(true > false, tuple(verdicts[i]), not verdicts[i])
        return verdicts

    def report(self) -> dict:
        kinds = {kind: {"scored": n.scored, "prefers_true": n.prefers_true,
                        "share_prefers_true": n.prefers_true / n.scored if n.scored else None,
                        "detectable": n.detectable, "disfluent": n.disfluent}
                 for kind, n in sorted(self.counts.items())}
        return {**blind_settings(self.scorer.name), "kinds": kinds}


def _text(value) -> bool:
    return isinstance(value, str) and bool(value.strip())
