"""What a prompt template asks a model for: its answer's fields, the row facts it may use, its checks.

Three tasks share the template machinery:

- `triple` (the default): from a caption, {"paraphrase", "negation"};
- `absent`: from a caption, the image's objects and an object it does not show,
  {"caption", "paraphrase", "negation"}: a true caption that denies the absent object, its
  paraphrase, and a false version (see `triplegen.rules.absent` for the kinds of negation);
- `judge`: from a caption and a generated paraphrase and negation, a verdict on each,
  {"paraphrase", "negation"}, as values of the schema's `enum`s (`--judge-model`, triplegen.checks.llm_judge).

Per-row facts of the `absent` and `judge` tasks are passed as template variables next to the
caption, and, like the caption, only as data: they never become template source. An example's `row`
holds them (for `absent`, the plan of the row; for `judge`, the texts to judge).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from triplegen.checks.lexical import check_absent_triple, check_triple
from triplegen.rules.absent import AbsentSpec, false_text, true_text
from triplegen.rules.denials import PAIR_WORDINGS, STYLES

# What the model is told about the two kinds of negation (`negation_kind` in the template).
NEGATION_KINDS = {
    "absent-assert": "say that the absent object IS there (keep everything else)",
    "absent-swap": "deny the shown object instead and say the absent object is there (same words, the negation moved)",
}
POSITIONS = {"end": "at the end of the caption", "start": "at the start of the caption"}
# Where the caption goes in the phrases the model is shown (`denial`, `paraphrase_denial`, `false_version`).
CAPTION_SLOT = "<caption>"


@dataclass(frozen=True)
class Task:
    name: str
    output_fields: tuple[str, ...]  # the answer's string fields, all required
    row_variables: tuple[str, ...]  # per-row template variables besides `caption`

    def example_variables(self, row: dict[str, str]) -> dict[str, str]:
        """The template variables an example's `row` stands for (ValueError when it is not usable)."""
        if self.name == "absent":
            return row_variables(spec_from_row(row))
        missing = [key for key in self.row_variables if not str(row.get(key, "")).strip()]
        unknown = sorted(set(row) - set(self.row_variables))
        if missing or unknown:
            wanted = ", ".join(self.row_variables) or "no keys"
            raise ValueError(f"needs {wanted}" + (f"; unknown: {', '.join(unknown)}" if unknown else ""))
        return dict(row)

    def check_example(self, caption: str, row: dict[str, str], answer: dict[str, str]) -> list[str]:
        """Problems of a few-shot example ([] when it is a good one): its row, then the checks."""
        if self.name == "triple":
            reasons = check_triple(caption, answer["paraphrase"], answer["negation"])
            return [f"fails the quality checks: {', '.join(reasons)}"] if reasons else []
        if self.name == "judge":  # its answer is a verdict, which the schema's enums check
            try:
                self.example_variables(row)
            except ValueError as error:
                return [f"row: {error}"]
            return []
        try:
            spec = spec_from_row(row)
        except ValueError as error:
            return [f"row: {error}"]
        reasons = check_absent_triple(caption, spec.objects, spec.absent, answer["caption"], answer["paraphrase"],
                                      answer["negation"])
        return [f"fails the quality checks: {', '.join(reasons)}"] if reasons else []


TASKS = {
    "triple": Task("triple", ("paraphrase", "negation"), ()),
    "absent": Task("absent", ("caption", "paraphrase", "negation"),
                   ("objects", "absent_object", "present_object", "negation_kind", "position", "style",
                    "paraphrase_style", "denial", "paraphrase_denial", "false_version")),
    "judge": Task("judge", ("paraphrase", "negation"), ("paraphrase", "negation")),
}


def row_variables(spec: AbsentSpec) -> dict[str, str]:
    """The `absent` task's template variables for one row, in words a model can follow.

    Besides the plan's names, the model is shown the exact phrases: `denial` is the caption with the
    denial where the planned wording puts it ("<caption>, with no dog in sight"), `false_version` its
    false twin, `paraphrase_denial` the paraphrase's wording. A 135M model told only "in sight, at
    the end" invents its own phrase; shown the text, it copies it (and the row's schema,
    triplegen.checks.absent_constraints, holds it to these texts where the backend takes patterns).
    """
    return {
        "objects": ", ".join(spec.objects),
        "absent_object": spec.absent,
        "present_object": spec.present,
        "negation_kind": NEGATION_KINDS[spec.kind],
        "position": POSITIONS[spec.position],
        "style": f'"{spec.style}"',
        "paraphrase_style": f'"{spec.paraphrase_style}"',
        "denial": true_text(CAPTION_SLOT, spec),
        "paraphrase_denial": true_text("<the caption in other words>", spec, spec.paraphrase_style),
        "false_version": false_version(spec),
    }


def false_version(spec: AbsentSpec) -> str:
    """The negation the plan asks for, with the caption as a slot (a swap planned without its caption,
    as in a template's example, gets a slot for that too)."""
    if spec.kind == "absent-swap" and spec.swapped is None and spec.style not in PAIR_WORDINGS:
        spec = replace(spec, swapped=f"<caption with {spec.word} in place of {spec.shown_word or spec.present}>")
    elif spec.kind == "absent-assert":
        spec = replace(spec, swapped=None)
    return false_text(CAPTION_SLOT, spec)


# An example's row, as written in a template: the plan of the row, not the words shown to the model.
ROW_KEYS = ("objects", "absent_object", "present_object", "kind", "position", "style", "paraphrase_style")
# What an example's row may add: how its text names the objects, and a swap's caption body.
OPTIONAL_ROW_KEYS = ("absent_word", "shown_word", "swapped")


def spec_from_row(row: dict[str, str]) -> AbsentSpec:
    """The plan an example's `row` describes; ValueError naming the first bad or missing key."""
    missing = [key for key in ROW_KEYS if not str(row.get(key, "")).strip()]
    unknown = sorted(set(row) - set(ROW_KEYS) - set(OPTIONAL_ROW_KEYS))
    if missing or unknown:
        raise ValueError(f"needs the keys {', '.join(ROW_KEYS)}" + (f"; unknown: {', '.join(unknown)}" if unknown else ""))
    allowed = {"kind": NEGATION_KINDS, "position": POSITIONS, "style": STYLES, "paraphrase_style": STYLES}
    for key, values in allowed.items():
        if row[key] not in values:
            raise ValueError(f"{key} must be one of {', '.join(values)}, got {row[key]!r}")
    objects = tuple(label.strip() for label in row["objects"].split(",") if label.strip())
    return AbsentSpec(1, objects, row["absent_object"], row["kind"], row["present_object"], row["position"],
                      row["style"], row["paraphrase_style"], absent_word=row.get("absent_word", ""),
                      shown_word=row.get("shown_word", ""), swapped=row.get("swapped") or None)


SAMPLE_ROW = {"objects": "person, horse", "absent_object": "dog", "present_object": "horse",
              "kind": "absent-assert", "position": "end", "style": "with no", "paraphrase_style": "without"}
SAMPLE_JUDGED = {"paraphrase": "A horse is being ridden by a person.", "negation": "A person is not riding a horse."}


def sample_variables(task: Task) -> dict[str, str]:
    """Row variables for test-rendering a template of `task` when it is loaded."""
    return {"absent": lambda: row_variables(spec_from_row(SAMPLE_ROW)), "judge": lambda: dict(SAMPLE_JUDGED)}.get(
        task.name, dict)()
