"""`triplegen.validate(...)`: check triples files with the same checks `generate` applies.

A file `generate` wrote passes by construction (it only writes rows that passed these checks), so a
failure here means the file was edited, produced elsewhere, or checked with stricter settings
(`--semantic-check`, `--blind-model`). Rows the blind model flags fail like any other reason (exit
code 1), and the report says per kind how often it prefers the caption to the negation. Several files are checked as one set, which is how shard outputs are proven
free of doubled ids.

Memory: a first pass looks for repeated ids in bounded memory (triplegen.io.idcheck); only when one
repeats are the ids kept in a set (about 100 bytes an id) to flag every repeat. The report keeps
every failing row, so a file where most rows fail needs memory in proportion.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from semclip_core.files import refuse_folder, refuse_overwriting_inputs, write_json_atomic
from semclip_core.parquet import unreadable
from triplegen.checks.blind import BlindScorer, FileCheck
from triplegen.checks.lexical import REASONS, CheckConfig, check_absent_triple, check_caption, check_triple
from triplegen.errors import TripleGenError
from triplegen.io.idcheck import DuplicateIds
from triplegen.io.layout import resolve_triples
from triplegen.objects import parse_labels
from triplegen.io.schema import METADATA_KEY, REQUIRED_TRIPLE_COLUMNS, ROW_KINDS
from triplegen.io.writer import ParquetSink

# Reasons only validate can find (a file, not a generation, is being judged).
FILE_REASONS = {
    "duplicate_id": "the id appeared earlier in the checked files",
    "missing_id": "the id is null or empty",
    "unknown_kind": f"the kind is not one of {', '.join(ROW_KINDS)}",
    "invalid_objects": "an absent-object row's objects are not a list of object labels (a label that is empty, "
                       "a phrase, a negation, or holds a delimiter or a control character)",
}
BATCH_ROWS = 8192


@dataclass
class ValidationReport:
    files: list[str]
    rows: int = 0
    failed: int = 0
    counts: Counter = field(default_factory=Counter)  # reason code -> failing rows
    failures: list[dict] = field(default_factory=list)  # {"id", "file", "reasons"}
    clean_rows: int | None = None
    blind: dict | None = None  # --blind-model: its settings and, per kind, how often it prefers the caption

    @property
    def fail_rate(self) -> float:
        return self.failed / self.rows if self.rows else 0.0

    def to_json(self) -> dict:
        return {
            "files": self.files, "rows": self.rows, "passed": self.rows - self.failed, "failed": self.failed,
            "fail_rate": self.fail_rate, "counts": dict(self.counts.most_common()), "failures": self.failures,
            "clean_rows": self.clean_rows, "blind": self.blind,
        }


def describe(reason: str) -> str:
    return REASONS.get(reason) or FILE_REASONS.get(reason, "")


def _open(path: Path) -> pq.ParquetFile:
    if not path.exists():
        raise TripleGenError(f"file not found: {path}")
    if path.is_dir():
        raise TripleGenError(f"{path} is a folder without a triples.parquet; give the triples files themselves")
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise unreadable(path, exc) from None
    schema = parquet.schema_arrow
    for name in REQUIRED_TRIPLE_COLUMNS:
        if name not in schema.names:
            raise TripleGenError(
                f"{path} has no column {name!r}; a triples file needs {', '.join(REQUIRED_TRIPLE_COLUMNS)}"
                f" (found: {', '.join(schema.names)})"
            )
        kind = schema.field(name).type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
            raise TripleGenError(f"{path}: column {name!r} has type {kind}, expected string")
    return parquet


def validate(paths: list[Path], semantic_check: bool = False, write_clean: Path | None = None,
             report: Path | None = None, checks: CheckConfig = CheckConfig(),
             blind_model: str | None = None) -> ValidationReport:
    """Check every row of every file; optionally write the passing rows and a JSON report.

    `blind_model`: a causal LM folder for the blind check (triplegen.checks.blind); its codes count as failures."""
    paths = [resolve_triples(p) for p in paths]  # a dataset folder means its triples file
    refuse_folder(report, "--report")
    refuse_folder(write_clean, "--write-clean")
    refuse_overwriting_inputs({"--report": report, "--write-clean": write_clean}, paths)
    files = [_open(p) for p in paths]  # every schema problem is found before any row is read
    semantic = _semantic_checker() if semantic_check else None
    blind = FileCheck(BlindScorer(blind_model)) if blind_model is not None else None
    result = ValidationReport(files=[str(p) for p in paths])
    # the set of ids that flags each repeat is kept only when a bounded first pass found one
    seen: set[str] | None = set() if _ids_repeat(paths, files, write_clean or report) else None
    sink = _clean_sink(write_clean, files) if write_clean else None
    try:
        for path, parquet in zip(paths, files):
            objects_col = _objects_column(parquet)
            for batch in _batches(path, parquet):
                verdicts = _check_batch(batch, seen, checks, semantic, objects_col)
                if blind is not None:
                    _add_blind(blind, batch, verdicts)
                keep = []
                for row_id, reasons in verdicts:
                    result.rows += 1
                    keep.append(not reasons)
                    if reasons:
                        result.failed += 1
                        result.counts.update(reasons)
                        result.failures.append({"id": row_id, "file": str(path), "reasons": reasons})
                if sink is not None:
                    sink.write(batch.filter(pa.array(keep, pa.bool_())))
        if sink is not None:
            result.clean_rows = sink.finalize().rows
        result.blind = blind.report() if blind is not None else None
    finally:
        if sink is not None:
            sink.abort()
    if report is not None:
        write_json_atomic(report, result.to_json())
    return result


def _batches(path: Path, parquet: pq.ParquetFile):
    """The file's rows in batches; a corrupt page, found only as it is read, is one line (exit 2)."""
    try:
        yield from parquet.iter_batches(batch_size=BATCH_ROWS)
    except (pa.ArrowInvalid, OSError) as exc:
        raise unreadable(path, exc) from None


def _objects_column(parquet: pq.ParquetFile) -> str:
    """The column of object labels the run that wrote the file was told to read ("objects" by default)."""
    raw = (parquet.schema_arrow.metadata or {}).get(METADATA_KEY)
    try:
        return json.loads(raw)["config"]["objects_col"] if raw else "objects"
    except (ValueError, KeyError, TypeError):
        return "objects"


def _optional(batch: pa.RecordBatch, name: str) -> list:
    return batch.column(name).to_pylist() if name in batch.schema.names else [None] * batch.num_rows


def _ids_repeat(paths: list[Path], files: list[pq.ParquetFile], output: Path | None) -> bool:
    """Whether any id repeats across the files, found in bounded memory (triplegen.io.idcheck): a clean
    file of 10^8 rows is checked without a set of its ids. The hashes spill beside the output, or
    into the system's temporary folder when there is none (never beside an input)."""
    beside = output or Path(tempfile.gettempdir()) / "triplegen-validate-ids"
    with DuplicateIds(beside) as ids:
        for path, parquet in zip(paths, files):
            try:
                for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=["id"]):
                    ids.add([row_id for row_id in batch.column(0).to_pylist() if row_id])
            except (pa.ArrowInvalid, OSError) as exc:
                raise unreadable(path, exc) from None
        return ids.first_duplicate(lambda: _present_ids(files)) is not None


def _present_ids(files: list[pq.ParquetFile]):
    """The ids that are not missing, as `_ids_repeat` read them."""
    for parquet in files:
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=["id"]):
            yield [row_id for row_id in batch.column(0).to_pylist() if row_id]


def _check_batch(batch: pa.RecordBatch, seen: set[str] | None, checks: CheckConfig, semantic,
                 objects_col: str = "objects") -> list[tuple[str, list[str]]]:
    """Each row's reasons; an absent-object row (kind absent-*) gets the checks of its kind."""
    columns = {name: batch.column(name).to_pylist() for name in REQUIRED_TRIPLE_COLUMNS}
    kinds, absent, objects = _optional(batch, "kind"), _optional(batch, "absent_object"), _optional(batch, objects_col)
    verdicts: list[tuple[str, list[str]]] = []
    rows = zip(*(columns[n] for n in REQUIRED_TRIPLE_COLUMNS), kinds, absent, objects)
    for row_id, caption, paraphrase, negation, kind, absent_object, labels in rows:
        reasons: list[str] = []
        if not row_id:
            reasons.append("missing_id")
        elif seen is not None and row_id in seen:
            reasons.append("duplicate_id")
        elif seen is not None:
            seen.add(row_id)
        source_problem = check_caption(caption, checks)
        if kind not in (None, *ROW_KINDS):
            reasons.append("unknown_kind")
        elif source_problem:
            reasons.append(source_problem)
        elif kind in (None, "caption"):
            reasons += check_triple(caption, paraphrase, negation, checks)
        else:
            reasons += _absent_reasons(labels, absent_object, caption, paraphrase, negation, checks)
        verdicts.append((row_id, reasons))
    if semantic is not None:
        rows = [i for i, (_, reasons) in enumerate(verdicts) if not reasons]
        if rows:
            found = semantic.check([columns["caption"][i] for i in rows], [columns["paraphrase"][i] for i in rows],
                                   [columns["negation"][i] for i in rows])
            for i, reasons in zip(rows, found):
                verdicts[i][1].extend(reasons)
    return verdicts


def _absent_reasons(labels, absent_object, caption, paraphrase, negation, checks: CheckConfig) -> list[str]:
    try:
        shown = parse_labels(labels)
    except TripleGenError:
        return ["invalid_objects"]
    return check_absent_triple(None, shown, absent_object or "", caption, paraphrase, negation, checks)


def _add_blind(blind: FileCheck, batch: pa.RecordBatch, verdicts: list[tuple[str, list[str]]]) -> None:
    """Add the blind check's codes to each row's reasons."""
    found = blind.check([row_id for row_id, _ in verdicts], _optional(batch, "kind"), batch.column("caption").to_pylist(),
                        batch.column("negation").to_pylist(), _optional(batch, "source_id"))
    for (_, reasons), codes in zip(verdicts, found):
        reasons.extend(codes)


def _clean_sink(path: Path, files: list[pq.ParquetFile]) -> ParquetSink:
    try:
        schema = pa.unify_schemas([f.schema_arrow for f in files], promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise TripleGenError(f"the files' columns cannot be combined for --write-clean: {exc}") from None
    metadata = files[0].schema_arrow.metadata or {}
    return ParquetSink(path, schema.with_metadata(metadata))


def _semantic_checker():
    from triplegen.checks.semantic import SemanticChecker

    return SemanticChecker()


def load_report(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))
