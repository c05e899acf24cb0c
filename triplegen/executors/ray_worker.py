"""One Ray worker: the run's backend, built once per worker, and the steps around it.

A worker holds one backend for its whole life (an in-process vLLM engine on the GPUs Ray gave it, an
OpenAI client with its share of the run's concurrency, or the rules) and turns chunks of input rows
into outcomes with the same steps as a local run (`GenerationPlan.steps`), its fan-out cache
included. It writes nothing: the driver writes every part, so a worker that dies can never leave a
chunk written twice or half written.
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass, replace

import pyarrow as pa

from triplegen import __version__
from triplegen.backends import make_backend
from triplegen.config import GenerateConfig
from triplegen.constraints import choose_constraint
from triplegen.errors import BackendUnavailable, TripleGenError
from triplegen.llm_judge import judge_backend
from triplegen.pipeline import Chunk, run_steps
from triplegen.plan import GenerationPlan


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

    def __init__(self, config: GenerateConfig, plan: GenerationPlan):
        self.config, self.plan = config, plan
        self.backend = None
        self.judge = None  # the LLM judge's backend, when the run has one and it is not `backend`
        self.steps = []

    def start(self) -> WorkerInfo:
        """Build the backend (a vLLM engine may take minutes) and say what it is."""
        if self.backend is None:
            try:
                self.backend = make_backend(self.config, self.plan.template.output_schema)
                self.steps = self.plan.steps(self.backend, self._judge_backend())
            except TripleGenError as error:
                raise portable(error) from None
        import ray

        backend = self.backend
        return WorkerInfo(backend.name, backend.model, backend.deterministic,
                          getattr(backend, "needs_messages", True), hasattr(backend, "stats"), __version__,
                          ray.util.get_node_ip_address(), os.getpid())

    def _judge_backend(self):
        """Check that the backend takes the rows' schemas, and build the judge's backend (if any)."""
        if self.plan.constrained:
            constraint = choose_constraint(self.config.constrain, self.backend.name, self.plan.template,
                                           getattr(self.backend, "check_schema", None),
                                           absent_template=self.plan.absent_template)
            if not constraint["applied"]:
                raise TripleGenError(f"the polarity constraint is {constraint['note']} on this worker's backend; "
                                     "run with --constrain none")
        if self.plan.judge_template is None:
            return None
        judge, owned = judge_backend(self.config, self.backend, self.plan.judge_template)
        self.judge = judge if owned else None
        return judge

    def process(self, index: int, rows: pa.Table, wanted: set[str] | None = None) -> ChunkResult:
        """Dedupe, render, generate and check one chunk (`rows`: the plan's input columns only;
        `wanted`: only these ids, as in a retry of some rows)."""
        self.start()
        try:
            (chunk,) = list(run_steps([Chunk(index, rows, wanted=wanted)], self.steps))  # list(): lets Dedupe remember it
        except TripleGenError as error:
            raise portable(error) from None
        stats = getattr(self.backend, "stats", None)
        return ChunkResult(replace(chunk, rows=rows.slice(0, 0), messages={}),
                           None if stats is None else asdict(stats))

    def stop(self) -> None:
        """Close the backend and free a vLLM engine (its engine process would outlive a killed actor)."""
        for backend in (self.judge, self.backend):
            if backend is not None:
                backend.close()
        self.backend = self.judge = None
        if "triplegen.backends.vllm" in sys.modules:
            sys.modules["triplegen.backends.vllm"].release_engines()
