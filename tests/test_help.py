"""Every option of every command says what it does, and shared options say it right for each command."""

from __future__ import annotations

import typer.main
from typer.testing import CliRunner

from semclip_train.cli import app as train_app
from semclip_train.eval_cli import app as eval_app
from triplegen.cli import app as triplegen_app


def _commands(command, path):
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            yield from _commands(sub, [*path, name])
    else:
        yield " ".join(path), command


def test_every_option_and_argument_has_help():
    missing = [
        f"{path} {param.name}"
        for app, name in ((triplegen_app, "triplegen"), (train_app, "semclip-train"), (eval_app, "semclip-eval"))
        for path, command in _commands(typer.main.get_command(app), [name])
        for param in command.params
        if not getattr(param, "help", None)
    ]
    assert missing == []


def test_shared_options_carry_each_commands_own_text():
    runner = CliRunner()

    def help_of(*args):
        return " ".join(runner.invoke(triplegen_app, [*args, "--help"], terminal_width=200).output.split())

    assert "unfinished run's parts" in help_of("generate") and "unfinished run" not in help_of("validate")
    assert "--report or --write-clean" in help_of("validate")
    assert "Server to check" in help_of("check-server") and "Server to check" not in help_of("generate")
    generate = help_of("generate")
    for option in ("--api-key-env", "--timeout", "--max-retries", "--verbose", "--license"):
        assert option in generate, option
    assert "Shard outputs written by generate" in help_of("merge")
