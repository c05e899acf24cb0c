"""The reference method's triple generation, and a correctness test that is not triplegen's checker.

The reference (SemCLIP's public release, `syn_caption_generation.ipynb`) asks one LLM for a
paraphrase and a "completely false version" of each caption, asks a second one a Yes/No question
about each, and regenerates a "No" once without checking it again; every caption ends up with a
triple. Its four prompts are reproduced below as that notebook sends them (f-strings with the same
line breaks and indentation), each as one user message at temperature 0.1. Here all four run on
the model under test, in batches, so that both methods share the engine, the captions and the
machine; a regeneration gets a fresh seed (the notebook used its other model).

`independent_verdict` judges a triple with its own tokenizer and word lists: polarity flipped or
kept by counting negation words, copies, and sentences cut off, so that the project's checker is
not scoring its own output.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

TEMPERATURE = 0.1
MAX_TOKENS = 256  # the notebook sets no limit; long answers are cut here
VERIFY_MAX_TOKENS = 64


def paraphrase_prompt(text: str) -> str:
    return f"Rephrase the following sentence with the same meaning:\n{text}"


def false_prompt(text: str) -> str:
    return f"Generate a completely false version of this sentence:\n{text}"


def verify_paraphrase_prompt(original: str, paraphrased: str) -> str:
    return f"""
    The original sentence is: "{original}"
    The generated paraphrase is: "{paraphrased}"
    Does the paraphrase accurately retain the meaning of the original? Respond with "Yes" or "No".
    """


def verify_false_prompt(original: str, false_sentence: str) -> str:
    return f"""
    The original sentence is: "{original}"
    The generated false sentence is: "{false_sentence}"
    Does the false sentence contradict or misrepresent the original? Respond with "Yes" or "No".
    """


@dataclass
class Cost:
    calls: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0

    def add(self, outputs) -> None:
        self.calls += len(outputs)
        self.prompt_tokens += sum(len(o.prompt_token_ids) for o in outputs)
        self.cached_tokens += sum(o.num_cached_tokens or 0 for o in outputs)
        self.completion_tokens += sum(len(o.outputs[0].token_ids) for o in outputs)


@dataclass
class ReferenceRun:
    paraphrases: list[str]
    negations: list[str]
    cost: Cost = field(default_factory=Cost)
    regenerated: int = 0


def _chat(llm, prompts: list[str], seeds: list[int], max_tokens: int, cost: Cost) -> list[str]:
    from vllm import SamplingParams

    params = [SamplingParams(temperature=TEMPERATURE, max_tokens=max_tokens, seed=seed) for seed in seeds]
    outputs = llm.chat([[{"role": "user", "content": p}] for p in prompts], params, use_tqdm=False)
    cost.add(outputs)
    return [o.outputs[0].text for o in outputs]


def run_reference(llm, captions: list[str], seed: int = 0) -> ReferenceRun:
    """Generate, verify (Yes/No), regenerate the "No"s once: four or more calls per caption."""
    cost = Cost()
    seeds = [seed + i for i in range(len(captions))]
    paraphrases = _chat(llm, [paraphrase_prompt(c) for c in captions], seeds, MAX_TOKENS, cost)
    negations = _chat(llm, [false_prompt(c) for c in captions], seeds, MAX_TOKENS, cost)
    ok_paraphrase = ["Yes" in answer for answer in _chat(
        llm, [verify_paraphrase_prompt(c, p) for c, p in zip(captions, paraphrases)], seeds, VERIFY_MAX_TOKENS, cost)]
    ok_negation = ["Yes" in answer for answer in _chat(
        llm, [verify_false_prompt(c, n) for c, n in zip(captions, negations)], seeds, VERIFY_MAX_TOKENS, cost)]
    redo_p = [i for i, ok in enumerate(ok_paraphrase) if not ok]
    redo_n = [i for i, ok in enumerate(ok_negation) if not ok]
    again = _chat(llm, [paraphrase_prompt(captions[i]) for i in redo_p] + [false_prompt(captions[i]) for i in redo_n],
                  [seed + 100_000 + i for i in redo_p + redo_n], MAX_TOKENS, cost) if redo_p or redo_n else []
    for i, text in zip(redo_p, again[: len(redo_p)]):
        paraphrases[i] = text
    for i, text in zip(redo_n, again[len(redo_p):]):
        negations[i] = text
    return ReferenceRun(paraphrases, negations, cost, len(redo_p) + len(redo_n))


# --- an independent correctness test ---------------------------------------------------------

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
NEGATORS = frozenset("no not never none nobody nothing nowhere neither nor without cannot".split())
CUT_OFF = frozenset("a an the of that says reads and or to with from this these those their its".split())


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower().replace("\u2019", "'"))


def negators(text: str) -> int:
    return sum(1 for t in _tokens(text) if t in NEGATORS or t.endswith("n't"))


def cut_off(text: str) -> bool:
    stripped = text.strip()
    tokens = _tokens(stripped)
    return (not tokens or tokens[-1] in CUT_OFF or stripped[-1] in ",:;-" or stripped.count('"') % 2 == 1)


def independent_verdict(caption: str, paraphrase: str, negation: str) -> list[str]:
    """Why a triple is wrong by this test ([]: correct): polarity, copies, cut-off sentences."""
    problems = []
    before = negators(caption)
    if (negators(paraphrase) > 0) != (before > 0):
        problems.append("paraphrase polarity")
    after = negators(negation)
    if not ((before == 0 and after > 0) or (before > 0 and after < before)):
        problems.append("negation polarity")
    if _tokens(paraphrase) == _tokens(caption):
        problems.append("paraphrase copy")
    if _tokens(negation) == _tokens(caption) or _tokens(negation) == _tokens(paraphrase):
        problems.append("negation copy")
    if cut_off(paraphrase):
        problems.append("paraphrase cut off")
    if cut_off(negation):
        problems.append("negation cut off")
    return problems
