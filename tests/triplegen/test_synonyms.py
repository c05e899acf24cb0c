"""Object mentions that know English: synonyms, kinds, plurals and compounds, built in and from a file."""

from __future__ import annotations

import json

import polars as pl
import pytest
from typer.testing import CliRunner

from triplegen.cli import app
from triplegen.errors import TripleGenError
from triplegen.rules.object_names import ObjectLexicon
from triplegen.rules.scope import mentions, read_objects

runner = CliRunner()


@pytest.mark.parametrize("text, label", [
    ("two tennis players on a court", "person"),
    ("A skier going down a slope", "person"),
    ("a crowd watching a game", "person"),
    ("a little girl with her mother", "person"),
    ("a plane on the runway", "airplane"),
    ("Jets flying in formation", "airplane"),
    ("a table with plates of food", "dining table"),
    ("a television on a stand", "tv"),
    ("A cat on a sofa", "couch"),
    ("two puppies on a rug", "dog"),
    ("three buses parked in a row", "bus"),
    ("knives on a board", "knife"),
    ("sheep grazing", "sheep"),
    ("a fire truck on the street", "truck"),
    ("a man holding a racquet", "tennis racket"),
])
def test_built_in_table_knows_synonyms_kinds_and_plurals(text, label):
    assert mentions(text, label)


@pytest.mark.parametrize("text, label", [
    ("a hot dog with mustard", "dog"),
    ("a teddy bear on a bed", "bear"),
    ("a book shelf in a room", "book"),
    ("a toilet bowl in a bathroom", "bowl"),
    ("a plane in the sky", "person"),
    ("an orange juice carton", "orange"),
])
def test_compounds_that_name_something_else_are_not_mentions(text, label):
    assert not mentions(text, label)


def test_longer_mentions_win_in_the_scope_reader():
    reading = read_objects("a hot dog and no dog", ["hot dog", "dog"])
    assert reading["hot dog"].asserted and reading["dog"].denied and not reading["dog"].asserted


def test_labels_outside_the_table_are_named_by_their_own_words_and_share_one_group():
    lexicon = ObjectLexicon.builtin()
    assert mentions("two red circles", "red circle") and lexicon.share_group("red circle", "blue square")
    assert not lexicon.share_group("cat", "fork")


@pytest.mark.parametrize("suffix, text", [
    (".yaml", "red circle:\n  words: [red ring]\n  groups: [shape]\nblue square: [blue box]\ndog: [mutt]\n"),
    (".json", json.dumps({"red circle": {"words": ["red ring"], "groups": ["shape"]}, "blue square": ["blue box"],
                          "dog": ["mutt"]})),
])
def test_a_users_file_extends_and_replaces_the_table(tmp_path, suffix, text):
    path = tmp_path / f"synonyms{suffix}"
    path.write_text(text)
    lexicon = ObjectLexicon.load(path)
    assert lexicon.mentions("two red rings", "red circle") and lexicon.mentions("a blue box", "blue square")
    assert lexicon.name("red circle").groups == ("shape",) and not lexicon.share_group("red circle", "blue square")
    assert lexicon.mentions("a mutt", "dog") and not lexicon.mentions("a puppy", "dog")  # replaced, not merged
    assert lexicon.mentions("a sofa", "couch")  # the rest of the table stays
    assert set(lexicon.fingerprint()) == {"red circle", "blue square", "dog"}


@pytest.mark.parametrize("text, message", [
    ("[1, 2", "not valid YAML or JSON"),
    ("- a\n- b\n", "expected a mapping of label -> words"),
    ("dog: {words: [mutt], colour: brown}\n", "unknown key 'colour'"),
    ("dog: [3]\n", "words must be a list of words"),
])
def test_bad_synonym_files_are_one_line_errors(tmp_path, text, message):
    path = tmp_path / "synonyms.yaml"
    path.write_text(text)
    with pytest.raises(TripleGenError, match=message):
        ObjectLexicon.load(path)


def _captions(path):
    pl.DataFrame({"id": [f"r{i}" for i in range(12)],
                  "caption": ["a red ring above a blue box", "a blue box beside a green tri"] * 6,
                  "objects": [["red circle", "blue square"], ["blue square", "green triangle"]] * 6}).write_parquet(path)
    return path


def test_generate_reads_object_mentions_through_the_users_file(tmp_path):
    captions = _captions(tmp_path / "caps.parquet")
    synonyms = tmp_path / "synonyms.yaml"
    synonyms.write_text("red circle: {words: [red ring], groups: [shape]}\nblue square: {words: [blue box], "
                        "groups: [shape]}\ngreen triangle: {words: [green tri], groups: [shape]}\n")
    result = runner.invoke(app, ["generate", str(captions), "-o", str(tmp_path / "out"), "--absent-objects", "1",
                                 "--object-synonyms", str(synonyms), "--quiet"])
    assert result.exit_code == 0, result.output
    rows = pl.read_parquet(tmp_path / "out" / "triples.parquet").filter(pl.col("kind") != "caption")
    assert rows.height == 12
    swaps = rows.filter(pl.col("kind") == "absent-swap")
    assert swaps.height > 0  # "red ring" and "blue box" are mentions of shapes that can swap
    for row in swaps.iter_rows(named=True):
        assert "green tri" in row["negation"] or "red ring" in row["negation"], row
    # a changed table is a changed run: resuming it is refused
    synonyms.write_text("red circle: [red ring]\n")
    again = runner.invoke(app, ["generate", str(captions), "-o", str(tmp_path / "out"), "--absent-objects", "1",
                                "--object-synonyms", str(synonyms)])
    assert again.exit_code == 2 and "Traceback" not in again.output
    # validate reads mentions through the same file
    synonyms.write_text("red circle: {words: [red ring], groups: [shape]}\nblue square: {words: [blue box], "
                        "groups: [shape]}\ngreen triangle: {words: [green tri], groups: [shape]}\n")
    checked = runner.invoke(app, ["validate", str(tmp_path / "out"), "--object-synonyms", str(synonyms)])
    assert checked.exit_code == 0, checked.output


@pytest.mark.parametrize("args, message", [
    (["--absent-objects", "1", "--object-synonyms", "missing.yaml"], "cannot read it"),
    (["--object-synonyms", "missing.yaml"], "add --absent-objects K"),
])
def test_bad_object_synonyms_options_are_one_line_errors(tmp_path, args, message):
    captions = _captions(tmp_path / "caps.parquet")
    result = runner.invoke(app, ["generate", str(captions), "-o", str(tmp_path / "out"), *args])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("name, text", [
    ("syn.yaml", "cat: [kitty]\ndog: [puppy]\ncat: [tabby]\n"),
    ("syn.json", '{"cat": ["kitty"], "cat": ["tabby"]}'),
])
def test_a_label_given_twice_in_object_synonyms_is_one_line_naming_it(tmp_path, name, text):
    """YAML and JSON keep the last of two equal keys silently; one label's words would be lost."""
    captions = _captions(tmp_path / "caps.parquet")
    synonyms = tmp_path / name
    synonyms.write_text(text)
    result = runner.invoke(app, ["generate", str(captions), "-o", str(tmp_path / "out"), "--absent-objects", "1",
                                 "--object-synonyms", str(synonyms)])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert "key 'cat' is given twice" in result.output
    assert not (tmp_path / "out").exists()
