"""The `triplegen` command: thin Typer commands over the library.

Each command lives in its own module under `triplegen/commands/`; this module only assembles them.
Errors go through the one error path of `semclip_core.cli_errors`: one line and an exit code.
"""

from __future__ import annotations

import typer

from semclip_core.cli_errors import Group
from semclip_core.help_panels import PanelledCommand
from triplegen.commands import check_server, coco, generate, merge, prepare_smollm2, prompts, validate, view

app = typer.Typer(
    cls=Group,
    help="Turn captions into (caption, paraphrase, negation) triples and check them. "
    "COCO annotations become a captions file with `triplegen coco`.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command(cls=PanelledCommand, epilog=generate.EXAMPLES)(generate.generate)
app.command()(validate.validate)
app.command()(merge.merge)
app.command()(coco.coco)
app.command()(view.view)
app.add_typer(prompts.app, name="prompts")
app.command("check-server")(check_server.check_server)
app.command("prepare-smollm2")(prepare_smollm2.prepare_smollm2)


def main() -> None:
    app()
