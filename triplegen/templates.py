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
from typing import Any, Literal

import jsonschema
import yaml
from jinja2 import Template
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from semclip_core.mapping_text import DuplicateKey, parse_mapping_text
from triplegen.errors import TripleGenError
from triplegen.tasks import TASKS, Task
from triplegen.template_checks import CAPTION_VARIABLE, ENV, content_problems, one_line, plain_bounds

_SUFFIXES = (".yaml", ".yml")


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
    """A few-shot example: a caption and the answer the model should give for it.

    An `absent` template's example also has the `row` it is about (objects, absent_object,
    present_object, kind, position, style, paraphrase_style) and the answer's `true_caption`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    caption: str = Field(min_length=1)
    paraphrase: str
    negation: str
    row: dict[str, str] = Field(default_factory=dict)
    true_caption: str | None = None

    def answer(self) -> dict[str, str]:
        answer = {"paraphrase": self.paraphrase, "negation": self.negation}
        return answer if self.true_caption is None else {"caption": self.true_caption, **answer}


class PromptTemplate(BaseModel):
    """A validated, compiled prompt template; build it with `load_template`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    version: str = Field(min_length=1)
    description: str
    task: Literal["triple", "absent", "judge"] = "triple"  # what the answer holds (triplegen.tasks)
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
        problems = content_problems(self._content())
        if problems:
            raise ValueError("; ".join(f"{field}: {message}" for field, message in problems))
        self._user = ENV.from_string(self.user)
        self._validator = jsonschema.validators.validator_for(self.output_schema)(self.output_schema)
        self._plain_bounds = plain_bounds(self.output_schema, self.task_spec.output_fields)
        self._prefix = [{"role": "system", "content": ENV.from_string(self.system).render(self.variables).strip()}]
        fields = self.task_spec.output_fields
        order = [name for name in self.output_schema["properties"] if name in fields]  # as the model writes
        for example in self.examples:
            answer = {name: example.answer()[name] for name in order}
            row = self.task_spec.example_variables(example.row)
            self._prefix.append({"role": "user", "content": self._render_user(example.caption, row)})
            self._prefix.append({"role": "assistant", "content": json.dumps(answer, ensure_ascii=False)})
        canonical = json.dumps(self._content(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        self._hash = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]
        return self

    def _content(self) -> dict[str, Any]:
        """The template as written: fields left at their default by a `triple` template are dropped,
        so the hashes of templates written before the `absent` task existed did not change."""
        data = self.model_dump(mode="json", exclude_defaults=False)
        if data["task"] == "triple":
            del data["task"]
        for example in data["examples"]:
            for key, empty in (("row", {}), ("true_caption", None)):
                if example[key] == empty:
                    del example[key]
        return data

    @property
    def hash(self) -> str:
        """Short sha256 of the template's content: any change of wording, schema or example changes it,
        while YAML comments, key order and formatting do not."""
        return self._hash

    @property
    def task_spec(self) -> Task:
        return TASKS[self.task]

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
        return f"{where + ': ' if where else ''}{one_line(errors[0].message)}"

    def _render_user(self, caption: str, row: dict[str, str]) -> str:
        return self._user.render({**self.variables, **row, CAPTION_VARIABLE: caption}).strip()

    def render(self, caption: str, row: dict[str, str] | None = None) -> list[dict[str, str]]:
        """Chat messages for one caption: system, few-shot user/assistant turns, then the caption's turn.

        `row` holds the other per-row variables of the template's task (`triplegen.tasks`).
        """
        if not isinstance(caption, str):
            raise TypeError(f"caption must be a str, got {type(caption).__name__}")
        wanted = set(self.task_spec.row_variables)
        if set(row or {}) != wanted:
            raise ValueError(f"a {self.task} template needs the row variables {sorted(wanted)}, got {sorted(row or {})}")
        user = {"role": "user", "content": self._render_user(caption, row or {})}
        # fresh dicts, so a backend that edits a message cannot change every later request's prefix
        return [dict(message) for message in self._prefix] + [user]


def inspect_template(file: str, text: str) -> tuple[PromptTemplate | None, list[Problem]]:
    """The template in `text` (from `file`) and every problem found; the template is None if any."""
    try:
        data = parse_mapping_text(text)
    except (yaml.YAMLError, DuplicateKey) as error:
        return None, [Problem(file, "(yaml)", one_line(str(error)))]
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
    return Problem(file, field, one_line(error["msg"]))


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
        raise TripleGenError(f"cannot read prompt template {source}: {one_line(str(error))}") from None


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


def load_task_template(name_or_path: str | Path, task: str, option: str) -> PromptTemplate:
    """`load_template`, refused unless the template does `task` (`option` names the flag that chose it)."""
    template = load_template(name_or_path)
    if template.task != task:
        raise TripleGenError(f"{option} {name_or_path}: template {template.name!r} has task {template.task!r}; it "
                             f"needs task: {task} (see the packaged '{task}' template)")
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
