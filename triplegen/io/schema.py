"""The triple record: the one file format shared by triplegen and semclip_train.

Declared once here so that the writer, `validate` and the trainer's reader agree. Provenance is per
row (not only in the file metadata) because merged shards may come from different runs.
"""

from __future__ import annotations

import pyarrow as pa

# Columns every triple file has, in order. `image` is not listed: its type is taken from the input
# (a path or URL string, or the HF-datasets image struct {bytes, path}) and carried as given.
TRIPLE_FIELDS: list[pa.Field] = [
    pa.field("id", pa.string(), nullable=False),
    pa.field("caption", pa.string(), nullable=False),
    pa.field("paraphrase", pa.string(), nullable=False),
    pa.field("negation", pa.string(), nullable=False),
    # "caption": the input caption's own triple; "absent-assert" / "absent-swap": a row whose caption
    # denies an object the image lacks (triplegen.rules.absent), derived from the input row `source_id`
    pa.field("kind", pa.string()),
    pa.field("source_id", pa.string()),
    pa.field("absent_object", pa.string()),
    pa.field("backend", pa.string()),
    pa.field("model", pa.string()),
    pa.field("prompt_name", pa.string()),
    pa.field("prompt_version", pa.string()),
    pa.field("prompt_hash", pa.string()),
    pa.field("seed", pa.int64()),
    pa.field("attempts", pa.int32()),
    pa.field("finish_reason", pa.string()),
    pa.field("prompt_tokens", pa.int32()),
    pa.field("completion_tokens", pa.int32()),
]

REJECT_FIELDS: list[pa.Field] = [
    pa.field("id", pa.string(), nullable=False),
    pa.field("caption", pa.string()),
    pa.field("raw_output", pa.string()),
    pa.field("reason", pa.string(), nullable=False),  # a stable reason code, see triplegen.checks.lexical
    pa.field("detail", pa.string()),  # human-readable context for the reason
    pa.field("kind", pa.string()),  # as in the triples: which row this would have been
    pa.field("attempts", pa.int32()),
    pa.field("backend", pa.string()),
    pa.field("model", pa.string()),
]

REQUIRED_TRIPLE_COLUMNS = ("id", "caption", "paraphrase", "negation")
ROW_KINDS = ("caption", "absent-assert", "absent-swap")
IMAGE_COLUMN = "image"
METADATA_KEY = b"triplegen"  # Parquet key-value metadata: the run config as JSON


def triple_schema(image_type: pa.DataType | None, extra: list[pa.Field] = ()) -> pa.Schema:
    """The output schema: id, image (typed as in the input, if any), the triple, provenance, extras."""
    fields = list(TRIPLE_FIELDS[:1])
    if image_type is not None:
        fields.append(pa.field(IMAGE_COLUMN, image_type))
    fields += TRIPLE_FIELDS[1:] + list(extra)
    return pa.schema(fields)


def reject_schema() -> pa.Schema:
    return pa.schema(REJECT_FIELDS)
