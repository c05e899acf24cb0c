"""The duplicate-id check of `triplegen generate`: peak RSS and time, a set of ids against triplegen.io.idcheck.

    python benchmarks/duplicate_ids.py                              # 10^6 and 10^7 ids, both checks
    python benchmarks/duplicate_ids.py --sizes 1e8 --checks new     # 10^8 ids, the bounded check only

Each (check, size) runs in a fresh subprocess that makes ids of 18 characters (`img` + 12 digits +
`-` + 2 digits, all different) in batches of 8,192, as `CaptionSource.id_batches` yields them, and
hands them to the check: `set` is the scan before (every id in a Python set), `new` is
`triplegen.io.idcheck.DuplicateIds` (hashes spilled into a temporary folder under --dir). With
`--repeat-last`, the last id repeats the first one, so the new check also makes its second pass over
the ids to confirm it (the run that reports a duplicate). The child reports its wall time, CPU time
and peak RSS (`resource.getrusage`, the whole process: Python, polars and the ids it makes included);
"Python alone" is the same child making the ids and checking nothing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BATCH = 8192

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
check, size, repeat_last, folder = sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1", Path(sys.argv[5])
import polars  # imported by every child, so that "Python alone" holds what the others load
from triplegen.io.idcheck import DuplicateIds

def batches():
    for start in range(0, size, %(batch)d):
        ids = [f"img{i:012d}-{i %% 97:02d}" for i in range(start, min(start + %(batch)d, size))]
        if repeat_last and start + len(ids) == size:
            ids[-1] = "img000000000000-00"
        yield ids

started, cpu = time.monotonic(), time.process_time()
found = None
if check == "set":
    seen = set()
    for ids in batches():
        for row_id in ids:
            if row_id in seen:
                found = row_id
                break
            seen.add(row_id)
elif check == "new":
    with DuplicateIds(folder / "triples.parquet") as check_ids:
        for ids in batches():
            check_ids.add(ids)
        found = check_ids.first_duplicate(batches)
else:
    for ids in batches():
        pass
print(json.dumps({"seconds": time.monotonic() - started, "cpu": time.process_time() - cpu, "found": found,
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
""" % {"batch": BATCH}


def run_child(check: str, size: int, repeat_last: bool, folder: Path) -> dict:
    args = [sys.executable, "-c", CHILD, str(REPO), check, str(size), "1" if repeat_last else "0", str(folder)]
    result = subprocess.run(args, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1e6,1e7", help="comma-separated numbers of ids (1e8 takes minutes)")
    parser.add_argument("--checks", default="none,set,new", help="which of none, set, new to run")
    parser.add_argument("--repeat-last", action="store_true", help="the last id repeats the first (second pass)")
    parser.add_argument("--dir", type=Path, default=None, help="where the new check spills (default: system temp)")
    options = parser.parse_args()
    names = {"none": "Python alone", "set": "set of ids (before)", "new": "idcheck (now)"}
    print("| check | ids | duplicate | wall s | CPU s | peak RSS |")
    print("|---|---:|---|---:|---:|---:|")
    for size in (int(float(s)) for s in options.sizes.split(",")):
        for check in options.checks.split(","):
            with tempfile.TemporaryDirectory(dir=options.dir) as folder:
                found = run_child(check, size, options.repeat_last, Path(folder))
            print(f"| {names[check]} | {size:,} | {found['found'] or '-'} | {found['seconds']:.1f} | "
                  f"{found['cpu']:.1f} | {found['rss_mib']:,.0f} MiB |", flush=True)


if __name__ == "__main__":
    main()
