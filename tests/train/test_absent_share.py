"""`--absent-share`: a fixed share of absent-object rows (triplegen --absent-objects) in every global
batch, on real small triples files and the real sampler; the errors of a share the data or the batch
cannot give; one real short run."""

from __future__ import annotations

import json
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from semclip_train.training.cli import app
from semclip_train.training.data import (
    GlobalBatchSampler, MixedBatchSampler, absent_per_batch, check_images, split_by_image,
)
from semclip_train.triples import read_triples
from tests.train.conftest import COLOURS, SHAPES, triple_rows, write_image_folder


def absent_rows(images: list[str]) -> list[dict]:
    """One absent-object row per image: a true caption denying a colour the image lacks (same image)."""
    rows = []
    for n, (colour, shape) in enumerate((c, s) for c in COLOURS for s in SHAPES):
        other = next(c for c in COLOURS if c != colour)
        rows.append({"id": f"{n}-a", "image": images[n], "caption": f"no {other} {shape}",
                     "paraphrase": f"there is no {shape} in {other}", "negation": f"a {other} {shape}",
                     "kind": "absent-swap" if n % 2 else "absent-assert"})
    return rows


def write(path, rows: list[dict]):
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


@pytest.fixture
def mixed_file(tmp_path):
    """24 ordinary rows (kind "caption", one with a null kind) and 12 absent-object rows over 12 images."""
    names = write_image_folder(tmp_path / "img")
    ordinary = [{**row, "kind": "caption"} for row in triple_rows(names)]
    ordinary[5]["kind"] = None  # a null kind is an ordinary row
    return write(tmp_path / "mixed.parquet", ordinary + absent_rows(names))


@pytest.fixture
def mixed(mixed_file):
    return read_triples(mixed_file)


def is_absent(triples, row: int) -> bool:
    return triples.ids[row].endswith("-a")


def epoch(triples, share: float, batch_size: int, epoch: int = 0, start: int = 0, world_size: int = 1,
          seed: int = 0) -> list[list[int]]:
    """The global batches of one epoch: every rank's slices joined in rank order."""
    n_absent = absent_per_batch(triples, share, batch_size, world_size)
    ranks = [MixedBatchSampler(triples, n_absent, batch_size, rank, world_size, seed) for rank in range(world_size)]
    for sampler in ranks:
        sampler.set_epoch(epoch, start)
    return [sum(slices, []) for slices in zip(*ranks)]


def test_kinds_are_read_split_by_image_and_carried(mixed, triples_file):
    assert Counter(mixed.kinds) == {"caption": 24, "absent-assert": 6, "absent-swap": 6}
    assert len(mixed.absent_rows()) == 12 and len(mixed.ordinary_rows()) == 24
    assert all(is_absent(mixed, row) == (kind != "caption") for row, kind in enumerate(mixed.kinds))
    train, val = split_by_image(check_images(mixed, strict=True), 0.25, seed=0)
    for part in (train, val):
        assert all(is_absent(part, row) == (kind != "caption") for row, kind in enumerate(part.kinds))
    assert len(train.absent_rows()) == 9 and len(train.ordinary_rows()) == 18  # 9 of 12 images
    assert set(read_triples(triples_file).kinds) == {"caption"}  # a file without the column: all ordinary


@pytest.mark.parametrize("share, batch_size, absent, batches", [
    (0.25, 8, 2, 4), (0.5, 8, 4, 6), (0.3, 10, 3, 3), (0.0, 8, 0, 3), (1.0, 8, 8, 1),
])
def test_every_global_batch_holds_the_exact_share(mixed, share, batch_size, absent, batches):
    for e in range(3):
        result = epoch(mixed, share, batch_size, epoch=e)
        assert len(result) == batches  # ordinary rows // ordinary per batch (absent rows when share is 1)
        for batch in result:
            assert len(batch) == batch_size and len(set(batch)) == batch_size
            assert sum(is_absent(mixed, row) for row in batch) == absent


def test_every_ordinary_row_once_per_epoch_and_absent_rows_cycled_evenly(mixed):
    ordinary = sorted(mixed.ordinary_rows())
    drawn = Counter()
    for e in range(3):  # 4 batches x 2 absent rows an epoch: 24 draws over 3 epochs, 2 full passes of 12
        batches = epoch(mixed, 0.25, 8, epoch=e)
        used = sorted(row for batch in batches for row in batch if not is_absent(mixed, row))
        assert used == ordinary
        drawn.update(row for batch in batches for row in batch if is_absent(mixed, row))
        if e == 0:
            assert len(drawn) == 8 and set(drawn.values()) == {1}  # no repeat inside a pass
    assert sorted(drawn) == sorted(mixed.absent_rows()) and set(drawn.values()) == {2}
    assert epoch(mixed, 0.25, 8, epoch=1) != epoch(mixed, 0.25, 8, epoch=0)  # re-shuffled each epoch


def test_share_zero_leaves_absent_rows_out_and_share_one_trains_on_them_alone(mixed):
    assert not any(is_absent(mixed, row) for batch in epoch(mixed, 0.0, 8) for row in batch)
    assert all(is_absent(mixed, row) for batch in epoch(mixed, 1.0, 4) for row in batch)
    assert len(epoch(mixed, 1.0, 4)) == 3  # driven by the 12 absent rows


def test_global_batches_do_not_depend_on_the_number_of_ranks_and_ranks_get_both_kinds(mixed):
    for e in (0, 2):
        single = epoch(mixed, 0.25, 8, epoch=e)
        assert epoch(mixed, 0.25, 4, epoch=e, world_size=2) == single
        assert epoch(mixed, 0.25, 2, epoch=e, world_size=4) == single
    # the two kinds are mixed inside the global batch: absent rows land in both ranks' halves
    halves = Counter(position // 4 for e in range(3) for batch in epoch(mixed, 0.25, 8, epoch=e)
                     for position, row in enumerate(batch) if is_absent(mixed, row))
    assert set(halves) == {0, 1}


def test_resume_mid_epoch_gives_the_remaining_batches(mixed):
    for e in (0, 1, 4):
        full = epoch(mixed, 0.25, 4, epoch=e, world_size=2)
        assert epoch(mixed, 0.25, 4, epoch=e, start=2, world_size=2) == full[2:]  # a fresh sampler, as a resume
    sampler = MixedBatchSampler(mixed, 2, 8, 0, 1, seed=0)
    sampler.set_epoch(1, start=3)
    assert len(sampler) == 1 and list(sampler) == epoch(mixed, 0.25, 8, epoch=1)[3:]


def test_order_depends_only_on_seed_and_epoch(mixed):
    assert epoch(mixed, 0.25, 8, epoch=1, seed=3) == epoch(mixed, 0.25, 8, epoch=1, seed=3)
    assert epoch(mixed, 0.25, 8, epoch=1, seed=3) != epoch(mixed, 0.25, 8, epoch=1, seed=4)


def test_without_a_share_the_sampler_is_the_plain_one(base_config, mixed_file, tiny_clip_dir):
    from semclip_train import TrainConfig
    from semclip_train.training.components import build_model
    from semclip_train.training.components import build_loader

    config = TrainConfig(**{**base_config, "triples": mixed_file})
    module, processor = build_model(config, 0, 1)
    triples = read_triples(mixed_file)
    _, plain = build_loader(triples, processor, module.texts, config, 0, 1, False, False)
    assert isinstance(plain, GlobalBatchSampler)
    loader, mixed_sampler = build_loader(triples, processor, module.texts, config, 0, 1, False, False, 0.25)
    assert isinstance(mixed_sampler, MixedBatchSampler) and loader.batch_sampler is mixed_sampler
    batch = next(iter(loader))
    assert batch["input_ids"].shape[0] == 3 * 4  # caption, paraphrase, negation of 4 rows


def _run(args):
    return CliRunner().invoke(app, [str(a) for a in args])


def one_line_error(result, message: str) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.output
    return lines[0]


def test_a_share_the_data_or_the_batch_cannot_give_is_one_line(tmp_path, triples_file, mixed_file, tiny_clip_dir):
    names = [f"img/{colour}_{shape}.png" for colour in COLOURS for shape in SHAPES]
    only_absent = write(tmp_path / "only_absent.parquet", absent_rows(names))

    def args(triples, share, batch_size=4):
        return ["--triples", triples, "--model-config", tiny_clip_dir, "-o", tmp_path / "run", "--absent-share",
                share, "--batch-size", batch_size, "--workers", "0", "--max-steps", "1", "-q"]

    one_line_error(_run(args(triples_file, 0.25)), "--absent-share 0.25 needs absent-object rows (triplegen generate "
                                                   "--absent-objects 1); the training data has none")
    one_line_error(_run(args(only_absent, 0.5)), "needs ordinary rows too")
    line = one_line_error(_run(args(mixed_file, 0.05)),
                          "--absent-share 0.05 leaves no absent-object row in a batch of 4")
    assert "--batch-size 11 or more" in line and round(0.05 * 11) == 1
    line = one_line_error(_run(args(mixed_file, 0.9)), "leaves no ordinary row in a batch of 4")
    assert "--batch-size 5 or more would give 4 of 5" in line
    one_line_error(_run(args(mixed_file, 1.5)), "absent_share")
    one_line_error(_run(args(mixed_file, 0.5, 64)),
                   "ordinary training rows cannot fill one step, which takes 32 of them")
    assert not (tmp_path / "run" / "final").exists()


def test_a_short_run_with_a_quarter_of_absent_rows(tmp_path, mixed_file, tiny_clip_dir):
    from semclip_train.training.metrics_log import read_metrics

    run = tmp_path / "run"
    result = _run(["--triples", mixed_file, "--model-config", tiny_clip_dir, "--output", run, "--absent-share", "0.25",
                   "--batch-size", "4", "--lr", "1e-3", "--warmup-steps", "1", "--workers", "0",
                   "--val-fraction", "0.25", "--log-every", "1", "--loss", "semclip"])
    assert result.exit_code == 0, result.output
    assert "trained 6 steps on 24 samples" in result.output  # 18 ordinary rows, 3 per batch of 4
    assert json.loads((run / "config.json").read_text())["absent_share"] == 0.25
    data = next(r for r in read_metrics(run) if r.get("event") == "data")
    assert data["ordinary_rows"] == 18 and data["absent_rows"] == 9 and data["train_rows"] == 27
    card = (run / "final" / "README.md").read_text()
    assert "| absent-object rows | 9 of the training rows; 25% of every batch (`--absent-share 0.25`) |" in card
