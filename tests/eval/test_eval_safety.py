"""`semclip-eval` refuses a model whose embeddings are not finite (instead of scoring it 0%), and its
writes (`--cache-dir`, `--json`) never go into a model or data folder or through a planted link
(docs/reliability.md)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from semclip_train.evaluation.eval_cli import app  # noqa: E402

runner = CliRunner()


def digests(root: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def one_line_error(result, message: str) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.output
    return lines[0]


def save_model(folder: Path, overflow: bool = False) -> Path:
    from semclip_train.evaluation.synthetic import generate_items
    from semclip_train.random_model import build_random_clip

    texts = [t for item in generate_items(50, 0) for t in (item.caption, item.paraphrase, item.negation)]
    model, processor = build_random_clip(texts, seed=0, vocab_size=200)
    if overflow:  # every weight finite, but the projection overflows float32: a diverged training's model
        with torch.no_grad():
            model.text_projection.weight.fill_(3e38)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return save_model(tmp_path_factory.mktemp("tiny") / "model")


def test_a_model_with_finite_weights_but_non_finite_embeddings_is_refused(tmp_path):
    model = save_model(tmp_path / "overflowing", overflow=True)
    result = runner.invoke(app, ["synthetic", "--model", str(model), "--count", "8", "--json", str(tmp_path / "r.json")])
    line = one_line_error(result, f"{model} gives text embeddings that are not finite (nan or inf), e.g. for ")
    assert "did its training diverge?" in line and not (tmp_path / "r.json").exists()


def test_the_cache_is_never_kept_inside_a_model_or_data_folder(model_dir, tmp_path):
    before = digests(model_dir)
    for cache in (model_dir, model_dir / "cache"):
        result = runner.invoke(app, ["synthetic", "--model", str(model_dir), "--count", "8", "--cache-dir", str(cache)])
        one_line_error(result, f"--cache-dir {cache} is, or lies inside, the input {model_dir}")
    assert digests(model_dir) == before


def test_a_planted_link_in_the_cache_is_not_written_through(model_dir, tmp_path):
    cache, outside = tmp_path / "cache", tmp_path / "outside"
    args = ["synthetic", "--model", str(model_dir), "--count", "8", "--cache-dir", str(cache), "-q"]
    assert runner.invoke(app, args).exit_code == 0
    (fingerprint,) = list(cache.iterdir())
    fingerprint.rename(tmp_path / "moved")
    outside.mkdir()
    fingerprint.symlink_to(outside)
    one_line_error(runner.invoke(app, args), f"embedding cache folder {fingerprint} is a link out of the cache")
    assert list(outside.iterdir()) == []


def test_json_or_plot_at_a_link_is_refused_before_the_evaluation(model_dir, tmp_path):
    target = tmp_path / "someone-elses.json"
    target.write_text("keep me\n")
    link = tmp_path / "results.json"
    link.symlink_to(target)
    for flag in ("--json", "--plot"):
        result = runner.invoke(app, ["synthetic", "--model", str(model_dir), "--count", "8", flag, str(link)])
        one_line_error(result, f"{flag} {link} is a symbolic link")  # one line: no table was printed first
    assert target.read_text() == "keep me\n" and link.is_symlink()
