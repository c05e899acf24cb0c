"""Prompt templates: YAML files that say how a caption becomes chat messages and what JSON comes back.

A template is validated as a whole when it is loaded, so that a broken template fails before a run
spends GPU hours on it, and every problem is named with its file and field (not only the first).
The caption is only ever a variable of a template compiled beforehand: text such as "{{ 7*7 }}" in
a caption reaches the model verbatim, and the sandbox keeps the template itself away from Python
internals. The system message and the few-shot turns do not depend on the caption, so they are
rendered once and every request shares them as a prefix (which vLLM's prefix cache reuses).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError, meta
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from triplegen.checks import check_triple
from triplegen.errors import TripleGenError

OUTPUT_FIELDS = ("paraphrase", "negation")
CAPTION_VARIABLE = "caption"
_SUFFIXES = (".yaml", ".yml")

_ENV = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a template file; `field` is a dotted path such as `examples.2.negation`."""

    file: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: {self.message}"


class Sampling(BaseModel):
    """Sampling defaults of a template; a run's own flags override them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float = Field(ge=0, le=2)
    top_p: float = Field(gt=0, le=1)
    max_tokens: int = Field(ge=1)


class Example(BaseModel):
    """A few-shot example: a caption and the answer the model should give for it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    caption: str = Field(min_length=1)
    paraphrase: str
    negation: str

    def answer(self) -> dict[str, str]:
        return {"paraphrase": self.paraphrase, "negation": self.negation}


class PromptTemplate(BaseModel):
    """A validated, compiled prompt template; build it with `load_template`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    version: str = Field(min_length=1)
    description: str
    system: str  # Jinja2; may use `variables`, never the caption
    user: str  # Jinja2; must use {{ caption }}
    variables: dict[str, str] = Field(default_factory=dict)  # constants the messages may use
    output_schema: dict[str, Any]
    sampling: Sampling
    examples: list[Example] = Field(default_factory=list)

    _prefix: list[dict[str, str]] = PrivateAttr(default_factory=list)
    _user: Template | None = PrivateAttr(default=None)
    _validator: Any = PrivateAttr(default=None)
    _plain_bounds: dict[str, tuple[int, float]] | None = PrivateAttr(default=None)
    _hash: str = PrivateAttr(default="")

    @model_validator(mode="after")
    def _validate_and_compile(self) -> PromptTemplate:
        problems = content_problems(self.model_dump())
        if problems:
            raise ValueError("; ".join(f"{field}: {message}" for field, message in problems))
        self._user = _ENV.from_string(self.user)
        self._validator = jsonschema.validators.validator_for(self.output_schema)(self.output_schema)
        self._plain_bounds = _plain_bounds(self.output_schema)
        self._prefix = [{"role": "system", "content": _ENV.from_string(self.system).render(self.variables).strip()}]
        order = [name for name in self.output_schema["properties"] if name in OUTPUT_FIELDS]  # as the model writes
        for example in self.examples:
            answer = {name: example.answer()[name] for name in order}
            self._prefix.append({"role": "user", "content": self._render_user(example.caption)})
            self._prefix.append({"role": "assistant", "content": json.dumps(answer, ensure_ascii=False)})
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        self._hash = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]
        return self

    @property
    def hash(self) -> str:
        """Short sha256 of the template's content: any change of wording, schema or example changes it,
        while YAML comments, key order and formatting do not."""
        return self._hash

    @property
    def output_validator(self) -> Any:
        """The compiled JSON-schema validator of the output (shared by every parse)."""
        return self._validator

    def output_error(self, value: Any) -> str | None:
        """None when `value` satisfies the output schema, else the first violation as one line.

        jsonschema costs ~80 us a call, as much as the whole rules generator; for the usual schema
        (two bounded strings, nothing else) a well-formed answer is accepted by a direct check, and
        only other answers and other schemas go through jsonschema.
        """
        bounds = self._plain_bounds
        if bounds is not None and type(value) is dict and value.keys() == bounds.keys() and all(
            type(text) is str and bounds[name][0] <= len(text) <= bounds[name][1] for name, text in value.items()
        ):
            return None
        errors = sorted(self._validator.iter_errors(value), key=lambda error: list(error.path))
        if not errors:
            return None
        where = "/".join(str(part) for part in errors[0].path)
        return f"{where + ': ' if where else ''}{_one_line(errors[0].message)}"

    def _render_user(self, caption: str) -> str:
        return self._user.render({**self.variables, CAPTION_VARIABLE: caption}).strip()

    def render(self, caption: str) -> list[dict[str, str]]:
        """Chat messages for one caption: system, few-shot user/assistant turns, then the caption's turn."""
        if not isinstance(caption, str):
            raise TypeError(f"caption must be a str, got {type(caption).__name__}")
        # fresh dicts, so a backend that edits a message cannot change every later request's prefix
        return [dict(message) for message in self._prefix] + [{"role": "user", "content": self._render_user(caption)}]


def content_problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, message) for each problem beyond the field types: Jinja, variables, schema, examples.

    Works on raw YAML data and skips any field of the wrong type, whose problem the type validation
    reports, so that one broken field does not hide the problems of the others.
    """
    problems: list[tuple[str, str]] = []
    variables = data.get("variables") or {}
    declared = {CAPTION_VARIABLE}
    if isinstance(variables, dict):
        declared |= {str(key) for key in variables}
        if CAPTION_VARIABLE in variables:
            problems.append(("variables", f"'{CAPTION_VARIABLE}' is reserved for the caption of each row"))
    for field in ("system", "user"):
        source = data.get(field)
        if isinstance(source, str):
            problems += _jinja_problems(field, source, declared, variables if isinstance(variables, dict) else {})
    schema = data.get("output_schema")
    validator = None
    if isinstance(schema, dict):
        schema_problems = _schema_problems(schema)
        problems += [("output_schema", message) for message in schema_problems]
        if not schema_problems:
            validator = jsonschema.validators.validator_for(schema)(schema)
    examples = data.get("examples")
    if isinstance(examples, list):
        for index, example in enumerate(examples):
            problems += [(f"examples.{index}", message) for message in _example_problems(example, validator)]
    return problems


def _jinja_problems(field: str, source: str, declared: set[str], variables: dict) -> list[tuple[str, str]]:
    try:
        parsed = _ENV.parse(source)
    except TemplateSyntaxError as error:
        return [(field, f"Jinja syntax error on line {error.lineno}: {error.message}")]
    used = meta.find_undeclared_variables(parsed)
    problems = []
    undeclared = sorted(used - declared)
    if undeclared:
        problems.append((field, f"uses undeclared variable(s) {', '.join(undeclared)}; "
                                f"declare them under 'variables' (only '{CAPTION_VARIABLE}' is built in)"))
    if field == "system" and CAPTION_VARIABLE in used:
        problems.append((field, "must not use the caption: the system message is shared by every request"))
    if field == "user" and CAPTION_VARIABLE not in used:
        problems.append((field, "never uses {{ caption }}, so the model would not see the caption"))
    if not problems:
        try:
            _ENV.from_string(source).render({**variables, CAPTION_VARIABLE: "A dog on a sofa."})
        except TemplateError as error:
            problems.append((field, f"cannot be rendered: {_one_line(str(error))}"))
    return problems


def _schema_problems(schema: dict[str, Any]) -> list[str]:
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as error:
        where = "/".join(str(part) for part in error.path)
        return [f"not a valid JSON schema{f' at {where}' if where else ''}: {_one_line(error.message)}"]
    problems = []
    if schema.get("type") != "object":
        problems.append("must be a JSON object schema (type: object)")
    properties = schema.get("properties") or {}
    required = schema.get("required") or []
    for name in OUTPUT_FIELDS:
        spec = properties.get(name)
        if not isinstance(spec, dict) or spec.get("type") != "string":
            problems.append(f"properties.{name} must be declared with type: string")
        if name not in required:
            problems.append(f"'{name}' must be listed under required")
    return problems


def _plain_bounds(schema: dict[str, Any]) -> dict[str, tuple[int, float]] | None:
    """{field: (min, max) length} when the schema says no more than "an object of these two strings"."""
    properties = schema.get("properties", {})
    if set(schema) - {"type", "properties", "required", "additionalProperties", "$schema", "title",
                      "description"} or set(properties) != set(OUTPUT_FIELDS):
        return None
    bounds = {}
    for name, spec in properties.items():
        if set(spec) - {"type", "minLength", "maxLength", "title", "description"}:
            return None
        bounds[name] = (spec.get("minLength", 0), spec.get("maxLength", float("inf")))
    return bounds


def _example_problems(example: Any, validator: Any) -> list[str]:
    if not isinstance(example, dict) or not all(isinstance(example.get(k), str) for k in ("caption", *OUTPUT_FIELDS)):
        return []  # the type validation names the missing or mistyped key
    answer = {name: example[name] for name in OUTPUT_FIELDS}
    problems = []
    if validator is not None:
        problems += [f"fails output_schema: {_one_line(error.message)}" for error in validator.iter_errors(answer)]
    reasons = check_triple(example["caption"], answer["paraphrase"], answer["negation"])
    if reasons:
        problems.append(f"fails the quality checks: {', '.join(reasons)}")
    return problems


def _one_line(text: str) -> str:
    return " ".join(text.split())


class _UniqueKeyLoader(yaml.SafeLoader):
    """Safe YAML loading that refuses duplicate keys (PyYAML silently keeps the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def inspect_template(file: str, text: str) -> tuple[PromptTemplate | None, list[Problem]]:
    """The template in `text` (from `file`) and every problem found; the template is None if any."""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as error:
        return None, [Problem(file, "(yaml)", _one_line(str(error)))]
    if not isinstance(data, dict):
        return None, [Problem(file, "(top level)", f"expected a mapping of keys (name, version, ...), "
                                                   f"got {type(data).__name__}")]
    problems = [Problem(file, field, message) for field, message in content_problems(data)]
    stem = Path(file).stem
    if isinstance(data.get("name"), str) and data["name"] != stem:
        problems.append(Problem(file, "name", f"'{data['name']}' differs from the file name; "
                                              f"name the file {data['name']}.yaml or the template {stem}"))
    try:
        template = PromptTemplate.model_validate(data)
    except ValidationError as error:
        problems += [_pydantic_problem(file, item) for item in error.errors() if item["loc"]]
        template = None
    return (None if problems else template), problems


def _pydantic_problem(file: str, error: dict[str, Any]) -> Problem:
    field = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        allowed = ", ".join(_allowed_keys(error["loc"]))
        return Problem(file, field, f"unknown key (allowed: {allowed})")
    if error["type"] == "missing":
        return Problem(file, field, "required field is missing")
    if field == "version" and error["type"] == "string_type":
        return Problem(file, field, f'must be a string; quote it, e.g. version: "{error["input"]}"')
    return Problem(file, field, _one_line(error["msg"]))


def _allowed_keys(loc: tuple) -> list[str]:
    model: type[BaseModel] = PromptTemplate
    if loc[0] == "sampling":
        model = Sampling
    elif loc[0] == "examples":
        model = Example
    return list(model.model_fields)


def packaged_files() -> list[Any]:
    """The template files installed with the package, sorted by name."""
    folder = files("triplegen.prompts")
    return sorted((f for f in folder.iterdir() if f.name.endswith(_SUFFIXES)), key=lambda f: f.name)


def _read(source: Any) -> tuple[str, str]:
    try:
        return str(source), source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TripleGenError(f"prompt template file not found: {source}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise TripleGenError(f"cannot read prompt template {source}: {_one_line(str(error))}") from None


def _locate(name_or_path: str | Path) -> Any:
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or text.endswith(_SUFFIXES) or "/" in text or "\\" in text:
        return Path(name_or_path)
    for source in packaged_files():
        if Path(source.name).stem == text:
            return source
    available = ", ".join(Path(f.name).stem for f in packaged_files())
    raise TripleGenError(f"unknown prompt template '{text}' (available: {available}; or give a path to a .yaml file)")


def template_source(name_or_path: str | Path) -> tuple[str, str]:
    """(file, YAML text) of a packaged template name or a template path, as written (comments kept)."""
    return _read(_locate(name_or_path))


def load_template(name_or_path: str | Path) -> PromptTemplate:
    """A packaged template by name ("default") or a template file by path, validated and compiled."""
    file, text = template_source(name_or_path)
    template, problems = inspect_template(file, text)
    if problems:
        count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
        raise TripleGenError(f"prompt template {file} has {count}: "
                             + "; ".join(f"{p.field}: {p.message}" for p in problems))
    return template


def list_templates() -> list[PromptTemplate]:
    """Every packaged template (all of them are valid: the test suite checks them)."""
    return [load_template(Path(source.name).stem) for source in packaged_files()]


def check_templates(paths: list[str | Path] | None = None) -> list[Problem]:
    """Every problem in the given template files or folders (default: the packaged templates)."""
    sources: list[Any] = []
    for path in paths or []:
        path = Path(path)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.name.endswith(_SUFFIXES))
            if not found:
                raise TripleGenError(f"no .yaml template files in {path}")
            sources += found
        else:
            sources.append(path)
    if paths is None:
        sources = packaged_files()
    problems: list[Problem] = []
    for source in sources:
        try:
            file, text = _read(source)
        except TripleGenError as error:
            if not Path(str(source)).is_file():
                raise
            problems.append(Problem(str(source), "(file)", str(error)))
            continue
        problems += inspect_template(file, text)[1]
    return problems
