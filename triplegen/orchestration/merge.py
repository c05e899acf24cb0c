"""Join shard outputs with a proof of completeness (`triplegen merge`).

The outputs of `--shard i/N` runs are streamed into one file (`triplegen.io.parquet_files`), proving
that no id is doubled and, given the input, none is missing.
`triplegen merge part*.parquet` also matches the rejects files beside the parts; those are taken as
the parts' rejects, not as parts.

The parts must come from one run cut into shards: parts made with other settings (`--absent-objects`,
`--seed`, the prompt, the model, ...) are refused, naming the two parts and the setting
(triplegen.orchestration.shards).
A merged output records a digest of every part it was joined from, so the same merge run again finds
it complete and rewrites nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from semclip_core.files import refuse_folder, refuse_overwriting_inputs
from semclip_core.parquet import unreadable
from triplegen.errors import TripleGenError
from triplegen.orchestration.finish import write_card
from triplegen.io.layout import OutputFiles, card_file, find_rejects, output_files, owner_of_rejects, resolve_triples
from triplegen.objects import ABSENT_SUFFIX
from triplegen.io.parquet_files import concat_parquet, read_run_metadata
from triplegen.io.readers import CaptionSource, Columns
from triplegen.orchestration.records import Tally
from triplegen.orchestration.shards import MERGED, merged_before, parts_digest, refuse_mixed_settings
from triplegen.io.schema import REQUIRED_TRIPLE_COLUMNS, reject_schema
from triplegen.io.writer import WriteSummary

@dataclass
class MergeSummary:
    output: WriteSummary
    rejects: WriteSummary
    parts: list[Path]
    checked_against_input: bool = False
    ids: int = 0
    notes: list[str] = field(default_factory=list)
    card: Path | None = None
    complete: bool = False  # the same parts were merged into it before: nothing was rewritten


def merge_shards(parts: list[Path], output: Path, rejects: Path | None = None, input: Path | None = None,
                 overwrite: bool = False) -> MergeSummary:
    """Join shard outputs and their rejects; refuse doubled ids, and missing ones when `input` is given."""
    given, notes = _without_their_rejects([Path(p) for p in parts])
    for path in given:
        if not path.exists():
            raise TripleGenError(f"part not found: {path}")
    parts = [resolve_triples(p) for p in given]  # a dataset folder means its triples file
    for path in parts:
        if path.is_dir() or not path.exists():
            raise TripleGenError(f"{path} holds no triplegen output (no triples.parquet)")
    output, rejects = output_files(Path(output), rejects)
    found = [find_rejects(p) for p in given]
    reject_parts = [r for r in found if r is not None]
    notes += [f"no rejects file beside {p}" for p, r in zip(parts, found) if r is None]
    refuse_folder(output, "-o")
    refuse_folder(rejects, "--rejects")
    refuse_overwriting_inputs({"-o": output, "--rejects": rejects}, parts + reject_parts + ([input] if input else []))
    schema = _triples_schema(parts)
    runs = [read_run_metadata(p) for p in parts]
    refuse_mixed_settings(parts, runs)
    sources = parts_digest(parts, reject_parts)
    complete = not overwrite and merged_before(output, rejects, sources)

    seen = _collect_ids(parts + reject_parts)
    checked = False
    if input is not None:
        _compare_with_input(seen, input, read_run_metadata(parts[0]))
        checked = True
    combined = combine_runs(runs)
    card = card_file(output) if combined is not None else None
    if complete:  # the same merge ran before: its files stay as they are
        return MergeSummary(_written(output), _written(rejects), parts, checked, len(seen), notes, card, True)
    run = {**(combined or {}), "merged_from": [str(p) for p in parts], "runs": runs, MERGED: sources}
    out = concat_parquet(parts, output, schema, run)
    rej = concat_parquet(reject_parts, rejects, reject_schema(), run)
    if card is not None:
        write_card(OutputFiles(output, rejects, card), combined)
    else:
        notes.append("the parts carry no triplegen run metadata: no dataset card written")
    return MergeSummary(out, rej, parts, checked, len(seen), notes, card)


def _written(path: Path) -> WriteSummary:
    return WriteSummary(path, pq.read_metadata(path).num_rows, path.stat().st_size)


def combine_runs(runs: list[dict | None]) -> dict | None:
    """One run record for the merged card: the parts' counters summed, the rest of the first part's."""
    known = [run for run in runs if run and "counts" in run]
    if not known or len(known) != len(runs):
        return None
    total = sum((Tally.from_stored(run) for run in known), Tally())
    first = known[0]
    own = ("merged_from", "runs", MERGED, "fingerprint", "input_digest")  # of the first part, not of the merge
    return {**{k: v for k, v in first.items() if k not in own},
            "config": {**first["config"], "shard": None}, **total.stored()}


def _without_their_rejects(parts: list[Path]) -> tuple[list[Path], list[str]]:
    """The parts without the rejects files of other given parts (a shell glob matches both)."""
    given = {p.resolve() for p in parts}
    kept, notes = [], []
    for path in parts:
        owner = owner_of_rejects(path)
        if owner is not None and owner.resolve() in given:
            notes.append(f"{path} is taken as the rejects of {owner}")
        else:
            kept.append(path)
    return kept, notes


def _triples_schema(parts: list[Path]) -> pa.Schema:
    """The parts' joint schema; each part must be a triples file."""
    schemas = []
    for path in parts:
        try:
            schema = pq.read_schema(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise unreadable(path, exc) from None
        missing = [name for name in REQUIRED_TRIPLE_COLUMNS if name not in schema.names]
        if missing:
            raise TripleGenError(f"{path} is not a triples file (no column {', '.join(missing)}); merge joins the "
                                 "outputs of triplegen generate")
        schemas.append(schema)
    try:
        return pa.unify_schemas(schemas, promote_options="permissive").remove_metadata()
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise TripleGenError(f"the parts cannot be joined: {str(exc).splitlines()[0]}") from None


def _collect_ids(paths: list[Path]) -> dict[str, Path]:
    seen: dict[str, Path] = {}
    for path in paths:
        try:
            parquet = pq.ParquetFile(path)
            if "id" not in parquet.schema_arrow.names:
                raise TripleGenError(f"{path} has no 'id' column; is it a triplegen output?")
            batches = parquet.iter_batches(columns=["id"])
            for batch in batches:
                for row_id in batch.column(0).to_pylist():
                    if row_id in seen:
                        where = "twice in " + str(path) if seen[row_id] == path else f"in {seen[row_id]} and {path}"
                        raise TripleGenError(f"id {row_id!r} appears {where}; the parts overlap")
                    seen[row_id] = path
        except (pa.ArrowInvalid, OSError) as exc:
            raise unreadable(path, exc) from None
    return seen


def _compare_with_input(seen: dict[str, Path], input: Path, run: dict | None) -> None:
    config = (run or {}).get("config", {})
    columns = Columns(
        caption=config.get("caption_col", "caption"),
        image=config.get("image_col", "image"),
        id=config.get("id_col"),
    )
    expected = {row_id for batch in CaptionSource(input, columns).id_batches() for row_id in batch}
    missing = expected - seen.keys()
    # an absent-object row's id is its source id + "#absent-N": it belongs if its source does
    extra = {row_id for row_id in seen.keys() - expected if row_id.rsplit(ABSENT_SUFFIX, 1)[0] not in expected}
    if missing:
        sample = ", ".join(sorted(missing)[:5])
        raise TripleGenError(f"{len(missing)} input id(s) are in no part (e.g. {sample}); a shard is missing or unfinished")
    if extra:
        sample = ", ".join(sorted(extra)[:5])
        raise TripleGenError(f"{len(extra)} id(s) in the parts are not in {input} (e.g. {sample})")
