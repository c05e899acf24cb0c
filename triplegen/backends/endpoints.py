"""Spreading requests over several OpenAI-compatible servers, and resting the ones that keep failing.

Each request goes to the least-loaded server that is in rotation (ties broken round-robin), so fast
servers take more work and a slow one never holds up the rest. A server whose requests fail several
times in a row is taken out of rotation for a cool-down (a circuit breaker), so a dead node costs a
few failed requests instead of a share of every retry; it comes back on its own after the pause.

The pool also knows when *every* server has been failing (no answer from any of them since the
first failure): that is an outage, which stops the run instead of rejecting its rows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Endpoint:
    """One server: its URL, client, load and health."""

    url: str
    client: Any = None  # openai.AsyncOpenAI, created inside the backend's event loop
    in_flight: int = 0
    consecutive_failures: int = 0
    open_until: float = 0.0  # monotonic time until which it is out of rotation
    trips: int = 0
    requests: int = 0
    failures: int = 0

    def available(self, now: float) -> bool:
        return now >= self.open_until


@dataclass
class EndpointPool:
    """Least-loaded choice among the servers in rotation, with a per-server circuit breaker."""

    endpoints: list[Endpoint]
    failures_to_trip: int = 5
    cooldown_s: float = 30.0
    _turn: int = field(default=0, init=False)
    last_success: float = field(default=float("-inf"), init=False)  # monotonic, any server
    failing_since: float | None = field(default=None, init=False)  # first failure after the last success
    failures_in_a_row: int = field(default=0, init=False)  # over all servers

    @classmethod
    def from_urls(cls, urls: list[str], **kwargs) -> "EndpointPool":
        return cls([Endpoint(url=url.rstrip("/")) for url in urls], **kwargs)

    def pick(self, now: float | None = None) -> Endpoint:
        """The server for the next request; when all are resting, the one that wakes first."""
        now = time.monotonic() if now is None else now
        count = len(self.endpoints)
        order = [self.endpoints[(self._turn + i) % count] for i in range(count)]
        self._turn = (self._turn + 1) % count
        ready = [e for e in order if e.available(now)]
        if not ready:
            return min(order, key=lambda e: e.open_until)
        return min(ready, key=lambda e: e.in_flight)  # min() keeps the first of equals

    def wait_s(self, endpoint: Endpoint, now: float | None = None) -> float:
        """How long a request must wait before it may use `endpoint`."""
        now = time.monotonic() if now is None else now
        return max(0.0, endpoint.open_until - now)

    def succeeded(self, endpoint: Endpoint, now: float | None = None) -> None:
        endpoint.requests += 1
        endpoint.consecutive_failures = 0
        self.last_success = time.monotonic() if now is None else now
        self.failing_since, self.failures_in_a_row = None, 0

    def outage_s(self, now: float | None = None) -> float:
        """How long every server has been failing (0 while any answered since the last failure)."""
        if self.failing_since is None:
            return 0.0
        return (time.monotonic() if now is None else now) - self.failing_since

    def silent_since(self, since: float) -> None:
        """No server has answered anything since `since` (a stopped or hung server fails nothing until
        its requests time out): the outage began then, unless a failure dated it earlier."""
        self.failing_since = since if self.failing_since is None else min(self.failing_since, since)

    def failed(self, endpoint: Endpoint, now: float | None = None) -> bool:
        """Count a failure; return True when it takes the server out of rotation."""
        now = time.monotonic() if now is None else now
        endpoint.requests += 1
        endpoint.failures += 1
        endpoint.consecutive_failures += 1
        if self.failing_since is None:
            self.failing_since = now
        self.failures_in_a_row += 1
        if endpoint.consecutive_failures < self.failures_to_trip:
            return False
        endpoint.consecutive_failures = 0
        endpoint.open_until = now + self.cooldown_s
        endpoint.trips += 1
        return True
