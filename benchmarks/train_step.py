"""Step time of the `semclip` loss against `clip` at the same batch: the cost of encoding the
paraphrase and the negation (3B texts through the text tower instead of B).

A small random CLIP on the CPU, vision tower frozen (the paper's default), measured both with images
encoded every step and with cached image embeddings (what training does while the vision tower is
frozen). Losses are measured in alternation, so machine noise hits them alike.

    python benchmarks/train_step.py [--batch 32] [--repeats 5] [--steps 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from semclip_train.model import DualEncoder, encode_images, freeze_towers, set_train_mode  # noqa: E402
from semclip_train.random_model import build_random_clip  # noqa: E402
from semclip_train.training.components import param_groups  # noqa: E402
from semclip_train.training.losses import build_loss  # noqa: E402

# A small ViT: hidden 256, 4 layers, 64x64 images in 8x8 patches (64 tokens); text hidden 256, 4 layers.
SMALL = {
    "text": {"hidden_size": 256, "intermediate_size": 1024, "num_hidden_layers": 4, "num_attention_heads": 4},
    "vision": {"hidden_size": 256, "intermediate_size": 1024, "num_hidden_layers": 4, "num_attention_heads": 4,
               "image_size": 64, "patch_size": 8},
    "projection_dim": 128,
}
WORDS = "a the dog cat red blue small large on under near sofa table bed no not there is photo of".split()


def captions(n: int, seed: int) -> list[str]:
    generator = torch.Generator().manual_seed(seed)
    return [" ".join(WORDS[i] for i in torch.randint(len(WORDS), (12,), generator=generator)) for _ in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: no OpenMP spinning on a shared CPU)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    clip, processor = build_random_clip(captions(200, 0), preset=SMALL, seed=0, vocab_size=300)
    freeze_towers(clip, vision=True, text=False)
    modules = {name: DualEncoder(clip, build_loss(name, embed_dim=128, seed=0)) for name in ("clip", "semclip")}
    b = args.batch
    texts = {"caption": captions(b, 1), "paraphrase": captions(b, 2), "negation": captions(b, 3)}
    pixels = torch.rand(b, 3, 64, 64)
    with torch.no_grad():
        cached = encode_images(clip.eval(), pixels)
    optimizer = torch.optim.AdamW(param_groups(modules["semclip"], 0.2), lr=1e-5)

    def step(module: DualEncoder, use_cache: bool) -> float:
        tokens = processor.tokenizer([t for name in module.texts for t in texts[name]], padding="max_length",
                                     max_length=16, truncation=True, return_tensors="pt")
        images = {"image_embeds": cached} if use_cache else {"pixel_values": pixels}
        start = time.perf_counter()
        for _ in range(args.steps):
            loss = module(tokens["input_ids"], tokens["attention_mask"], **images)["loss"]
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        return (time.perf_counter() - start) / args.steps

    set_train_mode(clip, vision_frozen=True, text_frozen=False)
    for name, module in modules.items():  # warm-up
        step(module, True)
        step(module, False)
    times: dict[tuple[str, bool], list[float]] = {}
    for _ in range(args.repeats):
        for use_cache in (False, True):
            for name, module in modules.items():
                times.setdefault((name, use_cache), []).append(step(module, use_cache))

    print(f"\nstep time, batch {b}, small random CLIP (ViT 4x256 on 64x64/8, text 4x256, 16 tokens), "
          f"vision frozen, {torch.get_num_threads()} threads, median of {args.repeats}x{args.steps} steps\n")
    print("| images | clip (ms) | semclip (ms) | semclip / clip |")
    print("|---|---|---|---|")
    for use_cache in (False, True):
        clip_ms = statistics.median(times[("clip", use_cache)]) * 1e3
        sem_ms = statistics.median(times[("semclip", use_cache)]) * 1e3
        label = "cached embeddings" if use_cache else "encoded every step"
        print(f"| {label} | {clip_ms:.1f} | {sem_ms:.1f} | {sem_ms / clip_ms:.2f} |")


if __name__ == "__main__":
    main()
