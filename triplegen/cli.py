"""The `triplegen` command: thin Typer commands over the library, one error path to exit codes.

Each command lives in its own module under `triplegen/commands/`; this module only assembles them
and turns a `TripleGenError` into one line on stderr and its exit code (2), never a traceback.
"""

from __future__ import annotations

import typer
from typer.core import TyperGroup

from triplegen.commands import check_server, coco, generate, merge, prepare_smollm2, prompts, validate, view
from triplegen.errors import TripleGenError


class _Group(TyperGroup):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except TripleGenError as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(error.exit_code) from None


app = typer.Typer(
    cls=_Group,
    help="Turn captions into (caption, paraphrase, negation) triples and check them. "
    "COCO annotations become a captions file with `triplegen coco`.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command()(generate.generate)
app.command()(validate.validate)
app.command()(merge.merge)
app.command()(coco.coco)
app.command()(view.view)
app.add_typer(prompts.app, name="prompts")
app.command("check-server")(check_server.check_server)
app.command("prepare-smollm2")(prepare_smollm2.prepare_smollm2)


def main() -> None:
    app()
