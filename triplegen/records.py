"""The typed records that travel between the steps of a run: what a chunk produced, what a run did.

A `ChunkSummary` is written as a finished chunk's completion marker and read back by the progress
bar, a resumed run and the run's totals; `RunMetadata` is those totals with the run's settings,
stored as JSON in the output's Parquet metadata (key `triplegen`) and rendered into the card.
"""

from __future__ import annotations

from collections import Counter

from pydantic import BaseModel, ConfigDict, Field


class BlindCounts(BaseModel):
    """What the blind check (`--blind-model`, triplegen.blind) made of the rows of one kind."""

    scored: int = 0  # rows it scored (those the checks accepted)
    prefers_true: int = 0  # of those, rows where it scores the caption above the negation
    detectable: int = 0  # rejected as blind_detectable
    disfluent: int = 0  # rejected as blind_disfluent
    kept: int = 0  # scored rows written to the triples
    kept_prefers_true: int = 0  # of those, rows where it prefers the caption

    def count(self, prefers_true: bool, codes: tuple[str, ...], kept: bool) -> None:
        self.scored += 1
        self.prefers_true += prefers_true
        self.detectable += "blind_detectable" in codes
        self.disfluent += "blind_disfluent" in codes
        self.kept += kept
        self.kept_prefers_true += kept and prefers_true

    def __add__(self, other: "BlindCounts") -> "BlindCounts":
        return BlindCounts(**{name: getattr(self, name) + getattr(other, name) for name in BlindCounts.model_fields})


def add_blind(total: dict[str, BlindCounts], more: dict[str, BlindCounts]) -> dict[str, BlindCounts]:
    """Per-kind blind counts summed (a new dict)."""
    return {kind: total.get(kind, BlindCounts()) + more.get(kind, BlindCounts()) for kind in {*total, *more}}


class ChunkSummary(BaseModel):
    """What one finished chunk produced (its completion marker)."""

    model_config = ConfigDict(extra="ignore")

    chunk: int
    rows: int  # input rows of the chunk
    accepted: int
    rejected: int
    absent_planned: int = 0
    absent_accepted: int = 0
    absent_notes: dict[str, int] = Field(default_factory=dict)  # absent rows not written as drawn, by reason
    reject_reasons: dict[str, int] = Field(default_factory=dict)
    check_failures: dict[str, int] = Field(default_factory=dict)  # every judged output's failing checks
    judged: int = 0  # outputs judged (all attempts)
    generated: int = 0  # unique captions sent to the backend
    retries: int = 0
    constraints: dict[str, int] = Field(default_factory=dict)  # output constraint kind -> captions
    judge: dict[str, int] = Field(default_factory=dict)  # the LLM judge's calls, tokens and rejections
    blind: dict[str, BlindCounts] = Field(default_factory=dict)  # per kind (caption, absent-*): the blind check
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens served from the engine's prefix cache
    cache_reports: int = 0  # outputs whose backend reported its cached tokens
    backend: str = ""
    model: str = ""
    input_digest: str | None = None  # of the chunk's input rows: a resumed run refuses a changed input


class RunCounts(BaseModel):
    """A run's totals of the ChunkSummary fields of the same names."""

    rows: int = 0
    accepted: int = 0
    rejected: int = 0
    generated: int = 0
    judged: int = 0
    retries: int = 0
    absent_planned: int = 0
    absent_accepted: int = 0


class RunMetadata(BaseModel):
    """A finished run: its config and provenance, and the totals of its chunks."""

    model_config = ConfigDict(extra="allow")  # files written by other versions may carry more

    triplegen_version: str
    config: dict
    backend: str
    model: str
    prompt: dict
    absent_prompt: dict | None = None
    attempts_allowed: int
    counts: RunCounts = Field(default_factory=RunCounts)
    tokens: dict[str, int] = Field(
        default_factory=lambda: {"prompt": 0, "completion": 0, "cached": 0, "cache_reports": 0})
    reject_reasons: dict[str, int] = Field(default_factory=dict)
    check_failures: dict[str, int] = Field(default_factory=dict)
    constraint: dict | None = None  # which output constraint the run used (triplegen.constraints)
    constraints: dict[str, int] = Field(default_factory=dict)
    absent_notes: dict[str, int] = Field(default_factory=dict)
    prefix_caching: bool | None = None
    judge: dict | None = None  # the optional LLM judge's settings (triplegen.llm_judge)
    judge_counts: dict[str, int] = Field(default_factory=dict)
    blind: dict | None = None  # the optional blind check's settings (triplegen.blind)
    blind_counts: dict[str, BlindCounts] = Field(default_factory=dict)

    def add(self, summaries: list[ChunkSummary]) -> "RunMetadata":
        """These totals plus the chunks' (a new record)."""
        counts = self.counts.model_dump()
        reasons, failures = Counter(self.reject_reasons), Counter(self.check_failures)
        constraints, judge = Counter(self.constraints), Counter(self.judge_counts)
        notes = Counter(self.absent_notes)
        tokens = Counter(self.tokens)
        blind = self.blind_counts
        for summary in summaries:
            for key in RunCounts.model_fields:  # each count is also a ChunkSummary field
                counts[key] += getattr(summary, key)
            reasons.update(summary.reject_reasons)
            failures.update(summary.check_failures)
            constraints.update(summary.constraints)
            notes.update(summary.absent_notes)
            judge.update(summary.judge)
            blind = add_blind(blind, summary.blind)
            tokens.update(prompt=summary.prompt_tokens, completion=summary.completion_tokens,
                          cached=summary.cached_tokens, cache_reports=summary.cache_reports)
        return self.model_copy(update={"counts": RunCounts(**counts), "tokens": dict(tokens),
                                       "reject_reasons": dict(reasons), "check_failures": dict(failures),
                                       "constraints": dict(constraints), "judge_counts": dict(judge), "absent_notes": dict(notes),
                                       "blind_counts": blind})

    def json_dict(self) -> dict:
        return self.model_dump(mode="json")
