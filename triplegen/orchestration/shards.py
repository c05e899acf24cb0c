"""What `triplegen merge` asks of its parts: shards of one run, and what a merged output was made from.

Shards are one run cut by `--shard i/N`: the same input, prompt, model, seed, absent-object and check
settings, only the shard index differs. A merge of parts made otherwise (one with `--absent-objects 1`,
one without; two seeds) would be a dataset no single command makes, under a card that describes only
the first part, so it is refused, naming the two parts and the setting. Where the parts ran (servers,
executor, engine sizes, chunk size) does not change the rows and may differ.

A merged output records the digest of every part it was joined from (key `merged_parts` of its
metadata): the same merge run again (a requeued job) finds its output complete and rewrites nothing;
a merge of other parts into it is refused unless `--overwrite`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from triplegen.cooccurrence import file_digest
from triplegen.errors import TripleGenError
from triplegen.io.schema import METADATA_KEY

MERGED = "merged_parts"

# the settings of generate's config that decide the rows, by the name the user knows them under
_CONFIG = {
    "caption_col": "--caption-col", "image_col": "--image-col", "id_col": "--id-col", "objects_col": "--objects-col",
    "absent_objects": "--absent-objects", "seed": "--seed", "temperature": "--temperature",
    "max_tokens": "--max-tokens", "max_attempts": "--max-attempts", "retry_temperature": "--retry-temperature",
    "semantic_check": "--semantic-check", "constrain": "--constrain", "judge_model": "--judge-model",
    "blind_model": "--blind-model", "limit": "--limit", "license": "--license",
}
# entries of the fingerprint (newer outputs) that are not in the config as such
_FINGERPRINT = {"sampling": "sampling settings", "cooccurrence": "--cooccurrence (its content)",
                "object_synonyms": "--object-synonyms (their content)", "vocabulary": "object labels of the input"}


def settings(run: dict) -> dict[str, object]:
    """The settings of a part's run that must agree with every other part's."""
    config = run.get("config") or {}
    found: dict[str, object] = {flag: config.get(key) for key, flag in _CONFIG.items()}  # the likeliest first
    found.update({
        "input": Path(str(config.get("input", ""))).name,
        "backend": run.get("backend"),
        "model": run.get("model"),
        "prompt": (run.get("prompt") or {}).get("hash"),
        "--absent-prompt": (run.get("absent_prompt") or {}).get("hash"),
        "judge prompt": ((run.get("judge") or {}).get("prompt") or {}).get("prompt_hash"),
        "shard count": (config.get("shard") or {}).get("count"),
    })
    fingerprint = run.get("fingerprint") or {}
    if fingerprint.get("input"):
        found["input size"] = [entry.get("bytes") for entry in fingerprint["input"]]
    found.update({label: fingerprint[key] for key, label in _FINGERPRINT.items() if key in fingerprint})
    return found


def refuse_mixed_settings(parts: list[Path], runs: list[dict | None]) -> None:
    """One line naming two parts and the first setting they differ in (parts without metadata: no check)."""
    known = [(path, settings(run)) for path, run in zip(parts, runs) if run]
    if len(known) < 2:
        return
    first, expected = known[0]
    for path, found in known[1:]:
        for label in expected:
            if label in found and expected[label] != found[label]:
                raise TripleGenError(
                    f"{first} and {path} were made with a different {label} ({_show(expected[label])} and "
                    f"{_show(found[label])}); only the shard may differ between the parts of a merge")


def _show(value) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def parts_digest(parts: list[Path], reject_parts: list[Path]) -> dict[str, list[str]]:
    """What a merged output is made from: the content digest of every part and rejects part, in order."""
    return {"triples": [file_digest(p) for p in parts], "rejects": [file_digest(p) for p in reject_parts]}


def merged_before(output: Path, rejects: Path, sources: dict) -> bool:
    """True when both merged files exist and were merged from `sources`; neither exists: False; else refused."""
    found = [path for path in (output, rejects) if path.exists()]
    if not found:
        return False
    for path in (output, rejects):
        recorded = _recorded(path) if path.exists() else None
        if recorded != sources:
            why = "" if recorded is None else " (it was merged from other parts)"
            target = path if path.exists() else found[0]
            raise TripleGenError(f"{target} already exists; pass --overwrite to replace it{why}")
    return True


def _recorded(path: Path) -> dict | None:
    try:
        raw = (pq.read_schema(path).metadata or {}).get(METADATA_KEY)
        return json.loads(raw).get(MERGED) if raw else None
    except (OSError, ValueError, AttributeError):  # not Parquet, or not a merge's metadata
        return None
