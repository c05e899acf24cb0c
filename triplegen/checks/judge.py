"""The check step of the pipeline: a completion becomes an accepted pair or a rejection with reasons.

Parsing, the lexical checks and the optional semantic check are judged here, in one place, so that
`generate` decides retries on exactly the codes that the rejects, the card and `validate` report.
"""

from __future__ import annotations

from dataclasses import dataclass

from triplegen.backends.base import Completion, Request
from triplegen.checks.lexical import CheckConfig, check_absent_triple, check_triple
from triplegen.checks.parsing import parse_output


@dataclass
class Outcome:
    """What became of one unique caption: accepted (reason None) or rejected with a reason code."""

    paraphrase: str | None = None
    negation: str | None = None
    caption: str | None = None  # the written caption of an absent-object row (None: the input's)
    reason: str | None = None  # the first failing check's code
    codes: tuple[str, ...] = ()  # every failing check's code (reason is codes[0])
    detail: str | None = None
    raw_output: str | None = None
    attempts: int = 0
    seed: int | None = None
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int | None = 0  # of prompt_tokens, served from the prefix cache (None: not reported)
    judged: bool = False  # the LLM judge (--judge-model) has given its verdict on it
    blind_margin: float | None = None  # --blind-model: score(caption) - score(negation), once scored


def fail(outcome: Outcome, codes: list[str], detail: str | None) -> Outcome:
    outcome.reason, outcome.codes = codes[0], tuple(codes)
    outcome.detail = detail if len(codes) == 1 else f"{', '.join(codes)}: {detail}"
    return outcome


class Judge:
    """Parse each completion against the template's schema, then run the quality checks.

    A request for an absent-object row (`Request.absent`) is judged by `check_absent_triple`.
    """

    def __init__(self, template, checks: CheckConfig = CheckConfig(), semantic=None):
        self.template, self.checks, self.semantic = template, checks, semantic

    def __call__(self, requests: list[Request], completions: list[Completion]) -> list[Outcome]:
        judged = [self._one(r, c) for r, c in zip(requests, completions)]
        if self.semantic is not None:
            self._semantic([o.caption or r.caption for r, o in zip(requests, judged)], judged)
        return judged

    def _one(self, request: Request, completion: Completion) -> Outcome:
        outcome = Outcome(raw_output=completion.text, seed=request.seed, finish_reason=completion.finish_reason,
                          prompt_tokens=completion.prompt_tokens, completion_tokens=completion.completion_tokens,
                          cached_tokens=completion.cached_tokens)
        if completion.text is None:
            return fail(outcome, ["backend_error"], completion.error or "no output")
        parsed = parse_output(completion.text, completion.finish_reason, self.template)
        if parsed.reason is not None:
            return fail(outcome, [parsed.reason], parsed.detail)
        outcome.paraphrase, outcome.negation, outcome.caption = parsed.paraphrase, parsed.negation, parsed.caption
        spec = request.absent
        if spec is None:
            reasons = check_triple(request.caption, parsed.paraphrase, parsed.negation, self.checks)
            detail = f"paraphrase={parsed.paraphrase!r} negation={parsed.negation!r}"
        else:
            reasons = check_absent_triple(request.caption, spec.objects, spec.absent, parsed.caption,
                                          parsed.paraphrase, parsed.negation, self.checks)
            detail = (f"absent={spec.absent!r} caption={parsed.caption!r} paraphrase={parsed.paraphrase!r} "
                      f"negation={parsed.negation!r}")
        if reasons:
            fail(outcome, reasons, detail)
        return outcome

    def _semantic(self, captions: list[str], judged: list[Outcome]) -> None:
        passed = [i for i, outcome in enumerate(judged) if outcome.reason is None]
        if not passed:
            return
        verdicts = self.semantic.check(
            [captions[i] for i in passed], [judged[i].paraphrase for i in passed], [judged[i].negation for i in passed]
        )
        for i, reasons in zip(passed, verdicts):
            if reasons:
                fail(judged[i], reasons, "sentence-embedding similarity below the threshold")
