"""The hostile-user probes of docs/reliability.md for semclip-train and semclip-eval: divergence stops
the run, caches are keyed by content, one run per folder, bad input is one line, files as expected."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from semclip_train.evaluation.eval_cli import app as eval_app
from semclip_train.training.cli import app as train_app
from tests.conftest import lock_held_elsewhere
from tests.train.conftest import draw

runner = CliRunner()


def train_args(base_config: dict, **changes) -> list[str]:
    options = {"triples": base_config["triples"], "model-config": base_config["clip_config"],
               "output": base_config["output"], "batch-size": 4, "lr": 1e-3, "warmup-steps": 0, "workers": 0,
               "val-fraction": 0, "loss": "semclip", "max-steps": 4, **changes}
    args = []
    for key, value in options.items():
        args += [f"--{key}", str(value)]
    return args + ["-q"]


def one_line_error(result, message: str, code: int = 2) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.output
    return lines[0]


def finite(folder: Path) -> bool:
    return all(torch.isfinite(t).all() for t in load_file(str(folder / "model.safetensors")).values())


# 1. Training that diverges says so; evaluation refuses a model with non-finite weights.

def test_a_diverging_run_stops_with_one_line_keeps_the_last_good_checkpoint_and_writes_no_final(base_config):
    run_dir = base_config["output"]
    result = runner.invoke(train_app, train_args(base_config, lr=1e4, **{"max-steps": 6, "checkpoint-every": 1}))
    line = one_line_error(result, "training diverged ", code=1)  # at a step (the loss) or by it (weights, embeddings)
    assert "lower --lr (now 10000)" in line
    assert not (run_dir / "final").exists()
    checkpoints = sorted((run_dir / "checkpoints").glob("step-*"))
    assert checkpoints and all(finite(folder) for folder in checkpoints)
    latest = run_dir / "checkpoints" / (run_dir / "checkpoints" / "latest").read_text().strip()
    assert f"the last good checkpoint is {latest}" in line


def test_evaluation_refuses_a_model_with_non_finite_weights(tiny_clip_dir, tmp_path):
    from semclip_train.model import clip_config_from, load_processor, random_clip

    model = random_clip(clip_config_from(tiny_clip_dir))
    with torch.no_grad():
        model.text_projection.weight[0, 0] = float("nan")
    model.save_pretrained(tmp_path / "nan")
    load_processor(tiny_clip_dir).save_pretrained(tmp_path / "nan")
    result = runner.invoke(eval_app, ["synthetic", "--model", str(tmp_path / "nan"), "--count", "8", "-q"])
    one_line_error(result, "has non-finite weights (nan or inf, e.g. in text_projection.weight)")


# 3. Caches are keyed by content: another root or a replaced file never returns another image's embedding.

def _images(root: Path, pictures: list[str]) -> list:
    """Write `pictures` ("red" or "red square") as root/0.png, 1.png, ... and return their checked refs."""
    from semclip_train.training.data import check_images
    from semclip_train.triples import Triples, image_ref

    root.mkdir(parents=True, exist_ok=True)
    for n, picture in enumerate(pictures):
        colour, _, shape = picture.partition(" ")
        draw(colour, shape or "circle").save(root / f"{n}.png")
    refs = [image_ref(f"{n}.png", root, "test") for n in range(len(pictures))]
    triples = Triples(ids=[str(i) for i in range(len(refs))], image_index=list(range(len(refs))),
                      texts={"caption": ["x"] * len(refs)}, images=refs)
    return check_images(triples, strict=True).images


def test_the_training_image_cache_never_serves_another_roots_or_a_replaced_files_embedding(tiny_clip_dir, tmp_path):
    from semclip_train.model import clip_config_from, load_processor, random_clip
    from semclip_train.training.cache import ImageEmbeddingCache, cache_fingerprint

    clip, processor = random_clip(clip_config_from(tiny_clip_dir)), load_processor(tiny_clip_dir)
    fingerprint = cache_fingerprint(clip, processor, "fp32")

    def build(images):
        return ImageEmbeddingCache.build(clip, processor, images, torch.device("cpu"), contextlib.nullcontext,
                                         fingerprint, tmp_path / "cache")

    first = build(_images(tmp_path / "a", ["red", "green"]))
    other_root = build(_images(tmp_path / "b", ["blue", "yellow"]))  # the same names, other pictures
    assert other_root.computed == 2 and not torch.allclose(first.embeddings, other_root.embeddings)
    again = build(_images(tmp_path / "a", ["red", "green"]))
    assert again.computed == 0 and torch.equal(again.embeddings, first.embeddings)
    replaced = build(_images(tmp_path / "a", ["red", "green square"]))  # 1.png replaced in place
    assert replaced.computed == 1 and torch.equal(replaced.embeddings[0], first.embeddings[0])
    assert not torch.allclose(replaced.embeddings[1], first.embeddings[1])


def test_the_evaluation_cache_never_serves_a_replaced_files_embedding(tiny_clip_dir, tmp_path):
    from semclip_train.evaluation.embed import Embedder
    from semclip_train.model import clip_config_from, load_processor, random_clip

    clip, processor = random_clip(clip_config_from(tiny_clip_dir)), load_processor(tiny_clip_dir)
    images = _images(tmp_path / "img", ["red", "green"])
    first = Embedder(clip, processor, device="cpu", cache_dir=tmp_path / "cache").images(images, "set")
    draw("blue", "square").save(tmp_path / "img" / "1.png")
    embedder = Embedder(clip, processor, device="cpu", cache_dir=tmp_path / "cache")
    second = embedder.images(_images(tmp_path / "img", ["red", "blue"]), "set")
    assert embedder.encoder_calls["image"] == 1  # only the replaced image is encoded again
    assert torch.equal(first[0], second[0]) and not torch.allclose(first[1], second[1])
    elsewhere = Embedder(clip, processor, device="cpu", cache_dir=tmp_path / "cache")
    third = elsewhere.images(_images(tmp_path / "other", ["yellow", "red"]), "set")  # other root, same names
    assert not torch.allclose(third[0], first[0]) and torch.allclose(third[1], first[0])


# 5. One run per output folder; a killed run does not leave it locked.

def test_a_second_training_run_on_the_same_folder_is_refused_and_a_killed_one_leaves_no_lock(base_config):
    from semclip_train.training.trainer import LOCK_NAME

    run_dir = base_config["output"]
    with lock_held_elsewhere(run_dir / LOCK_NAME) as pid:
        one_line_error(runner.invoke(train_app, train_args(base_config)),
                       f"--output {run_dir} is in use by another run (pid {pid}")
    result = runner.invoke(train_app, train_args(base_config))
    assert result.exit_code == 0, result.output
    assert (run_dir / "final" / "model.safetensors").is_file() and not (run_dir / LOCK_NAME).exists()


# 7. Every bad input is one line and exit code 2.

def test_an_output_folder_that_cannot_be_made_is_one_line(base_config, tmp_path):
    (tmp_path / "a-file").write_text("x")
    one_line_error(runner.invoke(train_app, train_args(base_config, output=tmp_path / "a-file" / "run")),
                   f"--output {tmp_path / 'a-file' / 'run'}: {tmp_path / 'a-file'} is a file, not a folder")
    one_line_error(runner.invoke(train_app, train_args(base_config, output=tmp_path / "a-file")),
                   f"--output {tmp_path / 'a-file'}: {tmp_path / 'a-file'} is a file, not a folder")


def test_a_corrupt_saved_config_on_resume_is_one_line(base_config):
    assert runner.invoke(train_app, train_args(base_config)).exit_code == 0
    run_dir = base_config["output"]
    (run_dir / "config.json").write_text('{"triples": "t.parquet", "lr": ')
    one_line_error(runner.invoke(train_app, ["--resume", str(run_dir)]), "config.json is unreadable")
    (run_dir / "config.json").write_bytes(b"\xff\xfe")
    one_line_error(runner.invoke(train_app, ["--resume", str(run_dir)]), "config.json is unreadable")


def test_a_tokenizer_that_does_not_fit_the_model_is_refused_by_evaluation(tiny_clip_dir, tmp_path):
    from semclip_train.model import clip_config_from, random_clip
    from semclip_train.random_model import train_tokenizer
    from tests.train.conftest import all_texts

    folder = tmp_path / "model"
    random_clip(clip_config_from(tiny_clip_dir)).save_pretrained(folder)
    shutil.copy(tiny_clip_dir / "processor_config.json", folder)
    bigger = train_tokenizer(all_texts() + [f"word{i} other{i}" for i in range(400)], vocab_size=2000)
    bigger.save_pretrained(folder)
    result = runner.invoke(eval_app, ["synthetic", "--model", str(folder), "--count", "8", "-q"])
    one_line_error(result, "but the model's text tower embeds 300")


def test_an_empty_evaluation_set_is_one_line(tiny_clip_dir, tmp_path):
    from semclip_train.model import clip_config_from, load_processor, random_clip

    folder = tmp_path / "model"
    random_clip(clip_config_from(tiny_clip_dir)).save_pretrained(folder)
    load_processor(tiny_clip_dir).save_pretrained(folder)
    empty = pa.table({name: pa.array([], pa.string()) for name in ("image", "caption", "paraphrase", "negation")})
    pq.write_table(empty, tmp_path / "empty.parquet")
    for command in (["ccneg", "--data"], ["retrieval", "--triples"]):
        result = runner.invoke(eval_app, [command[0], "--model", str(folder), command[1], str(tmp_path / "empty.parquet")])
        one_line_error(result, "has no rows")


def test_evaluation_refuses_to_write_its_results_over_its_data(tiny_clip_dir, triples_file, tmp_path):
    from semclip_train.model import clip_config_from, load_processor, random_clip

    folder = tmp_path / "model"
    random_clip(clip_config_from(tiny_clip_dir)).save_pretrained(folder)
    load_processor(tiny_clip_dir).save_pretrained(folder)
    before = triples_file.read_bytes()
    for flag, target in (("--json", triples_file), ("--plot", triples_file), ("--json", folder / "config.json")):
        result = runner.invoke(eval_app, ["retrieval", "--model", str(folder), "--triples", str(triples_file), flag,
                                          str(target)])
        one_line_error(result, f"{flag} {target} is the input")
    assert triples_file.read_bytes() == before


# 8. Files as users expect.

def test_run_folders_get_the_umask_permissions_and_a_killed_runs_temporaries_go_on_resume(base_config):
    run_dir = base_config["output"]
    previous = os.umask(0o002)
    try:
        assert runner.invoke(train_app, train_args(base_config, **{"checkpoint-every": 2})).exit_code == 0
        left = [run_dir / "checkpoints" / ".step-00000006.0123456789ab.tmp", run_dir / ".config.json.0123456789ab.tmp"]
        left[0].mkdir()
        left[1].write_text("{")
        result = runner.invoke(train_app, ["--resume", str(run_dir), "--max-steps", "6", "-q"])
        assert result.exit_code == 0, result.output
    finally:
        os.umask(previous)
    assert not any(path.exists() for path in left)
    for path in [run_dir / "final", run_dir / "checkpoints", *(run_dir / "checkpoints").glob("step-*")]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o775, path
    for path in [run_dir / "config.json", run_dir / "checkpoints" / "latest", *(run_dir / "final").iterdir(),
                 *(p for folder in (run_dir / "checkpoints").glob("step-*") for p in folder.iterdir())]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o664, path


def test_config_file_keys_may_be_spelled_as_the_flags(base_config, tmp_path):
    from semclip_train.errors import SemClipError
    from semclip_train.training.config import resolve_config

    file = tmp_path / "train.yaml"
    file.write_text(f"triples: {base_config['triples']}\nmodel-config: {base_config['clip_config']}\n"
                    f"output: {tmp_path / 'run'}\nskip-bad-images: false\nno-freeze-vision: true\nfixed-projections: true\n")
    config = resolve_config({}, file)
    assert config.clip_config == base_config["clip_config"] and config.strict_images
    assert not config.freeze_vision and config.learnable_projections is False
    file.write_text("triples: t.parquet\nmodel-config: m\noutput: o\nmodel_config: n\n")
    with pytest.raises(SemClipError, match="sets clip_config a second time"):
        resolve_config({}, file)
    file.write_text("triples: t.parquet\nlearning-rate: 1\n")
    with pytest.raises(SemClipError, match="unknown option 'learning-rate'"):
        resolve_config({}, file)
    help_text = runner.invoke(train_app, ["--help"]).output
    assert "skip-bad-images: true" in help_text and "min-lr, beta1, beta2, eps" in help_text


def test_a_validation_split_too_small_for_a_batch_is_said_not_skipped_silently(base_config):
    options = {"val-fraction": 0.1, "batch-size": 8, "max-steps": 2}  # 4 validation rows, batches of 8
    result = runner.invoke(train_app, [a for a in train_args(base_config, **options) if a != "-q"])
    assert result.exit_code == 0, result.output
    assert "no validation loss: the validation split has" in result.output
    records = [json.loads(line) for line in (base_config["output"] / "metrics.jsonl").read_text().splitlines()]
    data = next(r for r in records if r.get("event") == "data")
    assert data["val_rows"] > 0 and data["val_batches"] == 0
