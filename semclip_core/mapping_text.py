"""YAML and JSON files of settings, read so that a key given twice is an error.

PyYAML and `json` keep the last of two equal keys without a word, so a config that sets `lr` twice,
or a synonyms table that lists `person` twice, silently loses one of them. Every file of settings
the toolkit reads (prompt templates, `--object-synonyms`, `semclip-train --config`) goes through here.
"""

from __future__ import annotations

import json
from typing import Any

import yaml


class DuplicateKey(ValueError):
    """A key given twice in one mapping."""


class UniqueKeyLoader(yaml.SafeLoader):
    """Safe YAML loading that refuses duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise DuplicateKey(f"key {key!r} is given twice (line {key_node.start_mark.line + 1})")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def parse_mapping_text(text: str, json_format: bool = False) -> Any:
    """YAML (or JSON) as Python values; `DuplicateKey` for a key given twice in any mapping."""
    if json_format:
        return json.loads(text, object_pairs_hook=_unique_pairs)
    return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    twice = next((key for key in keys if keys.count(key) > 1), None)
    if twice is not None:
        raise DuplicateKey(f"key {twice!r} is given twice")
    return dict(pairs)
