"""The served backend: any OpenAI-compatible server (vLLM first) through the official async client.

Requests of a chunk run concurrently up to `--concurrency`, spread over the `--base-url`s. Transport
failures (429, 5xx, timeouts, dropped connections, bodies that are not a chat completion) are retried
here with exponential backoff and jitter; the client's own retries are off so that every retry is
counted.

Whose fault is a failure? A request the server refuses as such (HTTP 400, 413, 422), or one that
keeps failing `max_retries` times while the servers answer other requests, comes back as a
`Completion` with `error` set (a reject): one bad row must not stop a run of millions. A request
that fails while *no* server answers anything is never rejected: it keeps retrying, and when every
server has been failing for `max_outage_s` (or `max_outage_failures` requests in a row) the batch
is cancelled and `BackendUnavailable` stops the run, whose finished chunks a rerun resumes.

A server that stops answering without failing (a stopped or hung process) gives no failure until the
request timeout (120 s); so when no server has answered anything for half of `max_outage_s` while
requests are in flight, each is asked for `/models`, and if none answers within the other half, the
outage began when the last answer came. A server that refuses every request is set up wrong (a
context shorter than the prompt, a proxy that rejects the schema): after `max_refusals_in_a_row`
refusals with no success between them the run stops the same way, quoting the server's message,
instead of rejecting every row.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import threading
import time
from dataclasses import dataclass
from typing import Any

from triplegen.backends.base import BackendStats, Completion, Request
from triplegen.backends.endpoints import Endpoint, EndpointPool
from triplegen.config import BackendOptions
from triplegen.errors import BackendUnavailable, MissingExtraError, TripleGenError
from triplegen.servercheck import check_servers, probe_response_format, response_format

# Sampling keys of the OpenAI API itself; the others go to vLLM through `extra_body`.
OPENAI_KEYS = frozenset({"temperature", "top_p", "max_tokens", "stop", "presence_penalty", "frequency_penalty"})
EXTRA_BODY_KEYS = frozenset({"top_k", "min_p", "repetition_penalty"})
REQUEST_ERRORS = frozenset({400, 413, 422})  # the request itself is refused: retrying cannot help
WATCH_S = 0.5  # how often a batch checks for an outage


class MalformedResponse(Exception):
    """The server answered 200 with something that is not a chat completion."""


@dataclass(frozen=True)
class Failure:
    """Why one HTTP call gave no completion; `fatal` failures (the request refused) are not retried."""

    message: str
    fatal: bool = False
    retry_after_s: float | None = None


def _import_openai():
    try:
        import openai
    except ImportError:
        raise MissingExtraError("the openai backend", "openai", "openai") from None
    return openai


def api_key(env_var: str) -> str:
    """The key from the environment; vLLM without --api-key accepts any, so "EMPTY" when unset."""
    return os.environ.get(env_var) or "EMPTY"


def request_kwargs(sampling: dict[str, Any]) -> dict[str, Any]:
    unknown = set(sampling) - OPENAI_KEYS - EXTRA_BODY_KEYS
    if unknown:
        raise TripleGenError(
            f"sampling option(s) {sorted(unknown)} are not supported by the openai backend "
            f"(supported: {sorted(OPENAI_KEYS | EXTRA_BODY_KEYS)})"
        )
    kwargs = {k: v for k, v in sampling.items() if k in OPENAI_KEYS}
    extra = {k: v for k, v in sampling.items() if k in EXTRA_BODY_KEYS}
    if extra:
        kwargs["extra_body"] = extra
    return kwargs


class OpenAIBackend:
    """Raw JSON text from one or more OpenAI-compatible servers."""

    name = "openai"
    deterministic = False
    needs_messages = True  # chat messages rendered from the prompt template

    prefix_caching = None  # a server's own setting; its cached-token counts show it when reported

    def __init__(self, options: BackendOptions, output_schema: dict):
        self._openai = _import_openai()
        self.options = options.server
        if not self.options.base_urls:
            raise TripleGenError("the openai backend needs --base-url http://HOST:PORT/v1")
        self._key = api_key(self.options.api_key_env)
        reports = check_servers(
            self.options.base_urls,
            options.model,
            self._key,
            min(self.options.timeout_s, 120.0),
            self.options.check_schema,
        )
        self.model = reports[0].model
        self.schema = output_schema
        self.response_format = response_format(output_schema)
        self.stats = BackendStats()
        self.pool = EndpointPool.from_urls(
            self.options.base_urls,
            failures_to_trip=self.options.breaker_failures,
            cooldown_s=self.options.breaker_cooldown_s,
        )
        self._random = random.Random(options.seed)
        self._last_error = ""
        self._last_heard = time.monotonic()  # the last HTTP answer of any kind from any server
        self._refusals_in_a_row = 0
        self._last_refusal = ""
        # The backend owns its event loop on a thread, so generate() works from plain scripts,
        # notebooks (which already run a loop) and the pipeline alike, and keeps its connections.
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="triplegen-openai", daemon=True)
        self._thread.start()

    def generate(self, requests: list[Request], sampling: dict[str, Any]) -> list[Completion]:
        kwargs = request_kwargs(sampling)
        future = asyncio.run_coroutine_threadsafe(self._batch(requests, kwargs), self._loop)
        return future.result()

    async def _batch(self, requests: list[Request], kwargs: dict[str, Any]) -> list[Completion]:
        for endpoint in self.pool.endpoints:
            if endpoint.client is None:
                endpoint.client = self._openai.AsyncOpenAI(
                    base_url=endpoint.url, api_key=self._key, max_retries=0, timeout=self.options.timeout_s
                )
        semaphore = asyncio.Semaphore(self.options.concurrency)
        self._last_heard = time.monotonic()
        tasks = [asyncio.ensure_future(self._one(r, kwargs, semaphore)) for r in requests]
        batch = asyncio.gather(*tasks)
        while not batch.done():
            await asyncio.wait({batch}, timeout=WATCH_S)
            if not batch.done() and self._silent_s() >= self._stall_s():
                await self._check_alive()
            stop = self._stop_reason()
            if not batch.done() and stop:
                batch.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                with contextlib.suppress(asyncio.CancelledError):
                    await batch  # retrieved, or asyncio prints it when the future is collected
                self._refusals_in_a_row = 0  # a later call (the server fixed) starts afresh
                raise BackendUnavailable(stop)
        stop = self._refusal_stop()  # a small batch may be refused whole between two looks
        if stop:
            self._refusals_in_a_row = 0
            raise BackendUnavailable(stop)
        return list(batch.result())

    def _stop_reason(self) -> str | None:
        """Why the run must stop now (every server down, or refusing every request); None: go on."""
        return self._outage_message() if self._outage() else self._refusal_stop()

    def _refusal_stop(self) -> str | None:
        if self._refusals_in_a_row < self.options.max_refusals_in_a_row:
            return None
        return (f"the server refuses every request ({self._refusals_in_a_row} in a row, none answered between "
                f"them; last: {self._last_refusal}): fix the server's settings (e.g. its --max-model-len) or "
                "the prompt")

    def _silent_s(self) -> float:
        """Seconds since any server answered anything, while requests wait for an answer (else 0)."""
        if not any(e.in_flight for e in self.pool.endpoints):
            return 0.0
        return time.monotonic() - self._last_heard

    def _stall_s(self) -> float:
        """Silence after which the servers are asked whether they are alive (and how long they get)."""
        return self.options.max_outage_s / 2

    async def _check_alive(self) -> None:
        """Ask every server for `/models`: one answer proves a slow server, not a stopped one; with
        none, the outage began at the last answer (and `_outage` stops the run once it is long enough)."""
        silent_since = self._last_heard
        answers = await asyncio.gather(*(self._answers(e) for e in self.pool.endpoints))
        if any(answers):
            self._last_heard = time.monotonic()
            return
        self._last_error = (f"no answer for {time.monotonic() - silent_since:.0f} s, not even to GET /models "
                            "(a stopped or hung server)")
        self.pool.silent_since(silent_since)

    async def _answers(self, endpoint: Endpoint) -> bool:
        try:
            await endpoint.client.with_options(timeout=self._stall_s(), max_retries=0).models.list()
        except self._openai.APIStatusError:
            return True  # an HTTP answer, whatever it says: the server is there
        except self._openai.APIError:
            return False
        return True

    def _outage(self) -> bool:
        too_many = self.options.max_outage_failures
        return self.pool.outage_s() >= self.options.max_outage_s or (
            too_many is not None and self.pool.failures_in_a_row >= too_many)

    def _outage_message(self) -> str:
        urls = ", ".join(e.url for e in self.pool.endpoints)
        failed = self.pool.failures_in_a_row
        return (f"no answer from {urls} for {self.pool.outage_s():.0f} s ("
                f"{f'{failed} failed requests in a row; ' if failed else ''}last: {self._last_error})")

    async def _one(self, request: Request, kwargs: dict[str, Any], semaphore: asyncio.Semaphore) -> Completion:
        async with semaphore:
            failures: list[Failure] = []
            endpoint = None
            first_failure = None
            while True:
                if failures:
                    self.stats.retries += 1
                    await asyncio.sleep(self._backoff(len(failures), failures[-1]))
                endpoint = self.pool.pick()
                await asyncio.sleep(self.pool.wait_s(endpoint))
                outcome = await self._attempt(endpoint, request, kwargs)
                if isinstance(outcome, Completion):
                    self.stats.finished([request])
                    return outcome
                failures.append(outcome)
                first_failure = time.monotonic() if first_failure is None else first_failure
                if outcome.fatal:
                    break
                # this request fails while the servers answer others: its own problem, a reject;
                # while no server answers anything, it waits for them (or for the outage to stop the run)
                if len(failures) > self.options.max_retries and self.pool.last_success > first_failure:
                    break
            self.stats.finished([request])
            return Completion(
                text=None,
                finish_reason=None,
                error=f"{len(failures)} attempt(s) failed; last: {failures[-1].message}",
                server=endpoint.url if endpoint else None,
            )

    async def _attempt(self, endpoint: Endpoint, request: Request, kwargs: dict[str, Any]) -> Completion | Failure:
        """One HTTP call: a Completion, or why there is none."""
        openai = self._openai
        endpoint.in_flight += 1
        try:
            response = await endpoint.client.chat.completions.create(
                model=self.model,
                messages=request.messages,
                response_format=self.response_format if request.schema is None else response_format(request.schema),
                seed=request.seed,
                **kwargs,
            )
            self._last_heard = time.monotonic()
            completion = self._completion(response, endpoint)
        except openai.APIStatusError as exc:
            self._last_heard = time.monotonic()
            if exc.status_code in REQUEST_ERRORS:
                return self._refused(f"HTTP {exc.status_code} from {endpoint.url}: {exc.message}")
            return self._failed(endpoint, f"HTTP {exc.status_code} from {endpoint.url}", exc)
        except openai.APITimeoutError:
            return self._failed(endpoint, f"timeout after {self.options.timeout_s}s from {endpoint.url}")
        except openai.APIConnectionError as exc:
            return self._failed(endpoint, f"connection error to {endpoint.url}: {exc}")
        except (openai.APIResponseValidationError, MalformedResponse, ValueError) as exc:
            return self._failed(endpoint, f"malformed response from {endpoint.url}: {exc}")
        finally:
            endpoint.in_flight -= 1
        self.pool.succeeded(endpoint)
        self._refusals_in_a_row = 0
        return completion

    def _refused(self, message: str) -> Failure:
        """The server refused this request as such: the row's reject, unless it refuses every request."""
        self._refusals_in_a_row += 1
        self._last_refusal = " ".join(message.split())[:300]
        return Failure(message, fatal=True)

    def _failed(self, endpoint: Endpoint, message: str, exc=None) -> Failure:
        self.stats.server_errors += 1
        self._last_error = message
        if self.pool.failed(endpoint):
            self.stats.extra["servers_rested"] = self.stats.extra.get("servers_rested", 0) + 1
        headers = getattr(getattr(exc, "response", None), "headers", None) or {}
        try:
            retry_after = float(headers.get("retry-after"))
        except (TypeError, ValueError):
            retry_after = None
        return Failure(message, retry_after_s=retry_after)

    def _backoff(self, attempt: int, last: Failure) -> float:
        """Exponential backoff with equal jitter; honours a server's Retry-After (capped)."""
        delay = min(self.options.max_backoff_s, self.options.backoff_s * 2 ** (attempt - 1))
        delay = delay / 2 + self._random.uniform(0, delay / 2)
        if last.retry_after_s is not None:
            delay = max(delay, min(last.retry_after_s, self.options.max_backoff_s))
        return delay

    def _completion(self, response, endpoint: Endpoint) -> Completion:
        try:
            choice = response.choices[0]
            text = choice.message.content
            finish_reason = choice.finish_reason
        except (AttributeError, IndexError, TypeError, KeyError) as exc:
            raise MalformedResponse(f"no choices[0].message in the body ({type(exc).__name__})") from None
        if not isinstance(text, str):
            raise MalformedResponse("choices[0].message.content is not text")
        usage = getattr(response, "usage", None)
        prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        # vLLM reports it with --enable-prompt-tokens-details; without, the field is absent
        cached = getattr(getattr(usage, "prompt_tokens_details", None), "cached_tokens", None)
        cached = cached if isinstance(cached, int) else None
        self.stats.prompt_tokens += prompt_tokens
        self.stats.completion_tokens += completion_tokens
        self.stats.cached_tokens += cached or 0
        return Completion(
            text=text,
            finish_reason=finish_reason,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cached_tokens=cached,
            server=endpoint.url,
        )

    def check_schema(self, schema: dict) -> str | None:
        """None when every server takes `schema` in `response_format`, else the first refusal."""
        for url in self.options.base_urls:
            refusal = probe_response_format(url, self.model, self._key, schema, min(self.options.timeout_s, 120.0))
            if refusal is not None:
                return refusal
        return None

    def close(self) -> None:
        if not self._loop.is_running():
            return

        async def _close_clients():
            for endpoint in self.pool.endpoints:
                if endpoint.client is not None:
                    await endpoint.client.close()
                    endpoint.client = None

        asyncio.run_coroutine_threadsafe(_close_clients(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
