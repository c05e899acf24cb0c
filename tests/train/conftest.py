"""Tiny fixtures for semclip_train tests: generated images, a triples Parquet, a random tiny CLIP.

The model folder holds `config.json` (hidden 32, 2 layers, 4 heads, image 32, patch 8) and a
processor with a BPE tokenizer trained here on the fixture captions; no hub is touched.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """One torch thread: the tiny model gains nothing from more, and on a shared 2-core machine
    OpenMP threads spinning against other processes made steps ~6x slower. Subprocesses get
    OMP_NUM_THREADS=1 too, so in-process and subprocess runs compute bit for bit the same."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 60), "blue": (40, 60, 220), "yellow": (230, 220, 40)}
SHAPES = ("circle", "square", "triangle")


def draw(colour: str, shape: str, size: int = 40):
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (size, size + 8), (245, 245, 245))
    pen = ImageDraw.Draw(image)
    box = (6, 8, size - 6, size)
    if shape == "circle":
        pen.ellipse(box, fill=COLOURS[colour])
    elif shape == "square":
        pen.rectangle(box, fill=COLOURS[colour])
    else:
        pen.polygon([(size // 2, 8), (6, size), (size - 6, size)], fill=COLOURS[colour])
    return image


def triple_rows(images: list[str]) -> list[dict]:
    """Two caption rows per image: the same picture appears in two rows (split must keep them together)."""
    rows = []
    for n, (colour, shape) in enumerate((c, s) for c in COLOURS for s in SHAPES):
        for k, (caption, paraphrase, negation) in enumerate([
            (f"a {colour} {shape}", f"a {shape} that is {colour}", f"no {colour} {shape}"),
            (f"a {shape} in {colour}", f"a {colour} coloured {shape}", f"there is no {shape} in {colour}"),
        ]):
            rows.append({"id": f"{n}-{k}", "image": images[n], "caption": caption,
                         "paraphrase": paraphrase, "negation": negation})
    return rows


def all_texts() -> list[str]:
    rows = triple_rows([""] * len(COLOURS) * len(SHAPES))
    return [row[name] for row in rows for name in ("caption", "paraphrase", "negation")]


def write_image_folder(folder: Path) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for colour in COLOURS:
        for shape in SHAPES:
            name = f"{colour}_{shape}.png"
            draw(colour, shape).save(folder / name)
            names.append(f"img/{name}")
    return names


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory) -> Path:
    from semclip_train.random_model import write_random_clip_folder

    return write_random_clip_folder(tmp_path_factory.mktemp("tiny_clip"), all_texts(), vocab_size=300)


@pytest.fixture
def triples_file(tmp_path) -> Path:
    """24 rows over 12 PNG images under tmp_path/img; paths relative to tmp_path."""
    names = write_image_folder(tmp_path / "img")
    path = tmp_path / "triples.parquet"
    pq.write_table(pa.Table.from_pylist(triple_rows(names)), path)
    return path


@pytest.fixture
def embedded_triples_file(tmp_path) -> Path:
    """The same rows with the images embedded as the HF-datasets struct {bytes, path}."""
    images = []
    for colour in COLOURS:
        for shape in SHAPES:
            buffer = io.BytesIO()
            draw(colour, shape).save(buffer, format="PNG")
            images.append({"bytes": buffer.getvalue(), "path": f"{colour}_{shape}.png"})
    path = tmp_path / "embedded.parquet"
    pq.write_table(pa.Table.from_pylist(triple_rows(images)), path)
    return path


@pytest.fixture
def base_config(tmp_path, triples_file, tiny_clip_dir) -> dict:
    """Options for a fast CPU run on the tiny model (a dict: tests change what they need)."""
    return {
        "triples": triples_file, "clip_config": tiny_clip_dir, "output": tmp_path / "run",
        "batch_size": 4, "epochs": 1, "lr": 1e-3, "warmup_steps": 1, "workers": 0,
        "val_fraction": 0.25, "log_every": 1, "quiet": True, "loss": "semclip",
    }
