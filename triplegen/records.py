"""The typed records that travel between the steps of a run: what a chunk produced, what a run did.

A `ChunkSummary` is written as a finished chunk's completion marker and read back by the progress
bar, a resumed run and the run's totals; `RunMetadata` is those totals with the run's settings,
stored as JSON in the output's Parquet metadata (key `triplegen`) and rendered into the card.
"""

from __future__ import annotations

from collections import Counter

from pydantic import BaseModel, ConfigDict, Field

COUNTED = ("rows", "accepted", "rejected", "generated", "judged", "retries", "absent_planned", "absent_accepted")


class ChunkSummary(BaseModel):
    """What one finished chunk produced (its completion marker)."""

    model_config = ConfigDict(extra="ignore")

    chunk: int
    rows: int  # input rows of the chunk
    accepted: int
    rejected: int
    absent_planned: int = 0
    absent_accepted: int = 0
    reject_reasons: dict[str, int] = Field(default_factory=dict)
    check_failures: dict[str, int] = Field(default_factory=dict)  # every judged output's failing checks
    judged: int = 0  # outputs judged (all attempts)
    generated: int = 0  # unique captions sent to the backend
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    backend: str = ""
    model: str = ""
    input_digest: str | None = None  # of the chunk's input rows: a resumed run refuses a changed input


class RunCounts(BaseModel):
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
    tokens: dict[str, int] = Field(default_factory=lambda: {"prompt": 0, "completion": 0})
    reject_reasons: dict[str, int] = Field(default_factory=dict)
    check_failures: dict[str, int] = Field(default_factory=dict)

    def add(self, summaries: list[ChunkSummary]) -> "RunMetadata":
        """These totals plus the chunks' (a new record)."""
        counts = self.counts.model_dump()
        reasons, failures = Counter(self.reject_reasons), Counter(self.check_failures)
        tokens = dict(self.tokens)
        for summary in summaries:
            for key in COUNTED:
                counts[key] += getattr(summary, key)
            reasons.update(summary.reject_reasons)
            failures.update(summary.check_failures)
            tokens["prompt"] += summary.prompt_tokens
            tokens["completion"] += summary.completion_tokens
        return self.model_copy(update={"counts": RunCounts(**counts), "tokens": tokens,
                                       "reject_reasons": dict(reasons), "check_failures": dict(failures)})

    def json_dict(self) -> dict:
        return self.model_dump(mode="json")
