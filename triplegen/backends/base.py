"""The one interface every generator implements: a batch of requests in, one completion out per request.

The pipeline owns everything else (rendering, parsing, checks, retries, writing), so a backend is
only transport: the rules generator, an in-process vLLM engine and a fleet of OpenAI-compatible
servers all look the same to it. Backends return raw text, never parsed triples, so that a reject
row can always show exactly what the model wrote.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from triplegen.rules.absent import AbsentSpec


@dataclass(frozen=True)
class Request:
    """One generation request; `key` identifies the unique caption (or absent-object row) it is for."""

    key: str
    caption: str
    messages: list[dict[str, str]]  # chat messages rendered from the prompt template
    seed: int  # per row and per attempt, so a rerun is reproducible
    attempt: int = 1
    absent: AbsentSpec | None = None  # set for an absent-object row: what it must deny
    schema: dict | None = None  # the JSON schema of this answer when it is not the backend's own
    # input rows the progress display counts when this request comes back: the rows that share the
    # caption on a first attempt; 0 for a retry (counted already) or an absent-object row (not an input row)
    rows: int = 0


@dataclass
class Completion:
    """What a backend produced for one request.

    `text` is None only when the backend could not get any output (e.g. a server that kept failing);
    then `error` says why and the pipeline records reason `backend_error`.
    """

    text: str | None
    finish_reason: str | None = "stop"  # "stop", "length" (truncated), or None when unknown
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int | None = None  # prompt tokens served from the prefix cache; None: not reported
    error: str | None = None
    server: str | None = None  # which endpoint answered (openai backend)


@runtime_checkable
class Backend(Protocol):
    """A generator of raw JSON text for rendered chat requests."""

    name: str  # "rules", "vllm", "openai": written into every row
    model: str  # model name or path; "rules" for the rules generator
    deterministic: bool  # True when a retry would give the same answer (no point retrying)
    # False when generate() reads only Request.caption (the rules): the pipeline then skips rendering
    # and sends empty messages. `generate()` treats a backend without this attribute as True.
    needs_messages: bool

    def generate(self, requests: list[Request], sampling: dict[str, Any]) -> list[Completion]:
        """Return one completion per request, in order. Must not raise for one bad row."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class SchemaProbe(Protocol):
    """A backend that can say, before a run, whether it accepts a given output schema (optional)."""

    def check_schema(self, schema: dict) -> str | None:
        """None when a request with `schema` is accepted, else why not, in one line."""
        ...


@dataclass
class BackendStats:
    """Counters a backend keeps for the progress display and the dataset card."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    server_errors: int = 0
    retries: int = 0
    extra: dict[str, int] = field(default_factory=dict)
    # input rows whose request came back (`Request.rows`), counted live as each request finishes so
    # that the progress moves within a chunk; fractional where an engine says only how many finished
    answered_rows: float = 0.0

    def finished(self, requests: Sequence[Request], count: int | None = None) -> None:
        """Count requests that came back: all of `requests`, or `count` of them when the engine says only
        how many (their rows then taken at the batch's average)."""
        if count is None:
            self.requests += len(requests)
            self.answered_rows += sum(r.rows for r in requests)
        elif requests:
            self.requests += count
            self.answered_rows += count * sum(r.rows for r in requests) / len(requests)
