"""`triplegen view`: one self-contained HTML page of a run's triples and rejects, side by side.

No server and no network: the rows are embedded as JSON in the page, and the page (its template is
`triplegen/data/viewer.html`) renders one page of rows at a time, computing the word differences
only for the rows on screen, so 100,000 rows stay quick to open, filter and page through.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import pyarrow.parquet as pq

from triplegen.errors import TripleGenError
from triplegen.layout import find_rejects, resolve_triples
from triplegen.merge import read_run_metadata
from triplegen.files import write_text_atomic

COLUMNS = ["id", "status", "kind", "caption", "paraphrase", "negation", "reason", "detail", "raw_output"]
PAGE_SIZE = 100


@dataclass(frozen=True)
class ViewSummary:
    html: Path
    accepted: int
    rejected: int
    rejects: Path | None


def _read(path: Path, status: str) -> list[list]:
    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as exc:
        raise TripleGenError(f"cannot read {path} as Parquet: {str(exc).splitlines()[0]}") from None
    if "caption" not in table.column_names or "id" not in table.column_names:
        raise TripleGenError(f"{path} has no id and caption columns; is it a triplegen output?")
    n = table.num_rows
    data = {name: table.column(name).to_pylist() if name in table.column_names else [None] * n for name in COLUMNS}
    data["status"] = [status] * n
    if "kind" not in table.column_names:
        data["kind"] = ["caption"] * n
    return [list(values) for values in zip(*(data[name] for name in COLUMNS))]


def _card_facts(run: dict | None) -> dict:
    if not run or "counts" not in run:
        return {}
    prompt = run.get("prompt") or {}
    return {"backend": run.get("backend"), "model": run.get("model"), "judged": run["counts"].get("judged", 0),
            "prompt": f"{prompt.get('name')} v{prompt.get('version')}", "check_failures": run.get("check_failures", {})}


def write_view(path: Path, html: Path | None = None, rejects: Path | None = None) -> ViewSummary:
    """Write the page for a dataset folder or triples file (default: `out/coco.html` for the folder
    `out/coco`, `out/triples.html` for `out/triples.parquet`: beside the data, never inside a folder
    that `hf upload` would push)."""
    triples = resolve_triples(Path(path))
    if not triples.is_file():
        raise TripleGenError(f"{path}: no triples file there (a dataset folder or a .parquet file)")
    rejects = rejects or find_rejects(Path(path))
    given = Path(path)
    html = html or (given.with_name(given.name + ".html") if given.is_dir() else triples.with_suffix(".html"))
    accepted = _read(triples, "accepted")
    rejected = _read(rejects, "rejected") if rejects else []
    payload = {"columns": COLUMNS, "rows": accepted + rejected, "page_size": PAGE_SIZE,
               "card": _card_facts(read_run_metadata(triples))}
    # "</" inside the JSON would end the <script> element early
    data = json.dumps(payload, ensure_ascii=False, default=str).replace("</", "<\\/")
    title = f"{triples.parent.name}/{triples.name}" if triples.parent.name else triples.name
    template = files("triplegen.data").joinpath("viewer.html").read_text(encoding="utf-8")
    page = template.replace("__TITLE__", _escape(title)).replace("__DATA__", data)
    write_text_atomic(html, page)
    return ViewSummary(html, len(accepted), len(rejected), rejects)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
