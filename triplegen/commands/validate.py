"""`triplegen validate`: schema, quality checks and duplicate ids of triples files; exit code for CI."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from triplegen.commands.options import BlindModel, ObjectSynonyms, SemanticCheck
from triplegen.errors import TripleGenError

EXAMPLES = """\
Examples:

  triplegen validate out/triples.parquet

  triplegen validate part0.parquet part1.parquet --report report.json --max-fail-rate 0.01

  triplegen validate other.parquet --write-clean clean.parquet

  triplegen validate out/triples --blind-model models/smollm2 --report report.json
  (how often a text-only LM prefers the caption to the negation, per kind; rows it tells apart fail)

Exit codes: 0 clean (or within --max-fail-rate), 1 rows fail, 2 unusable input.
"""


def validate(
    files: Annotated[list[Path], typer.Argument(help="Triples Parquet files or dataset folders, checked together.",
                                                show_default=False)],
    report: Annotated[Path | None, typer.Option(help="Write counts per reason and every failing id as JSON.",
                                                show_default=False)] = None,
    write_clean: Annotated[Path | None, typer.Option(help="Write only the passing rows to this Parquet file.",
                                                     show_default=False)] = None,
    max_fail_rate: Annotated[float, typer.Option(min=0.0, max=1.0,
                                                 help="Exit 0 while this share of rows or fewer fails.")] = 0.0,
    semantic_check: SemanticCheck = False,
    blind_model: BlindModel = None,
    object_synonyms: ObjectSynonyms = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing --report or --write-clean "
                                            "file.")] = False,
) -> None:
    """Check triples files: schema, the quality checks on every row, duplicate ids."""
    from triplegen.validation import describe, validate as run_validate

    for target in (report, write_clean):
        if target is not None and target.is_file() and not overwrite:
            raise TripleGenError(f"{target} already exists; pass --overwrite to replace it")
    from triplegen.checks import CheckConfig
    from triplegen.synonyms import ObjectLexicon

    checks = CheckConfig(lexicon=ObjectLexicon.load(object_synonyms)) if object_synonyms else CheckConfig()
    result = run_validate(files, semantic_check=semantic_check, write_clean=write_clean, report=report,
                          blind_model=blind_model, checks=checks)
    console = Console(highlight=False, soft_wrap=True)
    console.print(f"{result.rows:,} rows in {len(files)} file(s): {result.rows - result.failed:,} pass, "
                  f"{result.failed:,} fail ({result.fail_rate:.2%})")
    if result.counts:
        table = Table("reason", "meaning", "rows")
        for reason, n in result.counts.most_common():
            table.add_row(reason, describe(reason), f"{n:,}")
        console.print(table)
    if result.blind is not None:
        console.print(_blind_table(result.blind))
    if result.clean_rows is not None:
        console.print(f"wrote {result.clean_rows:,} passing rows to {write_clean}")
    if report is not None:
        console.print(f"report: {report}")
    if result.failed and result.fail_rate > max_fail_rate:
        raise typer.Exit(1)


def _blind_table(blind: dict) -> Table:
    table = Table("kind", "scored", "prefers caption", "detectable", "disfluent", title=f"blind model {blind['model']}")
    for kind, n in blind["kinds"].items():
        share = "n/a" if n["share_prefers_true"] is None else f"{n['share_prefers_true']:.1%}"
        table.add_row(kind, f"{n['scored']:,}", share, f"{n['detectable']:,}", f"{n['disfluent']:,}")
    return table


validate.__doc__ = f"{validate.__doc__}\n\n{EXAMPLES}"
