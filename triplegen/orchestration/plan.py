"""What turns a chunk of input rows into outcomes, apart from the backend: the part of a run a worker needs.

The local executor builds these steps once around its backend; the Ray executor ships the plan to
every worker, which builds the same steps around its own backend, so both run the same code on a
chunk and write the same rows. The plan travels between processes, so its prompt templates travel
as their validated fields and are compiled again on arrival (a compiled Jinja template cannot be
pickled, and a template file named on the driver may not exist on a worker's node).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from triplegen.checks.absent_constraints import absent_row_schema
from triplegen.backends.base import Backend, Request
from triplegen.checks.blind import BlindRows, BlindScorer
from triplegen.checks.lexical import CheckConfig
from triplegen.checks.constraints import row_schema
from triplegen.checks.judge import Judge
from triplegen.checks.llm_judge import JudgeRows
from triplegen.objects import ObjectVocabulary
from triplegen.orchestration.pipeline import AbsentRows, Dedupe, Generate, Render, Step
from triplegen.templates import PromptTemplate

_TEMPLATES = ("template", "absent_template", "judge_template")


@dataclass
class GenerationPlan:
    """The prompt, sampling, constraint, checks, absent-object and judge settings of one run."""

    template: PromptTemplate
    sampling: dict
    checks: CheckConfig
    seed: int
    max_attempts: int
    semantic_check: bool = False
    absent_template: PromptTemplate | None = None  # set with --absent-objects
    absent_sampling: dict | None = None
    vocabulary: ObjectVocabulary | None = None
    absent_objects: int = 0
    objects_col: str = "objects"
    retry_temperature: float = 0.0  # retries sample at least this hot
    constrained: bool = False  # each caption gets its own schema (triplegen.checks.constraints)
    judge_template: PromptTemplate | None = None  # set with --judge-model / --judge-base-url
    blind_model: str | None = None  # set with --blind-model: a text-only LM rejects rows it tells apart

    def attempts(self, deterministic: bool) -> int:
        """Tries per row: a deterministic backend would repeat the same answer, so it gets one."""
        return 1 if deterministic else self.max_attempts

    @property
    def input_columns(self) -> list[str]:
        """The columns of a chunk the steps read; a worker is sent only these."""
        return ["id", "caption"] + ([self.objects_col] if self.absent_template is not None else [])

    def steps(self, backend: Backend | None, judge_backend: Backend | None = None) -> list[Step]:
        """Dedupe, then (with a backend) render, generate and check, the absent-object rows, the blind
        check and the LLM judge (with `judge_backend`). The blind check comes before the judge: it is
        far cheaper, and the judge is not asked about rows it rejects."""
        steps: list[Step] = [Dedupe(self.checks)]
        if backend is None:  # every chunk was finished by an earlier run
            return steps
        judge = Judge(self.template, self.checks, _semantic_checker() if self.semantic_check else None)
        if getattr(backend, "needs_messages", True):  # a backend without the flag gets messages
            steps.append(Render(self.template))
        shape = (lambda caption: row_schema(caption, self.template.output_schema)) if self.constrained else None
        attempts = self.attempts(backend.deterministic)
        steps.append(Generate(backend, judge, self.sampling, self.seed, attempts, shape, self.retry_temperature))
        if self.absent_template is not None:
            absent_judge = Judge(self.absent_template, self.checks, judge.semantic)
            absent_rows = ConstrainedAbsentRows if self.constrained else AbsentRows
            steps.append(absent_rows(backend, absent_judge, self.absent_sampling, self.seed, attempts,
                                    self.absent_template, self.vocabulary, self.absent_objects, self.objects_col,
                                    self.retry_temperature))
        if self.blind_model is not None:
            steps.append(BlindRows(BlindScorer(self.blind_model)))
        if self.judge_template is not None and judge_backend is not None:
            steps.append(JudgeRows(judge_backend, self.judge_template, self.seed, self.max_attempts))
        return steps

    def __getstate__(self) -> dict:
        state = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in _TEMPLATES:
            if state[name] is not None:
                state[name] = state[name].model_dump()
        return state

    def __setstate__(self, state: dict) -> None:
        for name in _TEMPLATES:
            if state[name] is not None:
                state[name] = PromptTemplate.model_validate(state[name])
        self.__dict__.update(state)


class ConstrainedAbsentRows(AbsentRows):
    """Absent-object rows, each asked for with its own schema (triplegen.checks.absent_constraints): the
    absent twin of `Generate`'s `shape`, used where the polarity constraint is in force. The schema
    is built once per row, and counted once, whatever the number of attempts."""

    def call(self, chunk, pending):
        shaped: dict[str, dict] = {}

        def constrained(key, build):
            def request(attempt: int) -> Request:
                asked = build(attempt)
                if key not in shaped:
                    row = absent_row_schema(asked.caption, asked.absent, self.template.output_schema)
                    chunk.tally.constraints.update(row.counts())
                    shaped[key] = row.schema
                return replace(asked, schema=shaped[key])
            return request

        return super().call(chunk, {key: constrained(key, build) for key, build in pending.items()})


def _semantic_checker():
    from triplegen.checks.semantic import SemanticChecker

    return SemanticChecker()
