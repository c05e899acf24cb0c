"""The in-process vLLM backend: one `vllm.LLM` per process, whole chunks submitted per call.

vLLM schedules and batches the requests of one `LLM.chat` call itself, so the pipeline hands over a
whole chunk and gets the chunk back; the JSON schema is enforced by vLLM's structured-output
decoding, so a well-behaved model can only write text of the template's shape.

An engine that dies is not bad output: vLLM's own `LLM.chat` can wait forever for an engine process
that was killed, so each call runs on a helper thread while this one watches the engine's processes;
if one exits, or the engine raises anything but a request refusal, `BackendUnavailable` stops the
run and no row of the unfinished chunk is rejected for it.

Progress moves with requests, not chunks: vLLM's `use_tqdm` takes a callable that builds a tqdm-like
counter, and each request the engine finishes is counted in the backend's stats at once.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import sys
import threading
import time
import weakref
from pathlib import Path
from typing import Any

from triplegen.backends.base import BackendStats, Completion, Request
from triplegen.backends.engine_log import engine_output_to, log_size
from triplegen.backends.engine_start import CPU_BATCHED_TOKENS, cpu_kv_cache, import_vllm, start_failure
from triplegen.backends.replicas import ReplicaPool
from triplegen.config import BackendOptions, EngineOptions
from triplegen.errors import BackendUnavailable, TripleGenError

log = logging.getLogger(__name__)

# Sampling keys a prompt template may set, mapped to `SamplingParams` by the same name.
SAMPLING_KEYS = frozenset(
    {
        "temperature",
        "top_p",
        "top_k",
        "min_p",
        "max_tokens",
        "repetition_penalty",
        "presence_penalty",
        "frequency_penalty",
        "stop",
    }
)

GPU_MEMORY_UTILIZATION = 0.9  # vLLM's default, when --gpu-memory-utilization is not given

# An engine takes from seconds to minutes to load, so a process that runs several generate calls
# with the same model and options (a notebook, a test session) loads it once.
_ENGINES: dict[tuple, Any] = {}
_PROCESSES: "weakref.WeakKeyDictionary[Any, list]" = weakref.WeakKeyDictionary()  # engine -> its processes
WATCH_S = 0.5


def _request_errors() -> tuple[type[Exception], ...]:
    """The exceptions with which vLLM refuses a request (not the engine) as invalid."""
    try:
        from vllm.exceptions import VLLMClientError
    except ImportError:  # vLLM before the exceptions module: plain ValueError
        return (ValueError,)
    return (ValueError, VLLMClientError)


def engine_kwargs(model: str, options: EngineOptions) -> dict[str, Any]:
    """The `vllm.LLM(...)` keyword arguments for a model and the run's engine options."""
    kwargs: dict[str, Any] = {
        "model": model,
        "tensor_parallel_size": options.tensor_parallel_size,
        "dtype": options.dtype,
        "gpu_memory_utilization": options.gpu_memory_utilization or GPU_MEMORY_UTILIZATION,
        "enforce_eager": options.enforce_eager,
        "seed": options.seed,
    }
    if options.max_model_len is not None:
        kwargs["max_model_len"] = options.max_model_len
    if _on_cpu():
        # vLLM's CPU worker crashes ("CPU Generator does not use offset") when a request with its
        # own seed is prefilled in pieces, which chunked prefill does as soon as a batch exceeds the
        # token budget; so on a CPU every prompt is prefilled whole.
        kwargs["enable_chunked_prefill"] = False
        kwargs["max_num_batched_tokens"] = max(options.max_model_len or 0, CPU_BATCHED_TOKENS)
    return kwargs


def _on_cpu() -> bool:
    from vllm.platforms import current_platform

    return current_platform.is_cpu()


def shared_engine(model: str, options: EngineOptions, log_file: Path | None = None):
    """The process's engine for this model and these options, created on first use: a `vllm.LLM`,
    or a `ReplicaPool` of them for `data_parallel_size > 1`; what they print goes to `log_file`.

    A start that fails is one line with its cause (TripleGenError), never vLLM's traceback."""
    import_vllm()
    kwargs = engine_kwargs(model, options)
    key = (*sorted(kwargs.items()), ("data_parallel_size", options.data_parallel_size))
    if key in _ENGINES:
        return _ENGINES[key]
    kv = cpu_kv_cache(options) if _on_cpu() else None
    if kv is not None and kv.bytes is not None:  # not in the key: free memory differs from call to call
        kwargs["kv_cache_memory_bytes"] = kv.bytes
    offset = log_size(log_file)
    log.info("loading vLLM engine for %s", model)
    try:
        with engine_output_to(log_file):
            if kv is not None:
                print(f"triplegen: vLLM on a CPU, {kv.note}", file=sys.stderr, flush=True)
            if options.data_parallel_size > 1:
                # vLLM refuses LLM(data_parallel_size>1) in one process; replicas in worker processes
                # give the same throughput for a dense model without any coordination between them.
                _ENGINES[key] = ReplicaPool(kwargs, options.data_parallel_size, options.tensor_parallel_size)
            else:
                _ENGINES[key] = load_engine(kwargs)
    except Exception as exc:
        raise start_failure(model, exc, log_file, offset, kv, options) from exc
    return _ENGINES[key]


def load_engine(kwargs: dict[str, Any]):
    """A `vllm.LLM`, with the processes it started remembered, so that their death is noticed."""
    vllm, _ = import_vllm()
    before = set(multiprocessing.active_children())
    llm = vllm.LLM(**kwargs)
    _PROCESSES[llm] = [p for p in multiprocessing.active_children() if p not in before]
    return llm


class FinishedRequests:
    """The tqdm-like counter vLLM's `LLM.chat(use_tqdm=...)` drives: each `update(n)` is n requests the
    engine finished, handed to `on_finished(n)`. vLLM also wraps the prompts it renders in one (an
    iterable, passed through)."""

    def __init__(self, iterable=None, *, on_finished, **_tqdm_options):
        self.iterable, self.on_finished = iterable, on_finished
        self.n = 0
        self.postfix = ""
        self._started = time.monotonic()

    def __iter__(self):
        return iter(self.iterable if self.iterable is not None else ())

    def __len__(self) -> int:
        return len(self.iterable)

    @property
    def format_dict(self) -> dict[str, float]:
        return {"n": self.n, "elapsed": max(time.monotonic() - self._started, 1e-6)}

    def update(self, n: int = 1) -> None:
        self.n += n
        self.on_finished(n)

    def refresh(self, *args) -> None:
        pass

    def close(self) -> None:
        pass


def _counter(on_finished):
    """`use_tqdm` for `LLM.chat`: False (nothing to count) or a FinishedRequests factory."""
    return False if on_finished is None else functools.partial(FinishedRequests, on_finished=on_finished)


def _watched_chat(llm, conversations, params, on_finished=None):
    """`llm.chat` on a helper thread, while this thread checks that the engine's processes live."""
    processes = _PROCESSES.get(llm)
    if not processes:  # an engine loaded elsewhere (or without processes): call it directly
        return llm.chat(conversations, params, use_tqdm=_counter(on_finished))
    result: dict[str, Any] = {}

    def call() -> None:
        try:
            result["outputs"] = llm.chat(conversations, params, use_tqdm=_counter(on_finished))
        except BaseException as exc:  # handed to the watching thread
            result["error"] = exc

    worker = threading.Thread(target=call, name="triplegen-vllm", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(WATCH_S)
        dead = [p for p in processes if p.exitcode is not None]
        if dead and worker.is_alive():
            raise BackendUnavailable(f"engine process {dead[0].name} (pid {dead[0].pid}) exited with code "
                                     f"{dead[0].exitcode}")
    if "error" in result:
        raise result["error"]
    return result["outputs"]


def release_engines(only=None) -> None:
    """Shut the cached engines down (or just `only`) so their memory (GPU and KV cache) is freed."""
    for key, llm in list(_ENGINES.items()):
        if only is not None and llm is not only:
            continue
        del _ENGINES[key]
        if isinstance(llm, ReplicaPool):
            llm.close()
            continue
        shutdown = getattr(getattr(getattr(llm, "llm_engine", None), "engine_core", None), "shutdown", None)
        if callable(shutdown):
            shutdown()


def check_sampling(sampling: dict[str, Any]) -> None:
    unknown = set(sampling) - SAMPLING_KEYS
    if unknown:
        raise TripleGenError(
            f"sampling option(s) {sorted(unknown)} are not supported by the vllm backend "
            f"(supported: {sorted(SAMPLING_KEYS)})"
        )


def run_chat(llm, conversations: list[list[dict]], specs: list[dict[str, Any]], schemas: list[dict],
             on_finished=None) -> list[Completion]:
    """Completions from one engine; `specs` are plain sampling dicts (seed included) and `schemas`
    the JSON schema of each answer, so the same function serves the in-process engine and the
    data-parallel replica processes. `on_finished(n)` is called as n more requests finish."""
    vllm, structured_cls = import_vllm()
    refused = _request_errors()
    params = [vllm.SamplingParams(**spec, structured_outputs=structured_cls(json=schema))
              for spec, schema in zip(specs, schemas)]
    try:
        outputs = _engine_call(llm, conversations, params, refused, on_finished)
    except refused:
        # vLLM validates the whole batch up front (e.g. a prompt longer than max_model_len)
        # and refuses all of it; submit one by one so only the offending rows fail.
        return [_run_one(llm, c, p, refused, on_finished) for c, p in zip(conversations, params)]
    return [_completion(output) for output in outputs]


def _engine_call(llm, conversations, params, refused, on_finished=None):
    """The engine's outputs; anything but a request refusal means the engine itself failed."""
    try:
        return _watched_chat(llm, conversations, params, on_finished)
    except (*refused, BackendUnavailable):
        raise
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        raise BackendUnavailable(f"{type(exc).__name__}: {first}".rstrip(": ")) from exc


def _run_one(llm, conversation, params, refused, on_finished=None) -> Completion:
    try:
        (output,) = _engine_call(llm, [conversation], [params], refused, on_finished)
    except refused as exc:
        if on_finished is not None:
            on_finished(1)
        return Completion(text=None, finish_reason=None, error=f"vllm refused: {exc}")
    return _completion(output)


def _completion(output) -> Completion:
    best = output.outputs[0]
    cached = getattr(output, "num_cached_tokens", None)
    return Completion(
        text=best.text,
        finish_reason=best.finish_reason,
        prompt_tokens=len(output.prompt_token_ids or ()),
        completion_tokens=len(best.token_ids or ()),
        cached_tokens=cached if isinstance(cached, int) else None,
    )


def prefix_caching(llm) -> bool | None:
    """Whether the engine reuses the KV cache of shared prompt prefixes (None: cannot tell)."""
    config = getattr(getattr(llm, "llm_engine", None), "vllm_config", None)
    enabled = getattr(getattr(config, "cache_config", None), "enable_prefix_caching", None)
    return enabled if isinstance(enabled, bool) else None


class VllmBackend:
    """Raw JSON text from in-process vLLM (one engine, or replicas for data parallelism)."""

    name = "vllm"
    deterministic = False
    needs_messages = True  # chat messages rendered from the prompt template

    def __init__(self, options: BackendOptions, output_schema: dict, llm=None):
        """`options.engine_log` is where the engine's own output goes (None: the terminal); `llm`, an
        engine already loaded (a benchmark's), is used as it is."""
        if not options.model:
            raise TripleGenError("the vllm backend needs --model NAME_OR_PATH")
        import_vllm()
        self.model = options.model
        self.schema = output_schema
        self.stats = BackendStats()
        self.log_file = options.engine_log if llm is None else None
        self._engine = llm if llm is not None else shared_engine(options.model, options.engine, self.log_file)

    def generate(self, requests: list[Request], sampling: dict[str, Any]) -> list[Completion]:
        if not requests:
            return []
        check_sampling(sampling)
        conversations = [r.messages for r in requests]
        specs = [{**sampling, "seed": r.seed} for r in requests]
        schemas = [r.schema or self.schema for r in requests]
        before = self.stats.requests, self.stats.answered_rows
        try:
            if isinstance(self._engine, ReplicaPool):
                completions = self._engine.chat(conversations, specs, schemas)
            else:
                completions = run_chat(self._engine, conversations, specs, schemas,
                                       on_finished=functools.partial(self.stats.finished, requests))
        except BackendUnavailable as exc:
            release_engines(only=self._engine)  # never reused by a later run in this process
            raise BackendUnavailable(f"the vLLM engine for {self.model} failed: {exc}") from None
        # the live counts were estimates (and replicas report none): the exact ones now
        self.stats.requests, self.stats.answered_rows = before
        self.stats.finished(requests)
        self.stats.server_errors += sum(c.text is None for c in completions)
        self.stats.prompt_tokens += sum(c.prompt_tokens for c in completions)
        self.stats.completion_tokens += sum(c.completion_tokens for c in completions)
        self.stats.cached_tokens += sum(c.cached_tokens or 0 for c in completions)
        return completions

    @property
    def prefix_caching(self) -> bool | None:
        return None if isinstance(self._engine, ReplicaPool) else prefix_caching(self._engine)

    def check_schema(self, schema: dict) -> str | None:
        """Whether the engine takes `schema` (one token is generated; xgrammar parses it first)."""
        request = Request(key="schema-probe", caption="", seed=0,
                          messages=[{"role": "user", "content": "Describe a photo of a dog."}], schema=schema)
        (completion,) = self.generate([request], {"max_tokens": 1, "temperature": 0.0})
        return completion.error

    def close(self) -> None:
        """Keep the shared engine loaded; `release_engines()` frees it."""
