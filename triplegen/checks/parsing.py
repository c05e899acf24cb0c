"""From a model's raw text to a (paraphrase, negation) pair, or one stable reason code saying why not.

The codes (`backend_error`, `truncated`, `invalid_json`, `missing_field`) are the ones in
`triplegen.checks.lexical.REASONS`; the pipeline retries on them and writes them into the rejects. Small
models wrap JSON in a Markdown fence even when told not to, so one fence and surrounding whitespace
are tolerated; anything else around the object is not, since it means the model did not follow
the format and its answer should not be trusted.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from triplegen.templates import PromptTemplate

_FENCE = re.compile(r"\A```[ \t]*(?:json)?[ \t]*\n?(.*?)\n?[ \t]*```\Z", re.DOTALL | re.IGNORECASE)


@dataclass(frozen=True)
class ParsedOutput:
    """Either both fields (reason None) or a reason code with a one-line detail."""

    paraphrase: str | None = None
    negation: str | None = None
    caption: str | None = None  # an `absent` template's answer also writes the (true) caption
    reason: str | None = None
    detail: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None


def _failure(reason: str, detail: str) -> ParsedOutput:
    return ParsedOutput(reason=reason, detail=detail)


def parse_output(text: str | None, finish_reason: str | None, template: PromptTemplate) -> ParsedOutput:
    """Parse one completion against the template's output schema."""
    if text is None:
        return _failure("backend_error", "the backend returned no text")
    if finish_reason == "length":
        return _failure("truncated", "the output stopped at the token limit (max_tokens)")
    body = text.strip()
    fenced = _FENCE.match(body) if body.startswith("`") else None
    if fenced:
        body = fenced.group(1).strip()
    try:
        value = json.loads(body)
    except json.JSONDecodeError as error:
        return _failure("invalid_json", f"not JSON: {error.msg} at character {error.pos}")
    if not isinstance(value, dict):
        return _failure("invalid_json", f"a JSON {type(value).__name__}, not an object")
    error = template.output_error(value)
    if error is not None:
        return _failure("missing_field", error)
    caption = value["caption"].strip() if template.task == "absent" else None
    return ParsedOutput(paraphrase=value["paraphrase"].strip(), negation=value["negation"].strip(), caption=caption)
