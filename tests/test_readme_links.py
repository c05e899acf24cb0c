"""Cross-references between the docs: every `README, "Heading"`, `docs/x.md ("Heading")`, `"Heading" above`
and `(section N)` in README.md, docs/*.md, prompts/README.md and the commands' help texts names a heading
that exists, so a renamed heading cannot leave a reference pointing nowhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = ["README.md", *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md")), "prompts/README.md"]
HELP_SOURCES = sorted(str(p.relative_to(REPO)) for package in ("triplegen", "semclip_train")
                      for p in (REPO / package).rglob("*.py"))

# `README, "X"`, `README's "X"`, `docs/a.md, "X"`, `docs/a.md ("X")`, `prompts/README.md, "X"` (not "its README":
# another project's)
TO_ANOTHER = re.compile(r"((?:docs|prompts)/[\w.-]+\.md|(?<!its )README(?:\.md)?)(?:'s)?,? \(?\"([^\"]{3,90})\"")
TO_THIS = re.compile(r"\"([^\"]{3,90})\" (?:above|below)")
TO_SECTION = re.compile(r"\(section (\d+)\)")


def headings(path: str) -> list[str]:
    text = (REPO / path).read_text(encoding="utf-8")
    return [line.lstrip("#").strip().replace("`", "") for line in text.splitlines() if re.match(r"#{1,6} ", line)]


def references(path: str) -> list[tuple[str, str]]:
    """(target file, quoted heading) of every reference in one file, prose joined across line breaks."""
    text = " ".join((REPO / path).read_text(encoding="utf-8").split())
    found = [("README.md" if target.startswith("README") else target, title)
             for target, title in TO_ANOTHER.findall(text)]
    found += [(path, title) for title in TO_THIS.findall(text)]
    found += [(path, f"{number}.") for number in TO_SECTION.findall(text)]
    return found


def test_the_references_are_found():
    """The patterns see the references the docs make (a pattern that matched nothing would pass anything)."""
    found = {ref for path in DOCS + HELP_SOURCES for ref in references(path)}
    assert ("docs/llm-backends.md", "Right the first time") in found
    assert ("README.md", "Train on a CPU in one minute") in found
    assert ("README.md", "3.") in found


@pytest.mark.parametrize("path", DOCS + HELP_SOURCES)
def test_every_reference_names_an_existing_heading(path):
    for target, title in references(path):
        assert (REPO / target).is_file(), f"{path}: {target} does not exist"
        assert any(h.startswith(title.replace("`", "")) for h in headings(target)), (
            f"{path} refers to {target}, \"{title}\", which is no heading there")
