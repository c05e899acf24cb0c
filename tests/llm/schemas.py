"""JSON schemas the LLM tests hand to the backends.

A random model writes nonsense, so the tests that need checkable text pin the string fields down with
a `pattern`; vLLM's structured-output decoding then can only write sentences of that shape.
"""

from __future__ import annotations

PINNED_TRIPLE_SCHEMA = {
    "type": "object",
    "properties": {
        "paraphrase": {"type": "string", "pattern": "^the (cat|kitten|pet) is resting on the (mat|rug)$"},
        "negation": {"type": "string", "pattern": "^a (cat|kitten) is not sitting on the (mat|rug)$"},
    },
    "required": ["paraphrase", "negation"],
    "additionalProperties": False,
}

FREE_TRIPLE_SCHEMA = {
    "type": "object",
    "properties": {
        "paraphrase": {"type": "string", "maxLength": 40},
        "negation": {"type": "string", "maxLength": 40},
    },
    "required": ["paraphrase", "negation"],
    "additionalProperties": False,
}


def messages(caption: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "Write a paraphrase and a negation of the caption as JSON."},
        {"role": "user", "content": caption},
    ]
