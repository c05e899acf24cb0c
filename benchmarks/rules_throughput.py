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
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

SUBJECTS = ["dog", "cat", "man", "woman", "bird", "girl", "car", "bus", "horse", "chef", "child", "cyclist",
            "boat", "boy"]
ADJECTIVES = ["", "small ", "old ", "red ", "young ", "brown ", "white ", "tall ", "happy ", "black "]
VERBS = [("runs", "run", "running"), ("sits", "sit", "sitting"), ("waits", "wait", "waiting"),
         ("plays", "play", "playing"), ("sleeps", "sleep", "sleeping"), ("rides a bike", "ride a bike", "riding a bike"),
         ("eats lunch", "eat lunch", "eating lunch"), ("looks at the camera", "look at the camera", "looking at the camera"),
         ("walks", "walk", "walking"), ("stands", "stand", "standing"),
         ("holds an umbrella", "hold an umbrella", "holding an umbrella"), ("jumps", "jump", "jumping")]
PLACES = ["on the beach", "in a park", "next to a tree", "near the station", "in the kitchen", "on a busy street",
          "under a bridge", "in the snow", "by the river", "inside a small room"]
DETAILS = ["", " at sunset", " in the rain", " on a sunny day", " with a friend", " at night"]
COMBINATIONS = len(SUBJECTS) * len(ADJECTIVES) * len(VERBS) * len(PLACES) * len(DETAILS)  # 100,800


def caption(i: int) -> str:
    """The i-th caption: every combination once before any repeats; one in 50 is an exact repeat."""
    if i % 50 == 49:
        i -= 7  # a few exact duplicates, as in real caption sets
    n = (i * 7_919) % COMBINATIONS  # spread neighbours over the vocabulary
    n, subject = divmod(n, len(SUBJECTS))
    n, adjective = divmod(n, len(ADJECTIVES))
    n, verb = divmod(n, len(VERBS))
    detail, place = divmod(n, len(PLACES))
    noun = f"{ADJECTIVES[adjective]}{SUBJECTS[subject]}"
    article = "an" if noun[0] in "aeiou" else "a"
    thing, where, extra = f"{article} {noun}", PLACES[place], DETAILS[detail]
    third, base, ing = VERBS[verb]
    kind = i % 10
    if kind < 5:
        text = f"{thing} {third} {where}{extra}."
    elif kind == 5:
        text = f"{thing} is {ing} {where}{extra}."
    elif kind == 6:
        text = f"there is {thing} {ing} {where}{extra}"
    elif kind == 7:
        text = f"{thing} {ing} {where}{extra}"
    elif kind == 8:
        text = f"{thing} without a hat {ing} {where}{extra}."
    else:
        text = f"{thing} does not {base} {where}{extra}."
    if i >= COMBINATIONS:
        text += f" Photo {i // COMBINATIONS}."
    return text[0].upper() + text[1:]


def captions(start: int, n: int) -> list[str]:
    return [caption(i) for i in range(start, start + n)]


def write_input(path: Path, n: int) -> None:
    writer = None
    step = 100_000
    for start in range(0, n, step):
        size = min(step, n - start)
        table = pa.table({
            "id": [f"row{i}" for i in range(start, start + size)],
            "image": [f"images/{i % 50_000:06d}.jpg" for i in range(start, start + size)],
            "caption": captions(start, size),
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
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"rows": summary.rows, "accepted": summary.accepted, "seconds": seconds,
                  "cpu_seconds": usage.ru_utime + usage.ru_stime, "rss_mib": usage.ru_maxrss / 1024}))
"""

BARE = """
import json, resource, sys, time
import pyarrow.parquet as pq
from triplegen.backends.base import Request
from triplegen.backends.rules import RulesBackend
texts = pq.read_table(sys.argv[1], columns=["caption"]).column("caption").to_pylist()
backend = RulesBackend()
started, cpu = time.perf_counter(), time.process_time()
for start in range(0, len(texts), 2048):
    batch = texts[start:start + 2048]
    backend.generate([Request(key=str(i), caption=c, messages=[], seed=0) for i, c in enumerate(batch)], {})
seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
print(json.dumps({"rows": len(texts), "seconds": seconds, "cpu_seconds": cpu,
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
    print(f"{'what':<38} {'rows':>10} {'wall s':>8} {'rows/s':>8} {'CPU s':>7} {'rows/CPU s':>10} {'peak RSS MiB':>13}")
    with tempfile.TemporaryDirectory() as folder:
        for n in args.rows:
            source = Path(folder) / f"caps{n}.parquet"
            write_input(source, n)
            end_to_end = run_child(CHILD, str(source), str(Path(folder) / f"out{n}" / "triples.parquet"))
            bare = run_child(BARE, str(source))
            for name, result in (("generate, end to end", end_to_end), ("rules backend alone (no I/O, checks)", bare)):
                rows = result["rows"]
                print(f"{name:<38} {rows:>10,} {result['seconds']:>8.1f} {rows / result['seconds']:>8,.0f} "
                      f"{result['cpu_seconds']:>7.1f} {rows / result['cpu_seconds']:>10,.0f} {result['rss_mib']:>13,.0f}")
            print(f"  accepted {end_to_end['accepted']:,} of {end_to_end['rows']:,}; end to end takes "
                  f"{end_to_end['cpu_seconds'] / bare['cpu_seconds']:.2f}x the bare backend's CPU time "
                  "(CPU time is steadier than wall time on a shared machine)")


if __name__ == "__main__":
    main()
