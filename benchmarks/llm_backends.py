"""Benchmark the LLM backends with a real model (SmolLM2-135M-Instruct) on SugarCrepe++ captions.

(a) in-process: triplegen's vllm backend, and a whole `triplegen generate` run with one attempt per
    caption, against a bare `LLM.chat` over the same rendered prompts and sampling parameters
    (same engine, interleaved rounds, best round of each);
(b) quality and cost of the default template: acceptance, retries and tokens per accepted triple,
    reject reasons, LLM calls per accepted triple (the reference method makes 4 per caption);
(c) served: the openai backend against a bare `AsyncOpenAI` loop at the same concurrency, same
    server, same requests.

    python benchmarks/llm_backends.py --model-dir models/smollm2 --captions 160
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from sugarcrepe_data import add_data_option, sugarcrepe_files  # noqa: E402

ENGINE = dict(dtype="float32", enforce_eager=True, max_model_len=2048)
REFERENCE_CALLS_PER_CAPTION = 4  # the SemCLIP paper: two Phi-4 generations + two Mistral-7B judgements


def sugarcrepe_captions(folder: Path | None, n: int, every: bool = False) -> list[str]:
    """The first n unique original captions in file and id order (every one with `every`)."""
    seen: dict[str, None] = {}
    for path in sugarcrepe_files(folder):
        for row in json.loads(path.read_text(encoding="utf-8")):
            seen.setdefault(" ".join(row["caption"].split()), None)
    captions = list(seen)
    if len(captions) < n:
        raise SystemExit(f"only {len(captions)} captions in {folder}")
    return captions if every else captions[:n]


def write_input(captions: list[str], path: Path) -> Path:
    import polars as pl

    pl.DataFrame({"id": [f"scpp-{i:05d}" for i in range(len(captions))], "caption": captions}).write_parquet(path)
    return path


def requests_for(template, captions: list[str], seed0: int):
    from triplegen.backends.base import Request

    return [Request(key=str(i), caption=c, messages=template.render(c), seed=seed0 + i) for i, c in enumerate(captions)]


def bare_chat(llm, requests, sampling: dict, schema: dict) -> tuple[float, int]:
    from vllm import SamplingParams
    from vllm.sampling_params import StructuredOutputsParams

    start = time.perf_counter()
    params = [SamplingParams(**sampling, seed=r.seed, structured_outputs=StructuredOutputsParams(json=schema))
              for r in requests]
    outputs = llm.chat([r.messages for r in requests], params, use_tqdm=False)
    return time.perf_counter() - start, sum(len(o.outputs[0].token_ids) for o in outputs)


def backend_chat(backend, requests, sampling: dict) -> tuple[float, int]:
    start = time.perf_counter()
    completions = backend.generate(requests, sampling)
    return time.perf_counter() - start, sum(c.completion_tokens for c in completions)


def pipeline_run(config) -> tuple[float, int, object]:
    from triplegen.orchestration.run import generate

    start = time.perf_counter()
    summary = generate(config)
    return time.perf_counter() - start, summary.run["tokens"]["completion"], summary


def in_process(args, model_dir: Path, captions: list[str], work: Path) -> tuple[list[tuple], object]:
    from triplegen.backends.vllm import VllmBackend, shared_engine
    from triplegen.config import BackendOptions, EngineOptions, GenerateConfig
    from triplegen.templates import load_template

    template = load_template("default")
    sampling = template.sampling.model_dump()
    llm = shared_engine(str(model_dir), EngineOptions(**ENGINE))
    small = captions[: args.throughput_captions]
    input_path = write_input(small, work / "throughput.parquet")
    config = dict(input=input_path, model=str(model_dir), engine=EngineOptions(**ENGINE), max_attempts=1,
                  chunk_size=len(small), quiet=True, overwrite=True)
    backend = VllmBackend(BackendOptions(name="vllm", model=str(model_dir)), template.output_schema, llm=llm)
    bare_chat(llm, requests_for(template, small[:4], 10_000), sampling, template.output_schema)  # warm-up
    best: dict[str, tuple[float, int]] = {}
    for round_ in range(args.rounds):
        reqs = requests_for(template, small, 0)
        runs = {
            "bare LLM.chat": lambda: bare_chat(llm, reqs, sampling, template.output_schema),
            "vllm backend": lambda: backend_chat(backend, reqs, sampling),
            "triplegen generate": lambda: pipeline_run(
                GenerateConfig(output=work / f"p{round_}.parquet", **config))[:2],
        }
        names = list(runs)
        for name in names[round_ % 3:] + names[: round_ % 3]:  # rotate who goes first
            seconds, tokens = runs[name]()
            if name not in best or seconds < best[name][0]:
                best[name] = (seconds, tokens)
    rows = [(name, len(small), s, len(small) / s, tok / s) for name, (s, tok) in best.items()]

    if args.skip_quality:
        return rows, None
    quality_input = write_input(captions, work / "quality.parquet")
    _, _, summary = pipeline_run(GenerateConfig(input=quality_input, output=work / "quality" / "t.parquet",
                                                model=str(model_dir), engine=EngineOptions(**ENGINE),
                                                max_attempts=args.max_attempts, quiet=True, overwrite=True))
    return rows, summary


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model_dir: Path, log: Path, extra: tuple[str, ...] = ()) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir),
               "--served-model-name", "smollm2", "--host", "127.0.0.1", "--port", str(port),
               "--dtype", ENGINE["dtype"], "--max-model-len", str(ENGINE["max_model_len"]), "--enforce-eager",
               "--disable-log-stats", "--no-enable-chunked-prefill", *extra]  # see triplegen.backends.vllm.engine_kwargs
    process = subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited; see {log}")
        try:
            with urllib.request.urlopen(url + "/models", timeout=2):
                return process, url
        except OSError:
            time.sleep(1)
    process.terminate()
    raise SystemExit(f"server not ready; see {log}")


async def bare_async(url: str, requests, sampling: dict, schema: dict, concurrency: int) -> tuple[float, int]:
    import openai

    client = openai.AsyncOpenAI(base_url=url, api_key="EMPTY", max_retries=0, timeout=600)
    semaphore = asyncio.Semaphore(concurrency)
    response_format = {"type": "json_schema", "json_schema": {"name": "triple", "schema": schema, "strict": True}}

    async def one(request):
        async with semaphore:
            response = await client.chat.completions.create(
                model="smollm2", messages=request.messages, response_format=response_format, seed=request.seed,
                **sampling)
            return response.usage.completion_tokens

    start = time.perf_counter()
    tokens = await asyncio.gather(*(one(r) for r in requests))
    seconds = time.perf_counter() - start
    await client.close()
    return seconds, sum(tokens)


def served(args, model_dir: Path, captions: list[str], work: Path) -> list[tuple]:
    from triplegen.backends.openai import OpenAIBackend
    from triplegen.config import BackendOptions, ServerOptions
    from triplegen.templates import load_template

    template = load_template("default")
    sampling = template.sampling.model_dump()
    small = captions[: args.throughput_captions]
    process, url = start_server(model_dir, work / "server.log")
    try:
        options = BackendOptions(name="openai", model="smollm2",
                                 server=ServerOptions(base_urls=[url], concurrency=args.concurrency))
        backend = OpenAIBackend(options, template.output_schema)
        asyncio.run(bare_async(url, requests_for(template, small[:4], 10_000), sampling,
                               template.output_schema, args.concurrency))  # warm-up
        best: dict[str, tuple[float, int]] = {}
        for round_ in range(args.rounds):
            reqs = requests_for(template, small, 0)
            runs = {
                "bare AsyncOpenAI": lambda: asyncio.run(
                    bare_async(url, reqs, sampling, template.output_schema, args.concurrency)),
                "openai backend": lambda: backend_chat(backend, reqs, sampling),
            }
            names = list(runs) if round_ % 2 == 0 else list(reversed(runs))
            for name in names:  # alternate who goes first
                seconds, tokens = runs[name]()
                if name not in best or seconds < best[name][0]:
                    best[name] = (seconds, tokens)
        backend.close()
    finally:
        process.terminate()
        process.wait(timeout=60)
    return [(name, len(small), s, len(small) / s, tok / s) for name, (s, tok) in best.items()]


def throughput_table(title: str, rows: list[tuple], reference: str) -> str:
    base = next(r for r in rows if r[0] == reference)
    lines = [f"**{title}**", "", "| variant | captions | seconds | captions/s | completion tokens/s | ratio to bare |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, n, seconds, per_s, tok_s in rows:
        lines.append(f"| {name} | {n} | {seconds:.1f} | {per_s:.2f} | {tok_s:.1f} | {per_s / base[3]:.2f} |")
    return "\n".join(lines)


def quality_table(summary) -> str:
    counts, tokens = summary.run["counts"], summary.run["tokens"]
    accepted = max(counts["accepted"], 1)
    calls = counts["judged"]
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(summary.reject_reasons.items(), key=lambda kv: -kv[1]))
    lines = [
        "**Default template, SmolLM2-135M-Instruct, SugarCrepe++ captions**", "",
        "| measure | value |", "|---|---:|",
        f"| captions | {counts['rows']} |",
        f"| accepted | {counts['accepted']} ({counts['accepted'] / counts['rows']:.1%}) |",
        f"| rejected | {counts['rejected']} |",
        f"| retries per accepted triple | {counts['retries'] / accepted:.2f} |",
        f"| LLM calls per accepted triple | {calls / accepted:.2f} (reference method: {REFERENCE_CALLS_PER_CAPTION}"
        " per caption, no checks) |",
        f"| prompt tokens per accepted triple | {tokens['prompt'] / accepted:.0f} |",
        f"| completion tokens per accepted triple | {tokens['completion'] / accepted:.1f} |",
        f"| reject reasons | {reasons or 'none'} |",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=Path("models/smollm2"))
    add_data_option(parser)
    parser.add_argument("--captions", type=int, default=160, help="captions for the acceptance run (b)")
    parser.add_argument("--throughput-captions", type=int, default=24, help="captions per throughput round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--max-attempts", type=int, default=3)
    parser.add_argument("--skip-served", action="store_true")
    parser.add_argument("--skip-quality", action="store_true")
    args = parser.parse_args()
    sugarcrepe_files(args.data)

    from triplegen.backends.vllm import release_engines
    from triplegen.smollm2 import prepare_smollm2

    model_dir = prepare_smollm2(args.model_dir)
    captions = sugarcrepe_captions(args.data, max(args.captions, args.throughput_captions))
    with tempfile.TemporaryDirectory(prefix="llm-bench-") as tmp:
        work = Path(tmp)
        try:
            rows, summary = in_process(args, model_dir, captions[: args.captions], work)
        finally:
            release_engines()  # an engine left running keeps the interpreter from exiting
        print(throughput_table("(a) in-process vLLM, same engine and prompts", rows, "bare LLM.chat"))
        print()
        if summary is not None:
            print(quality_table(summary))
            print()
        if not args.skip_served:
            served_rows = served(args, model_dir, captions, work)
            print(throughput_table(f"(c) served, concurrency {args.concurrency}", served_rows, "bare AsyncOpenAI"))


if __name__ == "__main__":
    main()
