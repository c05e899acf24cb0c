"""`triplegen view`: write one self-contained HTML page to look at triples and rejects side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

EXAMPLES = """\
Examples:

  triplegen view out/coco                      (writes out/coco.html; open it in any browser)

  triplegen view out/triples.parquet -o review.html

The page needs no server and no network: filter by status, kind and reason code, search the text,
page through the rows; the words a paraphrase or negation changed are highlighted. The filters are
kept in the page's address (#status=rejected&reason=copy), so a view can be shared as a link.

Rerunning the same command replaces the page it wrote before (recognised by
its generator tag), so the page shows the data as it is now. Any other
existing file is replaced only with --overwrite; an input (the triples, the
rejects, the card) never is.
"""


def view(
    path: Annotated[Path, typer.Argument(help="A dataset folder written by generate, or a triples .parquet file.",
                                         show_default=False)],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="The HTML file to write (default: the "
                                                "folder's name + .html, or the triples file with .html).",
                                                show_default=False)] = None,
    rejects: Annotated[Path | None, typer.Option(help="The rejects file (default: the one written beside the triples).",
                                                 show_default=False)] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing -o file that is not a page "
                                            "written by triplegen view (such a page is always replaced; an input "
                                            "never is).")] = False,
) -> None:
    """Write one HTML page with the triples and the rejects, their changed words highlighted."""
    from triplegen.io.viewer import write_view

    summary = write_view(path, output, rejects, overwrite)
    where = f" and {summary.rejected:,} rejects" if summary.rejects else " (no rejects file found)"
    typer.echo(f"{summary.html}: {summary.accepted:,} triples{where}")


view.__doc__ = f"{view.__doc__}\n\n{EXAMPLES}"
