"""Epoch time with the frozen-vision embedding cache against re-encoding every image every epoch.

Runs the real trainer (`semclip_train.train`, loss `semclip`, vision tower frozen) twice on the same
generated data set, with and without `cache_image_embeddings`, and reads the epoch boundaries from
`metrics.jsonl`. Epoch 1 of the cached run includes building the cache (decoding, preprocessing and
encoding every image once); from epoch 2 on it reads the cache. The two runs alternate over
`--repeats`, and the table shows medians.

    python benchmarks/vision_cache.py [--images 128] [--epochs 3] [--batch 32] [--repeats 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import torch  # noqa: E402

from semclip_train import TrainConfig, train  # noqa: E402
from semclip_train.random_model import write_random_clip_folder  # noqa: E402
from semclip_train.training.metrics_log import read_metrics  # noqa: E402

# A ViT whose cost resembles real training more than the test model's: 6 layers of width 256 on
# 96x96 images in 8x8 patches (144 tokens); the text tower is small (4 x 128).
MODEL = {
    "text": {"hidden_size": 128, "intermediate_size": 512, "num_hidden_layers": 4, "num_attention_heads": 4},
    "vision": {"hidden_size": 256, "intermediate_size": 1024, "num_hidden_layers": 6, "num_attention_heads": 4,
               "image_size": 96, "patch_size": 8},
    "projection_dim": 128,
}
COLOURS = ["red", "green", "blue", "yellow", "purple", "orange", "black", "white"]
SHAPES = ["circle", "square", "triangle", "star"]


def make_data(folder: Path, n_images: int) -> Path:
    from PIL import Image, ImageDraw

    rows = []
    (folder / "img").mkdir(parents=True)
    generator = torch.Generator().manual_seed(0)
    for i in range(n_images):
        colour, shape = COLOURS[i % len(COLOURS)], SHAPES[(i // len(COLOURS)) % len(SHAPES)]
        image = Image.new("RGB", (160, 120), tuple(int(v) for v in torch.randint(0, 255, (3,), generator=generator)))
        ImageDraw.Draw(image).ellipse((30 + i % 20, 20, 120, 100), fill=colour)
        image.save(folder / "img" / f"{i}.jpg", quality=90)
        rows.append({"id": str(i), "image": f"img/{i}.jpg", "caption": f"a {colour} {shape} number {i}",
                     "paraphrase": f"a {shape} in {colour}, number {i}", "negation": f"no {colour} {shape} here"})
    path = folder / "triples.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def epoch_times(run: Path) -> list[float]:
    records = read_metrics(run)
    start = next(r["time"] for r in records if r.get("event") == "data")
    ends = {}
    for record in records:
        if "loss" in record:
            ends[record["epoch"]] = record["time"]
    bounds = [start] + [ends[e] for e in sorted(ends)]
    return [b - a for a, b in zip(bounds, bounds[1:])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        triples = make_data(folder, args.images)
        texts = [f"a {c} {s} number {i} in here no" for i, (c, s) in enumerate(zip(COLOURS * 4, SHAPES * 8))]
        model = write_random_clip_folder(folder / "model", texts, preset=MODEL, vocab_size=300)
        times: dict[bool, list[list[float]]] = {True: [], False: []}
        for repeat in range(args.repeats):
            for cached in (True, False):
                run = folder / f"run-{cached}-{repeat}"
                train(TrainConfig(triples=triples, clip_config=model, output=run, batch_size=args.batch,
                                  epochs=args.epochs, val_fraction=0.0, workers=0, log_every=1, quiet=True,
                                  loss="semclip", cache_image_embeddings=cached, warmup_steps=1))
                times[cached].append(epoch_times(run))

    print(f"\nepoch time (s), {args.images} JPEG images, batch {args.batch}, loss semclip, vision frozen, "
          f"ViT 6x256 on 96x96/8, {args.threads} thread(s), median of {args.repeats}\n")
    print("| epoch | re-encode images (s) | cached embeddings (s) | speed-up |")
    print("|---|---|---|---|")
    for epoch in range(args.epochs):
        fresh = statistics.median(t[epoch] for t in times[False])
        cached = statistics.median(t[epoch] for t in times[True])
        note = " (builds the cache)" if epoch == 0 else ""
        print(f"| {epoch + 1}{note} | {fresh:.2f} | {cached:.2f} | {fresh / cached:.1f}x |")


if __name__ == "__main__":
    main()
