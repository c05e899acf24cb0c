"""Typer options declared from pydantic fields, so that a default, a range and a help text are
written once, in the config, and `--help` shows what the config really does.

A command's parameters default to None ("not given"), so that only the flags typed on the command
line reach the config (and override a config file or a resumed run's settings); the default the
help shows is the field's, rendered as `[default: ...]`. `given(ctx)` is what was typed.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, get_args

import typer
from annotated_types import Ge, Le
from pydantic import BaseModel
from pydantic.fields import FieldInfo


def field_option(model: type[BaseModel], field: str, *names: str, panel: str | None = None,
                 parse_range: bool = False, **click: Any) -> Any:
    """The option of `model.field`: its help is the field's description and its shown default the
    field's default. With `parse_range` the field's closed bounds (ge, le) are checked by the parser
    too, so a bad value is a usage error before anything starts (`click` adds or overrides)."""
    info = model.model_fields[field]
    if not info.description:
        raise ValueError(f"{model.__name__}.{field} has no description to show as its help")
    bounds = number_range(info) if parse_range else {}
    default = shown_default(info, names)
    help = info.description if default is None else f"{info.description}  [default: {default}]"
    return typer.Option(*names, help=help, show_default=False, rich_help_panel=panel, **{**bounds, **click})


def field_argument(model: type[BaseModel], field: str) -> Any:
    """A required positional argument whose help is the field's description."""
    return typer.Argument(help=model.model_fields[field].description, show_default=False)


def shown_default(info: FieldInfo, names: tuple[str, ...] = ()) -> str | None:
    """The field's default as `--help` shows it; None where there is none to show (None, an empty
    list, or a single flag that is off unless given), and the on/off pair's flag that is in effect."""
    if info.is_required():
        return None
    default = info.get_default(call_default_factory=True)
    if default is None or default == []:
        return None
    if isinstance(default, bool):
        pair = next((name for name in names if "/" in name), None)
        if pair is None:
            return None
        on, off = (flag.strip().removeprefix("--") for flag in pair.split("/"))
        return on if default else off
    if isinstance(default, list):
        return ", ".join(_shown(item) for item in default)
    return _shown(default)


def _shown(value: Any) -> str:
    """5e-5 as typed, not Python's 5e-05."""
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, float) and "e" in repr(value):
        mantissa, exponent = repr(value).split("e")
        return f"{mantissa}e{int(exponent)}"
    return str(value)


def number_range(info: FieldInfo) -> dict[str, Any]:
    """The field's closed bounds as the parser's min/max (Typer has no open bounds: a `gt` bound is
    left to the config's own check)."""
    bounds: dict[str, Any] = {}
    for rule in info.metadata:
        if isinstance(rule, Ge):
            bounds["min"] = rule.ge
        elif isinstance(rule, Le):
            bounds["max"] = rule.le
    return bounds


def choices(name: str, literal: Any) -> type[Enum]:
    """A Typer choice enum whose values are the members of a `Literal` type (one spelling of the
    names: the config's)."""
    return Enum(name, {value.replace("-", "_"): value for value in get_args(literal)}, type=str)


def given(ctx: typer.Context) -> dict[str, Any]:
    """The options typed on the command line (parameters left at None are not), enums as values."""
    values = {}
    for name, value in ctx.params.items():
        if value is None or value == [] or value == ():
            continue
        if isinstance(value, Enum):
            value = value.value
        elif isinstance(value, (list, tuple)):
            value = [item.value if isinstance(item, Enum) else item for item in value]
        values[name] = value
    return values
