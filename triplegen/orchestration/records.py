"""The typed records that travel between the steps of a run: what a chunk produced, what a run did.

A run's counters are declared once, in `Tally`: a chunk fills one as it goes (`Chunk.tally`), its
completion marker (`ChunkSummary`) is that tally with the chunk's identity, and the run's totals are
the sum of its chunks' tallies (`RunMetadata.tally`). `RunMetadata` is those totals with the run's
settings, stored as JSON in the output's Parquet metadata (key `triplegen`) and rendered into the
card; there the counters keep the layout that older outputs have (`Tally.stored`).
"""

from __future__ import annotations

from collections import Counter

from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator


class BlindCounts(BaseModel):
    """What the blind check (`--blind-model`, triplegen.checks.blind) made of the rows of one kind."""

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


# Where the run metadata stores each counter of a Tally (the layout of every output written so far):
# the row counts under "counts", the tokens under "tokens", the keyed counts beside them.
_COUNTS = ("rows", "accepted", "rejected", "generated", "judged", "retries", "absent_planned", "absent_accepted")
_TOKENS = {"prompt": "prompt_tokens", "completion": "completion_tokens", "cached": "cached_tokens",
           "cache_reports": "cache_reports"}
_KEYED = {"reject_reasons": "reject_reasons", "check_failures": "check_failures", "constraints": "constraints",
          "absent_notes": "absent_notes", "judge_counts": "judge"}
_BLIND = "blind_counts"
STORED_KEYS = ("counts", "tokens", *_KEYED, _BLIND)


class Tally(BaseModel):
    """The counters of a run or of one chunk; a run's are the sum (`+`) of its chunks'."""

    rows: int = 0  # input rows
    accepted: int = 0  # rows written to the triples (absent-object rows included)
    rejected: int = 0
    generated: int = 0  # unique captions sent to the backend
    judged: int = 0  # outputs judged (all attempts)
    retries: int = 0
    absent_planned: int = 0
    absent_accepted: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens served from the engine's prefix cache
    cache_reports: int = 0  # outputs whose backend reported its cached tokens
    reject_reasons: Counter[str] = Field(default_factory=Counter)
    check_failures: Counter[str] = Field(default_factory=Counter)  # every judged output's failing checks
    constraints: Counter[str] = Field(default_factory=Counter)  # "paraphrase: free", "negation: edit", ... per caption
    absent_notes: Counter[str] = Field(default_factory=Counter)  # absent rows not written as drawn, by reason
    judge: Counter[str] = Field(default_factory=Counter)  # the LLM judge's calls, tokens and rejections
    blind: dict[str, BlindCounts] = Field(default_factory=dict)  # per kind (caption, absent-*): the blind check

    def __add__(self, other: "Tally") -> "Tally":
        """The sum; keyed counts keep the order in which their keys first came (the card lists ties so)."""
        total = {name: getattr(self, name) + getattr(other, name) for name in (*_COUNTS, *_TOKENS.values())}
        for name in _KEYED.values():
            keyed = Counter(getattr(self, name))
            keyed.update(getattr(other, name))  # unlike Counter's +, keeps keys whose count is 0
            total[name] = keyed
        blind = {kind: self.blind.get(kind, BlindCounts()) + other.blind.get(kind, BlindCounts())
                 for kind in {**self.blind, **other.blind}}
        return Tally(**total, blind=blind)

    def stored(self) -> dict:
        """The counters as the run metadata stores them (JSON-ready)."""
        return {"counts": {name: getattr(self, name) for name in _COUNTS},
                "tokens": {key: getattr(self, name) for key, name in _TOKENS.items()},
                **{key: dict(getattr(self, name)) for key, name in _KEYED.items()},
                _BLIND: {kind: n.model_dump() for kind, n in self.blind.items()}}

    @classmethod
    def from_stored(cls, run: dict) -> "Tally":
        """The counters of stored run metadata (what an older version did not count is 0)."""
        counts, tokens = run.get("counts") or {}, run.get("tokens") or {}
        return cls(**{name: counts.get(name, 0) for name in _COUNTS},
                   **{name: tokens.get(key, 0) for key, name in _TOKENS.items()},
                   **{name: run.get(key) or {} for key, name in _KEYED.items()},
                   blind=run.get(_BLIND) or {})


class ChunkSummary(Tally):
    """What one finished chunk produced (its completion marker): its tally, flat, and its identity."""

    model_config = ConfigDict(extra="ignore")

    chunk: int
    backend: str = ""
    model: str = ""
    input_digest: str | None = None  # of the chunk's input rows: a resumed run refuses a changed input


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
    tally: Tally = Field(default_factory=Tally)  # stored as `Tally.stored` lays it out
    constraint: dict | None = None  # which output constraint the run used (triplegen.checks.constraints)
    prefix_caching: bool | None = None
    judge: dict | None = None  # the optional LLM judge's settings (triplegen.checks.llm_judge)
    blind: dict | None = None  # the optional blind check's settings (triplegen.checks.blind)

    @model_validator(mode="before")
    @classmethod
    def _read_stored(cls, data):
        if isinstance(data, dict) and "tally" not in data:
            data = {**{k: v for k, v in data.items() if k not in STORED_KEYS}, "tally": Tally.from_stored(data)}
        return data

    @model_serializer(mode="wrap")
    def _write_stored(self, handler) -> dict:
        data = handler(self)
        del data["tally"]
        return {**data, **self.tally.stored()}

    def add(self, summaries: list[ChunkSummary]) -> "RunMetadata":
        """These totals plus the chunks' (a new record)."""
        tally = self.tally
        for summary in summaries:
            tally = tally + summary
        return self.model_copy(update={"tally": tally})

    def json_dict(self) -> dict:
        return self.model_dump(mode="json")
