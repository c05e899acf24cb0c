"""The default executor: the chunks of a run generated in this process by one backend."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from triplegen.backends.base import Backend
from triplegen.pipeline import run_steps
from triplegen.plan import GenerationPlan


@dataclass
class LocalExecutor:
    """Chunks generated in this process by one backend and the judge's (each closed at the end when
    the run made it)."""

    backend: Backend
    plan: GenerationPlan
    owned: bool
    judge: Backend | None = None
    owns_judge: bool = False

    def run(self, chunks: Iterable) -> Iterator:
        return run_steps(chunks, self.plan.steps(self.backend, self.judge))

    def close(self) -> None:
        if self.owned:
            self.backend.close()
        if self.owns_judge:
            self.judge.close()
