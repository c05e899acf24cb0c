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

from triplegen.checks.lexical import check_absent_triple
from triplegen.cli import app
from triplegen.config import GenerateConfig
from triplegen.errors import TripleGenError
from triplegen.objects import ObjectVocabulary, parse_labels
from triplegen.io.parquet_files import read_run_metadata
from triplegen.rules.absent import AbsentSpec, absent_row, plan_absent
from triplegen.rules.denials import PAIR_WORDINGS, WORDINGS, caption_form, indefinite, swap_site, wordings_for
from triplegen.rules.object_names import ObjectLexicon
from triplegen.rules.scope import read_objects
from triplegen.orchestration.run import generate

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


# --- which objects a sentence denies -------------------------------------------------------------

@pytest.mark.parametrize("text, asserted, denied", [
    ("a red circle and no blue square", {"red circle"}, {"blue square"}),
    ("no red circle and a blue square", {"blue square"}, {"red circle"}),
    ("a red circle without a blue square", {"red circle"}, {"blue square"}),
    ("There is no dog on the sofa next to the cat.", {"couch", "cat"}, {"dog"}),
    ("A man riding a horse on a beach, with no dog in sight.", {"person", "horse"}, {"dog"}),
    ("There is no dog in this picture of a man riding a horse.", {"person", "horse"}, {"dog"}),
    ("With no bed around, a cat sleeping on a sofa.", {"cat", "couch"}, {"bed"}),
    ("The man is not holding a dog on a sofa", {"person"}, {"dog", "couch"}),  # a verb's "not": to the clause end
    ("no dogs or cats in the room", set(), {"dog", "cat"}),
    ("a hot dog and no dog", {"hot dog"}, {"dog"}),
    ("a teddy bear on a bed, but no bear", {"teddy bear", "bed"}, {"bear"}),
    ("Two tennis players and no skis.", {"person"}, {"skis"}),
    ("A plane on the runway and no car in sight", {"airplane"}, {"car"}),
    ("a no parking sign next to a car", {"car"}, set()),  # sign text denies nothing
    ("A kitchen that lacks an oven but has a sink", {"sink"}, {"oven"}),
])
def test_read_objects_finds_the_scope_of_each_negation(text, asserted, denied):
    labels = sorted(asserted | denied | {"giraffe"})
    reading = read_objects(text, labels)
    assert {label for label in labels if reading[label].asserted} == asserted
    assert {label for label in labels if reading[label].denied} == denied
    assert not reading["giraffe"].mentioned


def test_indefinite_articles():
    assert [indefinite(x) for x in ("dog", "apple", "umbrella", "unicorn", "hour glass", "skis", "TV", "SUV")] == [
        "a dog", "an apple", "an umbrella", "a unicorn", "an hour glass", "skis", "a TV", "an SUV"]


def test_parse_labels_from_lists_and_text():
    assert parse_labels(["Dog", " dog ", "Hot  Dog"]) == ["dog", "hot dog"]
    assert parse_labels('["cat", "sofa"]') == ["cat", "sofa"]
    assert parse_labels("cat, sofa,") == ["cat", "sofa"]
    assert parse_labels(None) == [] and parse_labels("") == [] and parse_labels([]) == []


@pytest.mark.parametrize("value", [["dog", None], ["dog", " "], '["dog", ""]', ["no"], ["a|b"], "cat|dog"])
def test_parse_labels_refuses_what_cannot_name_an_object(value):
    """An empty item in a list is a broken export, not "no objects" (test_input_validation.py: the CLI)."""
    with pytest.raises(TripleGenError, match="object label"):
        parse_labels(value)


# --- the caption's form and the wordings that fit it ----------------------------------------------

@pytest.mark.parametrize("caption, form", [
    ("A man riding a horse on a beach.", "phrase"),
    ("a plate of food on a wooden table", "phrase"),
    ("A man rides a horse on the beach.", "sentence"),
    ("Two cats are sleeping on a bed", "sentence"),
    ("A street with no cars.", "negated"),
    ("Why would the cow be grazing in front of those homes?", "question"),
    ("Is this a cat", "question"),
    ("Look at this adorable puppy.", "imperative"),
    ("A dog. It runs on the beach.", "unparsed"),
])
def test_caption_form(caption, form):
    assert caption_form(caption) == form


def test_wordings_fit_the_form():
    assert set(wordings_for("negated", "a street with no cars")) == {"either", "and no either"}
    assert "in this picture" in wordings_for("phrase", "a cat on a sofa")
    assert "in this picture" not in wordings_for("phrase", "close up of a cat on a sofa")
    assert "but no" not in wordings_for("sentence", "a cat sleeps on a sofa")
    assert {WORDINGS[w].position for w in wordings_for("phrase", "a cat")} == {"end", "start"}


# --- the rules writer ------------------------------------------------------------------------------

CAPTIONS = [  # (caption, labels of its image)
    ("A man riding a horse on a beach.", ["person", "horse"]),
    ("a red circle above a blue square", ["red circle", "blue square"]),
    ("Two dogs play in the snow", ["dog"]),
    ("A kitchen with a sink and a refrigerator.", ["sink", "refrigerator", "oven"]),
    ("Skiers wait at the top of a slope.", ["person", "skis"]),
    ("A room with no people in it.", ["chair", "tv"]),  # already negated
    ("A CAT SLEEPING ON A SOFA", ["cat", "couch"]),
]


@pytest.mark.parametrize("caption, labels", CAPTIONS)
def test_every_fitting_wording_gives_an_assert_row_the_checks_accept(caption, labels):
    form = caption_form(caption)
    body = caption.rstrip(".")
    seen = set()
    for style, other in itertools.product(wordings_for(form, body), wordings_for(form, body)):
        if style == other and len(wordings_for(form, body)) > 1:
            continue
        spec = AbsentSpec(1, tuple(labels), "umbrella", "absent-assert", labels[0], WORDINGS[style].position, style,
                          other)
        true, reworded, false = absent_row(caption, spec)
        assert check_absent_triple(caption, labels, "umbrella", true, reworded, false) == [], (spec, true, reworded, false)
        assert read_objects(false, [*labels, "umbrella"])["umbrella"].asserted
        assert true[:1].isupper() == caption[:1].isupper() and true.isupper() == caption.isupper()
        assert true.endswith(".") == caption.endswith(".")
        seen.add(true)
    assert len(seen) == len(wordings_for(form, body))  # each wording reads differently


@pytest.mark.parametrize("caption, objects, absent, true, false", [
    ("A cat sleeping on a sofa.", ["cat", "couch"], "bed",
     "A cat sleeping on a sofa, with no bed in sight.", "A cat sleeping on a bed, with no sofa in sight."),
    ("Two dogs lie on a bed", ["dog", "bed"], "cat",
     "Two dogs lie on a bed, with no cat in sight", "Two cats lie on a bed, with no dog in sight"),
    ("A banana on a table.", ["banana", "dining table"], "orange",
     "A banana on a table, with no orange in sight.", "An orange on a table, with no banana in sight."),
    ("A bowl of broccoli with sauce", ["bowl", "broccoli"], "carrot",
     "A bowl of broccoli with sauce, with no carrot in sight", "A bowl of carrots with sauce, with no broccoli in sight"),
    ("A herd of zebras near trees.", ["zebra"], "giraffe",
     "A herd of zebras near trees, with no giraffe in sight.", "A herd of giraffes near trees, with no zebra in sight."),
])
def test_swap_puts_an_object_of_the_same_group_in_place_with_number_and_article(caption, objects, absent, true, false):
    lexicon = ObjectLexicon.builtin()
    swap = swap_site(caption.rstrip("."), objects, absent, lexicon)
    spec = AbsentSpec(1, tuple(objects), absent, "absent-swap", swap.present, "end", "in sight", "around",
                      absent_word=lexicon.name(absent).word, shown_word=swap.shown_word, swapped=swap.body)
    row = absent_row(caption, spec)
    assert (row[0], row[2]) == (true, false)
    assert check_absent_triple(caption, objects, absent, *row) == []


def test_a_swap_can_open_on_the_denial():
    """The one wording that opens a sentence on its "no": a model that never saw a sentence open on a
    denial reads "No dog in sight, a cat ..." by where the objects sit."""
    lexicon = ObjectLexicon.builtin()
    caption, objects = "Two dogs lie on a bed.", ["dog", "bed"]
    swap = swap_site(caption.rstrip("."), objects, "cat", lexicon)
    spec = AbsentSpec(1, tuple(objects), "cat", "absent-swap", swap.present, "start", "no in sight", "with no",
                      absent_word="cat", shown_word=swap.shown_word, swapped=swap.body)
    true, reworded, false = absent_row(caption, spec)
    assert (true, false) == ("No cat in sight, two dogs lie on a bed.", "No dog in sight, two cats lie on a bed.")
    assert check_absent_triple(caption, objects, "cat", true, reworded, false) == []
    assert "no in sight" not in wordings_for("sentence", caption, asserting=True)  # "A cat in sight, ..." is no English


@pytest.mark.parametrize("caption, objects, absent", [
    ("A game of frisbee on a bench", ["frisbee", "bench"], "backpack"),  # no object of the backpack's group
    ("A young man holding a handbag", ["person", "handbag"], "dog"),  # a person never swaps
    ("A book shelf next to a chair", ["book", "chair"], "clock"),  # "book" is a modifier here
    ("A dog bed next to a couch", ["dog", "couch"], "cat"),
    ("A group of women operating a car wash", ["person", "car"], "bus"),
    ("A dog chasing another dog", ["dog"], "cat"),  # named twice: one would stay
    ("Two tennis players on a court", ["person"], "dog"),
    ("A man with skis on a slope", ["person", "skis"], "snowboard"),  # "with skis" -> "with snowboard" has no article
    ("A street with no cars", ["car"], "bus"),  # the mention is already denied
    ("A coffee mug on a table", ["cup", "dining table"], "bottle"),  # "coffee wine glass", "wedding donut"
    ("A wedding cake with candles", ["cake"], "donut"),
])
def test_no_swap_where_it_would_not_make_sense(caption, objects, absent):
    assert swap_site(caption, objects, absent, ObjectLexicon.builtin()) is None


def test_swap_never_leaves_the_denied_object_named():
    lexicon = ObjectLexicon.builtin()
    swap = swap_site("A man riding a bike next to a bicycle lane", ["bicycle"], "motorcycle", lexicon)
    assert swap is None  # "bike" and "bicycle" both name it


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
    vocabulary = _vocabulary([["bowl", "fork", "knife"], ["bowl", "fork"], ["bowl", "cup", "spoon"], ["dog", "frisbee"],
                              ["giraffe"]])
    first = plan_absent("r1", "A bowl of food next to a knife", ["bowl"], 3, vocabulary, seed=0)
    assert first == plan_absent("r1", "A bowl of food next to a knife", ["bowl"], 3, vocabulary, seed=0)
    assert len(first) == 3 and len({spec.absent for spec in first}) == 3
    assert all(spec.absent not in ("bowl", "knife") for spec in first)  # shown, or named by the caption
    assert [s.index for s in first] == [1, 2, 3]
    others = [plan_absent(f"r{i}", "A bowl of food", ["bowl"], 1, vocabulary, seed=0)[0] for i in range(200)]
    assert {s.kind for s in others} == {"absent-swap", "absent-assert"} and {s.position for s in others} == {"end", "start"}
    assert {s.style for s in others} == set(wordings_for("phrase", "a bowl of food"))
    assert all(s.swapped == "A cup of food" for s in others if s.kind == "absent-swap")
    assert plan_absent("r1", "A bowl of food next to a knife", ["bowl"], 3, vocabulary, seed=1) != first


def test_plan_prefers_objects_seen_with_the_shown_ones():
    rows = [["plate", "fork"]] * 50 + [["giraffe", "tree"]] * 50 + [["car"]] * 400
    vocabulary = _vocabulary(rows)
    chosen = Counter(plan_absent(f"r{i}", "A plate on a table", ["plate"], 1, vocabulary, seed=0)[0].absent
                     for i in range(400))
    assert chosen == {"fork": 400}  # never a label that was not seen with the plate, however frequent


def test_plan_gives_fewer_rows_when_the_vocabulary_runs_out_and_says_why():
    vocabulary = _vocabulary([["cat", "couch", "dog"], ["dog"]])
    notes = Counter()
    assert [s.absent for s in plan_absent("r", "A cat on a sofa", ["cat", "couch"], 3, vocabulary, 0, notes)] == ["dog"]
    assert notes["no_absent_object"] == 2
    assert plan_absent("r", "A cat", [], 2, vocabulary, 0) == []
    assert plan_absent("r", "Is that a cat on a sofa?", ["cat", "couch"], 2, vocabulary, 0, notes) == []
    assert notes["question"] == 2


# --- generate end to end ---------------------------------------------------------------------------

def _captions(path: Path, rows: int = 60) -> Path:
    subjects = [("A man riding a horse on a beach", ["person", "horse"]),
                ("A plate with a fork and a knife", ["plate", "fork", "knife"]),
                ("Two dogs play with a frisbee in a park", ["dog", "frisbee"]),
                ("A cat sleeping on a sofa", ["cat", "couch"]),
                ("A red bus parked on a street", ["bus", "car", "person"]),
                ("A sunset over the sea", [])]
    background = ["bird", "bench", "clock", "potted plant"]  # met in any scene: plausible absences for each
    data = [(caption, labels + [b for bit, b in enumerate(background) if i // 6 % 15 >> bit & 1] if labels else [])
            for i, (caption, labels) in enumerate(subjects[i % len(subjects)] for i in range(rows))]
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
    parts = [read_run_metadata(tmp_path / f"part{index}.parquet")["absent_notes"] for index in range(2)]
    merged = read_run_metadata(tmp_path / "all.parquet")["absent_notes"]
    assert merged == dict(Counter(parts[0]) + Counter(parts[1])) and merged


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
    path.write_text('id,caption,objects\na,A cat on a sofa,"cat, couch"\nb,A dog on a sofa,"dog, couch"\n')
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
    from semclip_train.evaluation.synthetic_data import write_benchmark

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


def test_rows_not_written_as_drawn_are_counted_in_the_card(tmp_path):
    rows = [("Why is the cat on the sofa?", ["cat", "couch"]), ("Look at this cat on a sofa.", ["cat", "couch"]),
            ("A cat on a sofa. It sleeps.", ["cat", "couch"]), ("A dog sleeping on a sofa", ["dog", "couch"]),
            ("A cat sleeping on a bed", ["cat", "bed"])] * 4
    pl.DataFrame({"id": [f"r{i}" for i in range(len(rows))], "caption": [c for c, _ in rows],
                  "objects": [o for _, o in rows]}).write_parquet(tmp_path / "caps.parquet")
    summary = generate(GenerateConfig(input=tmp_path / "caps.parquet", output=tmp_path / "out", absent_objects=1,
                                      quiet=True))
    notes = summary.run["absent_notes"]
    assert (notes["question"], notes["imperative"], notes["unparsed"]) == (4, 4, 4)
    card = summary.card.read_text()
    assert "Not written as drawn" in card and "`question`" in card and "the caption is a question" in card
    written = pl.read_parquet(summary.output).filter(pl.col("kind") != "caption")
    assert set(written["source_id"].map_elements(lambda i: int(i[1:]) % 5, return_dtype=pl.Int64)) <= {3, 4}


def test_a_swap_whose_shown_object_is_unnamed_moves_the_no_inside_the_denial():
    vocabulary = _vocabulary([["person", "horse", "dog", "cat"], ["dog", "cat", "horse"]])
    specs = [plan_absent(f"r{i}", "A man riding a horse on a beach.", ["person", "horse", "dog"], 1, vocabulary, 0)[0]
             for i in range(60)]
    pairs = [s for s in specs if s.style in PAIR_WORDINGS]
    assert pairs and all(s.kind == "absent-swap" and s.present == "dog" and s.absent == "cat" for s in pairs)
    true, reworded, false = absent_row("A man riding a horse on a beach.", pairs[0])
    assert {true, false} == {"A man riding a horse on a beach, with a dog but no cat in sight.",
                             "A man riding a horse on a beach, with a cat but no dog in sight."} or \
        {true, false} == {"With a dog but no cat around, a man riding a horse on a beach.",
                          "With a cat but no dog around, a man riding a horse on a beach."}
    assert "but no cat" in true and "but no dog" in false
    assert check_absent_triple("A man riding a horse on a beach.", ["person", "horse", "dog"], "cat", true, reworded,
                               false) == []


def test_an_object_the_caption_implies_or_names_inside_a_compound_is_never_denied():
    vocabulary = _vocabulary([["person", "skis", "snowboard"], ["person", "skis"], ["dog", "hot dog", "cat"]])
    for i in range(50):
        for spec in plan_absent(f"r{i}", "A man skiing down a slope", ["person"], 2, vocabulary, 0):
            assert spec.absent != "skis"
        for spec in plan_absent(f"r{i}", "A hot dog on a plate", ["hot dog"], 2, vocabulary, 0):
            assert spec.absent != "dog"
