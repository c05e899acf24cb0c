"""One input-protection rule for every write (semclip_core/files.py): nothing is written through a
symbolic link or a hard-linked lock, never over an input, never outside the output folder; and
`triplegen view` holds to it like every other command, with reruns that succeed."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from semclip_core.errors import UserError
from semclip_core.files import atomic_folder, refuse_unsafe_output, write_text_atomic
from triplegen.cli import app

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "captions.parquet"
runner = CliRunner()


def invoke(*args, target=app) -> object:
    return runner.invoke(target, [str(a) for a in args])


def one_line_error(result, message: str, code: int = 2) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.output


def digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture
def source(tmp_path) -> Path:
    path = tmp_path / "captions.parquet"
    path.write_bytes(EXAMPLE.read_bytes())
    return path


# Lock files: never written through a link (generate and semclip-train share RunLock).

def test_generate_refuses_a_lock_that_links_to_its_input(source, tmp_path):
    before = digest(source)
    out = tmp_path / "out"
    out.mkdir()
    lock = out / ".t.parquet.lock"
    lock.symlink_to(source)
    one_line_error(invoke("generate", source, "-o", out / "t.parquet", "-q"), "is a symbolic link")
    assert digest(source) == before and lock.is_symlink() and not (out / "t.parquet").exists()
    lock.unlink()
    os.link(source, lock)  # a hard link would be truncated to the pid just the same
    one_line_error(invoke("generate", source, "-o", out / "t.parquet", "-q"), "hard link to another file")
    assert digest(source) == before
    lock.unlink()
    assert invoke("generate", source, "-o", out / "t.parquet", "-q").exit_code == 0
    assert not lock.exists() and digest(source) == before


def test_semclip_train_refuses_a_lock_that_links_to_an_input(source, tmp_path):
    pytest.importorskip("torch", reason="semclip-train needs the train extra")
    from semclip_train.training.cli import app as train_app

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / ".semclip-train.lock").symlink_to(source)
    before = digest(source)
    coco = REPO / "examples" / "coco"
    triples = tmp_path / "coco"
    assert invoke("coco", coco / "annotations" / "captions_val2017.json", "-o", tmp_path / "c.parquet",
                  "--image-prefix", "val2017/").exit_code == 0
    assert invoke("generate", tmp_path / "c.parquet", "-o", triples, "-q").exit_code == 0
    result = invoke("--triples", triples, "--image-root", coco, "--model-config", REPO / "examples" / "tiny-clip",
                    "--output", run_dir, "--max-steps", 1, "--batch-size", 8, "--val-fraction", 0, "--workers", 0,
                    target=train_app)
    one_line_error(result, "is a symbolic link")
    assert digest(source) == before and not (run_dir / "checkpoints").exists()


# Atomic writes never replace or write through a link; the shared check for any output path.

def test_atomic_writes_refuse_a_link_at_the_destination(source, tmp_path):
    link = tmp_path / "card.md"
    link.symlink_to(source)
    with pytest.raises(UserError, match="is a symbolic link"):
        write_text_atomic(link, "hello")
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (tmp_path / "final").symlink_to(folder)
    with pytest.raises(UserError, match="is a symbolic link"):
        with atomic_folder(tmp_path / "final") as staging:
            (staging / "config.json").write_text('{"new": 1}')
    assert link.is_symlink() and digest(source) == digest(EXAMPLE)
    assert (folder / "config.json").read_text() == "{}" and (tmp_path / "final").is_symlink()
    assert not list(tmp_path.glob(".*.tmp"))


def test_refuse_unsafe_output_covers_inputs_input_folders_and_links_out_of_the_output_folder(source, tmp_path):
    inputs_folder = tmp_path / "inputs"
    inputs_folder.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "cache").symlink_to(inputs_folder)
    with pytest.raises(UserError, match="writing it would destroy the input"):
        refuse_unsafe_output(source, "-o", [source])
    with pytest.raises(UserError, match="inside the input folder"):
        refuse_unsafe_output(inputs_folder / "x.parquet", "-o", [inputs_folder])
    with pytest.raises(UserError, match="is a symbolic link"):
        refuse_unsafe_output(out / "cache", "--cache-dir", [source], within=out)
    with pytest.raises(UserError, match="outside the output folder"):
        refuse_unsafe_output(out / "cache" / "x.bin", "--cache-dir", [source], within=out)
    refuse_unsafe_output(out / "x.bin", "--cache-dir", [source], within=out)  # the ordinary case passes


# triplegen view: never over an input, --overwrite like the other commands, reruns succeed.

@pytest.fixture
def dataset(source, tmp_path) -> Path:
    folder = tmp_path / "triples"
    assert invoke("generate", source, "-o", folder, "-q").exit_code == 0
    return folder


def test_view_never_writes_over_an_input(dataset, tmp_path):
    files = [dataset / "triples.parquet", dataset / "rejects.parquet", dataset / "README.md"]
    before = [digest(path) for path in files]
    (tmp_path / "link.html").symlink_to(dataset / "triples.parquet")
    for target in [*files, tmp_path / "link.html"]:
        for extra in ([], ["--overwrite"]):
            one_line_error(invoke("view", dataset, "-o", target, *extra), "would destroy the input")
    one_line_error(invoke("view", dataset / "triples.parquet", "-o", dataset / "triples.parquet", "--overwrite"),
                   "would destroy the input")
    one_line_error(invoke("view", dataset, "-o", tmp_path / "other.parquet", "--rejects", tmp_path / "other.parquet"),
                   "would destroy the input")
    assert [digest(path) for path in files] == before


def test_view_to_an_existing_folder_is_one_line(dataset, tmp_path):
    (tmp_path / "pages").mkdir()
    one_line_error(invoke("view", dataset, "-o", tmp_path / "pages"), "is a folder")


def test_view_reruns_replace_its_own_page_and_need_overwrite_for_any_other_file(dataset, tmp_path):
    page = dataset.with_name("triples.html")
    for _ in range(2):  # the README's command, run again
        result = invoke("view", dataset)
        assert result.exit_code == 0 and "298 triples and 2 rejects" in result.output, result.output
    assert page.read_text(encoding="utf-8").startswith("<!doctype html>")
    notes = tmp_path / "notes.html"
    notes.write_text("my notes")
    one_line_error(invoke("view", dataset, "-o", notes), "pass --overwrite")
    assert notes.read_text() == "my notes"
    assert invoke("view", dataset, "-o", notes, "--overwrite").exit_code == 0
    assert "triplegen view" in notes.read_text(encoding="utf-8")
    assert invoke("view", dataset, "-o", notes).exit_code == 0  # now a page of its own
