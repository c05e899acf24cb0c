"""`--retry-backend-errors`: another try for the rows that an older run rejected as `backend_error`.

Before triplegen stopped on an outage, a run whose server died rejected every remaining row as
`backend_error`, and a resumed run never looked at them again. With this flag, once the run is
finished, those rows go through the same pipeline again, in a work folder of their own
(`<output>.retry.parts`, resumable like any run). Then the output gains the rows that pass now (at
its end) and the rejects keep the rows that still fail, each id still exactly once. The new files
are derived from the old ones minus every id the retry produced, so repeating the rewrite after a
crash gives the same files; the totals start from the run metadata saved when the retry began.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from semclip_core.files import write_json_atomic
from triplegen.errors import TripleGenError
from triplegen.orchestration.finish import finish_run
from triplegen.io.layout import OutputFiles
from triplegen.objects import ABSENT_SUFFIX
from triplegen.io.parquet_files import read_run_metadata
from triplegen.orchestration.pipeline import Step
from triplegen.orchestration.records import ChunkSummary, RunMetadata
from triplegen.orchestration.resume import WorkFolder

REASON = "backend_error"
IDS, BASE = "retry-ids.json", "base-run.json"


@dataclass(frozen=True)
class RetryTarget:
    """The finished run whose backend errors are retried, as this run's settings describe it."""

    files: OutputFiles
    input: Path
    fingerprint: dict  # this run's (triplegen.orchestration.fingerprint): the retry's work folder is tied to it
    prompt_hash: str
    backend: str


@dataclass
class Retry:
    """The rows to retry, their work folder and the run metadata from before the retry."""

    target: RetryTarget
    work: WorkFolder
    base: RunMetadata
    wanted: set[str]

    @classmethod
    def open(cls, target: RetryTarget) -> "Retry":
        """The retry of `target`'s output, resumed from its work folder where one was started."""
        work = WorkFolder.for_retry(target.files.triples)
        fingerprint = {**target.fingerprint, "retry": True}
        if (work.path / IDS).is_file() and (work.path / BASE).is_file():
            work.open(fingerprint, overwrite=False)
            base = RunMetadata(**json.loads((work.path / BASE).read_text(encoding="utf-8")))
            return cls(target, work, base, set(json.loads((work.path / IDS).read_text(encoding="utf-8"))))
        files = target.files
        stored = read_run_metadata(files.triples)
        if stored is None or not files.rejects.is_file():
            raise TripleGenError(f"--retry-backend-errors needs the output of a finished run: {files.triples} and "
                                 f"{files.rejects}")
        base = RunMetadata(**stored)
        if base.prompt.get("hash") != target.prompt_hash or base.backend != target.backend:
            raise TripleGenError(f"{files.triples} was made with another prompt or backend "
                                 f"({base.prompt.get('name')}, {base.backend}); retry with the settings that made it")
        rejects = pq.read_table(files.rejects, columns=["id", "reason"])
        wanted = set(rejects.filter(pc.equal(rejects.column("reason"), REASON)).column("id").to_pylist())
        if wanted:
            work.open(fingerprint, overwrite=False)
            write_json_atomic(work.path / BASE, base.json_dict())
            write_json_atomic(work.path / IDS, sorted(wanted))
        return cls(target, work, base, wanted)

    def rows(self, chunks: Iterable) -> Iterator:
        """The chunks cut down to the rows to retry."""
        return OnlyRows(self.wanted).run(chunks)

    def finish(self) -> RunMetadata:
        """Rewrite the output, the rejects and the card with the retried rows; the new totals."""
        files, work = self.target.files, self.work
        chunks = work.done_chunks()
        parts = [work.part(i) for i in chunks]
        reject_parts = [work.rejects_part(i) for i in chunks]
        produced = _ids(parts + reject_parts)
        if produced != self.wanted:
            missing = sorted(self.wanted - produced)
            raise TripleGenError(f"{len(missing)} row(s) to retry are no longer in {self.target.input} (e.g. "
                                 f"{', '.join(missing[:3])}); retry with the input that made {files.triples}")
        run = _totals(self.base, work.summaries(), len(self.wanted))
        drop = pa.array(sorted(produced), pa.string())
        finish_run(files, run.json_dict(), pq.read_schema(files.triples).remove_metadata(),
                   _replaced(files.triples, parts, drop), _replaced(files.rejects, reject_parts, drop))
        work.remove()
        return run


class OnlyRows(Step):
    """Keep the chunks' rows that produce a wanted id (itself, or an absent-object row derived from it),
    and have later steps produce only the wanted ids; chunks left empty are dropped."""

    name = "only rows"

    def __init__(self, wanted: set[str]):
        self.wanted = wanted
        self.sources = wanted | {source_id(row_id) for row_id in wanted}

    def run(self, chunks):
        for chunk in chunks:
            ids = chunk.rows.column("id").to_pylist()
            rows = chunk.rows.filter(pa.array([row_id in self.sources for row_id in ids], pa.bool_()))
            if rows.num_rows:
                yield replace(chunk, rows=rows, wanted=self.wanted)


def source_id(row_id: str) -> str:
    """The input id a written row comes from (an absent-object row's id ends in #absent-N)."""
    head, sep, tail = row_id.rpartition(ABSENT_SUFFIX)
    return head if sep and tail.isdigit() else row_id


def _totals(base: RunMetadata, summaries: list[ChunkSummary], retried: int) -> RunMetadata:
    """The old totals with the retried rows moved from `backend_error` to what became of them."""
    tally = base.add(summaries).tally
    reasons = Counter(tally.reject_reasons)
    reasons[REASON] -= retried
    if not reasons[REASON]:
        del reasons[REASON]
    # the retried rows are the same input rows: counted once, when the run first read them
    tally = tally.model_copy(update={"rows": base.tally.rows, "absent_planned": base.tally.absent_planned,
                                     "rejected": tally.rejected - retried, "reject_reasons": reasons})
    return base.model_copy(update={"tally": tally,
                                   "retried_backend_errors": retried + getattr(base, "retried_backend_errors", 0)})


def _ids(paths: list[Path]) -> set[str]:
    return {row_id for path in paths for row_id in pq.read_table(path, columns=["id"]).column("id").to_pylist()}


def _replaced(path: Path, additions: list[Path], drop: pa.Array) -> Iterator[pa.Table]:
    """The rows of `path` without the ids in `drop`, then the retry's rows."""
    old = pq.ParquetFile(path)
    for group in range(old.num_row_groups):
        table = old.read_row_group(group)
        yield table.filter(pc.invert(pc.is_in(table.column("id"), value_set=drop)))
    for addition in additions:
        yield pq.read_table(addition)
