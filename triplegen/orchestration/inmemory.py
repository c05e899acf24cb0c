"""`triplegen.generate` on captions already in memory: a list of strings or of row dicts, a polars or
pandas DataFrame, or a `datasets.Dataset`; the results come back as DataFrames (or a Dataset).

The rows are written to a Parquet file in a temporary folder and run through the same resumable
pipeline as a file input, so the checks, rejects and provenance are the same. Without `output` the
files live in that temporary folder and only the returned frames remain.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from triplegen.errors import TripleGenError

FrameKind = Literal["polars", "pandas", "datasets", "arrow"]


@dataclass
class GeneratedFrames:
    """The accepted triples and the rejects (same kind as the input unless `as_frame` said otherwise)."""

    triples: Any
    rejects: Any
    summary: Any  # triplegen.orchestration.run.RunSummary; its paths are gone when no `output` was given


def to_arrow(data) -> tuple[pa.Table, FrameKind]:
    """The rows as an Arrow table, and the frame kind a caller who passed them expects back."""
    module = type(data).__module__.split(".")[0]
    if isinstance(data, pa.Table):
        return data, "arrow"
    if module == "polars":
        return data.to_arrow(), "polars"
    if module == "pandas":
        return pa.Table.from_pandas(data, preserve_index=False), "pandas"
    if module == "datasets":
        tables = list(data.with_format("arrow").iter(batch_size=8192))
        if not tables:
            raise TripleGenError("the dataset has no rows")
        return pa.concat_tables(tables), "datasets"
    if isinstance(data, (list, tuple)):
        if all(isinstance(item, str) for item in data):
            return pa.table({"caption": list(data)}), "polars"
        if all(isinstance(item, dict) for item in data):
            return pa.Table.from_pylist(list(data)), "polars"
    raise TripleGenError("generate takes a GenerateConfig, a list of captions or of row dicts, a polars or pandas "
                         f"DataFrame, or a datasets.Dataset; got {type(data).__name__}")


def as_kind(table: pa.Table, kind: FrameKind):
    if kind == "polars":
        import polars as pl

        return pl.from_arrow(table)
    if kind == "pandas":
        return table.to_pandas()
    if kind == "datasets":
        from datasets import Dataset

        return Dataset(table)
    return table


def read_frames(summary, kind: FrameKind) -> GeneratedFrames:
    return GeneratedFrames(as_kind(pq.read_table(summary.output), kind), as_kind(pq.read_table(summary.rejects), kind),
                           summary)


def generate_from_memory(data, *, output: Path | str | None = None, as_frame: FrameKind | None = None,
                         backend=None, console=None, **options) -> GeneratedFrames:
    """Generate triples for in-memory rows; `options` are GenerateConfig fields (model, prompt, ...)."""
    from triplegen.config import GenerateConfig
    from triplegen.orchestration.run import generate

    if "input" in options:
        raise TripleGenError("pass the rows themselves, or a GenerateConfig with input=PATH, not both")
    table, kind = to_arrow(data)
    with tempfile.TemporaryDirectory(prefix="triplegen-") as scratch:
        source = Path(scratch) / "input.parquet"
        pq.write_table(table, source)
        config = GenerateConfig(input=source, output=Path(output) if output else Path(scratch) / "out", **options)
        summary = generate(config, backend=backend, console=console)
        return read_frames(summary, as_frame or kind)
