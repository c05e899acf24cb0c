"""An optional second LLM call per accepted row: a schema-enforced verdict on its paraphrase and negation.

The lexical checks cannot tell whether "A man rides a brown horse in a field" keeps the meaning of
"A man riding a horse on a beach"; a judge model can be asked (`--judge-model`, `--judge-base-url`,
template `judge`, task `judge`). Its answer is one value of each enum of the template's schema,
so even a small model can only answer with a verdict. A row whose verdict is not the template's
first value for both fields ("same meaning", "contradicts") goes to the rejects with a `judge_*`
reason naming the verdict; a judge that gives no usable verdict after `max_attempts` tries rejects
the row as `judge_error`. Its calls and tokens are counted apart from the generation's (card).
"""

from __future__ import annotations

import re
from collections import Counter

from triplegen.backends.base import Backend, Request
from triplegen.checks.judge import Outcome, fail
from triplegen.checks.parsing import parse_output
from triplegen.orchestration.pipeline import Chunk, Step, row_seed

JUDGE_SEED_OFFSET = 1_000  # judge requests get other seeds than the row's own attempts


def reason_code(field: str, verdict: str) -> str:
    """`judge_<field>_<verdict>` in the form of the other reason codes ("changed meaning" -> changed_meaning)."""
    return f"judge_{field}_{re.sub(r'[^a-z0-9]+', '_', verdict.lower()).strip('_')}"


def judge_reasons(template) -> dict[str, str]:
    """Every reason code the judge template can produce, with its meaning, for the card."""
    codes = {"judge_error": "the judge model gave no usable verdict"}
    for field in ("paraphrase", "negation"):
        values = template.output_schema["properties"][field].get("enum", [])
        for verdict in values[1:]:
            codes[reason_code(field, verdict)] = f"the judge model said the {field} is '{verdict}'"
    return codes


class JudgeRows(Step):
    """Ask the judge about every row the checks accepted in a chunk; reject those it does not pass.

    Rows served from the dedupe cache were judged in their first chunk and are not asked again.
    """

    name = "llm judge"

    def __init__(self, backend: Backend, template, seed: int, max_attempts: int):
        self.backend, self.template, self.seed, self.max_attempts = backend, template, seed, max_attempts
        self.sampling = template.sampling.model_dump()
        self.passing = {field: template.output_schema["properties"][field]["enum"][0]
                        for field in ("paraphrase", "negation")}

    def run(self, chunks):
        for chunk in chunks:
            ids = chunk.rows.column("id").to_pylist()
            rows: dict[str, tuple[str, Outcome]] = {}
            for caption, positions in chunk.groups.items():
                outcome = chunk.outcomes[caption]
                if outcome.reason is None and not outcome.judged:
                    rows[ids[positions[0]]] = (caption, outcome)
            for n, row in enumerate(chunk.absent):
                if row.outcome.reason is None and not row.outcome.judged:
                    rows[f"{ids[row.position]}#judge-absent-{n}"] = (row.outcome.caption, row.outcome)
            self._judge(chunk, rows)
            yield chunk

    def _judge(self, chunk: Chunk, rows: dict[str, tuple[str, Outcome]]) -> None:
        stats: Counter = chunk.tally.judge
        pending = dict(rows)
        for attempt in range(1, self.max_attempts + 1):
            if not pending:
                return
            requests = [self._request(key, caption, outcome, attempt) for key, (caption, outcome) in pending.items()]
            completions = self.backend.generate(requests, dict(self.sampling))
            retry = {}
            for (key, (caption, outcome)), completion in zip(pending.items(), completions):
                stats.update(calls=1, prompt_tokens=completion.prompt_tokens,
                             completion_tokens=completion.completion_tokens, cached_tokens=completion.cached_tokens or 0)
                parsed = parse_output(completion.text, completion.finish_reason, self.template)
                if parsed.reason is None:
                    self._verdict(chunk, outcome, parsed.paraphrase, parsed.negation)
                elif attempt == self.max_attempts:
                    outcome.judged = True
                    why = completion.error or parsed.detail
                    fail(outcome, ["judge_error"], f"judge: {parsed.reason}: {why}")
                    stats.update(["rejected:judge_error"])
                else:
                    retry[key] = (caption, outcome)
            pending = retry

    def _request(self, key: str, caption: str, outcome: Outcome, attempt: int) -> Request:
        messages = self.template.render(caption, {"paraphrase": outcome.paraphrase, "negation": outcome.negation})
        return Request(key=key, caption=caption, messages=messages, attempt=attempt,
                       seed=row_seed(self.seed, caption, JUDGE_SEED_OFFSET + attempt), schema=self.template.output_schema)

    def _verdict(self, chunk: Chunk, outcome: Outcome, paraphrase: str, negation: str) -> None:
        outcome.judged = True
        verdicts = {"paraphrase": paraphrase, "negation": negation}
        codes = [reason_code(field, verdict) for field, verdict in verdicts.items() if verdict != self.passing[field]]
        if codes:
            fail(outcome, codes, f"judge: paraphrase {paraphrase!r}, negation {negation!r}; "
                                 f"paraphrase={outcome.paraphrase!r} negation={outcome.negation!r}")
            chunk.tally.judge.update(f"rejected:{code}" for code in codes[:1])


def load_judge_template(config):
    """The judge's template when the run has a judge (None otherwise); refused unless its task is judge."""
    if not config.judging:
        return None
    from triplegen.errors import TripleGenError
    from triplegen.templates import load_task_template

    template = load_task_template(config.judge_prompt, "judge", "--judge-prompt")
    for field in ("paraphrase", "negation"):
        if not template.output_schema["properties"][field].get("enum"):
            raise TripleGenError(f"--judge-prompt {config.judge_prompt}: properties.{field} needs an enum of verdicts, "
                                 "the passing one first")
    return template


def judge_backend(options, backend: Backend | None, template) -> tuple[Backend, bool]:
    """The judge's backend for a run's `BackendOptions`, and whether this run owns it (and must close it).

    The generation's own in-process engine is reused when the judge is the same model; a
    `--judge-base-url` is served by the openai backend, anything else loads an in-process engine.
    """
    from triplegen.backends import make_backend

    judge = options.judge()
    if judge.name == "vllm" and backend is not None and backend.name == "vllm" and judge.model == options.model:
        return backend, False
    return make_backend(judge, template.output_schema), True
