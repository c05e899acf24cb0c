"""A rerun of a finished `generate`: the same command, input and settings exit 0 and rewrite nothing.

Slurm `--requeue`, a Kubernetes Job restart or a retry wrapper runs a command again after it has
finished, and a user reruns a README line. So a finished run stores, in the Parquet metadata of its
triples and rejects (key `triplegen`), its fingerprint (the settings that decide the rows, the ones a
resumed run compares) and a digest of the input rows it was made from. A rerun compares both with
its own: when they agree, the output is complete and nothing is written. Anything else is refused as
before (`--overwrite` replaces it), with what differs.

The input counts by its content, not its modification time: a copy staged again by a job's prologue
is the same input, and a file edited in place keeping its size and time is not. Reading it (about
5 s per million rows) is the price of a rerun, far below that of generating again.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from triplegen.errors import TripleGenError
from triplegen.orchestration.finish import write_card
from triplegen.io.parquet_files import read_run_metadata
from triplegen.orchestration.records import ChunkSummary
from triplegen.orchestration.resume import combined_digest, differences, input_digest

if TYPE_CHECKING:
    from triplegen.orchestration.job import Job

FINGERPRINT, INPUT_DIGEST = "fingerprint", "input_digest"


def stamp(fingerprint: dict, summaries: list[ChunkSummary]) -> dict:
    """What a finished run adds to its metadata so that a rerun can tell it is complete."""
    return {FINGERPRINT: fingerprint, INPUT_DIGEST: combined_digest(s.input_digest for s in summaries)}


def check_complete(job: Job) -> None:
    """Return when the output of `job` is what this run would write; else refuse in one line. A
    missing card is written again from the metadata (it holds all of it)."""
    config, files = job.config, job.files
    refusal = f"{files.triples} already exists; pass --overwrite to replace it or choose another -o"
    stored = _metadata(files.triples)
    if not stored or not stored.get(FINGERPRINT) or not stored.get(INPUT_DIGEST):
        raise TripleGenError(refusal)  # an older version's output, or not one of ours: nothing to compare
    changed = _changed_settings(stored, config, job.fingerprint())
    if changed:
        raise TripleGenError(f"{refusal} (it was made with a different {', '.join(changed)})")
    if not files.rejects.is_file():
        raise TripleGenError(f"{refusal} (its rejects file {files.rejects} is missing)")
    rejects = _metadata(files.rejects)
    if not rejects or any(rejects.get(key) != stored[key] for key in (FINGERPRINT, INPUT_DIGEST)):
        raise TripleGenError(f"{refusal} ({files.rejects} is not the rejects file of the run that made it)")
    if rows_digest(job.reader()) != stored[INPUT_DIGEST]:
        raise TripleGenError(f"{refusal} (it was made from other rows: {config.input} changed since)")
    if not files.card.is_file():
        write_card(files, stored)


def rows_digest(chunks) -> str | None:
    """The digest a finished run stores, computed again over the input as this run cuts it."""
    return combined_digest(input_digest(chunk.rows) for chunk in chunks)


def _metadata(path: Path) -> dict | None:
    """The run metadata of a file; None for anything else (not Parquet, not ours): then it is refused."""
    try:
        metadata = read_run_metadata(path)
    except (OSError, ValueError):  # pyarrow's ArrowInvalid is a ValueError
        return None
    return metadata if isinstance(metadata, dict) else None


def _changed_settings(stored: dict, config, fingerprint: dict) -> list[str]:
    """The settings that differ; the input is compared by its files' names and sizes (its rows by digest)."""
    def comparable(entries: dict) -> dict:
        files = entries.get("input") or []
        return {**entries, "input": [(Path(f["path"]).name, f["bytes"]) for f in files]}

    changed = differences(comparable(stored[FINGERPRINT]), comparable(fingerprint))
    if (stored.get("config") or {}).get("license", "unknown") != config.license:
        changed.append("license")
    return changed
