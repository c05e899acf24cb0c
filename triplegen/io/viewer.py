"""`triplegen view`: one self-contained HTML page of a run's triples and rejects, side by side.

No server and no network: the rows are embedded as JSON in the page, and the page (its template is
`triplegen/data/viewer.html`) renders one page of rows at a time, computing the word differences
only for the rows on screen, so 100,000 rows stay quick to open, filter and page through.

The page is filled in one pass, so nothing put in is read again as a placeholder: the title is
HTML-escaped and the rows are JSON whose `<`, `>`, `&`, U+2028 and U+2029 are written as `\u003c`
and so on, so no caption can end the script element, open an HTML comment or run as markup. A page
carries a generator tag; a rerun replaces a page with that tag, any other existing file needs
`overwrite`, and an input (the triples, the rejects, the card) is never replaced.
"""

from __future__ import annotations

import html as markup
import json
import re
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import pyarrow.parquet as pq

from semclip_core.files import refuse_folder, refuse_unsafe_output, write_text_atomic
from semclip_core.parquet import unreadable
from triplegen.errors import TripleGenError
from triplegen.io.layout import card_file, find_rejects, resolve_triples, viewer_page
from triplegen.io.parquet_files import read_run_metadata

COLUMNS = ["id", "status", "kind", "caption", "paraphrase", "negation", "reason", "detail", "raw_output"]
PAGE_SIZE = 100
GENERATOR = '<meta name="generator" content="triplegen view">'  # in the template's <head>
_PLACEHOLDER = re.compile(r"__(TITLE|DATA)__")
_SCRIPT_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                              "\u2028": "\\u2028", "\u2029": "\\u2029"})


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
        raise unreadable(path, exc) from None
    if "caption" not in table.column_names or "id" not in table.column_names:
        raise TripleGenError(f"{path} has no id and caption columns; is it a triplegen output?")
    n = table.num_rows
    data = {name: table.column(name).to_pylist() if name in table.column_names else [None] * n for name in COLUMNS}
    data["status"] = [status] * n
    if "kind" not in table.column_names:
        data["kind"] = ["caption"] * n
    return [list(values) for values in zip(*(data[name] for name in COLUMNS))]


def _card_facts(run: dict | None) -> dict:
    if not isinstance(run, dict) or not isinstance(run.get("counts"), dict):
        return {}
    prompt = run.get("prompt") if isinstance(run.get("prompt"), dict) else {}
    failures = run.get("check_failures") if isinstance(run.get("check_failures"), dict) else {}
    return {"backend": run.get("backend"), "model": run.get("model"), "judged": _count(run["counts"].get("judged")),
            "prompt": f"{prompt.get('name')} v{prompt.get('version')}",
            "check_failures": {str(name): _count(n) for name, n in failures.items()}}


def _count(value) -> int:
    """A count from the file's metadata, which anyone can edit: only a number is shown as one."""
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def write_view(path: Path, html: Path | None = None, rejects: Path | None = None,
               overwrite: bool = False) -> ViewSummary:
    """Write the page for a dataset folder or triples file (default: `out/coco.html` for the folder
    `out/coco`, `out/triples.html` for `out/triples.parquet`: beside the data, never inside a folder
    that `hf upload` would push)."""
    triples = resolve_triples(Path(path))
    if not triples.is_file():
        raise TripleGenError(f"{path}: no triples file there (a dataset folder or a .parquet file)")
    rejects = rejects or find_rejects(Path(path))
    given = Path(path)
    html = Path(html or viewer_page(given, triples))
    _check_output(html, [triples, *([rejects] if rejects else []), card_file(triples)], overwrite)
    accepted = _read(triples, "accepted")
    rejected = _read(rejects, "rejected") if rejects else []
    payload = {"columns": COLUMNS, "rows": accepted + rejected, "page_size": PAGE_SIZE,
               "card": _card_facts(read_run_metadata(triples))}
    title = f"{triples.parent.name}/{triples.name}" if triples.parent.name else triples.name
    write_text_atomic(html, render_page(title, payload))
    return ViewSummary(html, len(accepted), len(rejected), rejects)


def render_page(title: str, payload: dict) -> str:
    """The template with its title and data filled in one pass, each escaped for where it goes."""
    values = {"TITLE": markup.escape(title),
              "DATA": json.dumps(payload, ensure_ascii=False, default=str).translate(_SCRIPT_SAFE)}
    template = files("triplegen.data").joinpath("viewer.html").read_text(encoding="utf-8")
    return _PLACEHOLDER.sub(lambda match: values[match[1]], template)


def _check_output(html: Path, inputs: list[Path], overwrite: bool) -> None:
    refuse_folder(html, "-o")
    refuse_unsafe_output(html, "-o", inputs)
    if html.exists() and not overwrite and not is_view_page(html):
        raise TripleGenError(f"{html} already exists and is not a page written by triplegen view; "
                             "pass --overwrite to replace it")


def is_view_page(path: Path) -> bool:
    """True for a page `triplegen view` wrote (its generator tag is in the first few lines)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(1024)
    except OSError:
        return False
    return GENERATOR.encode() in head
