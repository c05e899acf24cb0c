"""The `rules` backend: the built-in generator used when no model is named.

It answers each request with the same JSON object an LLM writes for the default prompt (or, for an
absent-object row, for the `absent` prompt), so the pipeline parses, checks and records it like any
model output. It reads `Request.caption`, never the
rendered messages: the rules need the caption, not instructions. When a rule finds nothing it can
vouch for, the field is left empty rather than filled with a guess, and the pipeline's schema and
checks reject the row with a reason.
"""

from __future__ import annotations

import json
from typing import Any

from triplegen.backends.base import Completion, Request
from triplegen.rules.absent import absent_row
from triplegen.rules.negation import negate
from triplegen.rules.paraphrase import paraphrase


class RulesBackend:
    """Deterministic paraphrase and negation by caption structure; no model, no download."""

    name = "rules"
    model = "rules"
    deterministic = True
    needs_messages = False  # reads Request.caption only, so the pipeline skips rendering

    def generate(self, requests: list[Request], sampling: dict[str, Any]) -> list[Completion]:
        return [self._complete(request) for request in requests]

    @staticmethod
    def _complete(request: Request) -> Completion:
        caption = request.caption
        if request.absent is not None:
            true, reworded, false = absent_row(caption, request.absent)
            answer = {"caption": true, "paraphrase": reworded, "negation": false}
        else:
            answer = {"paraphrase": paraphrase(caption) or "", "negation": negate(caption) or ""}
        return Completion(text=json.dumps(answer, ensure_ascii=False), finish_reason="stop")

    def close(self) -> None:
        """Nothing to release."""
