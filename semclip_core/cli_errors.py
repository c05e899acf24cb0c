"""The one error path of the three commands (`triplegen`, `semclip-train`, `semclip-eval`).

A `UserError` from the library, a usage error found by Typer (an unknown option, a bad value) and
`typer.Abort` all end the same way: one line `error: ...` on stderr and the exit code, never a
traceback or a framed panel. It relies only on Typer's public API (Typer >= 0.27.2, pinned in
pyproject.toml): `typer.core.TyperGroup` / `TyperCommand` and their `main(standalone_mode=...)`,
`typer.TyperException` (the base of every usage error since Typer vendors Click) with its
`exit_code` and `format_message()`, and `typer.Exit` / `typer.Abort`. With
`standalone_mode=False` Typer raises those errors instead of printing them, returns the code of a
`typer.Exit`, and turns Ctrl-C into exit code 130.

A full disk (or an exceeded quota) is one line too: writes through `semclip_core.files` report it with
the path and the free space (`semclip_core.disk_full`); any other write that runs out of space (a
library writing on its own, whose error carries errno 28 or says so) ends here as the last resort.
"""

from __future__ import annotations

import sys
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from semclip_core.disk_full import disk_full_error
from semclip_core.errors import UserError


def fail(message: str, exit_code: int) -> None:
    typer.echo(f"error: {message}", err=True)
    sys.exit(exit_code)


class OneLineErrors:
    """Mixed into a Typer group or command: its `main` reports every user-facing error as one line."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:  # the caller handles errors itself
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except UserError as error:
            fail(str(error), error.exit_code)
        except typer.TyperException as error:
            message = error.format_message()
            if not message:  # no arguments at all: the help was printed, as the command asks
                sys.exit(error.exit_code)
            context = getattr(error, "ctx", None)
            hint = f" (see '{context.command_path} --help')" if context is not None else ""
            fail(f"{message}{hint}", error.exit_code)
        except typer.Abort:
            fail("aborted", 1)
        except Exception as error:
            full = disk_full_error(error)
            if full is None:
                raise
            fail(str(full), full.exit_code)
        sys.exit(code if isinstance(code, int) else 0)


class Group(OneLineErrors, TyperGroup):
    """A Typer app of several commands (`typer.Typer(cls=Group)`)."""


class Command(OneLineErrors, TyperCommand):
    """A single-command Typer app (`@app.command(cls=Command)`)."""
