"""`triplegen prompts list|show|check|render`: look at the prompt templates before spending a run on them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from triplegen.errors import TripleGenError
from triplegen.templates import check_templates, list_templates, load_template, template_source

app = typer.Typer(
    help="List, show, check and render the prompt templates (packaged ones by name, your own by path).",
    no_args_is_help=True,
)

TemplateName = Annotated[
    str, typer.Argument(help="A packaged template name (see `triplegen prompts list`) or a path to a .yaml file.",
                        show_default=False),
]


@app.command("list", epilog="Example:\n\n  triplegen prompts list")
def list_() -> None:
    """List the packaged templates with their version and hash (the hash is recorded in every row)."""
    table = Table(title="Packaged prompt templates")
    for column in ("name", "task", "version", "hash", "examples", "temperature"):
        table.add_column(column, no_wrap=True)
    table.add_column("description", overflow="fold")
    for template in list_templates():
        table.add_row(template.name, template.task, template.version, template.hash, str(len(template.examples)),
                      f"{template.sampling.temperature:g}", template.description)
    Console(highlight=False).print(table)


@app.command(epilog="Examples:\n\n  triplegen prompts show default\n\n  triplegen prompts show my-prompts/short.yaml")
def show(name: TemplateName) -> None:
    """Validate a template and print its YAML source as written, under its version and hash."""
    template = load_template(name)
    file, text = template_source(name)
    typer.echo(f"# {file}\n# name: {template.name}  version: {template.version}  hash: {template.hash}\n")
    typer.echo(text.rstrip("\n"))


@app.command(epilog="Examples:\n\n  triplegen prompts check\n\n  triplegen prompts check my-prompts/ other.yaml\n\n"
                    "Exit codes: 0 no problems, 1 problems found, 2 a path that does not exist.")
def check(
    paths: Annotated[list[Path] | None, typer.Argument(help="Template files or folders (default: the packaged ones).",
                                                       show_default=False)] = None,
) -> None:
    """Validate templates and print every problem with its file and field."""
    problems = check_templates(paths or None)
    for problem in problems:
        typer.echo(str(problem))
    where = ", ".join(str(p) for p in paths) if paths else "the packaged templates"
    if problems:
        files = len({problem.file for problem in problems})
        typer.echo(f"{len(problems)} problem(s) in {files} file(s)", err=True)
        raise typer.Exit(1)
    typer.echo(f"no problems in {where}")


@app.command(epilog='Examples:\n\n  triplegen prompts render default --caption "A man riding a horse on a beach."'
                    '\n\n  triplegen prompts render default --caption "Two dogs play in the snow." --json'
                    '\n\n  triplegen prompts render absent --caption "A cat on a sofa." --row objects="cat, couch" '
                    '--row absent_object=dog --row present_object=cat')
def render(
    name: TemplateName,
    caption: Annotated[str, typer.Option("--caption", "-c", help="The caption to render (passed as data, verbatim).",
                                         show_default=False)],
    row: Annotated[list[str] | None, typer.Option(
        "--row", help="For an absent-task template: KEY=VALUE of the row's plan (objects, absent_object, "
                      "present_object, kind, position, style, paraphrase_style); the rest keep sample values.",
        show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the messages as a JSON list instead.")] = False,
) -> None:
    """Print the chat messages a template makes for one caption, exactly as a backend receives them."""
    template = load_template(name)
    messages = template.render(caption, _row_variables(template, row or []))
    if as_json:
        typer.echo(json.dumps(messages, indent=2, ensure_ascii=False))
        return
    for message in messages:
        typer.echo(f"--- {message['role']} ---\n{message['content']}\n")


def _row_variables(template, pairs: list[str]) -> dict[str, str] | None:
    """The row variables an `absent` template renders with: the sample plan, changed by --row."""
    from triplegen.tasks import SAMPLE_ROW, row_variables, spec_from_row

    if template.task != "absent":
        if pairs:
            raise TripleGenError(f"--row is for templates of task absent; {template.name!r} has task {template.task!r}")
        return None
    plan = dict(SAMPLE_ROW)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise TripleGenError(f"--row must look like KEY=VALUE, got {pair!r}")
        plan[key.strip()] = value.strip()
    try:
        return row_variables(spec_from_row(plan))
    except ValueError as error:
        raise TripleGenError(f"--row: {error}") from None
