"""A run's settings as its passes need them: the input, the typed generation plan, its files.

`Job.prepare` turns a `GenerateConfig` into what the steps run on (`GenerationPlan`), once; a run,
a rerun's completeness check (triplegen.orchestration.finished) and a retry of backend errors all read the same
job. It also knows where the chunks go (`executor`: this process or Ray workers) and what a pass
writes into its rows and run metadata (provenance).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rich.console import Console

from triplegen import __version__
from triplegen.backends import Backend
from triplegen.checks.blind import blind_settings
from triplegen.checks.lexical import CheckConfig
from triplegen.config import GenerateConfig
from triplegen.checks.constraints import choose_constraint
from triplegen.errors import BackendUnavailable, TripleGenError
from triplegen.orchestration.executors.local import chunk_executor
from triplegen.orchestration.fingerprint import run_fingerprint
from triplegen.io.layout import OutputFiles
from triplegen.checks.llm_judge import judge_reasons, load_judge_template
from triplegen.objects import read_vocabulary
from triplegen.orchestration.parts import WriteParts
from triplegen.orchestration.pipeline import ReadChunks, SkipFinished, run_steps
from triplegen.orchestration.plan import GenerationPlan
from triplegen.orchestration.progress import RunProgress
from triplegen.io.readers import CaptionSource
from triplegen.orchestration.records import RunMetadata
from triplegen.orchestration.resume import WorkFolder
from triplegen.io.schema import triple_schema
from triplegen.templates import load_task_template


@dataclass
class Job:
    """One run: its config, prompt template, input, generation plan and files (decided once)."""

    config: GenerateConfig
    template: Any
    source: CaptionSource
    plan: GenerationPlan
    files: OutputFiles
    constraint: dict | None = None  # the card's record of the polarity constraint, once decided

    @classmethod
    def prepare(cls, config: GenerateConfig, template, source: CaptionSource, files: OutputFiles) -> "Job":
        absent_template, vocabulary = _absent_setup(config, source)
        plan = GenerationPlan(
            template=template, sampling=_sampling(template, config),
            checks=CheckConfig(lexicon=vocabulary.lexicon if vocabulary is not None else None), seed=config.seed,
            max_attempts=config.max_attempts, semantic_check=config.semantic_check, absent_template=absent_template,
            vocabulary=vocabulary, absent_sampling=_sampling(absent_template, config) if absent_template else None,
            absent_objects=config.absent_objects, objects_col=config.objects_col,
            retry_temperature=config.retry_temperature, judge_template=load_judge_template(config),
            blind_model=config.blind_model)
        return cls(config, template, source, plan, files)

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
        rows' schemas; a Ray worker asks its own backend when it starts (triplegen.orchestration.executors).
        """
        if self.config.executor == "ray":
            # Ray is an extra; a local run never imports it
            from triplegen.orchestration.executors.ray_pool import RayWorkers

            self._constrain(None, console)
            return RayWorkers(self.config, self.plan, console)
        return chunk_executor(self.plan, self.config.backend_options(), backend,
                              on_backend=lambda made: self._constrain(made, console))

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
            write = WriteParts(work, self.schema, provenance, prompt_provenance(self.plan.absent_template))
            try:
                for summary in write.run(generated):
                    progress.advance(summary)
            except BackendUnavailable as exc:
                done = len(work.done_chunks())  # none: the work folder goes too (triplegen.orchestration.run)
                kept = f"{done} chunk(s) are finished and kept in {work.path}" if done else "no chunk was finished"
                raise BackendUnavailable(f"{exc}; stopped: {kept}, run the same command again once it is "
                                         "back") from None
            return progress.rows_per_s()

    def provenance(self, backend: Backend | None) -> dict:
        name = self.config.resolved_backend()
        return {
            "backend": backend.name if backend else name,
            "model": backend.model if backend else (self.config.model or "rules"),
            **prompt_provenance(self.template),
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
            attempts_allowed=self.plan.attempts(provenance["deterministic"]),
            constraint=self.constraint, prefix_caching=provenance.get("prefix_caching"),
            judge=None if judge is None else {"model": config.judge_model, "base_url": config.judge_base_url,
                                              "prompt": prompt_provenance(judge), "reasons": judge_reasons(judge)},
            blind=None if config.blind_model is None else blind_settings(config.blind_model),
        )


def prompt_provenance(template) -> dict | None:
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


def _sampling(template, config: GenerateConfig) -> dict:
    sampling = template.sampling.model_dump()
    if config.temperature is not None:
        sampling["temperature"] = config.temperature
    if config.max_tokens is not None:
        sampling["max_tokens"] = config.max_tokens
    return sampling
