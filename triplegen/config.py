"""The typed configuration of a `triplegen generate` run (CLI flags and Python callers share it)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from triplegen.errors import TripleGenError
from triplegen.layout import engine_log, output_files

BackendName = Literal["auto", "rules", "vllm", "openai"]
ExecutorName = Literal["local", "ray"]


class Shard(BaseModel):
    """`--shard i/N`: this run handles the ids whose hash falls in bucket i of N (0-based)."""

    model_config = ConfigDict(frozen=True)

    index: int = Field(ge=0)
    count: int = Field(ge=1)

    @model_validator(mode="after")
    def _in_range(self) -> "Shard":
        if self.index >= self.count:
            raise ValueError(f"shard index {self.index} must be below the shard count {self.count}")
        return self

    @classmethod
    def parse(cls, text: str) -> "Shard":
        try:
            index, count = (int(part) for part in text.split("/"))
        except ValueError:
            raise TripleGenError(f"--shard must look like i/N (e.g. 3/8), got {text!r}") from None
        try:
            return cls(index=index, count=count)
        except ValueError as exc:
            raise TripleGenError(f"--shard {text}: index must be in 0..N-1") from exc

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


class EngineOptions(BaseModel):
    """Options passed through to `vllm.LLM` (in-process backend)."""

    tensor_parallel_size: int = 1
    data_parallel_size: int = 1
    dtype: str = "auto"
    max_model_len: int | None = None
    gpu_memory_utilization: float | None = None  # None: 0.9 on a GPU; on a CPU the KV cache is sized from free memory
    enforce_eager: bool = False
    seed: int = 0


class ServerOptions(BaseModel):
    """Options of the `openai` backend (any OpenAI-compatible server)."""

    base_urls: list[str] = Field(default_factory=list)
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = Field(default=64, ge=1)
    timeout_s: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=5, ge=0)  # transport retries per request (429/5xx/timeouts)
    check_schema: bool = True  # refuse servers that ignore response_format
    backoff_s: float = Field(default=0.5, ge=0)  # first retry delay; doubles per retry, jittered
    max_backoff_s: float = Field(default=30.0, ge=0)
    breaker_failures: int = Field(default=5, ge=1)  # consecutive failures that rest a server
    breaker_cooldown_s: float = Field(default=30.0, ge=0)  # how long it rests
    # When every server has failed for this long (or this many requests in a row), the run stops:
    # an outage is not a reason to reject rows (the rerun of the same command resumes).
    max_outage_s: float = Field(default=30.0, gt=0)
    max_outage_failures: int | None = Field(default=None, ge=1)
    # A server that refuses this many requests in a row (HTTP 400/413/422), none answered between them,
    # is set up wrong for the run (e.g. a context shorter than the prompt): the run stops, nothing rejected.
    max_refusals_in_a_row: int = Field(default=16, ge=1)


class RayOptions(BaseModel):
    """Where and how `--executor ray` runs: the cluster and what each worker (one backend) holds."""

    model_config = ConfigDict(extra="forbid")

    address: str | None = None  # None: RAY_ADDRESS, else a new local cluster; "auto": this node's cluster
    workers: int | None = Field(default=None, ge=1)  # None: as many as the cluster's CPUs/GPUs hold
    cpus_per_worker: float = Field(default=1.0, ge=0)
    gpus_per_worker: float | None = Field(default=None, ge=0)  # None: tensor_parallel_size for vllm, else 0
    chunk_tries: int = Field(default=3, ge=1)  # times a chunk is started before a lost worker stops the run


class BackendOptions(BaseModel):
    """What the run's backends are built from: the generating one (`name`, resolved from `auto`) and
    the optional LLM judge's model or server. A Ray worker gets these, with its share of the
    concurrency, instead of the whole run config; the judge's own are `judge()`."""

    model_config = ConfigDict(frozen=True)

    name: Literal["rules", "vllm", "openai"]
    model: str | None = None
    engine: EngineOptions = Field(default_factory=EngineOptions)
    server: ServerOptions = Field(default_factory=ServerOptions)
    seed: int = 0
    engine_log: Path | None = None  # where an in-process engine's output goes; None: the terminal
    judge_model: str | None = None
    judge_base_url: str | None = None

    def resolved_backend(self) -> str:
        return self.name

    def judge(self) -> "BackendOptions":
        """The judge's backend: the openai one at `--judge-base-url`, else in-process vLLM."""
        if self.judge_base_url is not None:
            server = self.server.model_copy(update={"base_urls": [self.judge_base_url]})
            return self.model_copy(update={"name": "openai", "model": self.judge_model, "server": server,
                                           "judge_model": None, "judge_base_url": None})
        return self.model_copy(update={"name": "vllm", "model": self.judge_model, "judge_model": None})

    def with_concurrency(self, concurrency: int) -> "BackendOptions":
        return self.model_copy(update={"server": self.server.model_copy(update={"concurrency": concurrency})})


class GenerateConfig(BaseModel):
    """Everything that defines a generate run; saved into the output's Parquet metadata."""

    model_config = ConfigDict(extra="forbid")

    input: Path
    output: Path  # the triples Parquet; a folder given as -o becomes <folder>/triples.parquet (triplegen.layout)
    rejects: Path | None = None  # default: <folder>/rejects.parquet, or <output stem>.rejects.parquet
    caption_col: str = "caption"
    image_col: str | None = "image"  # carried through when present
    id_col: str | None = None  # default: "id" when present, else a hash of image + caption
    objects_col: str = "objects"  # object labels per image (a list, or JSON / comma-separated text)
    absent_objects: int = Field(default=0, ge=0)  # absent-object rows per input row that has objects
    absent_prompt: str = "absent"  # the template that writes them (LLM backends)
    cooccurrence: Path | None = None  # label co-occurrence table (triplegen coco --cooccurrence) for them
    object_synonyms: Path | None = None  # label -> words that name it, beside the built-in COCO table (triplegen.synonyms)
    prompt: str = "default"  # a template name from prompts/ or a path to a YAML file
    backend: BackendName = "auto"  # auto: vllm with --model, openai with --base-url, else rules
    model: str | None = None
    engine: EngineOptions = Field(default_factory=EngineOptions)
    server: ServerOptions = Field(default_factory=ServerOptions)
    temperature: float | None = None  # None: the template's sampling default
    max_tokens: int | None = None
    max_attempts: int = Field(default=3, ge=1)
    retry_temperature: float = Field(default=1.0, ge=0, le=2)  # retries sample at least this hot
    seed: int = 0
    chunk_size: int = Field(default=2048, ge=1)  # rows per checkpointed chunk
    shard: Shard | None = None
    executor: ExecutorName = "local"  # "ray": chunks spread over the workers of a Ray cluster
    ray: RayOptions = Field(default_factory=RayOptions)
    limit: int | None = Field(default=None, ge=1)
    semantic_check: bool = False
    judge_model: str | None = None  # a second call per accepted row gives a verdict (triplegen.llm_judge)
    judge_base_url: str | None = None  # the judge is served there (else in-process vLLM)
    judge_prompt: str = "judge"
    blind_model: str | None = None  # a causal LM folder that scores the texts without the image (triplegen.blind)
    # polarity: each caption's own schema builds the negation's polarity in (triplegen.constraints)
    constrain: Literal["polarity", "none"] = "polarity"
    overwrite: bool = False
    # give the rows an older run rejected as backend_error (e.g. while its server was down) another try
    retry_backend_errors: bool = False
    quiet: bool = False
    verbose: bool = False  # the vLLM engine's own output on the terminal instead of a log file
    license: str = "unknown"  # the dataset card's license field (the captions' licence decides it)

    @model_validator(mode="before")
    @classmethod
    def _dataset_folder(cls, values):
        """`-o out/coco` is a Hub-style dataset folder: triples.parquet and rejects.parquet inside it."""
        if isinstance(values, dict) and values.get("output") is not None:
            triples, rejects = output_files(Path(values["output"]), values.get("rejects"))
            values = {**values, "output": triples, "rejects": rejects}
        return values

    @field_validator("shard", mode="before")
    @classmethod
    def _parse_shard(cls, value):
        return Shard.parse(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_engine_per_ray_worker(self) -> "GenerateConfig":
        if self.executor == "ray" and self.engine.data_parallel_size > 1:
            # raised as itself (pydantic wraps only ValueError), so the CLI prints this one line
            raise TripleGenError("--data-parallel-size starts engine replicas inside one process; with "
                                 "--executor ray each worker is one engine: use --ray-workers instead")
        return self

    @property
    def rejects_path(self) -> Path:
        return self.rejects or output_files(self.output)[1]

    @property
    def engine_log(self) -> Path | None:
        """Where an in-process vLLM engine's output goes (triplegen.layout); None with --verbose."""
        return None if self.verbose else engine_log(self.output, self.rejects_path)

    def backend_options(self) -> BackendOptions:
        return BackendOptions(name=self.resolved_backend(), model=self.model, engine=self.engine, server=self.server,
                              seed=self.seed, engine_log=self.engine_log, judge_model=self.judge_model,
                              judge_base_url=self.judge_base_url)

    @property
    def judging(self) -> bool:
        return self.judge_model is not None or self.judge_base_url is not None

    def resolved_backend(self) -> str:
        if self.backend != "auto":
            return self.backend
        if self.server.base_urls:
            return "openai"
        if self.model:
            return "vllm"
        return "rules"
