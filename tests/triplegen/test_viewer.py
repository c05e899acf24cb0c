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
