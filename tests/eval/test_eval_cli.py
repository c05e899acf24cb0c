"""`semclip-eval` end to end on a tiny random CLIP saved with save_pretrained."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from typer.testing import CliRunner

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from semclip_train.evaluation.eval_cli import app  # noqa: E402
from semclip_train.evaluation.synthetic import generate_items  # noqa: E402
from semclip_train.evaluation.synthetic_data import write_benchmark  # noqa: E402

runner = CliRunner()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    from semclip_train.random_model import build_random_clip

    texts = [t for item in generate_items(100, 0) for t in (item.caption, item.paraphrase, item.negation)]
    model, processor = build_random_clip(texts, seed=0, vocab_size=200)
    folder = tmp_path_factory.mktemp("tiny_clip")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return write_benchmark(tmp_path_factory.mktemp("bench"), train_count=4, test_count=30, seed=0)


def invoke(*args: str):
    result = runner.invoke(app, [str(arg) for arg in args])
    return result


def test_synthetic_writes_json_and_plot(model_dir, tmp_path):
    result = invoke("synthetic", "--model", model_dir, "--count", 25, "--json", tmp_path / "out.json",
                    "--plot", tmp_path / "out.png", "--batch-size", 16)
    assert result.exit_code == 0, result.output
    assert "ccneg_acc" in result.output and "cap2para_r1" in result.output
    payload = json.loads((tmp_path / "out.json").read_text())
    assert payload["benchmark"] == "synthetic" and payload["device"] == "cpu"
    row = payload["results"]["synthetic"]
    assert row["n"] == 25 and 0.0 <= row["ccneg_acc"] <= 1.0 and 0.0 <= row["i2t_r5"] <= 1.0
    # both directions and the scope of "no", beside the CC-Neg-style accuracy
    assert {"adds_no", "drops_no", "scope_after", "scope_before", "scope", "scope_other"} <= set(row)
    assert row["scope"] == (row["scope_after"] + row["scope_before"]) / 2
    assert Image.open(tmp_path / "out.png").format == "PNG"


def test_ccneg_and_retrieval_on_a_triple_file(model_dir, bench, tmp_path):
    result = invoke("ccneg", "--model", model_dir, "--data", bench["test"], "--json", tmp_path / "c.json", "-q")
    assert result.exit_code == 0, result.output
    ccneg = json.loads((tmp_path / "c.json").read_text())["results"]["ccneg"]
    assert ccneg["n"] == 30 and {"adds_no", "drops_no"} <= set(ccneg)
    result = invoke("retrieval", "--model", model_dir, "--triples", bench["test"], "--json", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "r.json").read_text())["results"]
    assert set(rows) == {"caption", "paraphrase", "negation", "combined"}
    assert set(rows["caption"]) == {"i2t_r1", "i2t_r5", "i2t_r10", "t2i_r1", "t2i_r5", "t2i_r10", "n"}


def test_missing_images_exit_2_with_one_line_naming_count_and_first(model_dir, tmp_path):
    (tmp_path / "img").mkdir()
    Image.new("RGB", (32, 32)).save(tmp_path / "img" / "present.png")
    table = pa.table({"image": ["img/present.png", "img/gone1.png", "img/gone2.png"],
                      "caption": ["a", "b", "c"], "negation": ["no a", "no b", "no c"]})
    pq.write_table(table, tmp_path / "ccneg.parquet")
    result = invoke("ccneg", "--model", model_dir, "--data", tmp_path / "ccneg.parquet")
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output
    assert lines[0].startswith("error: 2 of 3 images are missing") and "gone1.png" in lines[0]


def test_sugarcrepe_text_only_shows_tot_per_file(model_dir, tmp_path):
    for name in ("swap_att", "swap_obj"):
        items = [{"id": i, "filename": f"{i}.jpg", "caption": f"a red circle {i}", "caption2": f"a circle that is red {i}",
                  "negative_caption": f"a blue circle {i}"} for i in range(5)]
        (tmp_path / f"{name}.json").write_text(json.dumps(items))
    result = invoke("sugarcrepe-pp", "--model", model_dir, "--data-dir", tmp_path, "--subset", "swap_att",
                    "--subset", "swap_obj", "--json", tmp_path / "s.json")
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "s.json").read_text())["results"]
    assert set(rows) == {"swap_att", "swap_obj", "mean"} and "itt" not in rows["swap_att"]
    assert "swap_obj" in result.output and "tot" in result.output


def test_zeroshot_and_ccneg_convert(model_dir, tmp_path):
    import torch

    for k, name in enumerate(["cat", "dog"]):
        (tmp_path / "folder" / name).mkdir(parents=True)
        Image.new("RGB", (32, 32), (100 * k, 0, 0)).save(tmp_path / "folder" / name / "x.jpg")
    (tmp_path / "classes.txt").write_text("dog\ncat\tsmall cat\n")
    result = invoke("zeroshot", "--model", model_dir, "--data", tmp_path / "folder", "--classes", tmp_path / "classes.txt",
                    "--json", tmp_path / "z.json")
    assert result.exit_code == 0, result.output
    assert set(json.loads((tmp_path / "z.json").read_text())["results"]) == {"original", "negated", "gap"}
    data = {"image_paths": ["/data/cc/a.jpg"], "annotations": [{"json": {"caption": "a dog"}, "sop_data": {"negative-prompt": "no dog"}}]}
    torch.save(data, tmp_path / "ccneg_preprocessed.pt")
    result = invoke("ccneg-convert", tmp_path / "ccneg_preprocessed.pt", "-o", tmp_path / "cc.parquet", "--split", "all",
                    "--strip-prefix", "/data/cc")
    assert result.exit_code == 0 and "wrote 1 rows" in result.output
    assert pq.read_table(tmp_path / "cc.parquet").to_pydict()["image"] == ["a.jpg"]
    result = invoke("ccneg-convert", tmp_path / "ccneg_preprocessed.pt", "-o", tmp_path / "x.parquet", "--split", "val")
    assert result.exit_code == 2 and "split must be one of eval, train, all" in result.output


def test_bad_model_and_device_are_one_line_errors(model_dir, bench, tmp_path):
    result = invoke("retrieval", "--model", tmp_path / "no-such-model", "--triples", bench["test"])
    assert result.exit_code == 2 and result.output.startswith("error: cannot load CLIP model")
    result = invoke("synthetic", "--model", model_dir, "--count", 5000)
    assert result.exit_code == 2 and "distinct scenes" in result.output
    import torch

    if not torch.cuda.is_available():
        result = invoke("synthetic", "--model", model_dir, "--count", 5, "--device", "cuda")
        assert result.exit_code == 2 and "CUDA is not available" in result.output


def test_help_shows_examples():
    result = invoke("--help")
    assert result.exit_code == 0 and "semclip-eval sugarcrepe-pp --model" in result.output
    result = invoke("ccneg", "--help")
    assert "Examples:" in result.output and "--image-root" in result.output


def test_installed_command_in_a_subprocess(model_dir, bench, tmp_path):
    command = shutil.which("semclip-eval", path=str(Path(sys.executable).parent)) or shutil.which("semclip-eval")
    assert command, "the semclip-eval console script is not installed (pip install -e .)"
    out = tmp_path / "sub.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([command, "ccneg", "--model", str(model_dir), "--data", str(bench["test"]), "--json", str(out), "-q"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text())["results"]["ccneg"]["n"] == 30
    done = subprocess.run([command, "ccneg", "--model", str(model_dir), "--data", str(tmp_path / "none.parquet")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 2 and done.stderr.strip() == f"error: CC-Neg file not found: {tmp_path / 'none.parquet'}"
