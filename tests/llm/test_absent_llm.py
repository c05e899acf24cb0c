"""Absent-object rows through the real vLLM engine and the real OpenAI-compatible server.

A random model writes nonsense, so the test template pins its answers with `pattern`s that the
engine enforces; the row's own facts (caption, objects, absent object) reach the model through the
template, and every answer is judged by the absent-object checks, so both accepted rows and
rejects with reasons come out.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import yaml

from tests.llm.conftest import TINY_MODEL_NAME, engine_options
from tests.llm.test_generate_e2e import assert_validates, ids_once
from triplegen.config import GenerateConfig, ServerOptions
from triplegen.orchestration.run import generate
from triplegen.templates import load_template

pytestmark = pytest.mark.vllm

NUMBER = "[1-9][0-9]?"
PINNED_ABSENT = {
    "name": "pinned-absent",
    "version": "1",
    "task": "absent",
    "description": "Test template whose schema pins a random model's answers for absent-object rows.",
    "system": "Write the caption with the missing object denied, a paraphrase and a false version, as JSON.",
    "user": "Caption: {{ caption }}\nObjects: {{ objects }}\nMissing: {{ absent_object }}\n"
            "Say it {{ position }} with {{ style }}; paraphrase with {{ paraphrase_style }}.\n"
            "False version: {{ negation_kind }} ({{ present_object }}).",
    "output_schema": {
        "type": "object",
        "properties": {
            "caption": {"type": "string", "pattern": f"^a cat number {NUMBER} sits on the mat, with no dog$"},
            "paraphrase": {"type": "string", "pattern": f"^the cat number {NUMBER} is resting on the mat without a dog$"},
            "negation": {"type": "string", "pattern": f"^(a cat number {NUMBER} sits on the mat, with a dog"
                                                      f"|a dog number {NUMBER} sits on the mat, with no cat)$"},
        },
        "required": ["caption", "paraphrase", "negation"],
        "additionalProperties": False,
    },
    "sampling": {"temperature": 1.0, "top_p": 1.0, "max_tokens": 200},
    "examples": [],
}


@pytest.fixture(scope="module")
def absent_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("prompts") / "pinned-absent.yaml"
    path.write_text(yaml.safe_dump(PINNED_ABSENT, sort_keys=False), encoding="utf-8")
    return path


def write_captions(path: Path, n: int) -> Path:
    """Cats on mats (the absent object is always "dog"), and one dog, on a mat too (so that a dog fits the
    cats' scenes), whose absent object is not."""
    ids = [f"cap-{i:03d}" for i in range(n)]
    captions = [f"a cat number {i + 1} sits on the mat" for i in range(n - 1)] + ["a dog sleeps"]
    objects = [["cat", "mat"]] * (n - 1) + [["dog", "mat"]]
    pl.DataFrame({"id": ids, "image": [f"img/{i}.jpg" for i in range(n)], "caption": captions,
                  "objects": objects}).write_parquet(path)
    return path


def expected_ids(n: int) -> set[str]:
    return {f"cap-{i:03d}" for i in range(n)} | {f"cap-{i:03d}#absent-1" for i in range(n)}


def check_absent_rows(summary, n: int) -> None:
    out, rej = ids_once(summary.output, summary.rejects, expected_ids(n))
    absent = out.filter(pl.col("kind") != "caption")
    assert absent.height >= n // 2, summary.reject_reasons  # the cats' rows pass the checks
    assert set(absent["absent_object"]) == {"dog"} and set(absent["prompt_name"]) == {"pinned-absent"}
    assert absent["caption"].str.ends_with("with no dog").all()
    # the dog's row asks to deny a cat or a mat, but the pinned model denies the dog it shows
    dog = rej.filter(pl.col("id") == f"cap-{n - 1:03d}#absent-1")
    assert dog["reason"].to_list() == ["absent_denies_present"] and dog["raw_output"][0].startswith("{")
    assert summary.run["counts"]["absent_planned"] == n
    assert_validates(summary.output)


def test_rendered_absent_prompt_carries_the_rows_facts(absent_template):
    from triplegen.rules.absent import AbsentSpec
    from triplegen.tasks import row_variables

    template = load_template(absent_template)
    spec = AbsentSpec(1, ("cat", "mat"), "dog", "absent-swap", "cat", "start", "without", "but no")
    user = template.render("a cat number 3 sits on the mat", row_variables(spec))[-1]["content"]
    assert "Objects: cat, mat" in user and "Missing: dog" in user and "at the start of the caption" in user
    assert '"without"' in user and "(cat)" in user


def test_vllm_backend_writes_absent_rows_with_their_own_schema(tiny_llama_dir, tiny_engine, absent_template, tmp_path):
    n = 9
    config = GenerateConfig(input=write_captions(tmp_path / "caps.parquet", n), output=tmp_path / "t.parquet",
                            model=str(tiny_llama_dir), engine=engine_options(), absent_objects=1,
                            absent_prompt=str(absent_template), max_attempts=1, quiet=True)
    check_absent_rows(generate(config), n)


def test_openai_backend_writes_absent_rows_with_their_own_schema(tiny_server, absent_template, tmp_path):
    n = 9
    config = GenerateConfig(input=write_captions(tmp_path / "caps.parquet", n), output=tmp_path / "t.parquet",
                            model=TINY_MODEL_NAME, absent_objects=1, absent_prompt=str(absent_template),
                            max_attempts=1, quiet=True,
                            server=ServerOptions(base_urls=[tiny_server.base_url], concurrency=4))
    check_absent_rows(generate(config), n)
