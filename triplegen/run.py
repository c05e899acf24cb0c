"""`triplegen.generate(config)`: one resumable run from captions to a checked triples file.

The order matters for resume: the input is scanned first (row count, duplicate ids), the work folder
is opened against the run's fingerprint, the pipeline writes finished chunks, and only then are the
parts joined into the final files, the card written and the work folder removed. A rerun of a finished
run checks that its output is what it would write and rewrites nothing (triplegen.finished). A run
that fails before it finished a chunk (a missing extra, an engine that does not start) leaves no
work folder, and no output folder it created, behind.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable

from rich.console import Console

from semclip_core.files import (
    RunLock, refuse_folder, refuse_overwriting_inputs, remove_stale_temps, same_file, write_text_atomic,
)
from semclip_core.progress import stderr_console
from triplegen import __version__
from triplegen.backends import Backend, make_backend
from triplegen.blind import blind_settings, check_model_folder
from triplegen.checks import CheckConfig
from triplegen.config import GenerateConfig
from triplegen.constraints import choose_constraint
from triplegen.errors import BackendUnavailable, TripleGenError
from triplegen.executors.local import LocalExecutor
from triplegen.finished import check_complete, stamp
from triplegen.fingerprint import run_fingerprint
from triplegen.hubcard import render_dataset_card
from triplegen.layout import CARD_NAME
from triplegen.llm_judge import judge_backend, judge_reasons, load_judge_template
from triplegen.objects import ABSENT_SUFFIX, read_vocabulary
from triplegen.parquet_files import concat_parquet, read_run_metadata
from triplegen.parts import WriteParts
from triplegen.pipeline import ReadChunks, SkipFinished, run_steps, shard_of
from triplegen.plan import GenerationPlan
from triplegen.progress import RunProgress
from triplegen.readers import CaptionSource, Columns
from triplegen.records import RunMetadata
from triplegen.resume import WorkFolder
from triplegen.retry import retry_backend_errors
from triplegen.templates import load_task_template, load_template
from triplegen.schema import reject_schema, triple_schema


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
    same kind (triplegen.inmemory). `as_frame` ("polars", "pandas", "datasets", "arrow") asks for
    frames of that kind in either case.

    `backend` plugs in any object implementing `triplegen.backends.Backend` instead of the one the
    config names (the caller keeps ownership: it is not closed here).
    """
    if not isinstance(config, GenerateConfig):
        from triplegen.inmemory import generate_from_memory

        return generate_from_memory(config, as_frame=as_frame, backend=backend, console=console, **options)
    if options:
        raise TypeError(f"options {sorted(options)} go into the GenerateConfig itself")
    summary = _generate(config, backend, console)
    if as_frame is not None:
        from triplegen.inmemory import read_frames

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
    _check_paths(config, source)
    work = WorkFolder(config.output)  # a link there is refused before anything is written
    made = _missing_folders(config.output, config.rejects_path)
    try:
        with RunLock(config.output.with_name(f".{config.output.name}.lock"), f"-o {config.output}"):
            # left by a killed run; safe to remove now that this run holds the lock
            remove_stale_temps(config.output.parent, [config.output.name, config.card_path.name, work.path.name])
            remove_stale_temps(config.rejects_path.parent, [config.rejects_path.name])
            remove_stale_temps(work.path)
            job = Job.prepare(config, template, source)
            finished = config.output.exists() and not work.path.exists()
            if finished and config.retry_backend_errors:
                summary = None  # finished by an earlier run: only its backend_error rows are redone
            elif finished and not config.overwrite:
                check_complete(job)  # a rerun of a finished run: refused unless it would write the same
                summary = replace(_summary_of_output(config, started), complete=True)
            else:
                summary = _run(job, work, backend, console, started)
            retried = retry_backend_errors(job, backend, console) if config.retry_backend_errors else None
    except BaseException:
        _remove_empty(made)
        raise
    if retried is not None:
        return run_summary(config, retried[0], 0, started, retried[1])
    return summary or _summary_of_output(config, started)


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


def _run(job: "Job", work: WorkFolder, backend: Backend | None, console: Console, started: float) -> RunSummary:
    config = job.config
    planned = _scan(job.source, config)
    fingerprint = job.fingerprint()
    created = not work.path.exists()
    resumed = work.open(fingerprint, config.overwrite, (config.rejects_path,))
    try:
        return _finish(job, work, backend, console, started, planned, resumed, fingerprint)
    except BaseException:
        if created and not work.done_chunks():  # nothing to resume: leave nothing behind
            work.remove()
        raise


def _finish(job: "Job", work: WorkFolder, backend: Backend | None, console: Console, started: float, planned: int,
            resumed: int, fingerprint: dict) -> RunSummary:
    """Generate what is left, then join the parts into the output, the rejects and the card."""
    config = job.config
    if resumed:  # before the backend loads: an input changed in place is refused at once
        work.verify_input(job.reader(), str(config.input))
    chunks_total = -(-planned // config.chunk_size)
    executor = job.executor(backend, console) if backend is not None or resumed < chunks_total else None
    try:
        if executor is not None:
            _announce(config, executor.backend, console, resumed)
        if config.card_path.name != CARD_NAME and not config.quiet:
            console.print(f"{config.output.with_name(CARD_NAME)} is not the card of {config.output.name}: "
                          f"the card goes to {config.card_path}.")
        provenance = job.provenance(executor.backend if executor else None)
        rows_per_s = job.generate(job.reader(), planned, executor, work, provenance, console)
    finally:
        if executor is not None:
            executor.close()

    summaries = work.summaries()
    run = job.metadata(provenance).add(summaries)
    if run.counts.rows != planned or len(summaries) != chunks_total:
        raise RuntimeError(f"chunks cover {run.counts.rows} rows, expected {planned}")
    chunks = work.done_chunks()
    record = {**run.json_dict(), **stamp(fingerprint, summaries)}  # a rerun compares it (triplegen.finished)
    concat_parquet([work.part(i) for i in chunks], config.output, job.schema, record)
    concat_parquet([work.rejects_part(i) for i in chunks], config.rejects_path, reject_schema(), record)
    write_text_atomic(config.card_path, render_dataset_card(record, config.output, config.rejects_path,
                                                            config.card_path))
    work.remove()
    return run_summary(config, run, resumed, started, rows_per_s)


def run_summary(config: GenerateConfig, run: RunMetadata, resumed: int, started: float,
                rows_per_s: float) -> RunSummary:
    return RunSummary(
        output=config.output, rejects=config.rejects_path, card=config.card_path, rows=run.counts.rows,
        accepted=run.counts.accepted, rejected=run.counts.rejected, backend=run.backend, model=run.model,
        resumed_chunks=resumed, seconds=time.monotonic() - started, rows_per_s=rows_per_s,
        reject_reasons=run.reject_reasons, run=run.json_dict(),
    )


def _summary_of_output(config: GenerateConfig, started: float) -> RunSummary:
    """A finished output that had nothing to retry: its own totals."""
    return run_summary(config, RunMetadata(**read_run_metadata(config.output)), 0, started, 0.0)


@dataclass
class Job:
    """A run's settings as its passes need them: the input, the generation plan, the fingerprint."""

    config: GenerateConfig
    template: Any
    source: CaptionSource
    plan: GenerationPlan
    constraint: dict | None = None  # the card's record of the polarity constraint, once decided

    @classmethod
    def prepare(cls, config: GenerateConfig, template, source: CaptionSource) -> "Job":
        absent_template, vocabulary = _absent_setup(config, source)
        plan = GenerationPlan(
            template=template, sampling=_sampling(template, config),
            checks=CheckConfig(lexicon=vocabulary.lexicon if vocabulary is not None else None), seed=config.seed,
            max_attempts=config.max_attempts, semantic_check=config.semantic_check, absent_template=absent_template,
            vocabulary=vocabulary, absent_sampling=_sampling(absent_template, config) if absent_template else None,
            absent_objects=config.absent_objects, objects_col=config.objects_col,
            retry_temperature=config.retry_temperature, judge_template=load_judge_template(config),
            blind_model=config.blind_model)
        return cls(config, template, source, plan)

    @property
    def schema(self):
        return triple_schema(self.source.image_type, self.source.extra_fields)

    def reader(self) -> ReadChunks:
        return ReadChunks(self.source, self.config.chunk_size, self.config.shard, self.config.limit)

    def fingerprint(self) -> dict:
        return run_fingerprint(self.config, self.template, self.source, self.plan)

    def executor(self, backend: Backend | None, console: Console):
        """Where chunks are generated: the given backend, one made from the config, or Ray workers.

        The polarity constraint is decided here, once the backend can be asked whether it takes the
        rows' schemas; a Ray worker asks its own backend when it starts (triplegen.executors).
        """
        if self.config.executor == "ray":
            from triplegen.executors.ray_pool import RayWorkers  # Ray is an extra; a local run never imports it

            self._constrain(None, console)
            return RayWorkers(self.config, self.plan, console)
        owned = backend is None
        backend = backend or make_backend(self.config, self.template.output_schema)
        try:
            self._constrain(backend, console)
            judging = judge_backend(self.config, backend, self.plan.judge_template) if self.plan.judge_template else None
        except BaseException:
            if owned:
                backend.close()
            raise
        return LocalExecutor(backend, self.plan, owned, *(judging or (None, False)))

    def _constrain(self, backend: Backend | None, console: Console) -> None:
        """Apply the polarity constraint when the backend takes it (None: a Ray worker's, not asked here)."""
        if backend is None:
            self.constraint = choose_constraint(
                self.config.constrain, self.config.resolved_backend(), self.template,
                unprobed_note="per-caption JSON-schema patterns (each Ray worker checks that its backend takes them)")
        else:
            self.constraint = choose_constraint(self.config.constrain, backend.name, self.template,
                                                getattr(backend, "check_schema", None),
                                                absent_template=self.plan.absent_template)
        self.plan.constrained = self.constraint["applied"]
        refused = self.constraint["note"].startswith("not applied")
        if refused and not self.config.quiet:
            console.print(f"[bold yellow]Polarity constraint {self.constraint['note']}[/]; the template's schema "
                          "is used and wrong polarity is left to the checks.")

    def generate(self, chunks: Iterable, total: int, executor, work: WorkFolder, provenance: dict,
                 console: Console) -> float:
        """Generate the chunks that `work` has not finished and write their parts, with a progress
        display of `total` rows; rows/s. An outage stops here with what is kept."""
        stats = getattr(executor and executor.backend, "stats", None)
        with RunProgress(total, self.config.quiet, stats, console) as progress:
            todo = SkipFinished(work, lambda index: progress.advance(work.summary(index), resumed=True)).run(chunks)
            generated = executor.run(todo) if executor is not None else run_steps(todo, self.plan.steps(None))
            write = WriteParts(work, self.schema, provenance, _prompt_provenance(self.plan.absent_template))
            try:
                for summary in write.run(generated):
                    progress.advance(summary)
            except BackendUnavailable as exc:
                done = len(work.done_chunks())  # none: the work folder goes too (_run)
                kept = f"{done} chunk(s) are finished and kept in {work.path}" if done else "no chunk was finished"
                raise BackendUnavailable(f"{exc}; stopped: {kept}, run the same command again once it is "
                                         "back") from None
            return progress.rows_per_s()

    def provenance(self, backend: Backend | None) -> dict:
        name = self.config.resolved_backend()
        return {
            "backend": backend.name if backend else name,
            "model": backend.model if backend else (self.config.model or "rules"),
            **_prompt_provenance(self.template),
            "deterministic": backend.deterministic if backend else name == "rules",
            "prefix_caching": getattr(backend, "prefix_caching", None),
        }

    def metadata(self, provenance: dict) -> RunMetadata:
        """The run's settings, with zero totals (`RunMetadata.add` adds the chunks')."""
        config, template, absent = self.config, self.template, self.plan.absent_template
        judge = self.plan.judge_template
        return RunMetadata(
            triplegen_version=__version__, config=config.model_dump(mode="json"), backend=provenance["backend"],
            model=provenance["model"], prompt={"name": template.name, "version": template.version, "hash": template.hash,
                                               "system": template.system, "user": template.user},
            absent_prompt=None if absent is None else {"name": absent.name, "version": absent.version,
                                                       "hash": absent.hash},
            # a deterministic backend would repeat itself, so it gets one attempt
            attempts_allowed=1 if provenance["deterministic"] else config.max_attempts,
            constraint=self.constraint, prefix_caching=provenance.get("prefix_caching"),
            judge=None if judge is None else {"model": config.judge_model, "base_url": config.judge_base_url,
                                              "prompt": _prompt_provenance(judge), "reasons": judge_reasons(judge)},
            blind=None if config.blind_model is None else blind_settings(config.blind_model),
        )


def _check_paths(config: GenerateConfig, source: CaptionSource) -> None:
    clashes = sorted({f.name for f in source.extra_fields} & set(triple_schema(source.image_type).names))
    if clashes:
        raise TripleGenError(
            f"input columns {', '.join(clashes)} clash with the output's own columns; rename or drop them"
        )
    if same_file(config.rejects_path, config.output):
        raise TripleGenError("--rejects must differ from -o/--output")
    refuse_folder(config.output, "-o")
    refuse_folder(config.rejects_path, "--rejects")
    if config.blind_model is not None:  # refused now, not after a vLLM engine has loaded
        check_model_folder(config.blind_model)
    refuse_overwriting_inputs({"-o": config.output, "--rejects": config.rejects_path, "the card": config.card_path},
                              [config.input], read_folders=True)


def _prompt_provenance(template) -> dict | None:
    if template is None:
        return None
    return {"prompt_name": template.name, "prompt_version": template.version, "prompt_hash": template.hash}


def _absent_setup(config: GenerateConfig, source: CaptionSource):
    """The `absent` template and the vocabulary of object labels (the whole input, any shard)."""
    if not config.absent_objects:
        for name, value in (("--cooccurrence", config.cooccurrence), ("--object-synonyms", config.object_synonyms)):
            if value is not None:
                raise TripleGenError(f"{name} is about the objects of absent-object rows; add --absent-objects K")
        return None, None
    template = load_task_template(config.absent_prompt, "absent", "--absent-prompt")
    return template, read_vocabulary(source, config.objects_col, config.cooccurrence, config.object_synonyms)


def _scan(source: CaptionSource, config: GenerateConfig) -> int:
    """Count the rows this run will handle, and refuse duplicate ids (a cheap pass over the ids only,
    in bounded memory: the ids' hashes spill beside the output, triplegen.idcheck)."""
    from triplegen.idcheck import DuplicateIds

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


def _sampling(template, config: GenerateConfig) -> dict:
    sampling = template.sampling.model_dump()
    if config.temperature is not None:
        sampling["temperature"] = config.temperature
    if config.max_tokens is not None:
        sampling["max_tokens"] = config.max_tokens
    return sampling


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
