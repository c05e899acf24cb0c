"""The `triplegen` command: thin Typer commands over the library, one error path to exit codes."""

from __future__ import annotations

import click
import typer
from typer.core import TyperGroup

from triplegen.errors import TripleGenError


class UsageError(click.ClickException):
    """A TripleGenError shown as one line on stderr, with its exit code (2), never a traceback."""

    def __init__(self, error: TripleGenError):
        super().__init__(str(error))
        self.exit_code = error.exit_code

    def show(self, file=None) -> None:
        click.echo(f"error: {self.format_message()}", err=True, file=file)


class _Group(TyperGroup):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except TripleGenError as error:
            raise UsageError(error) from None


app = typer.Typer(
    cls=_Group,
    help="Turn captions into (caption, paraphrase, negation) triples and check them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Each command lives in its own module under triplegen/commands/ and registers itself on `app`.
# (imports at the bottom so the modules can import `app` from here)


def main() -> None:
    app()


def _register() -> None:
    """Attach each command module's command(s) to `app` (one line per command)."""
    from triplegen.commands import generate, merge, validate  # noqa: E402
    app.command()(generate.generate)
    app.command()(validate.validate)
    app.command()(merge.merge)
    from triplegen.commands import prompts; app.add_typer(prompts.app, name="prompts")  # noqa: E702
    app.command("check-server")(__import__("triplegen.commands.check_server", fromlist=["x"]).check_server)
    app.command("prepare-smollm2")(__import__("triplegen.commands.prepare_smollm2", fromlist=["x"]).prepare_smollm2)


_register()
