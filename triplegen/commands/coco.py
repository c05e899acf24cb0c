"""`triplegen coco`: COCO captions (+ instances) JSON to the captions Parquet that `generate` reads."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

EXAMPLES = """\
Examples:

  triplegen coco annotations/captions_val2017.json annotations/instances_val2017.json -o captions.parquet --image-prefix val2017/

  triplegen generate captions.parquet -o triples.parquet

  triplegen coco annotations/captions_val2017.json annotations/instances_val2017.json -o captions.parquet --cooccurrence cooc.parquet

  triplegen generate captions.parquet -o triples --absent-objects 1 --cooccurrence cooc.parquet

  triplegen coco annotations/captions_train2017.json -o captions.parquet --image-prefix train2017/

Without the instances file there is no objects column (rather than empty lists that would read as
"no objects"). Empty captions are kept; generate rejects them as empty_caption. The same command run
again leaves finished outputs as they are; other inputs or settings need --overwrite.
"""


def coco(
    captions_json: Annotated[Path, typer.Argument(help="COCO captions file (captions_*.json).", show_default=False)],
    instances_json: Annotated[Path | None, typer.Argument(
        help="COCO instances file of the same images (instances_*.json): adds the objects column.",
        show_default=False)] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Output Parquet file; a missing folder is created.",
                                         show_default=False)] = ...,
    image_prefix: Annotated[str, typer.Option(
        help="Folder put before each file_name, e.g. val2017/, so that --image-root can be the COCO root.")] = "",
    cooccurrence: Annotated[Path | None, typer.Option(
        help="Also write the label co-occurrence table of the instances file (Parquet: label, other, images) "
             "for triplegen generate --cooccurrence.", show_default=False)] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing output file.")] = False,
) -> None:
    """Make a captions Parquet (id, image, caption, objects, image_id) from COCO annotation files."""
    from triplegen.io.coco import write_coco_captions

    summary = write_coco_captions(captions_json, output, instances_json, image_prefix, overwrite=overwrite,
                                  cooccurrence=cooccurrence)
    parts = [f"{_count(summary.rows, 'caption')} of {_count(summary.images, 'image')}"]
    if summary.images_without_objects is None:
        parts.append("no instances file, so no objects column")
    else:
        parts.append(f"{_count(summary.images_without_objects, 'image')} without objects")
        parts.append(_count(summary.categories, "category", "categories"))
    if summary.empty_captions:
        parts.append(f"{_count(summary.empty_captions, 'empty caption')} (generate rejects them as empty_caption)")
    typer.echo(f"{summary.output}:{_kept(summary, summary.output)} " + "; ".join(parts))
    if summary.cooccurrence is not None:
        typer.echo(f"{summary.cooccurrence}:{_kept(summary, summary.cooccurrence)} label co-occurrence table "
                   "(triplegen generate --cooccurrence)")


def _kept(summary, path: Path) -> str:
    return " already complete (same inputs and settings), nothing rewritten;" if path in summary.complete else ""


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n:,} {one if n == 1 else many or one + 's'}"


coco.__doc__ = f"{coco.__doc__}\n\n{EXAMPLES}"
