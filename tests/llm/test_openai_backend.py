"""The openai backend against a real vLLM server (tiny random Llama), directly and through faults."""

from __future__ import annotations

import json
import time
from collections import Counter

import jsonschema
import pytest

from tests.llm.conftest import free_port
from tests.llm.fault_proxy import FaultProxy
from tests.llm.schemas import FREE_TRIPLE_SCHEMA, PINNED_TRIPLE_SCHEMA, messages
from triplegen.backends.base import Request
from triplegen.backends.openai import OpenAIBackend
from triplegen.config import BackendOptions, ServerOptions

pytestmark = pytest.mark.vllm

SAMPLING = {"temperature": 1.0, "max_tokens": 120}


def origin(server) -> str:
    return server.base_url.removesuffix("/v1")


def backend(urls, schema=PINNED_TRIPLE_SCHEMA, **server_options) -> OpenAIBackend:
    options = {"concurrency": 8, "timeout_s": 30.0, "backoff_s": 0.02, "max_backoff_s": 0.2, **server_options}
    return OpenAIBackend(BackendOptions(name="openai", model="tiny-llama",
                                        server=ServerOptions(base_urls=list(urls), **options)), schema)


def requests(n: int, seed0: int = 0) -> list[Request]:
    return [Request(key=f"k{i}", caption=f"a cat {i}", messages=messages(f"a cat {i}"), seed=seed0 + i)
            for i in range(n)]


def assert_valid(completion) -> None:
    assert completion.text is not None, completion.error
    assert completion.finish_reason == "stop"
    jsonschema.validate(json.loads(completion.text), PINNED_TRIPLE_SCHEMA)


def test_server_output_follows_the_schema_and_counts_tokens(tiny_server):
    b = backend([tiny_server.base_url])
    try:
        completions = b.generate(requests(10), SAMPLING)
    finally:
        b.close()
    assert len(completions) == 10
    for completion in completions:
        assert_valid(completion)
        assert completion.server == tiny_server.base_url
        assert completion.prompt_tokens > 0 and completion.completion_tokens > 0
    assert b.stats.requests == 10 and b.stats.retries == 0 and b.stats.server_errors == 0
    assert b.stats.completion_tokens == sum(c.completion_tokens for c in completions)


def test_seeds_make_served_output_reproducible(tiny_server):
    b = backend([tiny_server.base_url], schema=FREE_TRIPLE_SCHEMA)
    try:
        first = [c.text for c in b.generate(requests(5), SAMPLING)]
        again = [c.text for c in b.generate(requests(5), SAMPLING)]
        other = [c.text for c in b.generate(requests(5, seed0=40), SAMPLING)]
    finally:
        b.close()
    assert first == again
    assert first != other


def test_injected_faults_are_retried_until_every_row_has_output(tiny_server):
    # a held request outlasts the client's timeout by far, and a real answer on a busy machine stays within it
    with FaultProxy(origin(tiny_server), rate=0.0, seed=3, hold_s=6.0) as proxy:
        b = backend([proxy.base_url], timeout_s=3.0, max_retries=12, breaker_failures=50)
        proxy.rate = 0.4  # after the start-up check, which goes through the proxy too
        try:
            completions = b.generate(requests(30), SAMPLING)
        finally:
            b.close()
    injected = sum(n for kind, n in proxy.counts.items() if kind != "passed")
    assert all(proxy.counts[kind] > 0 for kind in ("500", "429", "timeout", "drop", "malformed")), proxy.counts
    for completion in completions:
        assert_valid(completion)
    assert b.stats.server_errors == injected
    assert b.stats.retries == injected
    assert b.stats.requests == 30


def test_a_request_that_keeps_failing_while_others_pass_comes_back_as_an_error(tiny_server):
    with FaultProxy(origin(tiny_server), poison="a cat 3") as proxy:
        b = backend([proxy.base_url], max_retries=2, breaker_failures=50, concurrency=2)
        try:
            completions = b.generate(requests(8), SAMPLING)
        finally:
            b.close()
    failed = completions[3]
    attempts = proxy.counts["500"]  # at least 1 + max_retries, and until another request has passed meanwhile
    assert failed.text is None and attempts >= 3
    assert f"{attempts} attempt(s) failed" in failed.error and "HTTP 500" in failed.error
    assert b.stats.retries == attempts - 1
    for completion in completions[:3] + completions[4:]:
        assert_valid(completion)


def test_when_no_server_answers_the_batch_stops_with_backend_unavailable_not_an_error_row(tiny_server):
    from triplegen.errors import BackendUnavailable

    with FaultProxy(origin(tiny_server), faults=("500",)) as proxy:
        b = backend([proxy.base_url], max_retries=2, breaker_failures=50, max_outage_s=2.0)
        proxy.rate = 1.0  # healthy at the start-up check, then every chat request fails
        started = time.monotonic()
        try:
            with pytest.raises(BackendUnavailable, match=rf"no answer from {proxy.base_url} for 2 s .*HTTP 500"):
                b.generate(requests(4), SAMPLING)
        finally:
            b.close()
    assert time.monotonic() - started < 10
    assert proxy.counts["500"] > 4 * 3  # retried past max_retries: nothing is given up as the rows' fault


def test_a_client_error_is_not_retried(tiny_server):
    b = backend([tiny_server.base_url], max_retries=5)
    long_caption = "cat " * 3000  # longer than the server's max_model_len: HTTP 400
    batch = requests(2) + [Request(key="long", caption=long_caption, messages=messages(long_caption), seed=1)]
    try:
        completions = b.generate(batch, SAMPLING)
    finally:
        b.close()
    assert_valid(completions[0]) or assert_valid(completions[1])
    assert completions[2].text is None and "HTTP 400" in completions[2].error
    assert "1 attempt(s) failed" in completions[2].error and b.stats.retries == 0


def test_several_servers_share_the_load_and_a_failing_one_is_rested(tiny_server):
    with FaultProxy(origin(tiny_server)) as a, FaultProxy(origin(tiny_server)) as b_, \
            FaultProxy(origin(tiny_server), faults=("500",)) as broken:
        b = backend([a.base_url, b_.base_url, broken.base_url], concurrency=4, max_retries=8,
                    breaker_failures=3, breaker_cooldown_s=600)
        broken.rate = 1.0  # healthy at the start-up check, then every chat request fails
        try:
            completions = b.generate(requests(36), SAMPLING)
        finally:
            b.close()
    for completion in completions:
        assert_valid(completion)
    served = Counter(c.server for c in completions)
    assert set(served) == {a.base_url.rstrip("/"), b_.base_url.rstrip("/")}
    assert min(served.values()) >= 12  # spread evenly over the two healthy servers
    assert broken.counts["500"] == 3  # three failures, then out of rotation for the cool-down
    assert b.stats.extra["servers_rested"] == 1


def test_a_server_that_is_not_running_is_refused_before_the_run():
    from triplegen.errors import TripleGenError

    with pytest.raises(TripleGenError, match="not reachable"):
        backend([f"http://127.0.0.1:{free_port()}/v1"])
