"""End-to-end `triplegen generate` with the rules backend: rows/s and peak RSS.

    python benchmarks/rules_throughput.py                 # 100,000 captions
    python benchmarks/rules_throughput.py --rows 1000000  # the memory claim: RSS stays flat

    python benchmarks/rules_throughput.py --baseline ../base --repeats 3   # before/after, side by side

Each size runs in a fresh subprocess (read, dedupe, generate, check, write parts, merge, card), which
reports its own wall time, CPU time and peak RSS (`resource.getrusage`). Side by side, in the same
run, the rules backend alone on the same captions (no reading, checks or writing), then parsing and
the quality checks alone on its answers, show where the time goes. `--baseline DIR` runs the end to
end child a second time with DIR (a source tree holding `triplegen/`, e.g. from
`git archive REV triplegen | tar -x -C DIR`) first on the path, to compare two versions on the same
captions; `--repeats` alternates the children and keeps each one's least CPU time.
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
if sys.argv[3]:
    sys.path.insert(0, sys.argv[3])
from triplegen.config import GenerateConfig
from triplegen.orchestration.run import generate
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
from triplegen.checks.lexical import check_triple
from triplegen.checks.parsing import parse_output
from triplegen.templates import load_template
texts = pq.read_table(sys.argv[1], columns=["caption"]).column("caption").to_pylist()
backend, template = RulesBackend(), load_template("default")
backend_s = backend_cpu = checks_s = checks_cpu = 0.0
for start in range(0, len(texts), 2048):
    batch = texts[start:start + 2048]
    started, cpu = time.perf_counter(), time.process_time()
    answers = backend.generate([Request(key=str(i), caption=c, messages=[], seed=0) for i, c in enumerate(batch)], {})
    backend_s, backend_cpu = backend_s + time.perf_counter() - started, backend_cpu + time.process_time() - cpu
    started, cpu = time.perf_counter(), time.process_time()
    for caption, answer in zip(batch, answers):
        parsed = parse_output(answer.text, answer.finish_reason, template)
        check_triple(caption, parsed.paraphrase, parsed.negation)
    checks_s, checks_cpu = checks_s + time.perf_counter() - started, checks_cpu + time.process_time() - cpu
print(json.dumps({"rows": len(texts), "seconds": backend_s, "cpu_seconds": backend_cpu,
                  "checks_seconds": checks_s, "checks_cpu_seconds": checks_cpu,
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_child(code: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def best(results: list[dict]) -> dict:
    """The repeat with the least CPU time: the one least disturbed by other jobs on a shared machine."""
    return min(results, key=lambda result: result["cpu_seconds"])


def row(name: str, rows: int, seconds: float, cpu_seconds: float, rss_mib: float | None) -> str:
    rss = f"{rss_mib:>13,.0f}" if rss_mib is not None else f"{'-':>13}"
    return (f"{name:<38} {rows:>10,} {seconds:>8.1f} {rows / seconds:>8,.0f} "
            f"{cpu_seconds:>7.1f} {rows / cpu_seconds:>10,.0f} {rss}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000])
    parser.add_argument("--baseline", type=Path, help="source tree holding triplegen/ to compare against")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each child, alternating; least CPU kept")
    args = parser.parse_args()
    if args.baseline is not None and not (args.baseline / "triplegen" / "__init__.py").is_file():
        raise SystemExit(f"--baseline {args.baseline} holds no triplegen/__init__.py")
    print(f"{'what':<38} {'rows':>10} {'wall s':>8} {'rows/s':>8} {'CPU s':>7} {'rows/CPU s':>10} {'peak RSS MiB':>13}")
    with tempfile.TemporaryDirectory() as folder:
        for n in args.rows:
            source = Path(folder) / f"caps{n}.parquet"
            write_input(source, n)
            trees = {"generate, end to end": ""}
            if args.baseline is not None:
                trees["generate, end to end (baseline)"] = str(args.baseline.resolve())
            runs: dict[str, list[dict]] = {name: [] for name in [*trees, "bare"]}
            for repeat in range(args.repeats):
                for k, (name, tree) in enumerate(trees.items()):
                    output = Path(folder) / f"out{n}-{repeat}-{k}" / "triples.parquet"
                    runs[name].append(run_child(CHILD, str(source), str(output), tree))
                runs["bare"].append(run_child(BARE, str(source)))
            results = {name: best(runs[name]) for name in trees}
            for name, result in results.items():
                print(row(name, result["rows"], result["seconds"], result["cpu_seconds"], result["rss_mib"]))
            bare = best(runs["bare"])
            print(row("rules backend alone (no I/O, checks)", n, bare["seconds"], bare["cpu_seconds"], bare["rss_mib"]))
            print(row("parse + checks alone", n, bare["checks_seconds"], bare["checks_cpu_seconds"], None))
            end_to_end = results["generate, end to end"]
            print(f"  accepted {end_to_end['accepted']:,} of {end_to_end['rows']:,}; end to end takes "
                  f"{end_to_end['cpu_seconds'] / bare['cpu_seconds']:.2f}x the bare backend's CPU time "
                  "(CPU time is steadier than wall time on a shared machine)")
            if args.baseline is not None:
                before = results["generate, end to end (baseline)"]
                print(f"  baseline accepted {before['accepted']:,}; end to end CPU time "
                      f"{before['cpu_seconds'] / end_to_end['cpu_seconds']:.2f}x faster than the baseline")


if __name__ == "__main__":
    main()
