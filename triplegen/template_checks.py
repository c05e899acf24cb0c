"""What loading checks in a template's content, beyond the types of its fields.

Jinja syntax and variables, the output schema, and the few-shot examples (which must pass the
template's schema and the quality checks of its task). Every check works on raw YAML data and skips
a field of the wrong type, whose problem the type validation reports, so that one broken field does
not hide the problems of the others.
"""

from __future__ import annotations

from typing import Any

import jsonschema
from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

from triplegen.tasks import TASKS, Task, sample_variables

CAPTION_VARIABLE = "caption"
# Captions are variables of templates compiled beforehand, never template source; the sandbox keeps
# the templates themselves away from Python internals.
ENV = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


def content_problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, message) for each problem beyond the field types: Jinja, variables, schema, examples.

    Works on raw YAML data and skips any field of the wrong type, whose problem the type validation
    reports, so that one broken field does not hide the problems of the others.
    """
    problems: list[tuple[str, str]] = []
    task = TASKS.get(data.get("task", "triple"), TASKS["triple"])  # an unknown task: the type check says so
    variables = data.get("variables") or {}
    declared = {CAPTION_VARIABLE, *task.row_variables}
    if isinstance(variables, dict):
        declared |= {str(key) for key in variables}
        reserved = sorted({CAPTION_VARIABLE, *task.row_variables} & set(variables))
        if reserved:
            problems.append(("variables", f"{', '.join(reserved)}: reserved for the facts of each row"))
    for field in ("system", "user"):
        source = data.get(field)
        if isinstance(source, str):
            given = {**(variables if isinstance(variables, dict) else {}), **sample_variables(task)}
            problems += _jinja_problems(field, source, declared, given, task)
    schema = data.get("output_schema")
    validator = None
    if isinstance(schema, dict):
        schema_problems = _schema_problems(schema, task)
        problems += [("output_schema", message) for message in schema_problems]
        if not schema_problems:
            validator = jsonschema.validators.validator_for(schema)(schema)
    examples = data.get("examples")
    if isinstance(examples, list):
        for index, example in enumerate(examples):
            problems += [(f"examples.{index}", message) for message in _example_problems(example, validator, task)]
    return problems


def _jinja_problems(field: str, source: str, declared: set[str], variables: dict, task: Task) -> list[tuple[str, str]]:
    try:
        parsed = ENV.parse(source)
    except TemplateSyntaxError as error:
        return [(field, f"Jinja syntax error on line {error.lineno}: {error.message}")]
    used = meta.find_undeclared_variables(parsed)
    problems = []
    undeclared = sorted(used - declared)
    if undeclared:
        built_in = ", ".join(f"'{name}'" for name in (CAPTION_VARIABLE, *task.row_variables))
        problems.append((field, f"uses undeclared variable(s) {', '.join(undeclared)}; "
                                f"declare them under 'variables' (built in: {built_in})"))
    per_row = sorted(used & {CAPTION_VARIABLE, *task.row_variables})
    if field == "system" and per_row:
        problems.append((field, f"must not use {', '.join(per_row)}: the system message is shared by every request"))
    if field == "user" and CAPTION_VARIABLE not in used:
        problems.append((field, "never uses {{ caption }}, so the model would not see the caption"))
    if not problems:
        try:
            ENV.from_string(source).render({**variables, CAPTION_VARIABLE: "A dog on a sofa."})
        except TemplateError as error:
            problems.append((field, f"cannot be rendered: {one_line(str(error))}"))
    return problems


def _schema_problems(schema: dict[str, Any], task: Task) -> list[str]:
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as error:
        where = "/".join(str(part) for part in error.path)
        return [f"not a valid JSON schema{f' at {where}' if where else ''}: {one_line(error.message)}"]
    problems = []
    if schema.get("type") != "object":
        problems.append("must be a JSON object schema (type: object)")
    properties = schema.get("properties") or {}
    required = schema.get("required") or []
    for name in task.output_fields:
        spec = properties.get(name)
        if not isinstance(spec, dict) or spec.get("type") != "string":
            problems.append(f"properties.{name} must be declared with type: string")
        if name not in required:
            problems.append(f"'{name}' must be listed under required")
    return problems


def plain_bounds(schema: dict[str, Any], fields: tuple[str, ...]) -> dict[str, tuple[int, float]] | None:
    """{field: (min, max) length} when the schema says no more than "an object of these strings"."""
    properties = schema.get("properties", {})
    if set(schema) - {"type", "properties", "required", "additionalProperties", "$schema", "title",
                      "description"} or set(properties) != set(fields):
        return None
    bounds = {}
    for name, spec in properties.items():
        if set(spec) - {"type", "minLength", "maxLength", "title", "description"}:
            return None
        bounds[name] = (spec.get("minLength", 0), spec.get("maxLength", float("inf")))
    return bounds


def _example_problems(example: Any, validator: Any, task: Task) -> list[str]:
    keys = {"caption": "caption", **{name: "true_caption" if name == "caption" else name for name in task.output_fields}}
    if not isinstance(example, dict) or not all(isinstance(example.get(k), str) for k in keys.values()):
        if isinstance(example, dict) and task.name == "absent" and not isinstance(example.get("true_caption"), str):
            return ["an absent-task example needs true_caption (the answer's caption)"]
        return []  # the type validation names the missing or mistyped key
    if task.name == "triple" and ("row" in example or "true_caption" in example):
        return ["row and true_caption belong to examples of task: absent"]
    if task.name == "judge" and "true_caption" in example:
        return ["true_caption belongs to examples of task: absent"]
    row = example.get("row") if isinstance(example.get("row"), dict) else {}
    answer = {name: example[key] for name, key in keys.items() if name in task.output_fields}
    problems = []
    if validator is not None:
        problems += [f"fails output_schema: {one_line(error.message)}" for error in validator.iter_errors(answer)]
    return problems + task.check_example(example["caption"], row, answer)


def one_line(text: str) -> str:
    return " ".join(text.split())
