"""`triplegen.generate(config)`: one resumable run from captions to a checked triples file.

The order matters for resume: the input is scanned first (row count, duplicate ids), the work folder
is opened against the run's fingerprint, the pipeline writes finished chunks, and only then are the
parts joined into the final files, the card written and the work folder removed. A rerun of a finished
run checks that its output is what it would write and rewrites nothing (triplegen.orchestration.finished). A run
that fails before it finished a chunk (a missing extra, an engine that does not start) leaves no
work folder, and no output folder it created, behind.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from rich.console import Console

from semclip_core.files import (
    RunLock, refuse_folder, refuse_overwriting_inputs, remove_stale_temps, same_file,
)
from semclip_core.progress import stderr_console
from triplegen.backends import Backend
from triplegen.checks.blind import check_model_folder
from triplegen.config import GenerateConfig
from triplegen.errors import TripleGenError
from triplegen.orchestration.finish import finish_run
from triplegen.orchestration.finished import check_complete, stamp
from triplegen.orchestration.job import Job
from triplegen.io.layout import CARD_NAME, OutputFiles
from triplegen.objects import ABSENT_SUFFIX
from triplegen.io.parquet_files import read_run_metadata, row_groups
from triplegen.orchestration.pipeline import shard_of
from triplegen.io.readers import CaptionSource, Columns
from triplegen.orchestration.records import RunMetadata
from triplegen.orchestration.resume import WorkFolder
from triplegen.orchestration.retry import REASON, Retry, RetryTarget
from triplegen.templates import load_template
from triplegen.io.schema import triple_schema


@dataclass
class RunSummary:
    """What a finished run produced; also stored (as `run`) in the output's Parquet metadata."""

    output: Path
    rejects: Path
    card: Path
    rows: int
    accepted: int
    rejected: int
    backend: str
    model: str
    resumed_chunks: int
    seconds: float
    rows_per_s: float
    reject_reasons: dict[str, int] = field(default_factory=dict)
    run: dict = field(default_factory=dict)
    complete: bool = False  # an earlier run with the same input and settings wrote it: nothing was rewritten


def generate(config, backend: Backend | None = None, console: Console | None = None, *,
             as_frame: str | None = None, **options):
    """Generate triples for every input row; rerunning the same config resumes an interrupted run.

    `config` is a GenerateConfig (files in, files out: returns a RunSummary), or rows in memory (a
    list of captions or row dicts, a polars/pandas DataFrame, a datasets.Dataset) with GenerateConfig
    fields as keyword arguments: then it returns `GeneratedFrames(triples, rejects, summary)` of the
    same kind (triplegen.orchestration.inmemory). `as_frame` ("polars", "pandas", "datasets", "arrow") asks for
    frames of that kind in either case.

    `backend` plugs in any object implementing `triplegen.backends.Backend` instead of the one the
    config names (the caller keeps ownership: it is not closed here).
    """
    if not isinstance(config, GenerateConfig):
        from triplegen.orchestration.inmemory import generate_from_memory

        return generate_from_memory(config, as_frame=as_frame, backend=backend, console=console, **options)
    if options:
        raise TypeError(f"options {sorted(options)} go into the GenerateConfig itself")
    summary = _generate(config, backend, console)
    if as_frame is not None:
        from triplegen.orchestration.inmemory import read_frames

        return read_frames(summary, as_frame)
    return summary


def _generate(config: GenerateConfig, backend: Backend | None, console: Console | None) -> RunSummary:
    started = time.monotonic()
    if backend is not None and config.executor == "ray":
        raise TripleGenError("--executor ray builds a backend on every worker from the config; "
                             "a backend object cannot be passed in")
    console = console or stderr_console()
    template = load_template(config.prompt)
    source = CaptionSource(config.input, Columns(config.caption_col, config.image_col, config.id_col))
    files = OutputFiles.of(config.output, config.rejects_path)  # the card's name, decided once
    _check_paths(config, files, source)
    work = WorkFolder(files.triples)  # a link there is refused before anything is written
    made = _missing_folders(files.triples, files.rejects)
    try:
        with RunLock(files.lock, f"-o {files.triples}"):
            # left by a killed run; safe to remove now that this run holds the lock
            remove_stale_temps(files.triples.parent, [files.triples.name, files.card.name, work.path.name])
            remove_stale_temps(files.rejects.parent, [files.rejects.name])
            remove_stale_temps(work.path)
            job = Job.prepare(config, template, source, files)
            finished = files.triples.exists() and not work.path.exists()
            if finished and config.retry_backend_errors:
                summary = None  # finished by an earlier run: only its backend_error rows are redone
            elif finished and not config.overwrite:
                check_complete(job)  # a rerun of a finished run: refused unless it would write the same
                summary = replace(_summary_of_output(files, started), complete=True)
            else:
                summary = _run(job, work, backend, console, started)
            retried = _retry(job, backend, console) if config.retry_backend_errors else None
    except BaseException:
        _remove_empty(made)
        raise
    if retried is not None:
        return run_summary(files, retried[0], 0, started, retried[1])
    return summary or _summary_of_output(files, started)


def _missing_folders(*paths: Path) -> list[Path]:
    """The folders above `paths` that do not exist yet (the run creates them), deepest first."""
    missing = {parent for path in paths for parent in Path(path).parents if not parent.exists()}
    return sorted(missing, key=lambda folder: len(folder.parts), reverse=True)


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders a failed run created, where it left nothing in them."""
    for folder in folders:
        try:
            os.rmdir(folder)
        except OSError:  # not empty (a kept chunk, an engine log) or already gone
            pass


def _run(job: Job, work: WorkFolder, backend: Backend | None, console: Console, started: float) -> RunSummary:
    config = job.config
    planned = _scan(job.source, config)
    fingerprint = job.fingerprint()
    created = not work.path.exists()
    resumed = work.open(fingerprint, config.overwrite, (job.files.rejects,))
    try:
        return _finish(job, work, backend, console, started, planned, resumed, fingerprint)
    except BaseException:
        if created and not work.done_chunks():  # nothing to resume: leave nothing behind
            work.remove()
        raise


def _finish(job: Job, work: WorkFolder, backend: Backend | None, console: Console, started: float, planned: int,
            resumed: int, fingerprint: dict) -> RunSummary:
    """Generate what is left, then join the parts into the output, the rejects and the card."""
    config, files = job.config, job.files
    if resumed:  # before the backend loads: an input changed in place is refused at once
        work.verify_input(job.reader(), str(config.input))
    chunks_total = -(-planned // config.chunk_size)
    with _executor(job, backend, console, backend is not None or resumed < chunks_total) as executor:
        if executor is not None:
            _announce(config, executor.backend, console, resumed)
        if files.card.name != CARD_NAME and not config.quiet:
            console.print(f"{files.triples.with_name(CARD_NAME)} is not the card of {files.triples.name}: "
                          f"the card goes to {files.card}.")
        provenance = job.provenance(executor.backend if executor else None)
        rows_per_s = job.generate(job.reader(), planned, executor, work, provenance, console)

    summaries = work.summaries()
    run = job.metadata(provenance).add(summaries)
    if run.tally.rows != planned or len(summaries) != chunks_total:
        raise RuntimeError(f"chunks cover {run.tally.rows} rows, expected {planned}")
    chunks = work.done_chunks()
    # a rerun compares it (triplegen.orchestration.finished)
    record = {**run.json_dict(), **stamp(fingerprint, summaries)}
    finish_run(files, record, job.schema, row_groups(work.part(i) for i in chunks),
               row_groups(work.rejects_part(i) for i in chunks))
    work.remove()
    return run_summary(files, run, resumed, started, rows_per_s)


def _retry(job: Job, backend: Backend | None, console: Console) -> tuple[RunMetadata, float] | None:
    """Redo the `backend_error` rows of the finished output (triplegen.orchestration.retry): the new totals and
    rows/s, or None when there were none."""
    config = job.config
    retry = Retry.open(RetryTarget(job.files, config.input, job.fingerprint(), job.template.hash,
                                   config.resolved_backend()))
    if not retry.wanted:
        if not config.quiet:
            console.print(f"No rows of {job.files.rejects} were rejected as {REASON}: nothing to retry.")
        return None
    if not config.quiet:
        console.print(f"Retrying {len(retry.wanted):,} row(s) rejected as {REASON}.")
    with _executor(job, backend, console) as executor:
        provenance = job.provenance(executor.backend)
        rows_per_s = job.generate(retry.rows(job.reader()), len(retry.wanted), executor, retry.work, provenance,
                                  console)
    return retry.finish(), rows_per_s


@contextmanager
def _executor(job: Job, backend: Backend | None, console: Console, needed: bool = True) -> Iterator:
    """The job's executor (None when every chunk is finished and no backend was given), closed after."""
    executor = job.executor(backend, console) if needed else None
    try:
        yield executor
    finally:
        if executor is not None:
            executor.close()


def run_summary(files: OutputFiles, run: RunMetadata, resumed: int, started: float, rows_per_s: float) -> RunSummary:
    return RunSummary(
        output=files.triples, rejects=files.rejects, card=files.card, rows=run.tally.rows,
        accepted=run.tally.accepted, rejected=run.tally.rejected, backend=run.backend, model=run.model,
        resumed_chunks=resumed, seconds=time.monotonic() - started, rows_per_s=rows_per_s,
        reject_reasons=dict(run.tally.reject_reasons), run=run.json_dict(),
    )


def _summary_of_output(files: OutputFiles, started: float) -> RunSummary:
    """A finished output that had nothing to retry: its own totals."""
    return run_summary(files, RunMetadata(**read_run_metadata(files.triples)), 0, started, 0.0)


def _check_paths(config: GenerateConfig, files: OutputFiles, source: CaptionSource) -> None:
    clashes = sorted({f.name for f in source.extra_fields} & set(triple_schema(source.image_type).names))
    if clashes:
        raise TripleGenError(
            f"input columns {', '.join(clashes)} clash with the output's own columns; rename or drop them"
        )
    if same_file(files.rejects, files.triples):
        raise TripleGenError("--rejects must differ from -o/--output")
    refuse_folder(files.triples, "-o")
    refuse_folder(files.rejects, "--rejects")
    if config.blind_model is not None:  # refused now, not after a vLLM engine has loaded
        check_model_folder(config.blind_model)
    refuse_overwriting_inputs({"-o": files.triples, "--rejects": files.rejects, "the card": files.card},
                              [config.input], read_folders=True)


def _scan(source: CaptionSource, config: GenerateConfig) -> int:
    """Count the rows this run will handle, and refuse duplicate ids (a cheap pass over the ids only,
    in bounded memory: the ids' hashes spill beside the output, triplegen.io.idcheck)."""
    from triplegen.io.idcheck import DuplicateIds

    total = selected = 0
    with DuplicateIds(config.output) as ids:
        for batch in source.id_batches():
            ids.add(batch)
            for row_id in batch:
                if config.absent_objects and ABSENT_SUFFIX in row_id:
                    raise TripleGenError(f"id {row_id!r} contains {ABSENT_SUFFIX!r}, which marks the ids of "
                                         "absent-object rows; rename the ids or drop --absent-objects")
                total += 1
                if config.shard is None or shard_of(row_id, config.shard.count) == config.shard.index:
                    selected += 1
        duplicate = ids.first_duplicate(source.id_batches)
    if duplicate is not None:
        hint = ("--id-col names a column with repeats" if source.columns.id
                else "two rows have the same image and caption; drop the repeats")
        raise TripleGenError(f"duplicate id {duplicate!r} in {source.path} ({hint})")
    if total == 0:
        raise TripleGenError(f"{source.path} has no rows")
    return selected if config.limit is None else min(selected, config.limit)


def _announce(config: GenerateConfig, backend, console: Console, resumed: int) -> None:
    if config.quiet:
        return
    if resumed:
        console.print(f"Resuming: {resumed} chunk(s) were finished by an earlier run.")
    if backend.name == "rules":
        why = "no model was named (--model / --base-url)" if config.backend == "auto" else "--backend rules"
        console.print(
            f"[bold yellow]Using the built-in rules generator because {why}:[/] no LLM; "
            "every row is marked backend=rules."
        )
    else:
        console.print(f"Backend {backend.name}, model {backend.model}.")
    if getattr(backend, "log_file", None):
        console.print(f"vLLM engine log: {backend.log_file} (--verbose shows it here).")
