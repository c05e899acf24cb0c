"""The end of every run: its triples and rejects written with the run metadata, then its one card.

A local run, a Ray run and `--retry-backend-errors` all end here (they differ only in the rows they
pass in: a run's finished chunks; the older output without the retried ids, then the retry's), so
the three leave the same files: the Parquet pair carrying the same JSON (key `triplegen`) and the
dataset card with its YAML header (triplegen.io.hubcard), which `load_dataset(folder, "rejects")` needs.
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa

from semclip_core.files import write_text_atomic
from triplegen.io.hubcard import render_dataset_card
from triplegen.io.layout import OutputFiles
from triplegen.io.parquet_files import write_parquet
from triplegen.io.schema import reject_schema


def finish_run(files: OutputFiles, record: dict, schema: pa.Schema, triples: Iterable[pa.Table],
               rejects: Iterable[pa.Table]) -> None:
    """Write the triples (of `schema`), the rejects and the card, each atomically, in that order."""
    write_parquet(triples, files.triples, schema, record)
    write_parquet(rejects, files.rejects, reject_schema(), record)
    write_card(files, record)


def write_card(files: OutputFiles, record: dict) -> None:
    """The dataset card of the run `record` (the run metadata both Parquet files carry)."""
    write_text_atomic(files.card, render_dataset_card(record, files.triples, files.rejects, files.card))
