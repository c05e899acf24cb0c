"""The generate pipeline as small steps over chunks: read, dedupe, render, generate (call + check), write
(the last step, `WriteParts`, is in triplegen.orchestration.parts).

As in datatrove, a step is a small object whose `run(chunks)` is a generator; the pipeline is a list
of steps chained over an iterator of chunks. A chunk is a fixed run of `chunk_size` input rows, the
unit that is written and checkpointed, so a chunk is also what a killed run repeats.

Exact duplicate captions are generated once per chunk and fanned out to every row that has them;
across chunks, a bounded cache (`FANOUT_CACHE` captions) reuses recent outcomes, so memory stays
flat however large the input. Rows served from that fan-out record zero tokens, so the token columns
sum to what was really spent.

With `--absent-objects K`, the `AbsentRows` step adds up to K rows per input row whose caption
denies an object the image lacks (triplegen.rules.absent); they are planned per row id, never deduped,
and written right after their source row with ids derived from it.
"""

from __future__ import annotations

import hashlib
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace

import pyarrow as pa

from triplegen.backends.base import Backend, Request
from triplegen.checks.lexical import CheckConfig, check_caption
from triplegen.checks.constraints import RowSchema
from triplegen.checks.judge import Judge, Outcome
from triplegen.rules.absent import AbsentSpec, plan_absent
from triplegen.objects import ObjectVocabulary, derived_id, parse_labels
from triplegen.tasks import row_variables
from triplegen.io.readers import CaptionSource
from triplegen.orchestration.records import Tally
from triplegen.orchestration.resume import WorkFolder

FANOUT_CACHE = 20_000


def row_seed(run_seed: int, key: str, attempt: int) -> int:
    """A per-attempt seed of a caption (or an absent-object row's id): reruns reproduce it, retries get
    a fresh one (31 bits, any engine). Keyed by the caption text, not by the row that first carries it,
    so a caption met again in a later chunk, on another worker or after a resume, gets the answer the
    fan-out cache would have given it."""
    digest = hashlib.blake2b(f"{run_seed}\x1f{key}\x1f{attempt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & 0x7FFFFFFF


def shard_of(row_id: str, count: int) -> int:
    """The shard an id belongs to: stable across machines and runs (not Python's salted hash())."""
    digest = hashlib.blake2b(row_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % count


@dataclass
class AbsentRow:
    """One planned absent-object row: its source row's position in the chunk, the plan, the result."""

    position: int
    spec: AbsentSpec
    outcome: Outcome | None = None


@dataclass
class Chunk:
    index: int
    rows: pa.Table  # normalised input rows: id, caption, [image], carried columns
    groups: dict[str, list[int]] = field(default_factory=dict)  # caption -> row positions
    messages: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # caption -> rendered chat
    outcomes: dict[str, Outcome] = field(default_factory=dict)  # caption -> outcome
    tally: Tally = field(default_factory=Tally)  # the steps' counters; the write step adds the rows'
    absent: list[AbsentRow] = field(default_factory=list)
    wanted: set[str] | None = None  # the ids (of rows and absent-object rows) to produce; None: all

    def wants(self, row_id: str) -> bool:
        return self.wanted is None or row_id in self.wanted


class Step:
    name = "step"

    def run(self, chunks: Iterable[Chunk]) -> Iterator[Chunk]:
        raise NotImplementedError


class ReadChunks:
    """Source rows, restricted to this shard and the limit, cut into fixed chunks."""

    def __init__(self, source: CaptionSource, chunk_size: int, shard=None, limit: int | None = None):
        self.source, self.chunk_size, self.shard, self.limit = source, chunk_size, shard, limit

    def batches(self) -> Iterator[pa.RecordBatch]:
        remaining = self.limit
        for batch in self.source.batches():
            if self.shard is not None:
                mask = [shard_of(i, self.shard.count) == self.shard.index for i in batch.column(0).to_pylist()]
                batch = batch.filter(pa.array(mask, pa.bool_()))
            if remaining is not None:
                batch = batch.slice(0, remaining)
                remaining -= batch.num_rows
            if batch.num_rows:
                yield batch
            if remaining == 0:
                return

    def __iter__(self) -> Iterator[Chunk]:
        pending: list[pa.RecordBatch] = []
        size, index = 0, 0
        for batch in self.batches():
            pending.append(batch)
            size += batch.num_rows
            while size >= self.chunk_size:
                table = pa.Table.from_batches(pending, self.source.schema)
                yield Chunk(index, table.slice(0, self.chunk_size).combine_chunks())
                rest = table.slice(self.chunk_size)
                pending, size, index = rest.to_batches(), rest.num_rows, index + 1
        if size:
            yield Chunk(index, pa.Table.from_batches(pending, self.source.schema).combine_chunks())


class SkipFinished(Step):
    """Drop chunks a previous run already wrote; `on_skip` reports them (for the progress bar)."""

    name = "skip finished"

    def __init__(self, work: WorkFolder, on_skip: Callable[[int], None]):
        self.work, self.on_skip = work, on_skip

    def run(self, chunks):
        for chunk in chunks:
            if self.work.is_done(chunk.index):
                self.on_skip(chunk.index)
            else:
                yield chunk


class Dedupe(Step):
    """Group rows by exact caption; unusable captions are rejected here, never sent to the backend."""

    name = "dedupe"

    def __init__(self, checks: CheckConfig, cache_size: int = FANOUT_CACHE):
        self.checks = checks
        self.cache: OrderedDict[str, Outcome] = OrderedDict()
        self.cache_size = cache_size

    def run(self, chunks):
        for chunk in chunks:
            ids = chunk.rows.column("id").to_pylist()
            for position, caption in enumerate(chunk.rows.column("caption").to_pylist()):
                if chunk.wants(ids[position]):
                    chunk.groups.setdefault(caption, []).append(position)
            for caption in chunk.groups:
                reason = check_caption(caption, self.checks)
                if reason is not None:
                    chunk.outcomes[caption] = Outcome(reason=reason, codes=(reason,), detail=_caption_detail(caption))
                elif caption in self.cache:
                    chunk.outcomes[caption] = replace(self.cache[caption], prompt_tokens=0, completion_tokens=0,
                                                      cached_tokens=0)
            yield chunk
            self._remember(chunk)

    def _remember(self, chunk: Chunk) -> None:
        for caption, outcome in chunk.outcomes.items():
            if outcome.attempts:
                self.cache[caption] = outcome
                self.cache.move_to_end(caption)
        while len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)


def _caption_detail(caption: str | None) -> str:
    if caption is None:
        return "caption is null"
    if not caption.strip():
        return "caption is empty or whitespace"
    return f"caption has {len(caption)} characters"


class Render(Step):
    """Render each caption still to be generated into chat messages (once: retries reuse them).

    Left out of the pipeline for a backend with `needs_messages = False` (the rules generator reads
    only the caption): rendering cost more than a tenth of a rules run.
    """

    name = "render"

    def __init__(self, template):
        self.template = template

    def run(self, chunks):
        for chunk in chunks:
            for caption in chunk.groups:
                if caption not in chunk.outcomes:
                    chunk.messages[caption] = self.template.render(caption)
            yield chunk


class Generate(Step):
    """Call the backend and judge the answers; failed rows retry with a fresh per-row seed.

    `max_attempts` is the plan's for this backend (`GenerationPlan.attempts`). Retries sample at
    `retry_temperature` at least: at a low temperature a model repeats its mistake with a fresh seed
    too (SmolLM2-135M on 160 SugarCrepe++ captions: of the 33 it retried, 21 ended accepted with
    retries at 1.0, 9 at the template's 0.2; docs/benchmarks.md).
    `shape`, when given, builds each caption's own output schema (`triplegen.checks.constraints.row_schema`).
    """

    name = "generate"

    def __init__(self, backend: Backend, judge: Judge, sampling: dict, seed: int, max_attempts: int,
                 shape: Callable[[str], RowSchema] | None = None, retry_temperature: float = 0.0):
        self.backend, self.judge, self.sampling, self.seed, self.shape = backend, judge, sampling, seed, shape
        self.max_attempts = max_attempts
        self.retry_sampling = {**sampling, "temperature": max(sampling.get("temperature", 0.0), retry_temperature)}

    def run(self, chunks):
        for chunk in chunks:
            ids = chunk.rows.column("id").to_pylist()
            keys = {caption: ids[rows[0]] for caption, rows in chunk.groups.items()}
            todo = [caption for caption in chunk.groups if caption not in chunk.outcomes]
            schemas = {caption: self._schema(chunk, caption) for caption in todo}
            pending = {
                caption: lambda attempt, c=caption: Request(
                    key=keys[c], caption=c, messages=chunk.messages.get(c, []),
                    seed=row_seed(self.seed, c, attempt), attempt=attempt, schema=schemas[c],
                    rows=len(chunk.groups[c]) if attempt == 1 else 0)  # the progress counts them once
                for caption in todo
            }
            chunk.tally.generated = len(pending)
            chunk.outcomes.update(self.call(chunk, pending))
            yield chunk

    def _schema(self, chunk: Chunk, caption: str) -> dict | None:
        if self.shape is None:
            return None
        shaped = self.shape(caption)
        chunk.tally.constraints.update((f"paraphrase: {shaped.paraphrase}", f"negation: {shaped.negation}"))
        return shaped.schema

    def call(self, chunk: Chunk, pending: dict[str, Callable[[int], Request]]) -> dict[str, Outcome]:
        """Outcomes of the pending keys; each key's request is rebuilt per attempt (a fresh seed)."""
        outcomes: dict[str, Outcome] = {}
        spent: dict[str, tuple[int, int, int]] = {}
        for attempt in range(1, self.max_attempts + 1):
            if not pending:
                break
            if attempt > 1:
                chunk.tally.retries += len(pending)
            requests = [build(attempt) for build in pending.values()]
            completions = self.backend.generate(requests, dict(self.sampling if attempt == 1 else self.retry_sampling))
            if len(completions) != len(requests):  # a backend bug; never let rows vanish
                raise RuntimeError(f"backend {self.backend.name} returned {len(completions)} completions "
                                   f"for {len(requests)} requests")
            retry = {}
            for key, outcome in zip(pending, self.judge(requests, completions)):
                before = spent.get(key, (0, 0, 0))
                chunk.tally.cache_reports += outcome.cached_tokens is not None
                spent[key] = (before[0] + outcome.prompt_tokens, before[1] + outcome.completion_tokens,
                              before[2] + (outcome.cached_tokens or 0))
                outcome.prompt_tokens, outcome.completion_tokens, outcome.cached_tokens = spent[key]
                outcome.attempts = attempt
                chunk.tally.judged += 1
                chunk.tally.check_failures.update(outcome.codes)
                if outcome.reason is None or attempt == self.max_attempts:
                    outcomes[key] = outcome
                else:
                    retry[key] = pending[key]
            pending = retry
        return outcomes


class AbsentRows(Generate):
    """Plan up to `count` absent-object rows per usable input row, then generate and judge them.

    The plan (which object is absent, which kind of negation, how it is worded) is seeded per row id,
    so it is the same whatever the chunking, the shard or a resume. `template` is the `absent` prompt.
    """

    name = "absent rows"

    def __init__(self, backend: Backend, judge: Judge, sampling: dict, seed: int, max_attempts: int, template,
                 vocabulary: ObjectVocabulary, count: int, objects_col: str, retry_temperature: float = 0.0):
        super().__init__(backend, judge, sampling, seed, max_attempts, retry_temperature=retry_temperature)
        self.template, self.vocabulary, self.count, self.objects_col = template, vocabulary, count, objects_col
        self.messages = getattr(backend, "needs_messages", True)

    def run(self, chunks):
        for chunk in chunks:
            ids = chunk.rows.column("id").to_pylist()
            captions = chunk.rows.column("caption").to_pylist()
            labels = chunk.rows.column(self.objects_col).to_pylist()
            pending = {}
            for position, (row_id, caption) in enumerate(zip(ids, captions)):
                if check_caption(caption) is not None:
                    continue
                notes = Counter()
                specs = plan_absent(row_id, caption, parse_labels(labels[position]), self.count, self.vocabulary,
                                    self.seed, notes)
                if chunk.wants(row_id) or any(chunk.wants(derived_id(row_id, s.index)) for s in specs):
                    chunk.tally.absent_notes.update(notes)
                for spec in specs:
                    key = derived_id(row_id, spec.index)
                    if not chunk.wants(key):
                        continue
                    chunk.absent.append(AbsentRow(position, spec))
                    messages = self.template.render(caption, row_variables(spec)) if self.messages else []
                    pending[key] = lambda attempt, k=key, c=caption, m=messages, a=spec: Request(
                        key=k, caption=c, messages=m, seed=row_seed(self.seed, k, attempt), attempt=attempt,
                        absent=a, schema=self.template.output_schema)
            outcomes = self.call(chunk, pending)
            for row, key in zip(chunk.absent, pending):
                row.outcome = outcomes[key]
            yield chunk


Entry = tuple[int, Outcome, "AbsentSpec | None"]  # (source row position, outcome, plan of an absent row)


def run_steps(chunks: Iterable[Chunk], steps: list[Step]) -> Iterator:
    """Chain the steps' generators; the last step yields one summary per finished chunk."""
    data: Iterable = chunks
    for step in steps:
        data = step.run(data)
    return iter(data)
