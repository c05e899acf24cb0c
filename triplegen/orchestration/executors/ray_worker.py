"""One Ray worker: the run's backend, built once per worker, and the steps around it.

A worker holds one backend for its whole life (an in-process vLLM engine on the GPUs Ray gave it, an
OpenAI client with its share of the run's concurrency, or the rules) and turns chunks of input rows
into outcomes with the same executor as a local run (`triplegen.orchestration.executors.local.chunk_executor`),
its fan-out cache included. It writes nothing: the driver writes every part, so a worker that dies
can never leave a chunk written twice or half written.
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass, replace

import pyarrow as pa

from triplegen import __version__
from triplegen.backends.base import Backend
from triplegen.config import BackendOptions
from triplegen.checks.constraints import choose_constraint
from triplegen.errors import BackendUnavailable, TripleGenError
from triplegen.orchestration.executors.local import LocalExecutor, chunk_executor
from triplegen.orchestration.pipeline import Chunk
from triplegen.orchestration.plan import GenerationPlan


@dataclass(frozen=True)
class WorkerInfo:
    """What a started worker reports: its backend's identity (for provenance) and where it runs."""

    name: str
    model: str
    deterministic: bool
    needs_messages: bool
    counts: bool  # the backend keeps `stats` (tokens, requests), so the driver shows them
    version: str
    node: str
    pid: int


@dataclass
class ChunkResult:
    """A processed chunk without its rows (the driver holds them) and the backend's counters so far."""

    chunk: Chunk
    stats: dict | None


def portable(error: TripleGenError) -> TripleGenError:
    """A plain copy of a user-facing error: subclasses with their own __init__ do not unpickle."""
    plain = (BackendUnavailable if isinstance(error, BackendUnavailable) else TripleGenError)(str(error))
    plain.exit_code = error.exit_code
    return plain


class ChunkWorker:
    """The Ray actor class (wrapped with `ray.remote` by the pool, so this module needs no Ray)."""

    def __init__(self, options: BackendOptions, plan: GenerationPlan):
        self.options, self.plan = options, plan
        self.executor: LocalExecutor | None = None

    def start(self) -> WorkerInfo:
        """Build the backend (a vLLM engine may take minutes) and the steps, and say what it is."""
        if self.executor is None:
            try:
                executor = chunk_executor(self.plan, self.options, on_backend=self._check_constraint)
                try:
                    executor.steps()
                except BaseException:
                    executor.close()
                    raise
                self.executor = executor
            except TripleGenError as error:
                raise portable(error) from None
        import ray

        backend = self.executor.backend
        return WorkerInfo(backend.name, backend.model, backend.deterministic,
                          getattr(backend, "needs_messages", True), hasattr(backend, "stats"), __version__,
                          ray.util.get_node_ip_address(), os.getpid())

    def _check_constraint(self, backend: Backend) -> None:
        """Refuse a backend that cannot take the rows' schemas the driver decided on."""
        if self.plan.constrained:
            constraint = choose_constraint("polarity", backend.name, self.plan.template,
                                           getattr(backend, "check_schema", None),
                                           absent_template=self.plan.absent_template)
            if not constraint["applied"]:
                raise TripleGenError(f"the polarity constraint is {constraint['note']} on this worker's backend; "
                                     "run with --constrain none")

    def process(self, index: int, rows: pa.Table, wanted: set[str] | None = None) -> ChunkResult:
        """Dedupe, render, generate and check one chunk (`rows`: the plan's input columns only;
        `wanted`: only these ids, as in a retry of some rows)."""
        self.start()
        try:
            (chunk,) = list(self.executor.run([Chunk(index, rows, wanted=wanted)]))  # list(): lets Dedupe remember it
        except TripleGenError as error:
            raise portable(error) from None
        stats = getattr(self.executor.backend, "stats", None)
        return ChunkResult(replace(chunk, rows=rows.slice(0, 0), messages={}),
                           None if stats is None else asdict(stats))

    def stop(self) -> None:
        """Close the backend and free a vLLM engine (its engine process would outlive a killed actor)."""
        if self.executor is not None:
            self.executor.close()
        self.executor = None
        if "triplegen.backends.vllm" in sys.modules:
            sys.modules["triplegen.backends.vllm"].release_engines()
