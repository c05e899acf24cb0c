"""The blind check (`--blind-model`) with the real SmolLM2-135M: the scorer, generate's rejects, card and
resume, validate's shares and report, and the one-line error of a bad model folder.

Generation answers come from a script (as in test_constrain_judge.py) so that the rows the blind
model must see through are known: a negation that is the caption's words scrambled around a "not",
and an absent-object caption scrambled the same way. Both pass the lexical checks.
"""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from tests.triplegen.test_pipeline import _captions
from triplegen.backends.base import BackendStats, Completion
from triplegen.checks.blind import BlindScorer, preference_share
from triplegen.cli import app
from triplegen.config import GenerateConfig
from triplegen.errors import BackendUnavailable, TripleGenError
from triplegen.orchestration.run import generate

runner = CliRunner()
HORSE, DOGS, KITCHEN = "A man riding a horse on a beach.", "Two dogs play in the snow.", "A kitchen with a table in it."
RUN, THROW = "A dog runs next to a horse.", "A man throws a frisbee to his dog."
# labels that occur together, so that absent-object rows can be planned for each image
ROWS = [{"id": "a", "caption": HORSE, "objects": ["person", "horse"]},
        {"id": "b", "caption": DOGS, "objects": ["dog", "person"]},
        {"id": "c", "caption": KITCHEN, "objects": ["dining table", "person"]},
        {"id": "d", "caption": RUN, "objects": ["dog", "horse"]},
        {"id": "e", "caption": THROW, "objects": ["person", "dog", "frisbee"]}]
ANSWERS = {
    HORSE: {"paraphrase": "On a beach, a man is riding a horse.", "negation": "Beach a on not horse a riding man."},
    DOGS: {"paraphrase": "A pair of dogs is playing in the snow.", "negation": "Two dogs do not play in the snow."},
    KITCHEN: {"paraphrase": "A kitchen that has a table in it.", "negation": "A kitchen with no table in it."},
    RUN: {"paraphrase": "Next to a horse, a dog is running.", "negation": "A dog does not run next to a horse."},
    THROW: {"paraphrase": "A man is throwing a frisbee to his dog.",
            "negation": "A man does not throw a frisbee to his dog."},
}


class ScriptBackend:
    """Answers from ANSWERS; an absent-object row of HORSE gets a scrambled caption. `down` names a
    caption whose request fails as an outage (the run stops and resumes later)."""

    name, model, deterministic = "scripted", "script-1", True

    def __init__(self, down: str | None = None):
        self.down, self.stats = down, BackendStats()

    def generate(self, requests, sampling):
        if any(r.caption == self.down for r in requests):
            raise BackendUnavailable("the scripted server is down")
        return [Completion(text=json.dumps(self._answer(r)), prompt_tokens=10, completion_tokens=5) for r in requests]

    @staticmethod
    def _answer(request):
        if request.absent is None:
            return ANSWERS[request.caption]
        thing = request.absent.absent
        if request.caption == HORSE:
            caption = f"Beach a on horse riding man a, no {thing}."
        else:
            caption = f"{request.caption[:-1]}, with no {thing}."
        return {"caption": caption, "paraphrase": f"{request.caption[:-1]} without a {thing}.",
                "negation": f"{request.caption[:-1]} with a {thing}."}

    def close(self):
        pass


@pytest.fixture(scope="module")
def scorer(smollm2_model):
    return BlindScorer(smollm2_model)


def _config(tmp_path, model, **extra) -> GenerateConfig:
    return GenerateConfig(input=_captions(tmp_path / "c.parquet", ROWS), output=tmp_path / "out", quiet=True,
                          blind_model=str(model), **extra)


def _reasons(folder) -> dict[str, str]:
    rejects = pq.read_table(folder / "rejects.parquet").to_pylist()
    return {row["id"]: row["reason"] for row in rejects}


def test_the_scorer_ranks_fluent_text_above_the_same_words_scrambled(scorer):
    fluent = [HORSE, DOGS, "A woman is holding an umbrella in the rain."]
    scrambled = ["Beach a on horse a riding man.", "Snow the in play dogs two.",
                 "Rain umbrella the an in holding woman is a."]
    scores = scorer.score(fluent + scrambled)
    assert all(scores[i] > scores[i + 3] + 0.5 for i in range(3)), scores
    assert all(-12 < s < 0 for s in scores)  # mean log-probability per token, in nats
    assert scorer.score([HORSE]) == pytest.approx(scores[:1], abs=1e-4)  # the same alone as in a padded batch
    assert preference_share(scorer, fluent, scrambled) == 1.0
    assert preference_share(scorer, scrambled, fluent) == 0.0


def test_generate_rejects_what_the_blind_model_tells_apart_and_the_card_counts_it(tmp_path, smollm2_model):
    summary = generate(_config(tmp_path, smollm2_model, absent_objects=1), backend=ScriptBackend())
    reasons = _reasons(tmp_path / "out")
    blind_reasons = {row_id: reason for row_id, reason in reasons.items() if reason.startswith("blind_")}
    assert blind_reasons == {"a": "blind_detectable", "a#absent-1": "blind_disfluent"}, reasons
    detail = pq.read_table(tmp_path / "out" / "rejects.parquet").to_pylist()[0]["detail"]
    assert "nats/token" in detail and "Beach a on not horse" in detail
    written = pq.read_table(tmp_path / "out" / "triples.parquet").column("id").to_pylist()
    assert {"b", "c", "d", "e"} <= set(written) and "a" not in written and "a#absent-1" not in written
    blind = summary.run["blind_counts"]
    assert blind["caption"] == {"scored": 5, "prefers_true": blind["caption"]["prefers_true"], "detectable": 1,
                                "disfluent": 0, "kept": 4, "kept_prefers_true": blind["caption"]["prefers_true"] - 1}
    absent = {kind: n for kind, n in blind.items() if kind != "caption"}
    assert sum(n["disfluent"] for n in absent.values()) == 1
    assert sum(n["kept"] for n in absent.values()) == sum(row_id.endswith("#absent-1") for row_id in written)
    assert summary.run["blind"]["model"] == str(smollm2_model)
    card = summary.card.read_text()
    assert "## Blind check" in card and f"`{smollm2_model}`" in card
    assert "| caption | 5 | " in card and "`blind_detectable` | 1 |" in card and "`blind_disfluent` | 1 |" in card

    # validate sees the written rows as the card does: every one passes, with the same share
    report = tmp_path / "report.json"
    result = runner.invoke(app, ["validate", str(tmp_path / "out"), "--blind-model", str(smollm2_model),
                                 "--report", str(report)])
    assert result.exit_code == 0, result.output
    assert "prefers caption" in result.output and "blind model" in result.output
    kinds = json.loads(report.read_text())["blind"]["kinds"]
    for kind, n in blind.items():
        assert kinds[kind]["scored"] == n["kept"] and kinds[kind]["prefers_true"] == n["kept_prefers_true"]
        assert kinds[kind]["detectable"] == kinds[kind]["disfluent"] == 0


def test_blind_counts_survive_a_resume_and_another_blind_model_is_refused(tmp_path, smollm2_model):
    config = _config(tmp_path, smollm2_model, chunk_size=1)
    with pytest.raises(BackendUnavailable):
        generate(config, backend=ScriptBackend(down=KITCHEN))  # chunks a and b are finished and kept
    other = tmp_path / "other-model"
    other.symlink_to(smollm2_model)
    with pytest.raises(TripleGenError, match="different blind"):
        generate(config.model_copy(update={"blind_model": str(other)}), backend=ScriptBackend())
    summary = generate(config, backend=ScriptBackend())
    assert summary.resumed_chunks == 2
    assert summary.run["blind_counts"]["caption"]["scored"] == 5  # a and b were scored by the first run
    assert summary.run["blind_counts"]["caption"]["detectable"] == 1 and _reasons(tmp_path / "out") == {
        "a": "blind_detectable"}


def test_validate_flags_detectable_and_disfluent_rows_and_reports_the_shares(tmp_path, smollm2_model):
    rows = [
        {"id": "a", "caption": HORSE, "paraphrase": ANSWERS[HORSE]["paraphrase"],
         "negation": ANSWERS[HORSE]["negation"], "kind": "caption", "source_id": None, "absent_object": None},
        {"id": "b", "caption": DOGS, "paraphrase": ANSWERS[DOGS]["paraphrase"], "negation": ANSWERS[DOGS]["negation"],
         "kind": "caption", "source_id": None, "absent_object": None},
        {"id": "b#absent-1", "caption": "Snow the in play dogs two, no cat.", "negation": f"{DOGS[:-1]} with a cat.",
         "paraphrase": f"{DOGS[:-1]} without a cat.", "kind": "absent-assert", "source_id": "b", "absent_object": "cat"},
    ]
    path = tmp_path / "t.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    report = tmp_path / "r.json"
    result = runner.invoke(app, ["validate", str(path), "--blind-model", str(smollm2_model), "--report", str(report)])
    assert result.exit_code == 1, result.output
    assert "blind_detectable" in result.output and "blind_disfluent" in result.output
    data = json.loads(report.read_text())
    assert data["counts"]["blind_detectable"] == 1 and data["counts"]["blind_disfluent"] == 1
    failing = {f["id"]: f["reasons"] for f in data["failures"]}
    assert "blind_detectable" in failing["a"] and "blind_disfluent" in failing["b#absent-1"]
    caption = data["blind"]["kinds"]["caption"]
    assert caption["scored"] == 2 and caption["share_prefers_true"] == caption["prefers_true"] / 2 >= 0.5
    assert data["blind"]["kinds"]["absent-assert"]["disfluent"] == 1


@pytest.mark.parametrize("command", ["generate", "validate"])
def test_a_folder_that_is_not_a_model_is_one_line_and_exit_2(tmp_path, command):
    (tmp_path / "empty").mkdir()
    captions = _captions(tmp_path / "c.parquet", ROWS)
    args = ([str(captions), "-o", str(tmp_path / "out"), "--quiet"] if command == "generate"
            else [str(tmp_path / "t.parquet")])
    if command == "validate":
        pq.write_table(pa.Table.from_pylist([{"id": "a", "caption": HORSE, **ANSWERS[HORSE]}]), tmp_path / "t.parquet")
    result = runner.invoke(app, [command, *args, "--blind-model", str(tmp_path / "empty")])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: --blind-model ") and "not a model folder" in lines[0], \
        result.output
    assert not (tmp_path / "out").exists()
