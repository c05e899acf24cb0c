"""The run folder never overlaps what the run reads, a link never leads training out of its image
root, and the same command on a finished run is complete instead of refused (docs/reliability.md)."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from semclip_train.training.cli import app as train_app
from tests.train.conftest import draw
from tests.train.test_reliability import one_line_error, train_args

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]


def digests(*roots: Path) -> dict[str, tuple[str, int]]:
    """Every file under `roots` (or the file itself): its content digest and modification time."""
    files = [p for root in roots for p in ([root] if root.is_file() else sorted(root.rglob("*"))) if p.is_file()]
    return {str(p): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in files}


@pytest.fixture
def model_dir(tmp_path, tiny_clip_dir) -> Path:
    """A pretrained-format tiny CLIP (weights, config, processor), as a fine-tune starts from."""
    from semclip_train.model import clip_config_from, load_processor, random_clip

    folder = tmp_path / "model"
    random_clip(clip_config_from(tiny_clip_dir)).save_pretrained(folder)
    load_processor(tiny_clip_dir).save_pretrained(folder)
    return folder


def test_an_output_that_is_holds_or_lies_inside_an_input_is_refused_and_the_input_is_unchanged(
        base_config, model_dir, tmp_path):
    config_dir = tmp_path / "config-copy"
    config_dir.mkdir()
    (config_dir / "config.json").write_bytes((base_config["clip_config"] / "config.json").read_bytes())
    for name in ("tokenizer.json", "tokenizer_config.json", "processor_config.json", "special_tokens_map.json"):
        if (base_config["clip_config"] / name).exists():
            (config_dir / name).write_bytes((base_config["clip_config"] / name).read_bytes())
    images = base_config["triples"].parent / "img"
    before = digests(model_dir, config_dir, base_config["triples"], images)
    model = {"model-config": None, "model": model_dir}
    probes = [
        ({**model, "output": model_dir}, f"--output {model_dir} is --model {model_dir}"),  # continue a fine-tune in place
        ({**model, "output": model_dir / "run"}, "lies inside --model"),
        ({**model, "output": tmp_path}, "holds --model"),
        ({"model-config": config_dir, "output": config_dir}, f"is --model-config {config_dir}"),
        ({"model-config": config_dir / "config.json", "output": config_dir}, "holds --model-config"),
        ({"image-root": images, "output": images}, f"is --image-root {images}"),
        ({"image-root": images, "output": images.parent}, "holds --triples"),
        ({"image-root": images.parent, "output": images / "run"}, "lies inside --image-root"),
        ({**model, "output": tmp_path / "run", "image-cache-dir": model_dir / "cache"},
         f"--image-cache-dir {model_dir / 'cache'} lies inside --model"),
    ]
    for changes, message in probes:
        result = runner.invoke(train_app, _without_none(train_args(base_config, **changes)))
        line = one_line_error(result, message)
        assert "name a folder of its own" in line
    assert digests(model_dir, config_dir, base_config["triples"], images) == before
    assert not (tmp_path / "config.json").exists() and not (model_dir / "run").exists()
    assert not (model_dir / "cache").exists()


def _without_none(args: list[str]) -> list[str]:
    """train_args with the options set to None left out (`--model-config None` means: not given)."""
    out, skip = [], False
    for i, arg in enumerate(args):
        if skip:
            skip = False
            continue
        if arg.startswith("--") and i + 1 < len(args) and args[i + 1] == "None":
            skip = True
            continue
        out.append(arg)
    return out


def test_an_image_link_out_of_the_image_root_is_refused_and_one_inside_it_is_read(base_config, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    outside = tmp_path.parent / f"{tmp_path.name}-outside.png"
    draw("red", "circle").save(outside)
    try:
        images = base_config["triples"].parent / "img"
        (images / "linked.png").symlink_to(outside)
        (images / "alias.png").symlink_to(images / "red_circle.png")  # a link that stays inside the root
        table = pq.read_table(base_config["triples"]).to_pylist()
        table[0]["image"] = "img/alias.png"
        pq.write_table(pa.Table.from_pylist(table), base_config["triples"])
        assert runner.invoke(train_app, train_args(base_config, **{"max-steps": 1})).exit_code == 0
        table[1]["image"] = "img/linked.png"
        pq.write_table(pa.Table.from_pylist(table), base_config["triples"])
        result = runner.invoke(train_app, train_args(base_config, output=tmp_path / "run2"))
        one_line_error(result, f"image 'img/linked.png' is a link to {outside}, outside --image-root")
        assert not (tmp_path / "run2" / "config.json").exists()
    finally:
        outside.unlink()


def test_the_same_command_on_a_finished_run_is_complete_and_rewrites_nothing(base_config):
    run_dir = base_config["output"]
    args = train_args(base_config, **{"max-steps": 2})
    assert runner.invoke(train_app, args).exit_code == 0
    before = digests(run_dir)
    result = runner.invoke(train_app, [a for a in args if a != "-q"])
    assert result.exit_code == 0, result.output
    assert f"{run_dir} is complete: final/ was trained with these settings (2 steps); nothing was rewritten" \
        in result.output
    assert runner.invoke(train_app, ["--resume", str(run_dir), "-q"]).exit_code == 0  # a resume of it too
    assert digests(run_dir) == before  # no file changed, none added (not even a lock)
    other = runner.invoke(train_app, train_args(base_config, **{"max-steps": 3}))
    one_line_error(other, "already holds a run with other settings (its max_steps is 2, here 3)")
    assert digests(run_dir) == before
    extended = runner.invoke(train_app, ["--resume", str(run_dir), "--max-steps", "3", "-q"])  # continuing is asked for
    assert extended.exit_code == 0, extended.output
    assert "| steps | 3 |" in (run_dir / "final" / "README.md").read_text()


def readme_demo_commands() -> list[str]:
    """The README's "Train on a CPU in one minute" commands up to training, as written (continuation
    lines joined): triplegen coco, triplegen generate, semclip-train."""
    text = (REPO / "README.md").read_text()
    start = text.index("## Train on a CPU in one minute")
    section = text[start:text.index("\n## ", start + 1)]
    commands, current = [], ""
    for line in section.splitlines():
        if not line.startswith("    ") and not current:
            continue
        current += line.strip().removesuffix("\\").strip() + " "
        if not line.rstrip().endswith("\\"):
            commands.append(current.strip())
            current = ""
    wanted = ("triplegen coco ", "triplegen generate ", "semclip-train ")
    return [next(c for c in commands if c.startswith(prefix)) for prefix in wanted]


def test_the_readme_demo_training_command_reruns_as_written(tmp_path):
    commands = readme_demo_commands()
    (tmp_path / "examples").symlink_to(REPO / "examples")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}

    def run(command: str) -> subprocess.CompletedProcess:
        done = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        return done

    for command in commands:  # COCO -> triples -> a trained model
        run(command)
    run_dir = tmp_path / "runs" / "coco-demo"
    before = digests(run_dir)
    again = run(commands[2])
    assert "runs/coco-demo is complete" in again.stdout and digests(run_dir) == before
