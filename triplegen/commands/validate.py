"""`triplegen validate`: schema, quality checks and duplicate ids of triples files; exit code for CI."""

from __future__ import annotations

import contextlib
import filecmp
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from semclip_core.files import move_into_place, refuse_folder, refuse_overwriting_inputs, temp_path
from triplegen.commands.options import BlindModel, ObjectSynonyms, SemanticCheck
from triplegen.errors import TripleGenError

EXAMPLES = """\
Examples:

  triplegen validate out/triples.parquet

  triplegen validate part0.parquet part1.parquet --report report.json --max-fail-rate 0.01

  triplegen validate other.parquet --write-clean clean.parquet

  triplegen validate out/triples --blind-model models/smollm2 --report report.json
  (how often a text-only LM prefers the caption to the negation, per kind; rows it tells apart fail)

Exit codes: 0 clean (or within --max-fail-rate), 1 rows fail, 2 unusable input. Run again on the same
files, a --report or --write-clean file it wrote before is left as it is; one that differs needs --overwrite.
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
    from triplegen.checks.validation import describe, validate as run_validate

    from triplegen.checks.lexical import CheckConfig
    from triplegen.rules.object_names import ObjectLexicon

    checks = CheckConfig(lexicon=ObjectLexicon.load(object_synonyms)) if object_synonyms else CheckConfig()
    targets = {"--report": report, "--write-clean": write_clean}
    with _staged(targets, files, overwrite) as staged:
        result = run_validate(files, semantic_check=semantic_check, write_clean=staged["--write-clean"],
                              report=staged["--report"], blind_model=blind_model, checks=checks)
        kept = staged.settle()
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
    same = " (already there from an earlier run with the same files and settings, not rewritten)"
    if result.clean_rows is not None:
        verb, note = ("kept", same) if write_clean in kept else ("wrote", "")
        console.print(f"{verb} {result.clean_rows:,} passing rows to {write_clean}{note}")
    if report is not None:
        console.print(f"report: {report}" + (same if report in kept else ""))
    if result.failed and result.fail_rate > max_fail_rate:
        raise typer.Exit(1)


class _Staged(dict):
    """Where validate writes each output: the output itself, or, when some output exists already and
    --overwrite is not given, a temporary file beside it. `settle` then keeps an existing output that
    is what this run wrote (a rerun: nothing rewritten), moves new ones into place, and refuses one
    that differs, as before."""

    def __init__(self, targets: dict[str, Path | None], overwrite: bool):
        existing = [t for t in targets.values() if t is not None and t.exists()]
        self.targets = targets
        self.staging = bool(existing) and not overwrite
        super().__init__({flag: (temp_path(t) if self.staging and t is not None else t) for flag, t in targets.items()})

    def settle(self) -> set[Path]:
        if not self.staging:
            return set()
        kept = set()
        for flag, target in self.targets.items():
            if target is not None and target.exists():
                if not target.is_file() or not filecmp.cmp(self[flag], target, shallow=False):
                    raise TripleGenError(f"{target} already exists; pass --overwrite to replace it (this run's "
                                         f"{flag} differs from it)")
                kept.add(target)
        for flag, target in self.targets.items():
            if target is not None and target not in kept:
                move_into_place(self[flag], target)
        return kept

    def discard(self) -> None:
        if self.staging:
            for staged in self.values():
                if staged is not None:
                    Path(staged).unlink(missing_ok=True)


@contextlib.contextmanager
def _staged(targets: dict[str, Path | None], files: list[Path], overwrite: bool):
    from triplegen.io.layout import resolve_triples

    # refused before anything (validate checks them too, but on the staged names)
    for flag, target in targets.items():
        refuse_folder(target, flag)
    refuse_overwriting_inputs(targets, [resolve_triples(p) for p in files])
    staged = _Staged(targets, overwrite)
    try:
        yield staged
    finally:
        staged.discard()


def _blind_table(blind: dict) -> Table:
    table = Table("kind", "scored", "prefers caption", "detectable", "disfluent", title=f"blind model {blind['model']}")
    for kind, n in blind["kinds"].items():
        share = "n/a" if n["share_prefers_true"] is None else f"{n['share_prefers_true']:.1%}"
        table.add_row(kind, f"{n['scored']:,}", share, f"{n['detectable']:,}", f"{n['disfluent']:,}")
    return table


validate.__doc__ = f"{validate.__doc__}\n\n{EXAMPLES}"
