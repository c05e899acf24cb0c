"""Absent-object rows: true captions that deny an object the image lacks, and false versions of them.

The scope reader is checked on hand-written sentences; the rules writer on every kind, position and
wording over several caption shapes; the planner for determinism and plausibility; `generate` end to
end for ids, columns, resume, validate, merge and every refusal.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from triplegen.absent import absent_row, indefinite
from triplegen.checks import check_absent_triple
from triplegen.cli import app
from triplegen.config import GenerateConfig
from triplegen.objects import KINDS, POSITIONS, STYLES, AbsentSpec, ObjectVocabulary, parse_labels, plan_absent
from triplegen.run import generate
from triplegen.scope import plural, read_objects

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


# --- which objects a sentence denies -------------------------------------------------------------

@pytest.mark.parametrize("text, asserted, denied", [
    ("a red circle and no blue square", {"red circle"}, {"blue square"}),
    ("no red circle and a blue square", {"blue square"}, {"red circle"}),
    ("a red circle without a blue square", {"red circle"}, {"blue square"}),
    ("There is no dog on the sofa next to the cat.", {"sofa", "cat"}, {"dog"}),
    ("Not a dog, but a man riding a horse.", {"horse"}, {"dog"}),
    ("A man riding a horse on a beach, with no dog.", {"horse"}, {"dog"}),
    ("The man is not holding a dog on a sofa", set(), {"dog", "sofa"}),  # a verb's "not": to the clause end
    ("no dogs or cats in the room", {"room"}, {"dog", "cat"}),
    ("a hot dog and no dog", {"hot dog"}, {"dog"}),
    ("Two people and no skis.", {"person"}, {"skis"}),
    ("a no parking sign next to a car", {"sign", "car"}, set()),  # sign text denies nothing
    ("A kitchen that lacks an oven but has a sink", {"kitchen", "sink"}, {"oven"}),
])
def test_read_objects_finds_the_scope_of_each_negation(text, asserted, denied):
    labels = sorted(asserted | denied | {"giraffe"})
    reading = read_objects(text, labels)
    assert {label for label in labels if reading[label].asserted} == asserted
    assert {label for label in labels if reading[label].denied} == denied
    assert not reading["giraffe"].mentioned


@pytest.mark.parametrize("label, form", [("dog", "dogs"), ("person", "people"), ("dining table", "dining tables"),
                                         ("skis", "skis"), ("bus", "buses"), ("cherry", "cherries"),
                                         ("knife", "knives"), ("sheep", "sheep")])
def test_plural_of_labels(label, form):
    assert plural(label) == form


def test_indefinite_articles():
    assert [indefinite(x) for x in ("dog", "apple", "umbrella", "unicorn", "hour glass", "skis")] == [
        "a dog", "an apple", "an umbrella", "a unicorn", "an hour glass", "skis"]


def test_parse_labels_from_lists_and_text():
    assert parse_labels(["Dog", " dog ", "Hot  Dog", None]) == ["dog", "hot dog"]
    assert parse_labels('["cat", "sofa"]') == ["cat", "sofa"]
    assert parse_labels("cat, sofa,") == ["cat", "sofa"]
    assert parse_labels(None) == [] and parse_labels("") == []


# --- the rules writer ------------------------------------------------------------------------------

CAPTIONS = [  # (caption, labels of its image, a label the caption names)
    ("A man riding a horse on a beach.", ["person", "horse"], "horse"),
    ("a red circle above a blue square", ["red circle", "blue square"], "blue square"),
    ("Two dogs play in the snow", ["dog"], "dog"),
    ("A kitchen with a sink and a refrigerator.", ["sink", "refrigerator", "oven"], "oven"),  # oven not named
    ("Skiers wait at the top of a slope.", ["person", "skis"], "skis"),
    ("A room with no people in it.", ["chair", "tv"], "tv"),  # already negated
]


@pytest.mark.parametrize("caption, labels, named", CAPTIONS)
def test_every_kind_position_and_wording_gives_a_row_the_checks_accept(caption, labels, named):
    seen = set()
    for kind, position, style, other in itertools.product(KINDS, POSITIONS, STYLES, STYLES):
        if style == other:
            continue
        spec = AbsentSpec(1, tuple(labels), "umbrella", kind, named, position, style, other)
        true, reworded, false = absent_row(caption, spec)
        assert check_absent_triple(caption, labels, "umbrella", true, reworded, false) == [], (spec, true, reworded, false)
        reading = read_objects(false, [*labels, "umbrella"])
        assert reading["umbrella"].asserted or any(reading[label].denied for label in labels)
        assert true[:1].isupper() == caption[:1].isupper()
        seen.add(true)
    assert len(seen) >= 2 * len(STYLES)  # each position and wording reads differently


def test_swap_moves_the_denial_onto_a_shown_object_with_the_same_words():
    spec = AbsentSpec(1, ("red circle", "blue square"), "green triangle", "absent-swap", "red circle", "end",
                      "and no", "without")
    true, _, false = absent_row("a red circle above a blue square", spec)
    assert true == "a red circle above a blue square and no green triangle"
    assert false == "a green triangle above a blue square and no red circle"
    assert sorted(true.split()) == sorted(false.split())


def test_swap_names_both_objects_when_the_caption_names_neither():
    spec = AbsentSpec(1, ("person", "horse"), "dog", "absent-swap", "person", "end", "with no", "but no")
    true, reworded, false = absent_row("A man riding a horse on a beach.", spec)
    assert true == "A man riding a horse on a beach, with a person with no dog."
    assert false == "A man riding a horse on a beach, with a dog with no person."
    assert check_absent_triple("A man riding a horse on a beach.", ["person", "horse"], "dog", true, reworded, false) == []


# --- the checks of absent-object rows --------------------------------------------------------------

@pytest.mark.parametrize("caption, paraphrase, negation, reason", [
    ("A man riding a horse, with no horse.", "A man is riding, without a dog.", "A man riding a horse, with a dog.",
     "absent_denies_present"),
    ("A man riding a horse.", "A man is riding a horse.", "A man riding a horse and a dog.", "absent_not_denied"),
    ("A man riding a horse, with no dog.", "A man is riding a horse and no horse.", "A man riding a horse, with a dog.",
     "absent_denies_present"),
    ("A man riding a horse, with no dog.", "A man is riding a horse.", "A man riding a horse, with a dog.",
     "paraphrase_polarity"),
    ("A man riding a horse, with no dog.", "A man is riding a horse, but never at night.",
     "A man riding a horse, with a dog.", "absent_not_denied"),
    ("A man riding a horse, with no dog.", "Without a dog, a man rides a horse.", "A man riding a horse, with no dog or cat.",
     "negation_keeps_truth"),
    ("A man riding a horse, with no dog.", "Without a dog, a man rides a horse.", "A man riding a horse, with no dog.",
     "negation_copy"),
    ("Sunset over the mountains and no dog.", "Without a dog, sunset over mountains.", "Sunset and a dog.",
     "absent_caption_unrelated"),
])
def test_absent_checks_catch_rows_that_are_wrong(caption, paraphrase, negation, reason):
    reasons = check_absent_triple("A man riding a horse.", ["person", "horse"], "dog", caption, paraphrase, negation)
    assert reason in reasons


# --- the plan: which object is absent, which kind, which wording ---------------------------------

def _vocabulary(rows) -> ObjectVocabulary:
    vocabulary = ObjectVocabulary()
    for labels in rows:
        vocabulary.add(labels)
    return vocabulary.freeze()


def test_plan_is_seeded_by_row_and_never_names_a_shown_or_mentioned_object():
    vocabulary = _vocabulary([["plate", "fork", "knife"], ["plate", "fork"], ["dog", "frisbee"], ["giraffe"]])
    first = plan_absent("r1", "A plate of food next to a knife", ["plate"], 3, vocabulary, seed=0)
    assert first == plan_absent("r1", "A plate of food next to a knife", ["plate"], 3, vocabulary, seed=0)
    assert len(first) == 3 and len({spec.absent for spec in first}) == 3
    assert all(spec.absent not in ("plate", "knife") for spec in first)  # shown, or named by the caption
    assert [s.index for s in first] == [1, 2, 3]
    others = [plan_absent(f"r{i}", "A plate of food", ["plate"], 1, vocabulary, seed=0)[0] for i in range(200)]
    assert {s.kind for s in others} == set(KINDS) and {s.position for s in others} == set(POSITIONS)
    assert {s.style for s in others} == set(STYLES)
    assert plan_absent("r1", "A plate of food next to a knife", ["plate"], 3, vocabulary, seed=1) != first


def test_plan_prefers_objects_seen_with_the_shown_ones():
    rows = [["plate", "fork"]] * 50 + [["giraffe", "tree"]] * 50 + [["car"]] * 400
    vocabulary = _vocabulary(rows)
    chosen = Counter(plan_absent(f"r{i}", "A plate on a table", ["plate"], 1, vocabulary, seed=0)[0].absent
                     for i in range(400))
    assert chosen["fork"] > 250  # PLAUSIBLE_SHARE (0.8) of the rows, and some of the rest
    assert chosen["car"] > chosen["giraffe"]  # the rest by frequency


def test_plan_gives_fewer_rows_when_the_vocabulary_runs_out():
    vocabulary = _vocabulary([["cat", "sofa"], ["dog"]])
    assert [s.absent for s in plan_absent("r", "A cat on a sofa", ["cat", "sofa"], 3, vocabulary, 0)] == ["dog"]
    assert plan_absent("r", "A cat", [], 2, vocabulary, 0) == []


# --- generate end to end ---------------------------------------------------------------------------

def _captions(path: Path, rows: int = 60) -> Path:
    subjects = [("A man riding a horse on a beach", ["person", "horse"]),
                ("A plate with a fork and a knife", ["plate", "fork", "knife"]),
                ("Two dogs play with a frisbee in a park", ["dog", "frisbee"]),
                ("A cat sleeping on a sofa", ["cat", "couch"]),
                ("A red bus parked on a street", ["bus", "car", "person"]),
                ("A sunset over the sea", [])]
    data = [subjects[i % len(subjects)] for i in range(rows)]
    pq.write_table(pa.table({
        "id": [f"img{i}" for i in range(rows)],
        "image": [f"images/{i}.jpg" for i in range(rows)],
        "caption": [f"{caption} number {i}." for i, (caption, _) in enumerate(data)],
        "objects": pa.array([labels for _, labels in data], pa.list_(pa.string())),
        "source": ["web"] * rows,
    }), path)
    return path


def test_generate_writes_absent_rows_with_derived_ids_and_the_source_columns(tmp_path):
    captions = _captions(tmp_path / "caps.parquet")
    output = tmp_path / "out" / "t.parquet"
    summary = generate(GenerateConfig(input=captions, output=output, absent_objects=2, chunk_size=7, quiet=True))
    out, rej = pl.read_parquet(output), pl.read_parquet(summary.rejects)
    ids = out["id"].to_list() + rej["id"].to_list()
    assert len(ids) == len(set(ids))
    with_objects = [f"img{i}" for i in range(60) if i % 6 != 5]
    expected = {f"img{i}" for i in range(60)} | {f"{i}#absent-{k}" for i in with_objects for k in (1, 2)}
    assert set(ids) == expected
    absent = out.filter(pl.col("kind") != "caption")
    assert absent.height == summary.run["counts"]["absent_accepted"] == 100
    assert set(absent["kind"]) == {"absent-assert", "absent-swap"}
    for row in absent.iter_rows(named=True):
        source = out.filter(pl.col("id") == row["source_id"]).row(0, named=True)
        assert row["id"].startswith(row["source_id"] + "#absent-")
        assert (row["image"], row["objects"], row["source"]) == (source["image"], source["objects"], source["source"])
        assert row["absent_object"] not in row["objects"]
        reading = read_objects(row["caption"], [*row["objects"], row["absent_object"]])
        assert reading[row["absent_object"]].denied and not any(reading[o].denied for o in row["objects"])
        assert row["prompt_name"] == "absent"
    caption_rows = out.filter(pl.col("kind") == "caption")
    assert caption_rows["source_id"].null_count() == caption_rows.height and caption_rows["prompt_name"][0] == "default"
    assert "Absent-object rows" in summary.card.read_text()
    assert runner.invoke(app, ["validate", str(output)]).exit_code == 0


def test_chunking_does_not_change_the_rows(tmp_path):
    captions = _captions(tmp_path / "caps.parquet", 30)
    small = generate(GenerateConfig(input=captions, output=tmp_path / "a.parquet", absent_objects=1, chunk_size=4,
                                    quiet=True))
    whole = generate(GenerateConfig(input=captions, output=tmp_path / "b.parquet", absent_objects=1, quiet=True))
    assert pq.read_table(small.output).equals(pq.read_table(whole.output))


def test_a_killed_run_with_absent_rows_resumes_to_every_id_exactly_once(tmp_path):
    captions = _captions(tmp_path / "caps.parquet", 3000)
    output = tmp_path / "out" / "t.parquet"

    def command(out: Path) -> list[str]:
        return [sys.executable, "-c", "from triplegen.cli import main; main()", "generate", str(captions), "-o",
                str(out), "--absent-objects", "1", "--chunk-size", "100", "--quiet"]

    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    parts = output.with_name(output.name + ".parts")
    process = subprocess.Popen(command(output), env=env)
    deadline = time.monotonic() + 60
    while len(list(parts.glob("*.done"))) < 5 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not output.exists() and len(list(parts.glob("*.done"))) >= 5
    assert subprocess.run(command(output), env=env).returncode == 0
    ids = pq.read_table(output).column("id").to_pylist() + pq.read_table(output.with_name("t.rejects.parquet")).column("id").to_pylist()
    assert len(ids) == len(set(ids)) == 3000 + 2500  # every row, and one absent row per row with objects
    clean = tmp_path / "clean" / "t.parquet"
    assert subprocess.run(command(clean), env=env).returncode == 0
    assert pq.read_table(output).equals(pq.read_table(clean))


def test_merge_of_shards_accepts_the_derived_ids(tmp_path):
    captions = _captions(tmp_path / "caps.parquet", 40)
    for index in range(2):
        generate(GenerateConfig(input=captions, output=tmp_path / f"part{index}.parquet", absent_objects=1,
                                shard=f"{index}/2", quiet=True))
    result = runner.invoke(app, ["merge", str(tmp_path / "part0.parquet"), str(tmp_path / "part1.parquet"),
                                 "-o", str(tmp_path / "all.parquet"), "--input", str(captions)])
    assert result.exit_code == 0, result.output
    assert pl.read_parquet(tmp_path / "all.parquet").filter(pl.col("kind") != "caption").height > 0


def test_validate_finds_an_edited_absent_row_that_denies_a_shown_object(tmp_path):
    captions = _captions(tmp_path / "caps.parquet", 12)
    output = generate(GenerateConfig(input=captions, output=tmp_path / "t.parquet", absent_objects=1, quiet=True)).output
    table = pl.read_parquet(output)
    edited = table.with_columns(
        pl.when(pl.col("id") == "img0#absent-1").then(pl.lit("A man riding a horse on a beach, with no horse."))
        .otherwise(pl.col("caption")).alias("caption"))
    edited.write_parquet(tmp_path / "edited.parquet")
    result = runner.invoke(app, ["validate", str(tmp_path / "edited.parquet")])
    assert result.exit_code == 1 and "absent_denies_present" in result.output


def test_csv_input_with_comma_separated_labels(tmp_path):
    path = tmp_path / "caps.csv"
    path.write_text('id,caption,objects\na,A cat on a sofa,"cat, couch"\nb,A dog in a park,"dog, frisbee"\n')
    summary = generate(GenerateConfig(input=path, output=tmp_path / "t.parquet", absent_objects=1, quiet=True))
    assert summary.run["counts"]["absent_planned"] == 2


@pytest.mark.parametrize("setup, args, message", [
    ("no-objects", [], "has no column 'objects' (--objects-col)"),
    ("one-label", [], "at least two distinct object labels"),
    ("suffix-id", [], "contains '#absent-'"),
    ("ok", ["--absent-prompt", "default"], "it needs task: absent"),
    ("ok", ["--objects-col", "labels"], "has no column 'labels'"),
])
def test_bad_absent_object_inputs_are_one_line_errors(tmp_path, setup, args, message):
    rows = {"no-objects": {"caption": ["A cat"]},
            "one-label": {"caption": ["A cat", "A cat again"], "objects": [["cat"], ["cat"]]},
            "suffix-id": {"id": ["x#absent-1"], "caption": ["A cat"], "objects": [["cat", "dog"]]},
            "ok": {"caption": ["A cat"], "objects": [["cat", "dog"]]}}[setup]
    pl.DataFrame(rows).write_parquet(tmp_path / "caps.parquet")
    result = runner.invoke(app, ["generate", str(tmp_path / "caps.parquet"), "-o", str(tmp_path / "t.parquet"),
                                 "--absent-objects", "1", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "t.parquet").exists()


def test_synthetic_benchmark_file_never_denies_a_listed_object(tmp_path):
    """The whole training file of the synthetic negation benchmark, through the rules."""
    from semclip_train.synthetic_data import write_benchmark

    captions = write_benchmark(tmp_path, train_count=20_000, seed=100, splits=("captions",))["captions"]
    output = generate(GenerateConfig(input=captions, output=tmp_path / "t.parquet", absent_objects=1,
                                     quiet=True)).output
    table = pl.read_parquet(output, columns=["caption", "negation", "kind", "objects", "absent_object"])
    absent = table.filter(pl.col("kind") != "caption")
    assert absent.height > 19_000
    for caption, negation, objects, missing in absent.select("caption", "negation", "objects", "absent_object").iter_rows():
        reading = read_objects(caption, [*objects, missing])
        assert reading[missing].denied and not any(reading[label].denied for label in objects), caption
        false = read_objects(negation, [*objects, missing])
        assert false[missing].asserted or any(false[label].denied for label in objects), negation
