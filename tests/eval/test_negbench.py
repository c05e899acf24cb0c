"""NegBench multiple choice: the metric by hand, the reader on CSVs written here in NegBench's format,
every bad input as one line through the CLI, and the command end to end on a tiny random CLIP."""

from __future__ import annotations

import json
import math
import os

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from semclip_train.errors import SemClipError  # noqa: E402
from semclip_train.evaluation.eval_cli import app  # noqa: E402
from semclip_train.evaluation.metrics import multiple_choice, option_cosines  # noqa: E402
from semclip_train.evaluation.negbench import evaluate_negbench, load_negbench  # noqa: E402
from semclip_train.evaluation.synthetic import generate_items  # noqa: E402

runner = CliRunner()
HEADER = "correct_answer,caption_0,caption_1,caption_2,caption_3,correct_answer_template,image_path\n"


def question(template: str, a: str, b: str, n: str) -> list[str]:
    """One COCO/VOC question as NegBench builds it: the true caption first, then the three wrong ones."""
    true = {
        "positive": f"This image features {a} and {b}",
        "negative": f"This image does not feature {n}",
        "hybrid": f"This image features {b}, but not {n}",
    }[template]
    return [true, f"This image features {n}, but not {b}", f"This image features {n}", f"This image does not feature {a}"]


def csv_field(text: str) -> str:
    return f'"{text}"' if "," in text or '"' in text else text


def write_mcq(path, image_paths, templates=("positive", "negative", "hybrid")):
    lines = [HEADER]
    for k, image in enumerate(image_paths):
        template = templates[k % len(templates)]
        captions = question(template, "a dog", "a ball", "a cat")
        lines.append(",".join(["0", *map(csv_field, captions), template, image]) + "\n")
    path.write_text("".join(lines))
    return path


def write_png(path, colour=(200, 30, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), colour).save(path)
    return path


# The metric.

def test_multiple_choice_by_hand_where_a_tie_is_a_miss():
    image = [[1.0, 0.0], [1.0, 0.0], [0.0, 2.0]]
    options = [
        [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]],  # cos 1, 0, 0.707: correct 0 wins
        [[3.0, 3.0], [1.0, 0.0], [1.0, 1.0]],  # cos 0.707, 1, 0.707: wrong option 1 wins
        [[1.0, 1.0], [2.0, 2.0], [1.0, 0.0]],  # cos 0.707, 0.707, 0: correct 1 tied with option 0
    ]
    half = 1 / math.sqrt(2)
    assert option_cosines(image, options).flatten().tolist() == pytest.approx([1, 0, half, half, 1, half, half, half, 0])
    accuracy, predicted = multiple_choice(image, options, [0, 0, 1])
    assert accuracy == pytest.approx(1 / 3)
    assert predicted.tolist() == [0, 1, 0]  # the tie is charged to the wrong option it tied with
    with pytest.raises(SemClipError, match="options must be"):
        multiple_choice(image, [[1.0, 0.0]] * 3, [0, 0, 0])
    with pytest.raises(SemClipError, match=r"must lie in 0\.\.2"):
        multiple_choice(image, options, [0, 3, 0])


class PrefersNoNot:
    """A stand-in for a model, used at the metric level only: every image embeds alike, a caption
    without the word "not" beats any caption with it, and among equals the longer caption wins."""

    def images(self, refs, dataset=None):
        return torch.tensor([[1.0, 0.0]] * len(refs))

    def texts(self, texts, dataset=None):
        # cos([1, 0], [s, 1]) grows with s.
        return torch.tensor([[(0.0 if "not" in text.split() else 10.0) + len(text) / 100, 1.0] for text in texts])


def test_a_model_that_ignores_negated_captions_scores_what_negbench_predicts(tmp_path):
    path = write_mcq(tmp_path / "COCO_val_mcq.csv", [f"{k}.png" for k in range(6)])
    result = evaluate_negbench(PrefersNoNot(), load_negbench(path, check_images=False))
    rows = result.rows
    assert list(rows) == ["all", "affirmation", "negation", "hybrid"]
    # Affirmations are right (the longest caption without "not"); every negation and hybrid
    # question is lost to "This image features a cat", the affirmation of the absent object.
    assert rows["all"] == {"accuracy": pytest.approx(2 / 6), "n": 6, "wrong_affirmation": 1.0, "wrong_negation": 0.0, "wrong_hybrid": 0.0}
    assert rows["affirmation"] == {"accuracy": 1.0, "n": 2}  # no errors, so no error shares
    assert rows["negation"]["accuracy"] == 0.0 and rows["negation"]["wrong_affirmation"] == 1.0
    assert rows["hybrid"] == {"accuracy": 0.0, "n": 2, "wrong_affirmation": 1.0, "wrong_negation": 0.0, "wrong_hybrid": 0.0}
    true, wrong = result.similarities.values()
    assert len(true) == len(wrong) == 6 and sum(t > w for t, w in zip(true, wrong)) == 2
    assert result.flat()["negbench/negation/accuracy"] == 0.0


def test_error_shares_only_for_the_coco_voc_layout(tmp_path):
    lines = [HEADER]
    for k, template in enumerate(["positive", "negative"]):
        captions = question(template, "a dog", "a ball", "a cat")
        captions[0], captions[3] = captions[3], captions[0]  # the true caption moved to index 3
        lines.append(",".join(["3", *map(csv_field, captions), template, f"{k}.png"]) + "\n")
    (tmp_path / "shuffled.csv").write_text("".join(lines))
    questions = load_negbench(tmp_path / "shuffled.csv", check_images=False)["shuffled"]
    assert questions.correct == [3, 3] and questions.option_types() is None
    rows = evaluate_negbench(PrefersNoNot(), questions).rows
    assert rows["negation"] == {"accuracy": 0.0, "n": 1}


# The reader.

def test_reader_keeps_quoted_commas_and_maps_template_names(tmp_path):
    write_png(tmp_path / "coco" / "val2017" / "000000000139.png")
    (tmp_path / "mcq.csv").write_text(
        HEADER
        + '0,"A dog, a ball and grass.","It shows a cat, but no ""ball"".",A cat.,"No dog, none.",Positive,val2017/000000000139.png\n'
        + '\n'  # a blank line is skipped
        + '0,"It does not show a cat,\nreally.",b,c,d,negation,val2017/000000000139.png\n'
    )
    questions = load_negbench(tmp_path / "mcq.csv", image_root=tmp_path / "coco")["mcq"]
    assert questions.options[0] == ["A dog, a ball and grass.", 'It shows a cat, but no "ball".', "A cat.", "No dog, none."]
    assert questions.options[1][0] == "It does not show a cat,\nreally."
    assert questions.templates == ["affirmation", "negation"] and questions.correct == [0, 0]
    assert questions.images[0].path == tmp_path / "coco" / "val2017" / "000000000139.png"
    assert questions.images[0].key == questions.images[1].key  # one image, several questions: encoded once
    assert questions.option_types() == {1: "hybrid", 2: "affirmation", 3: "negation"}


def test_reader_accepts_filepath_and_the_binary_variant(tmp_path):
    write_png(tmp_path / "a.png")
    (tmp_path / "synthetic_mcq.csv").write_text(
        "filepath,caption_0,caption_1,caption_2,caption_3,correct_answer,correct_answer_template\n"
        "a.png,w,x,y,z,2,hybrid\n"
    )
    (tmp_path / "chexpert_binary_mcq.csv").write_text(
        "image_path,caption_0,caption_1,correct_answer\na.png,This X-ray shows no edema.,This X-ray shows edema.,1\n"
    )
    sets = load_negbench([tmp_path / "synthetic_mcq.csv", tmp_path / "chexpert_binary_mcq.csv"])
    assert list(sets) == ["synthetic_mcq", "chexpert_binary_mcq"]
    assert sets["synthetic_mcq"].correct == [2] and sets["synthetic_mcq"].option_types() is None
    binary = sets["chexpert_binary_mcq"]
    assert binary.options == [["This X-ray shows no edema.", "This X-ray shows edema."]] and binary.correct == [1]
    assert binary.templates is None and binary.option_types() is None
    assert binary.images[0].path == tmp_path / "a.png"  # no --image-root: the CSV's folder


def test_strip_prefix_re_roots_the_authors_absolute_paths(tmp_path):
    root = tmp_path / "data"
    write_png(root / "coco" / "val2017" / "1.png")
    write_png(root / "VOC2007" / "JPEGImages" / "2.png")
    path = write_mcq(tmp_path / "mcq.csv", ["/home/authors/negbench/coco/val2017/1.png", "/mnt/voc/VOC2007/JPEGImages/2.png"])
    with pytest.raises(SemClipError, match=r"escapes --image-root .*re-root them with --strip-prefix"):
        load_negbench(path, image_root=root)
    questions = load_negbench(path, image_root=root, strip_prefix=["/home/authors/negbench", "/mnt/voc/"])["mcq"]
    assert [ref.path for ref in questions.images] == [root / "coco" / "val2017" / "1.png", root / "VOC2007" / "JPEGImages" / "2.png"]
    path = write_mcq(tmp_path / "mcq2.csv", ["/home/authors/negbench2/coco/val2017/1.png"])
    with pytest.raises(SemClipError, match="negbench2/coco/val2017/1.png' escapes"):  # a prefix ends at a folder boundary
        load_negbench(path, image_root=root, strip_prefix="/home/authors/negbench")


# Every bad input: one line, exit code 2, through the command.

BAD_FILES = {
    "not a CSV": (b"PAR1\xff\xfe\x00\x01", "is not a CSV file (not UTF-8 text)"),
    "empty": (b"", "is empty: a NegBench CSV starts with a header line"),
    "no rows": (HEADER.encode(), "has a header but no questions"),
    "missing columns": (b"image,caption,label\nx.png,a dog,1\n",
                        "has no column image_path (or filepath), correct_answer, caption_0, caption_1 (columns: image, caption, label)"),
    "caption gap": (b"image_path,correct_answer,caption_0,caption_1,caption_3\nx.png,0,a,b,c\n", "has caption_3 but no caption_2"),
    "out of range": (HEADER.encode() + b"4,a,b,c,d,positive,x.png\n", "line 2: correct_answer 4 is out of range 0..3"),
    "not an integer": (HEADER.encode() + b"0,a,b,c,d,positive,x.png\nfirst,a,b,c,d,positive,x.png\n",
                       "line 3: correct_answer 'first' is not an integer"),
    "empty option": (HEADER.encode() + b'0,a,b," ",d,positive,x.png\n', "line 2: caption_2 is empty"),
    "short row": (HEADER.encode() + b"0,a,b,c\n", "line 2: caption_3 is empty"),
    "unknown template": (HEADER.encode() + b"0,a,b,c,d,neutral,x.png\n",
                         "line 2: unknown correct_answer_template 'neutral' (expected positive, negative or hybrid)"),
    "unquoted comma": (HEADER.encode() + b"0,a dog, a ball,b,c,d,positive,x.png\n", "line 2: 8 fields but 7 columns (an unquoted comma?)"),
    "empty image path": (HEADER.encode() + b"0,a,b,c,d,positive,\n", "line 2: image_path is empty"),
}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from semclip_train.random_model import build_random_clip

    texts = [t for item in generate_items(100, 0) for t in (item.caption, item.paraphrase, item.negation)]
    texts += question("positive", "a dog", "a ball", "a cat")
    model, processor = build_random_clip(texts, seed=0, vocab_size=200)
    folder = tmp_path_factory.mktemp("tiny_clip")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def assert_one_line_error(result, expected: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert lines[0].startswith("error: ") and expected in lines[0], lines[0]


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_csv_is_one_line_and_exit_2(model_dir, tmp_path, case):
    content, expected = BAD_FILES[case]
    (tmp_path / "mcq.csv").write_bytes(content)
    result = runner.invoke(app, ["negbench", "--model", str(model_dir), "--data", str(tmp_path / "mcq.csv")])
    assert_one_line_error(result, expected)


def test_missing_file_images_and_duplicate_names_are_one_line(model_dir, tmp_path):
    result = runner.invoke(app, ["negbench", "--model", str(model_dir), "--data", str(tmp_path / "none.csv")])
    assert_one_line_error(result, f"NegBench file not found: {tmp_path / 'none.csv'}")
    write_png(tmp_path / "img" / "0.png")
    path = write_mcq(tmp_path / "mcq.csv", ["0.png", "1.png", "2.png", "3.png"])
    result = runner.invoke(app, ["negbench", "--model", str(model_dir), "--data", str(path), "--image-root", str(tmp_path / "img")])
    assert_one_line_error(result, f"3 of 4 images are missing under {tmp_path / 'img'} (first: {tmp_path / 'img' / '1.png'}")
    (tmp_path / "other").mkdir()
    write_mcq(tmp_path / "other" / "mcq.csv", ["0.png"])
    result = runner.invoke(app, ["negbench", "--model", str(model_dir), "--data", str(path), "--data", str(tmp_path / "other" / "mcq.csv")])
    assert_one_line_error(result, "two NegBench files are named 'mcq'")


# End to end on a tiny random CLIP.

def test_command_writes_per_file_and_per_template_rows(model_dir, tmp_path):
    images = tmp_path / "images"
    for k, colour in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255)]):
        write_png(images / "coco" / "val2017" / f"{k}.png", colour)
    write_png(images / "chexpert" / "p.png")
    coco = write_mcq(tmp_path / "COCO_val_mcq.csv", [f"/authors/data/coco/val2017/{k % 3}.png" for k in range(9)])
    binary = tmp_path / "chexpert_binary_mcq.csv"
    binary.write_text("image_path,caption_0,caption_1,correct_answer\nchexpert/p.png,no edema,edema,0\nchexpert/p.png,a cat,not a cat,1\n")
    args = ["negbench", "--model", str(model_dir), "--data", str(coco), "--data", str(binary), "--image-root", str(images),
            "--strip-prefix", "/authors/data/", "--cache-dir", str(tmp_path / "cache")]
    result = runner.invoke(app, [*args, "--json", str(tmp_path / "n.json"), "--plot", str(tmp_path / "n.png"), "--batch-size", "4"])
    assert result.exit_code == 0, result.output
    assert "negbench: " in result.output and "accuracy" in result.output  # the table (row names may be cut at 80 columns)
    payload = json.loads((tmp_path / "n.json").read_text())
    rows = payload["results"]
    assert payload["benchmark"] == "negbench"
    assert list(rows) == ["COCO_val_mcq/all", "COCO_val_mcq/affirmation", "COCO_val_mcq/negation", "COCO_val_mcq/hybrid",
                          "chexpert_binary_mcq/all"]
    assert [row["n"] for row in rows.values()] == [9, 3, 3, 3, 2]
    for row in rows.values():
        assert 0.0 <= row["accuracy"] <= 1.0
        shares = [row[key] for key in ("wrong_affirmation", "wrong_negation", "wrong_hybrid") if key in row]
        assert not shares or sum(shares) == pytest.approx(1.0)
    assert set(rows["chexpert_binary_mcq/all"]) == {"accuracy", "n"}
    assert Image.open(tmp_path / "n.png").format == "PNG"
    again = runner.invoke(app, [*args, "--json", str(tmp_path / "again.json"), "-q"])  # from the embedding cache
    assert again.exit_code == 0 and again.output == ""
    assert sorted(path.name.split("-")[0] for path in (tmp_path / "cache").rglob("*.safetensors")) == [
        "COCO_val_mcq", "COCO_val_mcq", "chexpert_binary_mcq", "chexpert_binary_mcq"]  # texts and images, per file
    assert json.loads((tmp_path / "again.json").read_text())["results"] == rows


def test_negbench_during_training(model_dir, tmp_path):
    from semclip_train.evaluation.evaluate import run_during_training
    from semclip_train.model import load_clip

    write_png(tmp_path / "coco" / "0.png")
    path = write_mcq(tmp_path / "COCO_val_mcq.csv", ["0.png"] * 3)
    model, processor = load_clip(str(model_dir))
    results = run_during_training(model, processor, [f"negbench:{path}"], "cpu", image_root=tmp_path / "coco")
    assert results["negbench/all/n"] == 3 and results["negbench/hybrid/n"] == 1
    assert 0.0 <= results["negbench/negation/accuracy"] <= 1.0
