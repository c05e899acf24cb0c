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
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from rich.console import Console

from semclip_core.files import write_json_atomic, write_text_atomic
from triplegen.errors import TripleGenError
from triplegen.hubcard import render_dataset_card
from triplegen.parquet_files import read_run_metadata
from triplegen.objects import ABSENT_SUFFIX
from triplegen.pipeline import Step
from triplegen.records import ChunkSummary, RunMetadata
from triplegen.resume import WorkFolder
from triplegen.schema import reject_schema
from triplegen.writer import ParquetSink

REASON = "backend_error"
IDS, BASE = "retry-ids.json", "base-run.json"


def retry_backend_errors(job, backend, console: Console) -> tuple[RunMetadata, float] | None:
    """Redo the `backend_error` rows of the finished output of `job.config` (a `triplegen.run.Job`):
    the new totals and rows/s, or None when there were none."""
    config = job.config
    work = WorkFolder(config.output.with_name(config.output.name + ".retry"))
    base, wanted = _open(work, job)
    if not wanted:
        if not config.quiet:
            console.print(f"No rows of {config.rejects_path} were rejected as {REASON}: nothing to retry.")
        return None
    if not config.quiet:
        console.print(f"Retrying {len(wanted):,} row(s) rejected as {REASON}.")
    executor = job.executor(backend, console)
    try:
        provenance = job.provenance(executor.backend)
        rows_per_s = job.generate(OnlyRows(wanted).run(job.reader()), len(wanted), executor, work, provenance,
                                  console)
    finally:
        executor.close()
    run = _rewrite(job, work, base, wanted)
    work.remove()
    return run, rows_per_s


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


def _open(work: WorkFolder, job) -> tuple[RunMetadata, set[str]]:
    """The run metadata before the retry and the ids to retry, saved in the retry's work folder."""
    config = job.config
    if (work.path / IDS).is_file() and (work.path / BASE).is_file():
        work.open({**job.fingerprint(), "retry": True}, overwrite=False)
        base = RunMetadata(**json.loads((work.path / BASE).read_text(encoding="utf-8")))
        return base, set(json.loads((work.path / IDS).read_text(encoding="utf-8")))
    stored = read_run_metadata(config.output)
    if stored is None or not config.rejects_path.is_file():
        raise TripleGenError(f"--retry-backend-errors needs the output of a finished run: {config.output} and "
                             f"{config.rejects_path}")
    base = RunMetadata(**stored)
    if base.prompt.get("hash") != job.template.hash or base.backend != config.resolved_backend():
        raise TripleGenError(f"{config.output} was made with another prompt or backend ({base.prompt.get('name')}, "
                             f"{base.backend}); retry with the settings that made it")
    rejects = pq.read_table(config.rejects_path, columns=["id", "reason"])
    wanted = set(rejects.filter(pc.equal(rejects.column("reason"), REASON)).column("id").to_pylist())
    if wanted:
        work.open({**job.fingerprint(), "retry": True}, overwrite=False)
        write_json_atomic(work.path / BASE, base.json_dict())
        write_json_atomic(work.path / IDS, sorted(wanted))
    return base, wanted


def _rewrite(job, work: WorkFolder, base: RunMetadata, wanted: set[str]) -> RunMetadata:
    config = job.config
    chunks = work.done_chunks()
    parts = [work.part(i) for i in chunks]
    reject_parts = [work.rejects_part(i) for i in chunks]
    produced = _ids(parts + reject_parts)
    if produced != wanted:
        missing = sorted(wanted - produced)
        raise TripleGenError(f"{len(missing)} row(s) to retry are no longer in {config.input} (e.g. "
                             f"{', '.join(missing[:3])}); retry with the input that made {config.output}")
    run = _totals(base, work.summaries(), len(wanted))
    metadata = run.json_dict()
    _replace(config.output, parts, produced, pq.read_schema(config.output).remove_metadata(), metadata)
    _replace(config.rejects_path, reject_parts, produced, reject_schema(), metadata)
    write_text_atomic(config.card_path, render_dataset_card(metadata, config.output, config.rejects_path,
                                                            config.card_path))
    return run


def _totals(base: RunMetadata, summaries: list[ChunkSummary], retried: int) -> RunMetadata:
    """The old totals with the retried rows moved from `backend_error` to what became of them."""
    rows, planned = base.counts.rows, base.counts.absent_planned  # the same rows, counted once
    run = base.add(summaries)
    reasons = dict(run.reject_reasons)
    reasons[REASON] -= retried
    if not reasons[REASON]:
        del reasons[REASON]
    counts = run.counts.model_copy(update={"rows": rows, "absent_planned": planned,
                                           "rejected": run.counts.rejected - retried})
    return run.model_copy(update={"counts": counts, "reject_reasons": reasons,
                                  "retried_backend_errors": retried + getattr(base, "retried_backend_errors", 0)})


def _ids(paths: list[Path]) -> set[str]:
    return {row_id for path in paths for row_id in pq.read_table(path, columns=["id"]).column("id").to_pylist()}


def _replace(path: Path, additions: list[Path], produced: set[str], schema: pa.Schema, run: dict) -> None:
    """`path` without the rows the retry produced, then the retry's rows, atomically."""
    drop = pa.array(sorted(produced), pa.string())
    with ParquetSink(path, schema, run) as sink:
        old = pq.ParquetFile(path)
        for group in range(old.num_row_groups):
            table = old.read_row_group(group)
            sink.write(table.filter(pc.invert(pc.is_in(table.column("id"), value_set=drop))))
        for addition in additions:
            sink.write(pq.read_table(addition))
        sink.finalize()

