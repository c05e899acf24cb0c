"""Every option of every command says what it does, and shared options say it right for each command."""

from __future__ import annotations

import re
import typing

import typer.main
from typer.testing import CliRunner

from semclip_train.evaluation.eval_cli import app as eval_app
from semclip_train.training.cli import app as train_app
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


def _option_commands():
    """The commands whose options come from a config: (name, click command, field of a parameter)."""
    from semclip_train.training.config import TrainConfig
    from triplegen.commands.generate import SECTIONS
    from triplegen.config import GenerateConfig

    def train_field(name):
        return TrainConfig.model_fields.get(name)

    def generate_field(name):
        for model in (GenerateConfig, *SECTIONS.values()):
            if name in model.model_fields:
                return model.model_fields[name]
        return None

    generate = typer.main.get_command(triplegen_app).commands["generate"]
    yield "semclip-train", typer.main.get_command(train_app), train_field
    yield "triplegen generate", generate, generate_field


def _shown_value(param, text):
    """The value a `[default: ...]` text stands for, read as the option's type reads what is typed."""
    if param.is_flag and param.secondary_opts:
        return text in {opt.removeprefix("--") for opt in param.opts}
    kind = param.type_descriptor.annotation

    def parse(part, kind):
        value = kind(part)
        return getattr(value, "value", value)  # an enum's member: its name as typed

    if param.multiple:
        return [parse(part, typing.get_args(kind)[0]) for part in text.split(", ")]
    return parse(text, kind)


def test_every_shown_default_is_the_config_fields_default():
    checked = 0
    for command_name, command, field_of in _option_commands():
        for param in command.params:
            field = field_of(param.name)
            if field is None or param.param_type_name != "option":
                continue
            shown = re.findall(r"\[default: ([^\]]*)\]", param.help or "")
            default = None if field.is_required() else field.get_default(call_default_factory=True)
            on_off = param.is_flag and param.secondary_opts
            if default is None or default == [] or (isinstance(default, bool) and not on_off):
                assert shown == [], f"{command_name} {param.name} shows a default the config does not have"
                continue
            assert len(shown) == 1, f"{command_name} {param.name}: default {default!r} not shown"
            assert _shown_value(param, shown[0]) == default, f"{command_name} {param.name}"
            assert param.default is None, f"{command_name} {param.name} restates its default"
            checked += 1
    assert checked > 40


def _help_at_80(app, *args):
    result = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": "80"}, terminal_width=80)
    assert result.exit_code == 0, result.output
    return result.output


def test_no_option_name_is_cut_at_80_columns():
    eval_command = typer.main.get_command(eval_app)
    cases = [(train_app, (), typer.main.get_command(train_app)),
             (triplegen_app, ("generate",), typer.main.get_command(triplegen_app).commands["generate"]),
             *((eval_app, (name,), command) for name, command in eval_command.commands.items())]
    for app, args, command in cases:
        output = _help_at_80(app, *args)
        assert "…" not in output, args
        for param in command.params:
            for name in (*param.opts, *param.secondary_opts):
                if name.startswith("-"):
                    assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", output), (args, name)


def test_options_are_grouped_in_panels():
    generate = _help_at_80(triplegen_app, "generate")
    titles = [line.split(" (")[0].rstrip(":") for line in generate.splitlines() if re.match(r"^[A-Z]\w+.*:$", line)]
    assert titles[:8] == ["Arguments", "Output", "Input", "Model", "Server", "Generation", "Checks", "Run"], titles
    train = _help_at_80(train_app)
    assert [line for line in train.splitlines() if line in ("Data:", "Model:", "Loss:", "Optimisation:", "Run:")] == [
        "Data:", "Model:", "Loss:", "Optimisation:", "Run:"]


def test_example_commands_are_shown_whole_at_80_columns():
    """An example cut across lines cannot be copied: each stays on its line, as written."""
    from semclip_train.training.cli import EXAMPLES as train_examples
    from triplegen.commands.generate import EXAMPLES as generate_examples

    for output, examples in ((_help_at_80(triplegen_app, "generate"), generate_examples),
                             (_help_at_80(train_app), train_examples)):
        commands = [line.strip() for line in examples.splitlines() if line.strip().startswith(("triplegen ", "semclip-"))]
        assert len(commands) >= 2
        for command in commands:
            assert command in output, command
