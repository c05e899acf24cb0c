"""Option declarations shared by the triplegen commands, defined once (Typer `Annotated` aliases).

The checks `validate` shares with `generate` take their help from `GenerateConfig`'s fields, so the
two commands describe them in the same words."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, TypeVar

import typer
from pydantic import ValidationError

from semclip_core.field_options import field_option
from triplegen.config import GenerateConfig
from triplegen.errors import TripleGenError

T = TypeVar("T")

SemanticCheck = Annotated[bool, field_option(GenerateConfig, "semantic_check", "--semantic-check")]
BlindModel = Annotated[str | None, field_option(GenerateConfig, "blind_model", "--blind-model", metavar="DIR")]
ObjectSynonyms = Annotated[Path | None, field_option(GenerateConfig, "object_synonyms", "--object-synonyms",
                                                     metavar="FILE")]
ServerUrls = Annotated[
    list[str] | None,
    typer.Option("--base-url", help="Server to check, e.g. http://gpu1:8000/v1; repeat for several.", show_default=False),
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
