"""The typed configuration of a `triplegen generate` run (CLI flags and Python callers share it)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from triplegen.errors import TripleGenError
from triplegen.io.layout import engine_log, output_files

BackendName = Literal["auto", "rules", "vllm", "openai"]
ExecutorName = Literal["local", "ray"]
# the dtypes --dtype offers; a Python caller may pass any that vLLM knows
Dtype = Literal["auto", "float32", "float16", "bfloat16"]
ConstrainName = Literal["polarity", "none"]


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

    tensor_parallel_size: int = Field(default=1, ge=1, description="GPUs that split one model (vLLM tensor parallelism).")
    data_parallel_size: int = Field(default=1, ge=1, description=(
        "Model replicas on this node, each with --tensor-parallel-size GPUs."))
    dtype: str = Field(default="auto", description=(
        "Weights and activations (auto: vLLM's choice, the model's own except float32 models, which run in "
        "bfloat16, on a CPU too)."))
    max_model_len: int | None = Field(default=None, ge=1, description=(
        "Longest prompt + answer in tokens (default: the model's; lower it to fit memory)."))
    gpu_memory_utilization: float | None = Field(default=None, ge=0.05, le=1.0, description=(
        "Share of each GPU's memory vLLM may take (weights + KV cache; default 0.9). On a CPU, without it or "
        "VLLM_CPU_KVCACHE_SPACE, the KV cache is sized from free memory."))
    enforce_eager: bool = Field(default=False, description="Disable CUDA graphs (faster start).")
    seed: int = 0  # the run's --seed


class ServerOptions(BaseModel):
    """Options of the `openai` backend (any OpenAI-compatible server)."""

    base_urls: list[str] = Field(default_factory=list, description=(
        "OpenAI-compatible server, e.g. http://gpu1:8000/v1; repeat for several."))
    api_key_env: str = Field(default="OPENAI_API_KEY", description=(
        "Environment variable that holds the servers' API key."))
    concurrency: int = Field(default=64, ge=1, description=(
        "Requests in flight per run (with --executor ray: shared evenly by the workers)."))
    timeout_s: float = Field(default=120.0, gt=0, description="Seconds one request may take before it is retried.")
    max_retries: int = Field(default=5, ge=0, description=(
        "Retries of one request after a transport error, 429 or 5xx (with backoff), before its row is rejected as "
        "backend_error."))
    check_schema: bool = True  # refuse servers that ignore response_format
    backoff_s: float = Field(default=0.5, ge=0)  # first retry delay; doubles per retry, jittered
    max_backoff_s: float = Field(default=30.0, ge=0)
    breaker_failures: int = Field(default=5, ge=1)  # consecutive failures that rest a server
    breaker_cooldown_s: float = Field(default=30.0, ge=0)  # how long it rests
    # When every server has failed for this long (or this many requests in a row), the run stops:
    # an outage is not a reason to reject rows (the rerun of the same command resumes).
    max_outage_s: float = Field(default=30.0, gt=0, description=(
        "Stop the run (exit code 3, finished chunks kept, nothing rejected) when every server has failed for this "
        "long; rerun the same command once it is back."))
    max_outage_failures: int | None = Field(default=None, ge=1, description=(
        "Also stop after this many failed requests in a row (all servers)."))
    # A server that refuses this many requests in a row (HTTP 400/413/422), none answered between them,
    # is set up wrong for the run (e.g. a context shorter than the prompt): the run stops, nothing rejected.
    max_refusals_in_a_row: int = Field(default=16, ge=1)


class RayOptions(BaseModel):
    """Where and how `--executor ray` runs: the cluster and what each worker (one backend) holds."""

    model_config = ConfigDict(extra="forbid")

    address: str | None = Field(default=None, description=(
        "Ray head HOST:PORT, or 'auto' for the cluster of this node (default: RAY_ADDRESS, else a new local "
        "cluster)."))
    workers: int | None = Field(default=None, ge=1, description=(
        "Workers, each with its own backend (default: as many as the cluster's CPUs/GPUs hold)."))
    cpus_per_worker: float = Field(default=1.0, ge=0, description="CPUs per worker.")
    gpus_per_worker: float | None = Field(default=None, ge=0, description=(
        "GPUs per worker, i.e. per vLLM engine (default: --tensor-parallel-size for vllm, else 0)."))
    chunk_tries: int = Field(default=3, ge=1, description=(
        "Workers a chunk may lose (dead process or node) before the run stops."))


class BackendOptions(BaseModel):
    """What the run's backends are built from (`triplegen.backends.make_backend`), never the whole run
    config: the generating one (`name`, resolved from `auto`), the log path of an in-process engine,
    and the optional LLM judge's model or server. A Ray worker gets these, with its share of the
    concurrency; the judge's own are `judge()`."""

    model_config = ConfigDict(frozen=True)

    name: Literal["rules", "vllm", "openai"]
    model: str | None = None
    engine: EngineOptions = Field(default_factory=EngineOptions)
    server: ServerOptions = Field(default_factory=ServerOptions)
    seed: int = 0
    engine_log: Path | None = None  # where an in-process engine's output goes; None: the terminal
    judge_model: str | None = None
    judge_base_url: str | None = None

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

    input: Path = Field(description="Captions: .parquet, .csv (UTF-8), .jsonl, or a folder of .parquet files.")
    # the triples Parquet; a folder given as -o becomes <folder>/triples.parquet (triplegen.io.layout)
    output: Path = Field(description=(
        "Dataset folder (a missing folder is created) with triples.parquet, rejects.parquet and a README.md card "
        "that load_dataset reads, or a file ending in .parquet (rejects in <stem>.rejects.parquet)."))
    rejects: Path | None = Field(default=None, description="Rejects file (default: beside the triples, see --output).")
    caption_col: str = Field(default="caption", description="Column with the caption.")
    image_col: str | None = Field(default="image", description=(  # carried through when present
        "Column with the image (path, URL or {bytes, path}); may be absent unless you name another one."))
    id_col: str | None = Field(default=None, description=(
        "Column with unique row ids (default: 'id' if present, else a hash of image + caption)."))
    objects_col: str = Field(default="objects", description=(
        "Column with the object labels of each image (a list, or JSON / comma-separated text); used by "
        "--absent-objects."))
    absent_objects: int = Field(default=0, ge=0, description=(
        "Also write up to K rows per caption whose caption is true and denies an object the image lacks (chosen "
        "among the labels of the input), with a paraphrase and a false version."))
    absent_prompt: str = Field(default="absent", description=(
        "Template of the absent-object rows for LLM backends (task: absent)."))
    cooccurrence: Path | None = Field(default=None, description=(
        "Label co-occurrence table (triplegen coco ... --cooccurrence FILE) that decides which absent objects fit a "
        "scene, for labels it knows; the input's own labels for the rest."))
    object_synonyms: Path | None = Field(default=None, description=(  # beside the built-in table (triplegen.rules.object_names)
        "YAML or JSON of label -> words that name it (or -> {words, groups, except, say, mass}), for labels beyond "
        "COCO's 80 or other words for them; absent-object rows and their checks read object mentions through it "
        "(built-in: COCO's categories)."))
    prompt: str = Field(default="default", description="Prompt template name (triplegen prompts list) or YAML path.")
    backend: BackendName = Field(default="auto", description=(
        "auto: vllm with --model, openai with --base-url, else the built-in rules generator."))
    model: str | None = Field(default=None, description=(
        "Model name or local folder (vllm) or served model name (openai)."))
    engine: EngineOptions = Field(default_factory=EngineOptions)
    server: ServerOptions = Field(default_factory=ServerOptions)
    temperature: float | None = Field(default=None, description="Override the template's temperature.")
    max_tokens: int | None = Field(default=None, ge=1, description="Override the template's max_tokens.")
    max_attempts: int = Field(default=3, ge=1, description="Tries per caption before it is rejected.")
    retry_temperature: float = Field(default=1.0, ge=0, le=2, description=(
        "Retries sample at least this hot (a cold retry repeats the mistake); 0 keeps the template's temperature."))
    seed: int = Field(default=0, description="Run seed; each row's seed derives from it.")
    chunk_size: int = Field(default=2048, ge=1, description="Rows per checkpointed chunk.")
    shard: Shard | None = Field(default=None, description="Handle only shard i of N (e.g. 3/8), split by id hash.")
    executor: ExecutorName = Field(default="local", description=(
        "local: this process; ray: the workers of a Ray cluster (pip install 'semclip[ray]')."))
    ray: RayOptions = Field(default_factory=RayOptions)
    limit: int | None = Field(default=None, ge=1, description="Only the first N rows (of this shard).")
    semantic_check: bool = Field(default=False, description=(
        "Also check sentence-embedding similarity (needs the 'semantic' extra)."))
    judge_model: str | None = Field(default=None, description=(  # a second call per accepted row (checks.llm_judge)
        "Also ask this model (in-process vLLM, or the one served at --judge-base-url) whether each accepted row's "
        "paraphrase keeps the meaning and its negation is false; rows it fails go to the rejects with judge_* "
        "reasons."))
    judge_base_url: str | None = Field(default=None, description="OpenAI-compatible server of the judge model.")
    judge_prompt: str = Field(default="judge", description="Template of the judge (task: judge).")
    blind_model: str | None = Field(default=None, description=(  # scored without the image (triplegen.checks.blind)
        "Folder of a small causal LM (e.g. from `triplegen prepare-smollm2 models/smollm2`) that scores the texts "
        "without the image: rows whose negation it finds far less likely than the caption (blind_detectable), or "
        "whose new caption far less fluent than its source (blind_disfluent), fail; needs the 'blind' extra."))
    # polarity: each caption's own schema builds the negation's polarity in (triplegen.checks.constraints)
    constrain: ConstrainName = Field(default="polarity", description=(
        "polarity: each caption's own JSON schema builds the negation's polarity in (LLM backends); none: the "
        "template's schema only."))
    overwrite: bool = Field(default=False, description=(
        "Replace an existing output and discard an unfinished run's parts (otherwise the same command resumes)."))
    retry_backend_errors: bool = Field(default=False, description=(
        "Generate again the rows an earlier run rejected as backend_error (e.g. while its server was down); the "
        "output and rejects are updated."))
    quiet: bool = Field(default=False, description=(
        "No progress bar, progress lines or notices; errors still go to stderr."))
    verbose: bool = Field(default=False, description=(
        "Show the vLLM engine's own output here instead of writing it to <output>.vllm.log."))
    license: str = Field(default="unknown", description=(
        "License of the dataset card (a Hub license id such as cc-by-4.0; the captions' license decides it)."))

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
        """Where an in-process vLLM engine's output goes (triplegen.io.layout); None with --verbose."""
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
