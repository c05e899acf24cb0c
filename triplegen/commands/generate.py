"""`triplegen generate`: a thin layer that builds a GenerateConfig and calls `triplegen.orchestration.run.generate`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from semclip_core.field_options import choices, field_argument, field_option, given
from triplegen.commands.options import build
from triplegen.config import (
    BackendName, ConstrainName, Dtype, EngineOptions, ExecutorName, GenerateConfig, RayOptions, ServerOptions,
)

EXAMPLES = """\
Examples:

  triplegen generate examples/captions.parquet -o out/example          (a dataset folder: load_dataset("out/example"))

  triplegen generate caps.csv -o t.parquet --caption-col text --id-col key --limit 1000

  triplegen generate caps.parquet -o t.parquet --model Qwen/Qwen2.5-7B-Instruct --data-parallel-size 8

  triplegen generate caps.parquet -o part3.parquet --shard 3/8 --base-url http://gpu1:8000/v1

  triplegen generate caps.parquet -o t.parquet --model Qwen/Qwen2.5-7B-Instruct --executor ray --ray-address auto
  (one engine per GPU of the Ray cluster this node belongs to; chunks go to whichever worker is free)

  triplegen generate coco_captions.parquet -o t.parquet --absent-objects 1
  (also writes, per caption with object labels, a TRUE caption that denies an object the image lacks)

  triplegen generate caps.parquet -o t.parquet --blind-model models/smollm2
  (rejects rows a text-only LM tells apart without the image; the card says how often it prefers the caption)

A killed run resumes when the same command is run again; a finished one is left as it is (exit 0),
unless the input or the settings changed (refused without --overwrite). When the server (or the engine) fails
for longer than --max-outage-s, the run stops with exit code 3 and no row rejected for it; the same
command resumes it once the server is back.
"""


INPUT, OUTPUT, MODEL, SERVER = "Input", "Output", "Model (and the vLLM engine of --backend vllm)", "Server (--backend openai)"
GENERATION, CHECKS, RUN = "Generation", "Checks", "Run (and the Ray cluster of --executor ray)"
BackendChoice = choices("BackendChoice", BackendName)
DtypeChoice = choices("DtypeChoice", Dtype)
ConstrainChoice = choices("ConstrainChoice", ConstrainName)
ExecutorChoice = choices("ExecutorChoice", ExecutorName)
# the sections of a GenerateConfig that have options of their own (each option names one field)
SECTIONS = {"engine": EngineOptions, "server": ServerOptions, "ray": RayOptions}


def _run(field: str, panel: str, *names: str, **click):
    return field_option(GenerateConfig, field, *names, panel=panel, parse_range=True, **click)


def _engine(field: str, *names: str, **click):
    return field_option(EngineOptions, field, *names, panel=MODEL, parse_range=True, **click)


def _server(field: str, *names: str, **click):
    return field_option(ServerOptions, field, *names, panel=SERVER, parse_range=True, **click)


def _ray(field: str, **click):
    return field_option(RayOptions, field, f"--ray-{field.replace('_', '-')}", panel=RUN, parse_range=True, **click)


def generate(
    ctx: typer.Context,
    input: Annotated[Path, field_argument(GenerateConfig, "input")],
    output: Annotated[Path, _run("output", OUTPUT, "--output", "-o")],
    rejects: Annotated[Path | None, _run("rejects", OUTPUT)] = None,
    license: Annotated[str | None, _run("license", OUTPUT)] = None,
    overwrite: Annotated[bool | None, _run("overwrite", OUTPUT, "--overwrite")] = None,
    caption_col: Annotated[str | None, _run("caption_col", INPUT)] = None,
    image_col: Annotated[str | None, _run("image_col", INPUT)] = None,
    id_col: Annotated[str | None, _run("id_col", INPUT)] = None,
    objects_col: Annotated[str | None, _run("objects_col", INPUT)] = None,
    shard: Annotated[str | None, _run("shard", INPUT)] = None,
    limit: Annotated[int | None, _run("limit", INPUT)] = None,
    backend: Annotated[BackendChoice | None, _run("backend", MODEL)] = None,
    model: Annotated[str | None, _run("model", MODEL, "--model", "-m")] = None,
    tensor_parallel_size: Annotated[int | None, _engine("tensor_parallel_size")] = None,
    data_parallel_size: Annotated[int | None, _engine("data_parallel_size")] = None,
    dtype: Annotated[DtypeChoice | None, _engine("dtype")] = None,
    max_model_len: Annotated[int | None, _engine("max_model_len")] = None,
    gpu_memory_utilization: Annotated[float | None, _engine("gpu_memory_utilization")] = None,
    enforce_eager: Annotated[bool | None, _engine("enforce_eager", "--enforce-eager/--no-enforce-eager")] = None,
    verbose: Annotated[bool | None, _run("verbose", MODEL, "--verbose")] = None,
    base_urls: Annotated[list[str] | None, _server("base_urls", "--base-url")] = None,
    concurrency: Annotated[int | None, _server("concurrency")] = None,
    api_key_env: Annotated[str | None, _server("api_key_env")] = None,
    timeout_s: Annotated[float | None, _server("timeout_s", "--timeout", min=0.1)] = None,
    max_retries: Annotated[int | None, _server("max_retries")] = None,
    max_outage_s: Annotated[float | None, _server("max_outage_s", min=0.1)] = None,
    max_outage_failures: Annotated[int | None, _server("max_outage_failures")] = None,
    prompt: Annotated[str | None, _run("prompt", GENERATION)] = None,
    temperature: Annotated[float | None, _run("temperature", GENERATION)] = None,
    max_tokens: Annotated[int | None, _run("max_tokens", GENERATION)] = None,
    max_attempts: Annotated[int | None, _run("max_attempts", GENERATION)] = None,
    retry_temperature: Annotated[float | None, _run("retry_temperature", GENERATION)] = None,
    seed: Annotated[int | None, _run("seed", GENERATION)] = None,
    constrain: Annotated[ConstrainChoice | None, _run("constrain", GENERATION)] = None,
    absent_objects: Annotated[int | None, _run("absent_objects", GENERATION)] = None,
    absent_prompt: Annotated[str | None, _run("absent_prompt", GENERATION)] = None,
    cooccurrence: Annotated[Path | None, _run("cooccurrence", GENERATION)] = None,
    object_synonyms: Annotated[Path | None, _run("object_synonyms", GENERATION, "--object-synonyms",
                                                 metavar="FILE")] = None,
    semantic_check: Annotated[bool | None, _run("semantic_check", CHECKS, "--semantic-check")] = None,
    judge_model: Annotated[str | None, _run("judge_model", CHECKS)] = None,
    judge_base_url: Annotated[str | None, _run("judge_base_url", CHECKS)] = None,
    judge_prompt: Annotated[str | None, _run("judge_prompt", CHECKS)] = None,
    blind_model: Annotated[str | None, _run("blind_model", CHECKS, "--blind-model", metavar="DIR")] = None,
    chunk_size: Annotated[int | None, _run("chunk_size", RUN)] = None,
    retry_backend_errors: Annotated[bool | None, _run("retry_backend_errors", RUN, "--retry-backend-errors")] = None,
    quiet: Annotated[bool | None, _run("quiet", RUN, "--quiet", "-q")] = None,
    executor: Annotated[ExecutorChoice | None, _run("executor", RUN)] = None,
    address: Annotated[str | None, _ray("address")] = None,
    workers: Annotated[int | None, _ray("workers")] = None,
    gpus_per_worker: Annotated[float | None, _ray("gpus_per_worker")] = None,
    cpus_per_worker: Annotated[float | None, _ray("cpus_per_worker")] = None,
    chunk_tries: Annotated[int | None, _ray("chunk_tries")] = None,
) -> None:
    """Turn captions into (caption, paraphrase, negation) triples, checked, in a Parquet file."""
    from triplegen.orchestration.run import generate as run_generate

    config = build_generate_config(given(ctx))
    try:
        summary = run_generate(config)
    except KeyboardInterrupt:
        typer.echo("interrupted: finished chunks are kept; run the same command again to resume", err=True)
        raise typer.Exit(130) from None
    done = " already complete (same input and settings), nothing rewritten;" if summary.complete else ""
    typer.echo(
        f"{summary.output}:{done} {summary.accepted:,} accepted, {summary.rejected:,} rejected ({summary.rejects}); "
        f"backend {summary.backend}; card {summary.card}"
    )




def build_generate_config(options: dict) -> GenerateConfig:
    """The run's config from the options given: each goes to the section whose field it names
    (`--timeout` is `server.timeout_s`); the engine samples with the run's seed."""
    sections = {name: {field: options.pop(field) for field in list(options)
                       if field in model.model_fields and field not in GenerateConfig.model_fields}
                for name, model in SECTIONS.items()}
    sections["engine"]["seed"] = options.get("seed", GenerateConfig.model_fields["seed"].default)
    built = {name: build(SECTIONS[name], **values) for name, values in sections.items()}
    return build(GenerateConfig, **options, **built)
