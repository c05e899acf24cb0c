"""Absent-object rows right by construction on the real engine (triplegen.checks.absent_constraints).

The tiny random Llama writes random text, so whatever it gets right is the row's schema's doing; the
real SmolLM2-135M-Instruct with the default `absent` template must have at least half of its rows
accepted, and an independent reading (this file's own object names, not triplegen's table or
checks) must find each accepted row right: the caption and paraphrase deny the absent object once
and name it nowhere else, deny nothing the image shows, and the negation is false.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest
import yaml

from tests.llm.conftest import engine_options
from tests.llm.test_generate_e2e import assert_validates
from triplegen.config import EngineOptions, GenerateConfig
from triplegen.orchestration.run import generate

pytestmark = pytest.mark.vllm

# COCO-style captions with COCO labels: a few scenes, so that each image's absent object fits it.
IMAGES = [
    ("A man riding a horse on a dirt road.", ["person", "horse"]),
    ("Two horses grazing in a green field near a fence.", ["horse"]),
    ("A woman walks her dog past a parked car.", ["person", "dog", "car"]),
    ("A dog sleeping on a brown couch.", ["dog", "couch"]),
    ("A cat curled up on a bed next to a pillow.", ["cat", "bed"]),
    ("a black cat sitting on a wooden chair", ["cat", "chair"]),
    ("A kitchen with a white refrigerator and a stove.", ["refrigerator", "oven"]),
    ("A bowl of soup and a cup of coffee on a table.", ["bowl", "cup", "dining table"]),
    ("A plate with a sandwich and a fork.", ["sandwich", "fork", "dining table"]),
    ("A small bathroom with a toilet and a sink.", ["toilet", "sink"]),
    ("A red bus driving down a city street.", ["bus", "car"]),
    ("Cars wait at a traffic light on a busy street.", ["car", "traffic light", "truck"]),
    ("A truck parked next to a fire hydrant.", ["truck", "fire hydrant"]),
    ("A man is holding a surfboard on the beach.", ["person", "surfboard"]),
    ("A boy flies a kite in a park.", ["person", "kite"]),
    ("A laptop and a cell phone on a desk.", ["laptop", "cell phone", "keyboard"]),
    ("A living room with a couch and a television.", ["couch", "tv", "chair"]),
    ("A woman holding an umbrella in the rain.", ["person", "umbrella"]),
    ("Two giraffes standing next to a tree.", ["giraffe"]),
    ("An elephant walking through tall grass.", ["elephant"]),
    ("A pizza sitting on a table next to a cup.", ["pizza", "dining table", "cup"]),
    ("A street with no cars and a bicycle against a wall.", ["bicycle"]),
]
# This test's own words for the objects (singular; "s"/"es" plurals are formed below).
WORDS = {
    "person": "person man woman boy people", "horse": "horse", "dog": "dog puppy", "car": "car", "couch": "couch sofa",
    "cat": "cat kitten", "bed": "bed", "chair": "chair", "refrigerator": "refrigerator fridge", "oven": "oven stove",
    "bowl": "bowl", "cup": "cup mug", "dining table": "table", "sandwich": "sandwich", "fork": "fork",
    "toilet": "toilet", "sink": "sink", "bus": "bus", "traffic light": "traffic light", "truck": "truck",
    "fire hydrant": "fire hydrant hydrant", "surfboard": "surfboard", "kite": "kite", "laptop": "laptop",
    "cell phone": "cell phone phone", "keyboard": "keyboard", "tv": "television tv", "umbrella": "umbrella",
    "giraffe": "giraffe", "elephant": "elephant", "pizza": "pizza", "bicycle": "bicycle bike",
}
DENIED = re.compile(r"\b(?:no|without(?:\s+(?:a|an|any))?)\s+$", re.IGNORECASE)


def object_names(label: str) -> re.Pattern:
    words = WORDS.get(label, label).split(" ") if label != "traffic light" else ["traffic light"]
    if label in ("fire hydrant", "cell phone"):
        words = [label, label.split()[1]]
    forms = sorted({f for w in words for f in (w, w + "s", w + "es")}, key=len, reverse=True)
    return re.compile(r"\b(?:" + "|".join(map(re.escape, forms)) + r")\b", re.IGNORECASE)


def readings(text: str, label: str) -> list[bool]:
    """Each mention of the object in `text`: True where it is denied ("no dog", "without a dog")."""
    return [bool(DENIED.search(text[: m.start()])) for m in object_names(label).finditer(text)]


def independently_right(row: dict, shown: list[str]) -> str | None:
    absent = row["absent_object"]
    for field in ("caption", "paraphrase"):
        if readings(row[field], absent) != [True]:
            return f"{field} does not deny {absent} exactly once: {row[field]}"
        if any(any(readings(row[field], label)) for label in shown):
            return f"{field} denies a shown object: {row[field]}"
    said = readings(row["negation"], absent)
    if not (said and not all(said)) and not any(any(readings(row["negation"], label)) for label in shown):
        return f"negation is not false: {row['negation']}"
    return None


def write_images(path: Path) -> Path:
    pl.DataFrame({"id": [f"img-{i:02d}" for i in range(len(IMAGES))], "caption": [c for c, _ in IMAGES],
                  "objects": [o for _, o in IMAGES]}).write_parquet(path)
    return path


def test_smollm2_writes_absent_rows_that_are_right(smollm2_dir, tmp_path):
    config = GenerateConfig(input=write_images(tmp_path / "caps.parquet"), output=tmp_path / "t.parquet",
                            model=str(smollm2_dir), engine=EngineOptions(dtype="float32", enforce_eager=True,
                                                                         max_model_len=2048),
                            absent_objects=1, max_attempts=2, quiet=True)
    summary = generate(config)
    planned = summary.run["counts"]["absent_planned"]
    out = pl.read_parquet(summary.output)
    absent = out.filter(pl.col("kind") != "caption").to_dicts()
    assert planned >= 15
    assert len(absent) * 2 >= planned, summary.reject_reasons
    shown = {f"img-{i:02d}": objects for i, (_, objects) in enumerate(IMAGES)}
    wrong = [problem for row in absent if (problem := independently_right(row, shown[row["source_id"]]))]
    assert not wrong, wrong
    assert summary.run["constraints"]["absent caption: denial"] == planned
    assert_validates(summary.output)


SHORT_ABSENT = {
    "name": "short-absent", "version": "1", "task": "absent",
    "description": "A short absent template for the tiny random Llama's 512-token context.",
    "system": "Write the caption with the missing object denied, a paraphrase and a false version, as JSON.",
    "user": "Caption: {{ caption }}\ncaption: {{ denial }}\nparaphrase: {{ paraphrase_denial }}\n"
            "negation: {{ false_version }}",
    "output_schema": {"type": "object", "required": ["caption", "paraphrase", "negation"],
                      "additionalProperties": False,
                      "properties": {f: {"type": "string", "maxLength": 300} for f in ("caption", "paraphrase", "negation")}},
    "sampling": {"temperature": 1.0, "top_p": 1.0, "max_tokens": 300},
    "examples": [],
}


def test_a_random_model_writes_right_absent_rows_under_the_constraint(tiny_llama_dir, tiny_engine, tmp_path):
    """Random weights, right rows: the caption, paraphrase and negation are the row's patterns' doing.
    (The source rows themselves get the default template, too long for this engine: backend_error.)"""
    template = tmp_path / "short-absent.yaml"
    template.write_text(yaml.safe_dump(SHORT_ABSENT, sort_keys=False), encoding="utf-8")
    n = 8
    config = GenerateConfig(input=write_images(tmp_path / "caps.parquet"), output=tmp_path / "t.parquet",
                            model=str(tiny_llama_dir), engine=engine_options(), absent_objects=1, limit=n,
                            absent_prompt=str(template), max_attempts=2, quiet=True)
    summary = generate(config)
    out = pl.read_parquet(summary.output)
    absent = out.filter(pl.col("kind") != "caption").to_dicts()
    planned = summary.run["counts"]["absent_planned"]
    # a random model may spend max_tokens on the whitespace JSON allows between fields: "truncated"
    assert planned >= 5 and len(absent) * 2 >= planned, summary.reject_reasons
    shown = {f"img-{i:02d}": objects for i, (_, objects) in enumerate(IMAGES)}
    assert not [p for row in absent if (p := independently_right(row, shown[row["source_id"]]))]
    assert summary.run["constraints"]["absent paraphrase: reworded"] == planned
