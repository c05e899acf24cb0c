"""`triplegen generate`: a thin layer that builds a GenerateConfig and calls `triplegen.run.generate`."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from triplegen.commands.options import (
    ENGINE, RAY, SERVER, BackendChoice, BaseUrl, BlindModel, Dtype, ExecutorChoice, Model, ObjectSynonyms, Quiet,
    SemanticCheck,
    build,
)
from triplegen.config import EngineOptions, GenerateConfig, RayOptions, ServerOptions

INPUT = "Input"
RUN = "Run"


class Constrain(str, Enum):
    polarity = "polarity"
    none = "none"


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


def generate(
    input: Annotated[Path, typer.Argument(help="Captions: .parquet, .csv (UTF-8), .jsonl, or a folder of .parquet files.",
                                          show_default=False)],
    output: Annotated[Path, typer.Option(
        "--output", "-o", show_default=False,
        help="Dataset folder (triples.parquet, rejects.parquet and a README.md card that load_dataset reads), or a "
             "file ending in .parquet (rejects in <stem>.rejects.parquet); a missing folder is created.")],
    rejects: Annotated[Path | None, typer.Option(help="Rejects file (default: beside the triples, see --output).",
                                                 show_default=False)] = None,
    license: Annotated[str, typer.Option(help="License of the dataset card (a Hub license id such as cc-by-4.0; "
                                              "the captions' license decides it).")] = "unknown",
    caption_col: Annotated[str, typer.Option(help="Column with the caption.", rich_help_panel=INPUT)] = "caption",
    image_col: Annotated[str, typer.Option(
        help="Column with the image (path, URL or {bytes, path}); may be absent unless you name another one.",
        rich_help_panel=INPUT)] = "image",
    id_col: Annotated[str | None, typer.Option(
        help="Column with unique row ids (default: 'id' if present, else a hash of image + caption).",
        rich_help_panel=INPUT, show_default=False)] = None,
    objects_col: Annotated[str, typer.Option(
        help="Column with the object labels of each image (a list, or JSON / comma-separated text); "
             "used by --absent-objects.", rich_help_panel=INPUT)] = "objects",
    absent_objects: Annotated[int, typer.Option(
        min=0, help="Also write up to K rows per caption whose caption is true and denies an object the image "
                    "lacks (chosen among the labels of the input), with a paraphrase and a false version.",
        rich_help_panel=RUN)] = 0,
    absent_prompt: Annotated[str, typer.Option(
        help="Template of the absent-object rows for LLM backends (task: absent).", rich_help_panel=RUN)] = "absent",
    cooccurrence: Annotated[Path | None, typer.Option(
        help="Label co-occurrence table (triplegen coco ... --cooccurrence FILE) that decides which absent objects "
             "fit a scene, for labels it knows; the input's own labels for the rest.", rich_help_panel=RUN,
        show_default=False)] = None,
    object_synonyms: ObjectSynonyms = None,
    shard: Annotated[str | None, typer.Option(help="Handle only shard i of N (e.g. 3/8), split by id hash.",
                                              rich_help_panel=INPUT, show_default=False)] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N rows (of this shard).",
                                              rich_help_panel=INPUT, show_default=False)] = None,
    prompt: Annotated[str, typer.Option(help="Prompt template name (triplegen prompts list) or YAML path.")] = "default",
    backend: Annotated[BackendChoice, typer.Option(
        help="auto: vllm with --model, openai with --base-url, else the built-in rules generator.")] = BackendChoice.auto,
    model: Model = None,
    base_url: BaseUrl = None,
    concurrency: Annotated[int, typer.Option(
        min=1, help="Requests in flight per run (with --executor ray: shared evenly by the workers).",
        rich_help_panel=SERVER)] = 64,
    max_outage_s: Annotated[float, typer.Option(
        min=0.1, help="Stop the run (exit code 3, finished chunks kept, nothing rejected) when every server has "
                      "failed for this long; rerun the same command once it is back.", rich_help_panel=SERVER)] = 30.0,
    max_outage_failures: Annotated[int | None, typer.Option(
        min=1, help="Also stop after this many failed requests in a row (all servers).", rich_help_panel=SERVER,
        show_default=False)] = None,
    max_attempts: Annotated[int, typer.Option(min=1, help="Tries per caption before it is rejected.",
                                              rich_help_panel=RUN)] = 3,
    retry_temperature: Annotated[float, typer.Option(
        min=0.0, max=2.0, help="Retries sample at least this hot (a cold retry repeats the mistake); "
                               "0 keeps the template's temperature.", rich_help_panel=RUN)] = 1.0,
    seed: Annotated[int, typer.Option(help="Run seed; each row's seed derives from it.", rich_help_panel=RUN)] = 0,
    temperature: Annotated[float | None, typer.Option(help="Override the template's temperature.",
                                                      rich_help_panel=RUN, show_default=False)] = None,
    max_tokens: Annotated[int | None, typer.Option(min=1, help="Override the template's max_tokens.",
                                                   rich_help_panel=RUN, show_default=False)] = None,
    chunk_size: Annotated[int, typer.Option(min=1, help="Rows per checkpointed chunk.", rich_help_panel=RUN)] = 2048,
    semantic_check: SemanticCheck = False,
    constrain: Annotated[Constrain, typer.Option(
        help="polarity: each caption's own JSON schema builds the negation's polarity in (LLM backends); "
             "none: the template's schema only.", rich_help_panel=RUN)] = Constrain.polarity,
    judge_model: Annotated[str | None, typer.Option(
        help="Also ask this model (in-process vLLM, or the one served at --judge-base-url) whether each accepted "
             "row's paraphrase keeps the meaning and its negation is false; rows it fails go to the rejects "
             "with judge_* reasons.", rich_help_panel=RUN, show_default=False)] = None,
    judge_base_url: Annotated[str | None, typer.Option(
        help="OpenAI-compatible server of the judge model.", rich_help_panel=RUN, show_default=False)] = None,
    judge_prompt: Annotated[str, typer.Option(help="Template of the judge (task: judge).",
                                              rich_help_panel=RUN)] = "judge",
    blind_model: BlindModel = None,
    retry_backend_errors: Annotated[bool, typer.Option(
        "--retry-backend-errors", help="Generate again the rows an earlier run rejected as backend_error (e.g. "
                                       "while its server was down); the output and rejects are updated.",
        rich_help_panel=RUN)] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing output and discard an "
                                            "unfinished run's parts (otherwise the same command resumes).")] = False,
    quiet: Quiet = False,
    tensor_parallel_size: Annotated[int, typer.Option(
        min=1, help="GPUs that split one model (vLLM tensor parallelism).", rich_help_panel=ENGINE)] = 1,
    data_parallel_size: Annotated[int, typer.Option(
        min=1, help="Model replicas on this node, each with --tensor-parallel-size GPUs.", rich_help_panel=ENGINE)] = 1,
    dtype: Annotated[Dtype, typer.Option(help="Weights and activations (auto: vLLM's choice, the model's own "
                                              "except float32 models, which run in bfloat16, on a CPU too).",
                                         rich_help_panel=ENGINE)] = Dtype.auto,
    max_model_len: Annotated[int | None, typer.Option(
        min=1, help="Longest prompt + answer in tokens (default: the model's; lower it to fit memory).",
        rich_help_panel=ENGINE, show_default=False)] = None,
    gpu_memory_utilization: Annotated[float | None, typer.Option(
        min=0.05, max=1.0, help="Share of each GPU's memory vLLM may take (weights + KV cache; default 0.9). On a "
                                "CPU, without it or VLLM_CPU_KVCACHE_SPACE, the KV cache is sized from free memory.",
        rich_help_panel=ENGINE, show_default=False)] = None,
    enforce_eager: Annotated[bool, typer.Option(help="Disable CUDA graphs (faster start).",
                                                rich_help_panel=ENGINE)] = False,
    verbose: Annotated[bool, typer.Option(
        "--verbose", help="Show the vLLM engine's own output here instead of writing it to <output>.vllm.log.",
        rich_help_panel=ENGINE)] = False,
    api_key_env: Annotated[str, typer.Option(help="Environment variable that holds the servers' API key.",
                                             rich_help_panel=SERVER)] = "OPENAI_API_KEY",
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds one request may take before it is retried.",
                                           rich_help_panel=SERVER)] = 120.0,
    max_retries: Annotated[int, typer.Option(
        min=0, help="Retries of one request after a transport error, 429 or 5xx (with backoff), before its row "
                    "is rejected as backend_error.", rich_help_panel=SERVER)] = 5,
    executor: Annotated[ExecutorChoice, typer.Option(
        help="local: this process; ray: the workers of a Ray cluster (pip install 'semclip\\[ray]').",
        rich_help_panel=RAY)] = ExecutorChoice.local,
    ray_address: Annotated[str | None, typer.Option(
        help="Ray head HOST:PORT, or 'auto' for the cluster of this node (default: RAY_ADDRESS, else a new "
             "local cluster).", rich_help_panel=RAY, show_default=False)] = None,
    ray_workers: Annotated[int | None, typer.Option(
        min=1, help="Workers, each with its own backend (default: as many as the cluster's CPUs/GPUs hold).",
        rich_help_panel=RAY, show_default=False)] = None,
    ray_gpus_per_worker: Annotated[float | None, typer.Option(
        min=0, help="GPUs per worker, i.e. per vLLM engine (default: --tensor-parallel-size for vllm, else 0).",
        rich_help_panel=RAY, show_default=False)] = None,
    ray_cpus_per_worker: Annotated[float, typer.Option(min=0, help="CPUs per worker.", rich_help_panel=RAY)] = 1.0,
    ray_chunk_tries: Annotated[int, typer.Option(
        min=1, help="Workers a chunk may lose (dead process or node) before the run stops.",
        rich_help_panel=RAY)] = 3,
) -> None:
    """Turn captions into (caption, paraphrase, negation) triples, checked, in a Parquet file."""
    from triplegen.run import generate as run_generate

    config = build(
        GenerateConfig,
        input=input, output=output, rejects=rejects, caption_col=caption_col, image_col=image_col, id_col=id_col,
        objects_col=objects_col, absent_objects=absent_objects, absent_prompt=absent_prompt,
        cooccurrence=cooccurrence, object_synonyms=object_synonyms,
        prompt=prompt, backend=backend.value, model=model, temperature=temperature, max_tokens=max_tokens,
        max_attempts=max_attempts, retry_temperature=retry_temperature, seed=seed, chunk_size=chunk_size, shard=shard, limit=limit,
        semantic_check=semantic_check, constrain=constrain.value, judge_model=judge_model,
        judge_base_url=judge_base_url, judge_prompt=judge_prompt, blind_model=blind_model, overwrite=overwrite,
        quiet=quiet,
        retry_backend_errors=retry_backend_errors, license=license, verbose=verbose,
        engine=build(EngineOptions, tensor_parallel_size=tensor_parallel_size, data_parallel_size=data_parallel_size,
                     dtype=dtype.value, max_model_len=max_model_len, gpu_memory_utilization=gpu_memory_utilization,
                     enforce_eager=enforce_eager, seed=seed),
        server=build(ServerOptions, base_urls=base_url or [], concurrency=concurrency, api_key_env=api_key_env,
                     timeout_s=timeout, max_retries=max_retries, max_outage_s=max_outage_s,
                     max_outage_failures=max_outage_failures),
        executor=executor.value,
        ray=build(RayOptions, address=ray_address, workers=ray_workers, gpus_per_worker=ray_gpus_per_worker,
                  cpus_per_worker=ray_cpus_per_worker, chunk_tries=ray_chunk_tries),
    )
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


generate.__doc__ = f"{generate.__doc__}\n\n{EXAMPLES}"
