"""`--help` that reads at 80 columns: options grouped by their `rich_help_panel` into titled
sections, each name on its own line when it is long and its help below it, so a name is never cut
(the framed table of rich help gives a long on/off pair most of the width and truncates it)."""

from __future__ import annotations

import shutil
from typing import Any

import typer
from typer.core import TyperCommand


class TerminalWide(typer.Context):
    """Help as wide as the terminal (`COLUMNS` or its real width), as rich help is; click alone
    stops at 80 columns, or at the width a test runner forces."""

    def make_formatter(self) -> Any:
        formatter = super().make_formatter()
        if self.terminal_width is None:
            formatter.width = max(shutil.get_terminal_size().columns - 2, 50)
        return formatter


class PanelledHelp:
    """Mixed into a Typer command: plain click help, with one section per help panel."""

    context_class = TerminalWide

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rich_markup_mode = None  # Typer's plain path, which calls `format_options` below

    def format_epilog(self, ctx: Any, formatter: Any) -> None:
        """The examples as written: a command cut across lines cannot be copied."""
        if self.epilog:  # type: ignore[attr-defined]
            formatter.write_paragraph()
            for line in self.epilog.splitlines():  # type: ignore[attr-defined]
                formatter.write(f"{' ' * formatter.current_indent}  {line}\n" if line else "\n")

    def format_options(self, ctx: Any, formatter: Any) -> None:
        sections: dict[str, list[tuple[str, str]]] = {}
        for param in self.get_params(ctx):  # type: ignore[attr-defined]
            record = param.get_help_record(ctx)
            if record is not None:
                sections.setdefault(_section(param), []).append(record)
        for title, records in sections.items():
            with formatter.section(title):
                formatter.write_dl(records)


def _section(param: Any) -> str:
    panel = getattr(param, "rich_help_panel", None)
    return panel or ("Arguments" if param.param_type_name == "argument" else "Options")


class PanelledCommand(PanelledHelp, TyperCommand):
    """A command of a Typer group (`app.command(cls=PanelledCommand)`) whose help is in panels."""
