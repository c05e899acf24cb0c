"""The similarity plot: the difference panel draws every item (its own bins, centred on 0), panels
are labelled by run name, and `--model A --model B` compares models in one table, JSON and picture."""

from __future__ import annotations

import json
import random

import pytest
from typer.testing import CliRunner

from semclip_train.evaluation.evaluate import EvalResult
from semclip_train.evaluation.plots import model_label, similarity_figure

pytest.importorskip("matplotlib")


def _result(n: int, gap: float, seed: int) -> EvalResult:
    """Similarities as a real CLIP gives them: all near 0.3, true and false apart by a tiny gap."""
    rng = random.Random(seed)
    false = [0.3 + rng.gauss(0, 0.02) for _ in range(n)]
    true = [f + gap + rng.gauss(0, 0.002) for f in false]
    return EvalResult("ccneg", {"ccneg": {"accuracy": 0.5, "n": n}},
                      {"cos(image, caption)": true, "cos(image, negation)": false})


def test_the_difference_panel_draws_every_item_around_zero():
    figure = similarity_figure({"base": _result(298, 0.001, 0), "semclip": _result(298, 0.01, 1)})
    axes = figure.axes
    assert len(axes) == 4  # 2 rows x 2 models
    for bottom in axes[2:]:
        heights = [patch.get_height() for patch in bottom.patches]
        assert sum(heights) == 298  # the old panel, on the similarity bins, drew 0-1 of them
        low, high = bottom.patches[0].get_x(), bottom.patches[-1].get_x() + bottom.patches[-1].get_width()
        assert low == pytest.approx(-high)  # centred on 0
    titles = [axis.get_title() for axis in axes]
    assert titles[0].startswith("base: ") and titles[1].startswith("semclip: ") and "true minus false" in titles[2]


def test_a_run_is_labelled_by_its_name_not_final(tmp_path):
    (tmp_path / "runs" / "semclip-b32" / "final").mkdir(parents=True)
    (tmp_path / "runs" / "x" / "checkpoints" / "step-00000020").mkdir(parents=True)
    assert model_label(str(tmp_path / "runs" / "semclip-b32" / "final")) == "semclip-b32"
    assert model_label(str(tmp_path / "runs" / "x" / "checkpoints" / "step-00000020")) == "x"
    assert model_label("openai/clip-vit-base-patch32") == "openai/clip-vit-base-patch32"


def test_two_models_side_by_side_in_one_table_json_and_plot(tmp_path, tiny_model_pair):
    from PIL import Image

    from semclip_train.evaluation.eval_cli import app

    first, second = tiny_model_pair
    result = CliRunner().invoke(app, ["synthetic", "--model", str(first), "--model", str(second), "--count", "20",
                                      "--json", str(tmp_path / "both.json"), "--plot", str(tmp_path / "both.png")])
    assert result.exit_code == 0, result.output
    assert "base vs tuned" in result.output and "ccneg_acc" in result.output
    payload = json.loads((tmp_path / "both.json").read_text())
    assert [m["label"] for m in payload["models"]] == ["base", "tuned"]
    assert all(m["results"]["synthetic"]["n"] == 20 for m in payload["models"])
    width, _ = Image.open(tmp_path / "both.png").size
    assert width == 900  # two columns of 4.5 inches at 100 dpi


@pytest.fixture()
def tiny_model_pair(tmp_path):
    """Two random tiny CLIP folders saved as runs/<name>/final, as semclip-train leaves them."""
    from semclip_train.evaluation.synthetic import generate_items
    from semclip_train.random_model import build_random_clip

    texts = [t for item in generate_items(100, 0) for t in (item.caption, item.paraphrase, item.negation)]
    folders = []
    for seed, name in enumerate(("base", "tuned")):
        model, processor = build_random_clip(texts, seed=seed, vocab_size=200)
        folder = tmp_path / "runs" / name / "final"
        model.save_pretrained(folder)
        processor.save_pretrained(folder)
        folders.append(folder)
    return folders
