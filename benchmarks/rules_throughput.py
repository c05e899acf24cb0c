"""End-to-end `triplegen generate` with the rules backend: rows/s and peak RSS.

    python benchmarks/rules_throughput.py                 # 100,000 captions
    python benchmarks/rules_throughput.py --rows 1000000  # the memory claim: RSS stays flat

Each size runs in a fresh subprocess (read, dedupe, generate, check, write parts, merge, card), which
reports its own wall time and peak RSS (`resource.getrusage`). Side by side, in the same run, the
rules backend alone on the same captions (no reading, checks or writing) shows the pipeline's share.
The captions are synthetic but varied: many structures (actions, "there is", noun phrases, already
negated), so every branch of the rules generator and of the checks is exercised.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

SUBJECTS = ["a dog", "two cats", "a man", "a young woman", "three birds", "a little girl", "an old car",
            "a red bus", "a group of people", "a brown horse", "a chef", "two children", "a cyclist", "a boat"]
VERBS = ["runs", "sits", "is standing", "waits", "plays", "is sleeping", "rides a bike", "is eating lunch",
         "looks at the camera", "walks", "is parked", "holds an umbrella"]
PLACES = ["on the beach", "in a park", "next to a tree", "near the station", "in the kitchen", "on a busy street",
          "under a bridge", "in the snow", "by the river", "inside a small room"]
DETAILS = ["", " at sunset", " in the rain", " on a sunny day", " with a friend", " at night"]


def captions(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        subject, verb, place, detail = rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(PLACES), rng.choice(DETAILS)
        kind = i % 10
        if kind < 6:
            text = f"{subject} {verb} {place}{detail}."
        elif kind == 6:
            text = f"there is {subject} {place}{detail}"
        elif kind == 7:
            text = f"{subject} {place}{detail}"
        elif kind == 8:
            text = f"{subject} without a hat {place}."
        else:
            text = f"{subject} {verb} {place}, number {i}."
        out.append(text[0].upper() + text[1:])
    return out


def write_input(path: Path, n: int) -> None:
    writer = None
    step = 100_000
    for start in range(0, n, step):
        size = min(step, n - start)
        table = pa.table({
            "id": [f"row{i}" for i in range(start, start + size)],
            "image": [f"images/{i % 50_000:06d}.jpg" for i in range(start, start + size)],
            "caption": captions(size, seed=start),
        })
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    writer.close()


CHILD = """
import json, resource, sys, time
from triplegen.config import GenerateConfig
from triplegen.run import generate
started = time.perf_counter()
summary = generate(GenerateConfig(input=sys.argv[1], output=sys.argv[2], quiet=True))
seconds = time.perf_counter() - started
print(json.dumps({"rows": summary.rows, "accepted": summary.accepted, "seconds": seconds,
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

BARE = """
import json, resource, sys, time
import pyarrow.parquet as pq
from triplegen.backends.base import Request
from triplegen.backends.rules import RulesBackend
texts = pq.read_table(sys.argv[1], columns=["caption"]).column("caption").to_pylist()
backend = RulesBackend()
started = time.perf_counter()
for start in range(0, len(texts), 2048):
    batch = texts[start:start + 2048]
    backend.generate([Request(key=str(i), caption=c, messages=[], seed=0) for i, c in enumerate(batch)], {})
seconds = time.perf_counter() - started
print(json.dumps({"rows": len(texts), "seconds": seconds,
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_child(code: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000])
    args = parser.parse_args()
    print(f"{'what':<34} {'rows':>10} {'seconds':>9} {'rows/s':>10} {'peak RSS MiB':>13}")
    with tempfile.TemporaryDirectory() as folder:
        for n in args.rows:
            source = Path(folder) / f"caps{n}.parquet"
            write_input(source, n)
            end_to_end = run_child(CHILD, str(source), str(Path(folder) / f"out{n}" / "triples.parquet"))
            bare = run_child(BARE, str(source))
            for name, result in (("generate, end to end", end_to_end), ("rules backend alone (no I/O, checks)", bare)):
                rate = result["rows"] / result["seconds"]
                print(f"{name:<34} {result['rows']:>10,} {result['seconds']:>9.1f} {rate:>10,.0f} "
                      f"{result['rss_mib']:>13,.0f}")
            print(f"  accepted {end_to_end['accepted']:,} of {end_to_end['rows']:,}; pipeline runs at "
                  f"{bare['seconds'] / end_to_end['seconds']:.2f}x the bare backend's speed")


if __name__ == "__main__":
    main()
