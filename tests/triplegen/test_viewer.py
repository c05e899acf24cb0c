"""`triplegen view` in a real headless Chromium: the page shows rows, highlights changed words,
filters by status, kind and reason code, and pages through 100,000 rows."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from tests.conftest import require_program
from triplegen.cli import app

runner = CliRunner()
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "captions.parquet"


@pytest.fixture(scope="module")
def chromium() -> str:
    return require_program("chromium", "the viewer is tested in a real headless browser (apt-get install chromium)")


def _browser(chromium: str, tmp_path: Path, page: Path, *mode: str, fragment: str = "") -> str:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    profile.mkdir()
    command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
               "--window-size=1400,900", *mode, page.resolve().as_uri() + fragment]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _rows(dom: str) -> list[str]:
    body = dom.split('<tbody id="rows">', 1)[1].split("</tbody>", 1)[0]
    return re.findall(r'<tr class="(\w+)">', body)


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("view") / "example"
    assert runner.invoke(app, ["generate", str(EXAMPLE), "-o", str(folder), "--quiet"]).exit_code == 0
    result = runner.invoke(app, ["view", str(folder)])
    assert result.exit_code == 0, result.output
    assert "298 triples and 2 rejects" in result.output
    return folder.with_name("example.html")


def test_the_page_shows_rows_with_the_changed_words_highlighted(chromium, page, tmp_path):
    from PIL import Image

    dom = _browser(chromium, tmp_path, page, "--dump-dom")
    assert _rows(dom) == ["accepted"] * 100  # one page of the 300
    assert "page 1 of 3 · 300 of 300 rows" in dom
    assert '<mark class="add">' in dom and "rejects by reason" in dom
    shot = tmp_path / "shot.png"
    _browser(chromium, tmp_path, page, f"--screenshot={shot}")
    colours = dict((colour, n) for n, colour in Image.open(shot).convert("RGB").getcolors(maxcolors=1 << 24))
    highlighted = colours.get((184, 245, 176), 0)  # mark.add's background
    assert highlighted > 500, "no highlighted words on screen"


def test_filters_by_status_and_reason_code_from_the_address(chromium, page, tmp_path):
    dom = _browser(chromium, tmp_path, page, "--dump-dom", fragment="#status=rejected&reason=empty_caption")
    assert _rows(dom) == ["rejected", "rejected"] and "empty_caption" in dom
    assert "2 of 300 rows" in dom
    dom = _browser(chromium, tmp_path, page, "--dump-dom", fragment="#kind=caption&q=frisbee")
    assert _rows(dom) and "frisbee" in dom.split('<tbody id="rows">', 1)[1].lower()


def test_a_hundred_thousand_rows_page_quickly(chromium, page, tmp_path):
    triples = pq.read_table(page.with_name("example") / "triples.parquet")
    copies = [triples.set_column(0, "id", pc.binary_join_element_wise(triples.column("id"), pa.scalar(f"-{n}"), ""))
              for n in range(-(-100_000 // triples.num_rows))]
    big = pa.concat_tables(copies).slice(0, 100_000)
    pq.write_table(big, tmp_path / "big.parquet")
    result = runner.invoke(app, ["view", str(tmp_path / "big.parquet"), "-o", str(tmp_path / "big.html")])
    assert result.exit_code == 0 and "100,000 triples (no rejects file found)" in result.output
    dom = _browser(chromium, tmp_path, tmp_path / "big.html", "--dump-dom", fragment="#page=1000")
    assert "page 1000 of 1000 · 100,000 of 100,000 rows" in dom and len(_rows(dom)) == 100


def test_a_path_without_triples_is_one_line(tmp_path):
    result = runner.invoke(app, ["view", str(tmp_path)])
    assert result.exit_code == 2 and "no triples file there" in result.output


# Names and captions are data, never markup: the page is filled in one pass and every value escaped.

HOSTILE = ["<img src=x onerror=document.body.dataset.pwned=1>", "<!--<script>", "a line\u2028break & <b>bold</b>",
           "</script><script>document.body.dataset.pwned=1</script>"]


def _hostile_triples(folder: Path) -> Path:
    folder.mkdir(parents=True)
    n = len(HOSTILE)
    pq.write_table(pa.table({"id": [f"h{i}" for i in range(n)], "caption": HOSTILE, "paraphrase": HOSTILE,
                             "negation": [f"no {text}" for text in HOSTILE]}), folder / "triples.parquet")
    return folder


def test_a_name_holding_the_data_placeholder_shows_no_caption_as_markup(chromium, tmp_path):
    folder = _hostile_triples(tmp_path / "evil__DATA__")
    result = runner.invoke(app, ["view", str(folder)])
    assert result.exit_code == 0, result.output
    dom = _browser(chromium, tmp_path, folder.with_name("evil__DATA__.html"), "--dump-dom")
    assert "data-pwned" not in dom and 'data-ready="1"' in dom
    assert "<title>evil__DATA__/triples.parquet</title>" in dom and "<h1>evil__DATA__/triples.parquet</h1>" in dom
    assert _rows(dom) == ["accepted"] * len(HOSTILE)
    body = dom.split('<tbody id="rows">', 1)[1]
    assert "&lt;img src=x onerror=document.body.dataset.pwned=1&gt;" in body and "&lt;!--&lt;script&gt;" in body


def test_a_caption_opening_a_comment_in_the_script_does_not_blank_the_page(chromium, tmp_path):
    folder = _hostile_triples(tmp_path / "plain")
    assert runner.invoke(app, ["view", str(folder), "-o", str(tmp_path / "plain.html")]).exit_code == 0
    page = (tmp_path / "plain.html").read_text(encoding="utf-8")
    data = page.split('<script type="application/json" id="data">', 1)[1].split("</script>", 1)[0]
    assert not set("<>&\u2028\u2029") & set(data), "unescaped in the embedded JSON"
    dom = _browser(chromium, tmp_path, tmp_path / "plain.html", "--dump-dom")
    assert 'data-ready="1"' in dom and "data-pwned" not in dom
    assert _rows(dom) == ["accepted"] * len(HOSTILE) and "page 1 of 1 · 4 of 4 rows" in dom


def test_tampered_counts_in_the_metadata_show_as_numbers(chromium, tmp_path):
    import json

    run = {"counts": {"judged": "<img src=x onerror=document.body.dataset.pwned=1>"},
           "check_failures": {"copy": "<img src=x onerror=document.body.dataset.pwned=1>"}, "backend": "rules"}
    table = pa.table({"id": ["a"], "caption": ["a dog"], "paraphrase": ["a hound"], "negation": ["no dog"]})
    table = table.replace_schema_metadata({"triplegen": json.dumps(run)})
    pq.write_table(table, tmp_path / "t.parquet")
    assert runner.invoke(app, ["view", str(tmp_path / "t.parquet")]).exit_code == 0
    dom = _browser(chromium, tmp_path, tmp_path / "t.html", "--dump-dom")
    assert 'data-ready="1"' in dom and "data-pwned" not in dom and "check failures over 0 judged" in dom
