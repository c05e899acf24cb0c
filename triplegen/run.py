"""`triplegen.generate(config)`: one resumable run from captions to a checked triples file.

The order matters for resume: the input is scanned first (row count, duplicate ids), the work folder
is opened against the run's fingerprint, the pipeline writes finished chunks, and only then are the
parts joined into the final files, the card written and the work folder removed.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from triplegen import __version__
from triplegen.backends import Backend, make_backend
from triplegen.checks import CheckConfig
from triplegen.config import GenerateConfig
from triplegen.errors import TripleGenError
from triplegen.hubcard import render_dataset_card
from triplegen.layout import CARD_NAME, card_file
from triplegen.merge import concat_parquet
from triplegen.objects import ABSENT_SUFFIX, ObjectVocabulary, parse_labels
from triplegen.pipeline import ReadChunks, SkipFinished, WriteParts, run_steps, shard_of
from triplegen.plan import GenerationPlan
from triplegen.progress import RunProgress, stderr_console
from triplegen.templates import load_template
from triplegen.readers import CaptionSource, Columns
from triplegen.resume import WorkFolder
from triplegen.schema import reject_schema, triple_schema
from triplegen.writer import write_text_atomic


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
    schema = triple_schema(source.image_type, source.extra_fields)
    _check_paths(config, source)
    planned = _scan(source, config)
    sampling = _sampling(template, config)
    absent_template, vocabulary = _absent_setup(config, source)

    card = card_file(config.output)
    plan = GenerationPlan(
        template=template, sampling=sampling, checks=CheckConfig(), seed=config.seed, max_attempts=config.max_attempts,
        semantic_check=config.semantic_check, absent_template=absent_template, vocabulary=vocabulary,
        absent_sampling=_sampling(absent_template, config) if absent_template else None,
        absent_objects=config.absent_objects, objects_col=config.objects_col)

    work = WorkFolder(config.output)
    fingerprint = _fingerprint(config, template, source, sampling, absent_template)
    resumed = work.open(fingerprint, config.overwrite, (config.rejects_path,))
    owned = backend is None
    workers = None
    try:
        chunks_total = -(-planned // config.chunk_size)
        if backend is None and resumed < chunks_total:
            workers = _ray_workers(config, plan, console) if config.executor == "ray" else None
            backend = workers.backend if workers else make_backend(config, template.output_schema)
        if backend is not None:
            _announce(config, backend, console, resumed)
        if card.name != CARD_NAME and not config.quiet:
            console.print(f"{card.with_name(CARD_NAME)} is not the card of {config.output.name}: the card goes to {card}.")
        provenance = {
            "backend": backend.name if backend else config.resolved_backend(),
            "model": backend.model if backend else (config.model or "rules"),
            **_prompt_provenance(template),
            "deterministic": backend.deterministic if backend else config.resolved_backend() == "rules",
        }
        with RunProgress(planned, config.quiet, getattr(backend, "stats", None), console) as progress:
            skip = SkipFinished(work, lambda index: progress.advance(_marker(work, index), resumed=True))
            chunks = skip.run(ReadChunks(source, config.chunk_size, config.shard, config.limit))
            generated = workers.run(chunks) if workers else run_steps(chunks, plan.steps(backend))
            write = WriteParts(work, schema, provenance, _prompt_provenance(absent_template))
            for summary in write.run(generated):
                progress.advance(summary)
            rows_per_s = progress.rows_per_s()
    finally:
        if workers is not None:
            workers.close()
        elif owned and backend is not None:
            backend.close()

    summaries = work.summaries()
    run = _run_metadata(config, template, provenance, summaries, absent_template)
    if run["counts"]["rows"] != planned or len(summaries) != chunks_total:
        raise RuntimeError(f"chunks cover {run['counts']['rows']} rows, expected {planned}")
    chunks = work.done_chunks()
    concat_parquet([work.part(i) for i in chunks], config.output, schema, run)
    concat_parquet([work.rejects_part(i) for i in chunks], config.rejects_path, reject_schema(), run)
    write_text_atomic(card, render_dataset_card(run, config.output, config.rejects_path, card))
    work.remove()
    counts = run["counts"]
    return RunSummary(
        output=config.output, rejects=config.rejects_path, card=card, rows=counts["rows"],
        accepted=counts["accepted"], rejected=counts["rejected"], backend=provenance["backend"],
        model=provenance["model"], resumed_chunks=resumed, seconds=time.monotonic() - started,
        rows_per_s=rows_per_s, reject_reasons=run["reject_reasons"], run=run,
    )


def _check_paths(config: GenerateConfig, source: CaptionSource) -> None:
    clashes = sorted({f.name for f in source.extra_fields} & set(triple_schema(source.image_type).names))
    if clashes:
        raise TripleGenError(
            f"input columns {', '.join(clashes)} clash with the output's own columns; rename or drop them"
        )
    if config.rejects_path.resolve() == config.output.resolve():
        raise TripleGenError("--rejects must differ from -o/--output")
    if config.output.exists() and config.output.is_dir():
        raise TripleGenError(f"{config.output} is a folder; give -o a dataset folder or a file ending in .parquet")
    if config.output.parent.is_file():
        raise TripleGenError(f"-o {config.output.parent} is a file; give -o a dataset folder or a file ending in .parquet")


def _prompt_provenance(template) -> dict | None:
    if template is None:
        return None
    return {"prompt_name": template.name, "prompt_version": template.version, "prompt_hash": template.hash}


def _absent_setup(config: GenerateConfig, source: CaptionSource):
    """The `absent` template and the vocabulary of object labels (the whole input, any shard)."""
    if not config.absent_objects:
        return None, None
    template = load_template(config.absent_prompt)
    if template.task != "absent":
        raise TripleGenError(f"--absent-prompt {config.absent_prompt}: template {template.name!r} has task "
                             f"{template.task!r}; it needs task: absent (see the packaged 'absent' template)")
    names = source.raw_schema.names
    if config.objects_col not in names:
        raise TripleGenError(f"--absent-objects needs object labels per image: {source.path} has no column "
                             f"{config.objects_col!r} (--objects-col); available: {', '.join(names)}")
    vocabulary = ObjectVocabulary()
    for batch in source.raw_batches([config.objects_col]):
        for value in batch.column(0).to_pylist():
            vocabulary.add(parse_labels(value))
    if len(vocabulary) < 2:
        raise TripleGenError(f"--absent-objects needs at least two distinct object labels in column "
                             f"{config.objects_col!r}; found {len(vocabulary)}")
    return template, vocabulary.freeze()


def _scan(source: CaptionSource, config: GenerateConfig) -> int:
    """Count the rows this run will handle, and refuse duplicate ids (a cheap pass over the ids only)."""
    seen: set[str] = set()
    total = selected = 0
    for ids in source.id_batches():
        for row_id in ids:
            if config.absent_objects and ABSENT_SUFFIX in row_id:
                raise TripleGenError(f"id {row_id!r} contains {ABSENT_SUFFIX!r}, which marks the ids of "
                                     "absent-object rows; rename the ids or drop --absent-objects")
            if row_id in seen:
                hint = ("--id-col names a column with repeats" if source.columns.id
                        else "two rows have the same image and caption; drop the repeats")
                raise TripleGenError(f"duplicate id {row_id!r} in {source.path} ({hint})")
            seen.add(row_id)
            total += 1
            if config.shard is None or shard_of(row_id, config.shard.count) == config.shard.index:
                selected += 1
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


def _fingerprint(config: GenerateConfig, template, source: CaptionSource, sampling: dict, absent_template) -> dict:
    fingerprint = {
        "prompt_hash": template.hash,
        "prompt": f"{template.name} v{template.version}",
        "backend": config.resolved_backend(),
        "model": config.model,
        "seed": config.seed,
        "columns": [source.columns.caption, source.columns.image, source.columns.id],
        "input": source.fingerprint()["files"],
        "shard": str(config.shard) if config.shard else None,
        "limit": config.limit,
        "chunk_size": config.chunk_size,
        "sampling": sampling,
        "max_attempts": config.max_attempts,
        "checks": {"semantic": config.semantic_check},
    }
    if absent_template is not None:  # only then, so that older runs still resume
        fingerprint["absent"] = {"count": config.absent_objects, "objects_col": config.objects_col,
                                 "prompt_hash": absent_template.hash}
    return fingerprint


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


def _ray_workers(config: GenerateConfig, plan: GenerationPlan, console: Console):
    from triplegen.executors.ray_pool import RayWorkers  # Ray is an extra; the local run never imports it

    return RayWorkers(config, plan, console)


def _marker(work: WorkFolder, index: int) -> dict:
    return json.loads(work.marker(index).read_text(encoding="utf-8"))


def _run_metadata(config: GenerateConfig, template, provenance: dict, summaries: list[dict], absent_template) -> dict:
    def total(key: str) -> int:
        return sum(s.get(key, 0) for s in summaries)

    def merged(key: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for s in summaries:
            for code, n in s[key].items():
                counts[code] = counts.get(code, 0) + n
        return counts

    return {
        "triplegen_version": __version__,
        "config": config.model_dump(mode="json"),
        "backend": provenance["backend"],
        "model": provenance["model"],
        "prompt": {"name": template.name, "version": template.version, "hash": template.hash,
                   "system": template.system, "user": template.user},
        "absent_prompt": None if absent_template is None else {
            "name": absent_template.name, "version": absent_template.version, "hash": absent_template.hash},
        # a deterministic backend would repeat itself, so it gets one attempt
        "attempts_allowed": 1 if provenance["deterministic"] else config.max_attempts,
        "counts": {k: total(k) for k in ("rows", "accepted", "rejected", "generated", "judged", "retries",
                                          "absent_planned", "absent_accepted")},
        "tokens": {"prompt": total("prompt_tokens"), "completion": total("completion_tokens")},
        "reject_reasons": merged("reject_reasons"),
        "check_failures": merged("check_failures"),
    }
