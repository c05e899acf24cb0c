"""One way of doing each thing: one user-error type and one error path for the three commands (on
Typer's public API), one atomic writer, one image-path policy and triple reader, one fingerprint."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from semclip_core.errors import UserError
from semclip_train.errors import SemClipError
from semclip_train.evaluation.eval_cli import app as eval_app
from semclip_train.training.cli import app as train_app
from triplegen.cli import app as triplegen_app
from triplegen.errors import TripleGenError

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()

COMMANDS = {"triplegen": (triplegen_app, ["generate"]), "semclip-train": (train_app, []),
            "semclip-eval": (eval_app, ["ccneg"])}


def test_the_three_commands_share_one_user_error_type():
    assert TripleGenError is UserError and SemClipError is UserError


@pytest.mark.parametrize("command", list(COMMANDS))
def test_usage_and_user_errors_end_the_same_way_in_every_command(command, tmp_path):
    app, prefix = COMMANDS[command]
    usage = runner.invoke(app, [*prefix, "--no-such-option"], prog_name=command)
    assert usage.exit_code == 2 and usage.output.strip().splitlines() == [
        f"error: No such option: --no-such-option (see '{command}{''.join(' ' + p for p in prefix)} --help')"]
    missing = str(tmp_path / "missing.parquet")
    user = {"triplegen": [*prefix, missing, "-o", str(tmp_path / "t.parquet")],
            "semclip-train": ["--triples", missing, "--model", "m", "--output", str(tmp_path / "run")],
            "semclip-eval": [*prefix, "--model", "m", "--data", missing]}[command]
    result = runner.invoke(app, user)
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "not found" in lines[0]


def test_the_console_scripts_print_one_line_on_stderr_and_nothing_on_stdout(tmp_path):
    for module, args in (("triplegen.cli", ["generate", "--bogus"]), ("semclip_train.training.cli", ["--bogus"]),
                         ("semclip_train.evaluation.eval_cli", ["retrieval", "--bogus"])):
        done = subprocess.run([sys.executable, "-c", f"from {module} import main; main()", *args],
                              env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True)
        assert done.returncode == 2 and done.stdout == "" and len(done.stderr.strip().splitlines()) == 1, done


def test_the_public_typer_api_the_error_path_relies_on():
    """Pinned in pyproject.toml (typer>=0.27.2): usage errors derive from typer.TyperException, carry
    exit_code and format_message(), and main(standalone_mode=False) raises them and returns Exit codes."""
    app = typer.Typer()

    @app.command()
    def hello(count: int = 1) -> None:
        raise typer.Exit(7)

    command = typer.main.get_command(app)
    with pytest.raises(typer.TyperException) as caught:
        command.main(["--count", "many"], standalone_mode=False)
    assert caught.value.exit_code == 2 and "--count" in caught.value.format_message()
    assert command.main(["--count", "2"], standalone_mode=False) == 7


def _calls(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value.id if isinstance(node.func.value, ast.Name) else ""
            names.add(f"{owner}.{node.func.attr}")
    return names


def test_files_are_moved_into_place_in_one_module_only():
    """Every atomic write goes through semclip_core.files (the umask, temporaries, cleanup on resume)."""
    packages = ("semclip_core", "triplegen", "semclip_train", "prompts")
    sources = [p for package in packages for p in (REPO / package).rglob("*.py")]
    writers = {str(p.relative_to(REPO)) for p in sources
               if _calls(p) & {"os.replace", "os.rename", "tempfile.mkstemp", "tempfile.mkdtemp"}}
    assert writers == {"semclip_core/files.py"}


def test_training_and_evaluation_read_triples_and_image_paths_the_same_way(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from semclip_train.evaluation.eval_data import load_triples
    from semclip_train.triples import read_triples
    from tests.train.conftest import draw

    root = tmp_path / "images"
    root.mkdir()
    for name in ("a.png", "b.png"):
        draw("red", "circle").save(root / name)
    rows = {"id": ["1", "2"], "image": ["a.png", str(root / "b.png")], "caption": ["a", "b"],
            "paraphrase": ["a.", "b."], "negation": ["no a", "no b"]}
    pq.write_table(pa.table(rows), tmp_path / "t.parquet")
    training = read_triples(tmp_path / "t.parquet", root)
    evaluation = load_triples(tmp_path / "t.parquet", root)
    assert [training.images[i] for i in training.image_index] == evaluation.images
    rows["image"][1] = "../t.parquet"  # outside the image root: refused by both, with the same words
    pq.write_table(pa.table(rows), tmp_path / "t.parquet")
    for read in (read_triples, load_triples):
        with pytest.raises(SemClipError, match=r"image path '../t.parquet' escapes --image-root"):
            read(tmp_path / "t.parquet", root)


def test_one_fingerprint_covers_the_weights_and_the_processor(tiny_clip_dir):
    import torch

    from semclip_train.evaluation.embed import Embedder
    from semclip_train.model import clip_config_from, load_processor, random_clip
    from semclip_train.training.cache import cache_fingerprint

    clip, processor = random_clip(clip_config_from(tiny_clip_dir)), load_processor(tiny_clip_dir)
    vision, whole = cache_fingerprint(clip, processor, "fp32"), Embedder(clip, processor, device="cpu").fingerprint
    with torch.no_grad():
        clip.text_projection.weight.add_(1.0)
    assert cache_fingerprint(clip, processor, "fp32") == vision  # the image cache needs only the vision side
    assert Embedder(clip, processor, device="cpu").fingerprint != whole
    processor.tokenizer.model_max_length = 8
    changed = Embedder(clip, processor, device="cpu").fingerprint
    processor.tokenizer.model_max_length = 16
    assert Embedder(clip, processor, device="cpu").fingerprint != changed
    assert cache_fingerprint(clip, processor, "bf16") != vision


@pytest.fixture(scope="module")
def tiny_clip_dir(tmp_path_factory) -> Path:
    from semclip_train.random_model import write_random_clip_folder
    from tests.train.conftest import all_texts

    return write_random_clip_folder(tmp_path_factory.mktemp("tiny_clip"), all_texts(), vocab_size=300)
