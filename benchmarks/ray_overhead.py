"""What `--executor ray` costs over a local run: cluster and worker start-up, overhead per chunk.

    python benchmarks/ray_overhead.py                                  # 20,000 captions, chunks 2048/512/128
    python benchmarks/ray_overhead.py --rows 50000 --chunks 4096 1024 256 --repeats 3

The rules backend (no model: the cheapest work per row, so the executor's own cost shows most) runs
the same captions locally and on a local Ray cluster of this machine's CPUs, side by side, at
several chunk sizes; each variant is repeated and the least wall time kept. With one Ray worker the
work is the local run's, done in another process, so `ray - local` is the executor's cost: a fixed
part (the workers' start-up, measured on its own) plus a part per chunk (the slope of `ray - local`
against the number of chunks, which cancels everything that does not depend on the chunking). The
driver's CPU time per chunk (read, send, receive, write the parts) bounds how many chunks per second
one driver can take in. Rows are checked equal to the local run's every time.
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

from rules_throughput import write_input


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed_run(config) -> tuple[float, float, object]:
    from triplegen.run import generate

    wall, cpu = time.perf_counter(), cpu_s()
    summary = generate(config)
    return time.perf_counter() - wall, cpu_s() - cpu, summary


def same_rows(a, b) -> bool:
    return (pl.read_parquet(a.output).equals(pl.read_parquet(b.output))
            and pl.read_parquet(a.rejects).equals(pl.read_parquet(b.rejects)))


def worker_start_s(config, repeats: int) -> float:
    """Seconds from nothing to one started worker (actor placed, backend built), least of `repeats`."""
    from rich.console import Console

    from triplegen.executors.ray_pool import RayWorkers
    from triplegen.plan import GenerationPlan
    from triplegen.checks import CheckConfig
    from triplegen.templates import load_template

    plan = GenerationPlan(load_template("default"), {}, CheckConfig(), 0, 1)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        workers = RayWorkers(config, plan, Console(quiet=True))
        times.append(time.perf_counter() - started)
        workers.close()
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--chunks", type=int, nargs="+", default=[2048, 512, 128], help="chunk sizes")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray cluster")
    args = parser.parse_args()

    import ray

    from triplegen.config import GenerateConfig, RayOptions

    folder = Path(tempfile.mkdtemp(prefix="ray-overhead-"))
    captions = folder / "captions.parquet"
    write_input(captions, args.rows)

    started = time.perf_counter()
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    cluster_s = time.perf_counter() - started
    try:
        base = dict(input=captions, quiet=True, overwrite=True)
        one = RayOptions(workers=1)
        start_s = worker_start_s(GenerateConfig(output=folder / "x.parquet", executor="ray", ray=one, **base),
                                 args.repeats)
        print(f"rows {args.rows:,}; local Ray cluster of {args.cpus} CPUs started in {cluster_s:.2f} s; "
              f"one worker (rules) started in {start_s:.3f} s", flush=True)
        print()
        print("| chunk size | chunks | local s | ray, 1 worker s | ray - local s | ray, "
              f"{args.cpus} workers s | driver CPU ms per chunk ({args.cpus} workers) | rows equal |")
        print("|---:|---:|---:|---:|---:|---:|---:|:---:|")
        points = []
        for chunk in args.chunks:
            best: dict[str, tuple[float, float]] = {}
            equal = True
            for _ in range(args.repeats):
                variants = {
                    "local": GenerateConfig(output=folder / "local.parquet", chunk_size=chunk, **base),
                    "ray1": GenerateConfig(output=folder / "ray1.parquet", chunk_size=chunk, executor="ray",
                                           ray=one, **base),
                    "rayN": GenerateConfig(output=folder / "rayN.parquet", chunk_size=chunk, executor="ray",
                                           ray=RayOptions(workers=args.cpus), **base),
                }
                summaries = {}
                for name, config in variants.items():
                    wall, cpu, summaries[name] = timed_run(config)
                    if name not in best or wall < best[name][0]:
                        best[name] = (wall, cpu)
                equal &= same_rows(summaries["local"], summaries["ray1"])
                equal &= same_rows(summaries["local"], summaries["rayN"])
            chunks = -(-args.rows // chunk)
            extra = best["ray1"][0] - best["local"][0]
            points.append((chunks, extra))
            print(f"| {chunk:,} | {chunks:,} | {best['local'][0]:.2f} | {best['ray1'][0]:.2f} | {extra:+.2f} | "
                  f"{best['rayN'][0]:.2f} | {1000 * best['rayN'][1] / chunks:.1f} | {'yes' if equal else 'NO'} |",
                  flush=True)
        (few, few_extra), (many, many_extra) = points[0], points[-1]
        per_chunk = (many_extra - few_extra) / (many - few)
        print()
        print(f"overhead per chunk (slope of ray - local over {few}..{many} chunks): {1000 * per_chunk:.1f} ms")
        print(f"fixed overhead (ray - local - chunks x per chunk, at {few} chunks): "
              f"{few_extra - few * per_chunk:.2f} s (worker start-up alone: {start_s:.2f} s)")
    finally:
        ray.shutdown()


if __name__ == "__main__":
    sys.exit(main())
