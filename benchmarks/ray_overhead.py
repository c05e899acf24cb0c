"""What `--executor ray` costs over a local run: cluster and worker start-up, overhead per chunk.

    python benchmarks/ray_overhead.py                                  # 20,000 captions, chunks 2048/512/128
    python benchmarks/ray_overhead.py --rows 50000 --chunks 4096 1024 256 --repeats 3

The rules backend (no model: the cheapest work per row, so the executor's own cost shows most), on a
local Ray cluster of this machine's CPUs. Three measurements, side by side in one run:

1. start-up: `ray.init` of a local cluster, and one worker from nothing to ready (actor placed,
   backend built);
2. overhead per chunk: the same chunks processed one after another by a `ChunkWorker` in this process
   and by one on Ray (`ray.get(actor.process.remote(...))`: send the chunk's columns, run, send the
   outcomes back); the difference per chunk is what Ray adds, with nothing overlapping;
3. end to end: `triplegen generate` locally, on one Ray worker and on one per CPU, with the driver's
   CPU time per chunk (read, send, receive, write the parts; it bounds how many chunks per second one
   driver takes in) and a check that the rows equal the local run's.

Each variant is repeated and the least time kept (the machine is shared).
"""

from __future__ import annotations

import argparse
import logging
import pickle
import resource
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from rules_throughput import captions as rules_captions
from rules_throughput import write_input


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed_run(config) -> tuple[float, float, object]:
    from triplegen.orchestration.run import generate

    wall, cpu = time.perf_counter(), cpu_s()
    summary = generate(config)
    return time.perf_counter() - wall, cpu_s() - cpu, summary


def same_rows(a, b) -> bool:
    return (pl.read_parquet(a.output).equals(pl.read_parquet(b.output))
            and pl.read_parquet(a.rejects).equals(pl.read_parquet(b.rejects)))


def worker_start_s(config, plan, repeats: int) -> float:
    """Seconds from nothing to one started worker (actor placed, backend built), least of `repeats`."""
    from rich.console import Console

    from triplegen.orchestration.executors.ray_pool import RayWorkers

    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        workers = RayWorkers(config, plan, Console(quiet=True))
        times.append(time.perf_counter() - started)
        workers.finished = True
        workers.close()
    return min(times)


def per_chunk_s(config, plan, chunks: list, warm: list, repeats: int) -> tuple[float, float, float, float]:
    """Seconds per chunk, one chunk at a time (least of repeats): in this process, in a Ray worker
    process without any transport (a task that runs the chunks itself), and through a Ray actor
    (`ray.get(actor.process.remote(...))`); and the seconds to pickle and unpickle one result.

    Every worker first processes `warm` (other captions), so the rules' caches are as warm in a
    fresh Ray process as in this one, and the timed captions are new to every fan-out cache.
    """
    import ray

    from triplegen.orchestration.executors.ray_worker import ChunkWorker

    in_task = ray.remote(num_cpus=1)(_in_process)
    here, there, remote, pickling = [], [], [], []
    for _ in range(repeats):
        here.append(_in_process(config, plan, chunks, warm))
        there.append(ray.get(in_task.remote(config, plan, chunks, warm)))
        actor = ray.remote(ChunkWorker).options(num_cpus=1).remote(config, plan)
        ray.get([actor.process.remote(chunk.index, chunk.rows) for chunk in warm])
        started = time.perf_counter()
        for chunk in chunks:
            ray.get(actor.process.remote(chunk.index, chunk.rows))
        remote.append((time.perf_counter() - started) / len(chunks))
        ray.kill(actor)
        result = ChunkWorker(config, plan).process(chunks[0].index, chunks[0].rows)
        started = time.perf_counter()
        pickle.loads(pickle.dumps(result))
        pickling.append(time.perf_counter() - started)
    return min(here), min(there), min(remote), min(pickling)


def _in_process(config, plan, chunks: list, warm: list) -> float:
    """Seconds per chunk for a fresh ChunkWorker in the calling process, warmed on `warm` first."""
    from triplegen.orchestration.executors.ray_worker import ChunkWorker

    worker = ChunkWorker(config, plan)
    for chunk in warm:
        worker.process(chunk.index, chunk.rows)
    started = time.perf_counter()
    for chunk in chunks:
        worker.process(chunk.index, chunk.rows)
    return (time.perf_counter() - started) / len(chunks)


def read_chunks(captions: Path, size: int, plan, limit: int | None = None) -> list:
    from triplegen.orchestration.pipeline import Chunk, ReadChunks
    from triplegen.io.readers import CaptionSource, Columns

    source = CaptionSource(captions, Columns("caption", "image", None))
    return [Chunk(c.index, c.rows.select(plan.input_columns)) for c in ReadChunks(source, size, limit=limit)]


def write_warm_up(path: Path, start: int, n: int) -> Path:
    """Captions that the timed ones do not repeat (from further along the same generator)."""
    pq.write_table(pa.table({"id": [f"w{i}" for i in range(n)], "caption": rules_captions(start, n)}), path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--chunks", type=int, nargs="+", default=[2048, 512, 128], help="chunk sizes")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray cluster")
    args = parser.parse_args()

    import ray

    from triplegen.checks.lexical import CheckConfig
    from triplegen.config import GenerateConfig, RayOptions
    from triplegen.orchestration.plan import GenerationPlan
    from triplegen.templates import load_template

    folder = Path(tempfile.mkdtemp(prefix="ray-overhead-"))
    captions = folder / "captions.parquet"
    write_input(captions, args.rows)

    started = time.perf_counter()
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    cluster_s = time.perf_counter() - started
    try:
        base = dict(input=captions, quiet=True, overwrite=True)
        one = RayOptions(workers=1)
        config = GenerateConfig(output=folder / "x.parquet", executor="ray", ray=one, **base)
        plan = GenerationPlan(load_template("default"), {}, CheckConfig(), 0, 1)
        start_s = worker_start_s(config, plan, args.repeats)
        print(f"rows {args.rows:,}; a local Ray cluster of {args.cpus} CPUs started in {cluster_s:.2f} s; "
              f"one worker (rules) from nothing to ready in {start_s:.3f} s", flush=True)

        print("\n| chunk size | chunks | ms/chunk in this process | in a Ray worker process | through a Ray actor | "
              "Ray's transport adds ms/chunk | pickle + unpickle one result ms |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        warm = read_chunks(write_warm_up(folder / "warm.parquet", args.rows + 1000, 4096), 1024, plan)
        for size in args.chunks:
            chunks = read_chunks(captions, size, plan)
            here, there, remote, pickling = per_chunk_s(config, plan, chunks, warm, args.repeats)
            print(f"| {size:,} | {len(chunks):,} | {1000 * here:.1f} | {1000 * there:.1f} | {1000 * remote:.1f} | "
                  f"{1000 * (remote - there):+.1f} | {1000 * pickling:.1f} |", flush=True)

        print(f"\n| chunk size | chunks | local s | Ray, 1 worker s | Ray, {args.cpus} workers s | "
              f"driver CPU ms per chunk ({args.cpus} workers) | rows equal |")
        print("|---:|---:|---:|---:|---:|---:|:---:|")
        for size in args.chunks:
            best: dict[str, tuple[float, float]] = {}
            equal = True
            for _ in range(args.repeats):
                variants = {
                    "local": GenerateConfig(output=folder / "local.parquet", chunk_size=size, **base),
                    "ray1": GenerateConfig(output=folder / "ray1.parquet", chunk_size=size, executor="ray",
                                           ray=one, **base),
                    "rayN": GenerateConfig(output=folder / "rayN.parquet", chunk_size=size, executor="ray",
                                           ray=RayOptions(workers=args.cpus), **base),
                }
                summaries = {}
                for name, variant in variants.items():
                    wall, cpu, summaries[name] = timed_run(variant)
                    if name not in best or wall < best[name][0]:
                        best[name] = (wall, cpu)
                equal &= same_rows(summaries["local"], summaries["ray1"])
                equal &= same_rows(summaries["local"], summaries["rayN"])
            chunks = -(-args.rows // size)
            print(f"| {size:,} | {chunks:,} | {best['local'][0]:.2f} | {best['ray1'][0]:.2f} | "
                  f"{best['rayN'][0]:.2f} | {1000 * best['rayN'][1] / chunks:.1f} | {'yes' if equal else 'NO'} |",
                  flush=True)
    finally:
        ray.shutdown()


if __name__ == "__main__":
    sys.exit(main())
