"""`triplegen merge`: join shard outputs (and their rejects) with a proof that no id is lost or doubled."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from triplegen.commands.options import Overwrite

EXAMPLES = """\
Examples:

  triplegen merge part0.parquet part1.parquet part2.parquet -o triples.parquet --input caps.parquet

Each part's rejects are taken from beside it (<stem>.rejects.parquet).
"""


def merge(
    parts: Annotated[list[Path], typer.Argument(help="Shard outputs written by generate --shard i/N.",
                                                show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="Merged Parquet file.", show_default=False)],
    rejects: Annotated[Path | None, typer.Option(help="Merged rejects (default: <output stem>.rejects.parquet).",
                                                 show_default=False)] = None,
    input: Annotated[Path | None, typer.Option(help="The original input: prove that every id is in a part.",
                                               show_default=False)] = None,
    overwrite: Overwrite = False,
) -> None:
    """Join shard outputs; refuse doubled ids, and missing ones when --input is given."""
    from triplegen.merge import merge_shards

    summary = merge_shards(parts, output, rejects=rejects, input=input, overwrite=overwrite)
    for note in summary.notes:
        typer.echo(f"note: {note}", err=True)
    proof = f"all {summary.ids:,} input ids present once" if summary.checked_against_input else (
        f"{summary.ids:,} ids, none doubled (pass --input to prove none is missing)")
    typer.echo(f"{summary.output.path}: {summary.output.rows:,} rows, {summary.rejects.path}: "
               f"{summary.rejects.rows:,} rejects from {len(summary.parts)} parts; {proof}")


merge.__doc__ = f"{merge.__doc__}\n\n{EXAMPLES}"
