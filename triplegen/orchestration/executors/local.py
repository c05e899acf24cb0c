"""The chunk executor: the pipeline steps of a plan around one backend (and the judge's).

`chunk_executor` is the one place they are built: a local run, each Ray worker
(`triplegen.orchestration.executors.ray_worker`) and `--retry-backend-errors` all get theirs from it, so all three
run the same code on a chunk and write the same rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from triplegen.backends import make_backend
from triplegen.backends.base import Backend
from triplegen.config import BackendOptions
from triplegen.checks.llm_judge import judge_backend
from triplegen.orchestration.pipeline import Step, run_steps
from triplegen.orchestration.plan import GenerationPlan


@dataclass
class LocalExecutor:
    """Chunks generated in this process by one backend and the judge's (each closed at the end when
    the executor made it)."""

    backend: Backend
    plan: GenerationPlan
    owned: bool
    judge: Backend | None = None
    owns_judge: bool = False
    _steps: list[Step] | None = field(default=None, repr=False)

    def steps(self) -> list[Step]:
        """Built once, on first use (the blind check loads its model then); the fan-out cache of the
        dedupe step lives in them, across every chunk this executor runs."""
        if self._steps is None:
            self._steps = self.plan.steps(self.backend, self.judge)
        return self._steps

    def run(self, chunks: Iterable) -> Iterator:
        return run_steps(chunks, self.steps())

    def close(self) -> None:
        if self.owned:
            self.backend.close()
        if self.owns_judge:
            self.judge.close()


def chunk_executor(plan: GenerationPlan, options: BackendOptions, backend: Backend | None = None,
                   on_backend: Callable[[Backend], None] | None = None) -> LocalExecutor:
    """The executor of `plan`: around `backend` (the caller's, left open) or one made from `options`,
    and the judge's backend when the plan has a judge. `on_backend` sees the backend first: the driver
    decides the polarity constraint there, a Ray worker checks that its backend takes it."""
    owned = backend is None
    backend = backend or make_backend(options, plan.template.output_schema)
    try:
        if on_backend is not None:
            on_backend(backend)
        judge, owns_judge = (None, False) if plan.judge_template is None else \
            judge_backend(options, backend, plan.judge_template)
    except BaseException:
        if owned:
            backend.close()
        raise
    return LocalExecutor(backend, plan, owned, judge, owns_judge)
