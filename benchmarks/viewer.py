"""`triplegen view` on 100,000 rows: the time to write the page, its size, and the time a real
headless Chromium takes to open it (parse the embedded rows, count, render page 1) and to open it
on its last page and on a filter, side by side with the 300-row example in one run.

    python benchmarks/viewer.py            # needs the `chromium` command (Debian's package)

Times are wall seconds of one `chromium --headless --dump-dom` run each, start-up included, so the
first row (a 300-row page) is mostly the browser's own start.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from triplegen.config import GenerateConfig
from triplegen.orchestration.run import generate
from triplegen.io.viewer import write_view

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "captions.parquet"


def browse(chromium: str, page: Path, fragment: str, scratch: Path) -> tuple[float, str]:
    profile = Path(tempfile.mkdtemp(dir=scratch))
    started = time.perf_counter()
    done = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                           "--disable-component-update", "--disable-sync", "--no-first-run",
                           f"--user-data-dir={profile}", "--dump-dom", page.resolve().as_uri() + fragment],
                          capture_output=True, text=True, timeout=300)
    return time.perf_counter() - started, done.stdout


def main() -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("needs the chromium command (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        generate(GenerateConfig(input=EXAMPLE, output=scratch / "small", quiet=True))
        triples = pq.read_table(scratch / "small" / "triples.parquet")
        copies = [triples.set_column(0, "id", pc.binary_join_element_wise(triples.column("id"), pa.scalar(f"-{n}"), ""))
                  for n in range(-(-100_000 // triples.num_rows))]
        pq.write_table(pa.concat_tables(copies).slice(0, 100_000), scratch / "big.parquet")
        print("| rows | write the page (s) | page size (MB) | open, page 1 (s) | open, last page (s) | "
              "open, search 'frisbee' (s) |")
        print("|---:|---:|---:|---:|---:|---:|")
        for name, source in (("300", scratch / "small"), ("100,000", scratch / "big.parquet")):
            started = time.perf_counter()
            summary = write_view(source, scratch / f"{name}.html")
            written = time.perf_counter() - started
            pages = -(-(summary.accepted + summary.rejected) // 100)
            first, dom = browse(chromium, summary.html, "", scratch)
            assert 'class="accepted"' in dom
            last, dom = browse(chromium, summary.html, f"#page={pages}", scratch)
            assert f"page {pages} of {pages}" in dom
            search, _ = browse(chromium, summary.html, "#q=frisbee", scratch)
            size = summary.html.stat().st_size / 1e6
            print(f"| {name} | {written:.2f} | {size:.1f} | {first:.2f} | {last:.2f} | {search:.2f} |")


if __name__ == "__main__":
    main()
