"""The in-process vLLM backend: one `vllm.LLM` per process, whole chunks submitted per call.

vLLM schedules and batches the requests of one `LLM.chat` call itself, so the pipeline hands over a
whole chunk and gets the chunk back; the JSON schema is enforced by vLLM's structured-output
decoding, so a well-behaved model can only write text of the template's shape.
"""

from __future__ import annotations

import logging
from typing import Any

from triplegen.backends.base import BackendStats, Completion, Request
from triplegen.config import EngineOptions, GenerateConfig
from triplegen.errors import MissingExtraError, TripleGenError

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

# An engine takes from seconds to minutes to load, so a process that runs several generate calls
# with the same model and options (a notebook, a test session) loads it once.
_ENGINES: dict[tuple, Any] = {}


def _import_vllm():
    try:
        import vllm
        from vllm.sampling_params import StructuredOutputsParams
    except ImportError:
        raise MissingExtraError("the vllm backend", "vllm", "vllm") from None
    return vllm, StructuredOutputsParams


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
        "gpu_memory_utilization": options.gpu_memory_utilization,
        "enforce_eager": options.enforce_eager,
        "seed": options.seed,
    }
    if options.max_model_len is not None:
        kwargs["max_model_len"] = options.max_model_len
    return kwargs


def shared_engine(model: str, options: EngineOptions):
    """The process's `vllm.LLM` for this model and these options, created on first use."""
    vllm, _ = _import_vllm()
    if options.data_parallel_size > 1:
        # vLLM refuses LLM(data_parallel_size>1) in one process ("may hang"); its supported path
        # is one server started with --data-parallel-size, which the openai backend drives.
        raise TripleGenError(
            f"--data-parallel-size {options.data_parallel_size} needs a vLLM server: start "
            f"`vllm serve {model} --data-parallel-size {options.data_parallel_size}` and pass "
            "--base-url http://HOST:8000/v1 (docs/llm-backends.md)"
        )
    kwargs = engine_kwargs(model, options)
    key = tuple(sorted(kwargs.items()))
    if key not in _ENGINES:
        log.info("loading vLLM engine for %s", model)
        try:
            _ENGINES[key] = vllm.LLM(**kwargs)
        except (OSError, ValueError) as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise TripleGenError(f"vLLM could not load model {model!r}: {first_line}") from exc
    return _ENGINES[key]


def release_engines() -> None:
    """Drop the cached engines so their memory (GPU and KV cache) is freed."""
    for llm in _ENGINES.values():
        engine = getattr(llm, "llm_engine", None)
        shutdown = getattr(getattr(engine, "engine_core", None), "shutdown", None)
        if callable(shutdown):
            shutdown()
    _ENGINES.clear()


def sampling_params(
    request: Request, sampling: dict[str, Any], schema: dict, structured_cls, params_cls
):
    """`SamplingParams` for one request: the template's sampling, the row's seed, the schema."""
    unknown = set(sampling) - SAMPLING_KEYS
    if unknown:
        raise TripleGenError(
            f"sampling option(s) {sorted(unknown)} are not supported by the vllm backend "
            f"(supported: {sorted(SAMPLING_KEYS)})"
        )
    return params_cls(
        **sampling,
        seed=request.seed,
        structured_outputs=structured_cls(json=schema),
    )


class VllmBackend:
    """Raw JSON text from an in-process vLLM engine, one completion per request."""

    name = "vllm"
    deterministic = False

    def __init__(self, config: GenerateConfig, output_schema: dict, llm=None):
        if not config.model:
            raise TripleGenError("the vllm backend needs --model NAME_OR_PATH")
        vllm, self._structured_cls = _import_vllm()
        self._params_cls = vllm.SamplingParams
        self.model = config.model
        self.schema = output_schema
        self.stats = BackendStats()
        self._llm = llm if llm is not None else shared_engine(config.model, config.engine)
        self._refused = _request_errors()

    def generate(self, requests: list[Request], sampling: dict[str, Any]) -> list[Completion]:
        if not requests:
            return []
        params = [
            sampling_params(r, sampling, self.schema, self._structured_cls, self._params_cls)
            for r in requests
        ]
        try:
            outputs = self._llm.chat([r.messages for r in requests], params, use_tqdm=False)
        except self._refused:
            # vLLM validates the whole batch up front (e.g. a prompt longer than max_model_len)
            # and refuses all of it; submit one by one so only the offending rows fail.
            return [self._one(request, p) for request, p in zip(requests, params)]
        return [self._completion(output) for output in outputs]

    def _one(self, request: Request, params) -> Completion:
        try:
            (output,) = self._llm.chat([request.messages], [params], use_tqdm=False)
        except self._refused as exc:
            self.stats.requests += 1
            self.stats.server_errors += 1
            return Completion(text=None, finish_reason=None, error=f"vllm refused: {exc}")
        return self._completion(output)

    def _completion(self, output) -> Completion:
        best = output.outputs[0]
        prompt_tokens = len(output.prompt_token_ids or ())
        completion_tokens = len(best.token_ids or ())
        self.stats.requests += 1
        self.stats.prompt_tokens += prompt_tokens
        self.stats.completion_tokens += completion_tokens
        return Completion(
            text=best.text,
            finish_reason=best.finish_reason,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
        )

    def close(self) -> None:
        """Keep the shared engine loaded; `release_engines()` frees it."""
