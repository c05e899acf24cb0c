"""The last step of the generate pipeline: a chunk's accepted rows and rejects written as part files.

Each part appears complete or not at all (`ParquetSink`), and the chunk's completion marker (its
`ChunkSummary`) is written only after both parts, so a killed run repeats at most the chunk it was
writing. Rows keep the input order; each row's absent-object rows follow it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pyarrow as pa

from triplegen.checks.blind import tally
from triplegen.objects import derived_id
from triplegen.orchestration.pipeline import Chunk, Entry, Step
from triplegen.orchestration.records import ChunkSummary, Tally
from triplegen.orchestration.resume import WorkFolder, input_digest
from triplegen.io.schema import reject_schema
from triplegen.io.writer import ParquetSink


class WriteParts(Step):
    """Write a chunk's accepted rows and rejects as part files, then its completion marker.

    Rows keep the input order; each row's absent-object rows follow it. `absent_prompt` is the
    provenance (prompt_name, prompt_version, prompt_hash) written into absent-object rows.
    """

    name = "write"

    def __init__(self, work: WorkFolder, schema: pa.Schema, provenance: dict, absent_prompt: dict | None = None):
        self.work, self.schema, self.provenance, self.absent_prompt = work, schema, provenance, absent_prompt

    def run(self, chunks):
        for chunk in chunks:
            accepted: list[Entry] = []
            rejected: list[Entry] = []
            for caption, rows in chunk.groups.items():
                outcome = chunk.outcomes[caption]
                for n, position in enumerate(rows):
                    # fanned-out copies record zero tokens: the columns sum to what was spent
                    copy = outcome if n == 0 else replace(outcome, prompt_tokens=0, completion_tokens=0, cached_tokens=0)
                    (accepted if outcome.reason is None else rejected).append((position, copy, None))
            for row in chunk.absent:
                (accepted if row.outcome.reason is None else rejected).append((row.position, row.outcome, row.spec))
            order = lambda entry: (entry[0], entry[2].index if entry[2] else 0)  # noqa: E731
            accepted.sort(key=order)
            rejected.sort(key=order)
            with ParquetSink(self.work.part(chunk.index), self.schema) as sink:
                sink.write(self._accepted_table(chunk.rows, accepted))
            with ParquetSink(self.work.rejects_part(chunk.index), reject_schema()) as sink:
                sink.write(self._rejects_table(chunk.rows, rejected))
            summary = self._summary(chunk, accepted, rejected)
            self.work.mark_done(chunk.index, summary)
            yield summary

    def _identity(self, rows: pa.Table, entries: list[Entry]) -> dict[str, list]:
        """id, caption, kind, source_id and absent_object of each entry (an absent row's are its own)."""
        ids, captions = rows.column("id").to_pylist(), rows.column("caption").to_pylist()
        return {
            "id": [ids[p] if spec is None else derived_id(ids[p], spec.index) for p, _, spec in entries],
            "caption": [captions[p] if spec is None else (o.caption or captions[p]) for p, o, spec in entries],
            "kind": ["caption" if spec is None else spec.kind for _, _, spec in entries],
            "source_id": [None if spec is None else ids[p] for p, _, spec in entries],
            "absent_object": [None if spec is None else spec.absent for _, _, spec in entries],
        }

    def _accepted_table(self, rows: pa.Table, accepted: list[Entry]) -> pa.Table:
        taken = rows.take(pa.array([p for p, _, _ in accepted], pa.int64()))
        outcomes = [o for _, o, _ in accepted]
        n = len(outcomes)
        prompts = [self.provenance if spec is None else self.absent_prompt for _, _, spec in accepted]
        generated = {
            **self._identity(rows, accepted),
            "paraphrase": [o.paraphrase for o in outcomes],
            "negation": [o.negation for o in outcomes],
            "backend": [self.provenance["backend"]] * n,
            "model": [self.provenance["model"]] * n,
            **{key: [prompt[key] for prompt in prompts] for key in ("prompt_name", "prompt_version", "prompt_hash")},
            "seed": [o.seed for o in outcomes],
            "attempts": [o.attempts for o in outcomes],
            "finish_reason": [o.finish_reason for o in outcomes],
            "prompt_tokens": [o.prompt_tokens for o in outcomes],
            "completion_tokens": [o.completion_tokens for o in outcomes],
        }
        columns = [
            taken.column(f.name) if f.name in taken.column_names and f.name not in generated
            else pa.array(generated[f.name], f.type)
            for f in self.schema
        ]
        return pa.Table.from_arrays(columns, schema=self.schema)

    def _rejects_table(self, rows: pa.Table, rejected: list[Entry]) -> pa.Table:
        identity = self._identity(rows, rejected)
        captions = rows.column("caption").to_pylist()
        return pa.Table.from_pylist(
            [
                {"id": row_id, "caption": captions[p], "raw_output": o.raw_output, "reason": o.reason,
                 "detail": o.detail, "kind": kind, "attempts": o.attempts, "backend": self.provenance["backend"],
                 "model": self.provenance["model"]}
                for (p, o, _), row_id, kind in zip(rejected, identity["id"], identity["kind"])
            ],
            schema=reject_schema(),
        )

    def _summary(self, chunk: Chunk, accepted: list[Entry], rejected: list[Entry]) -> ChunkSummary:
        """The chunk's marker: the steps' tally plus what its written rows count."""
        every = accepted + rejected
        written = Tally(
            rows=chunk.rows.num_rows,
            accepted=len(accepted),
            rejected=len(rejected),
            absent_planned=len(chunk.absent),
            absent_accepted=sum(spec is not None for _, _, spec in accepted),
            reject_reasons=Counter(o.reason for _, o, _ in rejected),
            blind=tally(accepted, rejected),
            prompt_tokens=sum(o.prompt_tokens for _, o, _ in every),
            completion_tokens=sum(o.completion_tokens for _, o, _ in every),
            cached_tokens=sum(o.cached_tokens or 0 for _, o, _ in every),
        )
        return ChunkSummary(chunk=chunk.index, **dict(chunk.tally + written), backend=self.provenance["backend"],
                            model=self.provenance["model"], input_digest=input_digest(chunk.rows))
