"""Training throughput on GPUs: ViT-B/32 (random init) at batch 256 per GPU in bf16, samples/s and
peak memory, for the `semclip` loss, in one process or under torchrun (NCCL, features gathered).

Uses the trainer's own parts (DualEncoder, build_loss with rank/world size, DDP wrapper, AdamW
groups, bf16 autocast, `accumulate_gradients`) on synthetic tensors, so it measures the GPU work and
not image decoding. Three set-ups: vision frozen with cached image embeddings (what training does by
default), vision frozen but images encoded every step (the reference code), and full fine-tuning.

    bash benchmarks/gpu_check.sh                      # one process, then torchrun over all GPUs
    python benchmarks/gpu_check.py --preset tiny --device cpu --precision fp32 --batch 8 --steps 2   # smoke test
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from semclip_train.model import DualEncoder, clip_config_from, freeze_towers, random_clip, set_train_mode  # noqa: E402
from semclip_train.random_model import PRESETS  # noqa: E402
from semclip_train.training import distributed  # noqa: E402
from semclip_train.training.components import param_groups  # noqa: E402
from semclip_train.training.losses import build_loss  # noqa: E402
from semclip_train.training.trainer import accumulate_gradients, clamp_logit_scale  # noqa: E402

VOCAB, BOS, EOS = 49408, 49406, 49407  # OpenAI CLIP's tokenizer


def clip_config(preset: str, context: int) -> dict:
    shapes = PRESETS[preset]
    text = {**shapes["text"], "vocab_size": VOCAB, "max_position_embeddings": context,
            "bos_token_id": BOS, "eos_token_id": EOS, "pad_token_id": EOS}
    return {"text_config": text, "vision_config": dict(shapes["vision"]), "projection_dim": shapes["projection_dim"]}


def synthetic_batch(batch: int, texts: int, context: int, image_size: int, dim: int, device) -> dict:
    ids = torch.randint(1, BOS, (texts * batch, context), device=device)
    ids[:, 0], ids[:, -1] = BOS, EOS
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids),
            "pixel_values": torch.randn(batch, 3, image_size, image_size, device=device),
            "image_embeds": torch.randn(batch, dim, device=device)}


def measure(args, setup: str, context: distributed.DistributedContext, device) -> tuple[float, float]:
    """(samples/s over all ranks, peak memory in GiB on this rank)."""
    clip = random_clip(clip_config_from(clip_config(args.preset, args.context)), seed=0)
    freeze_towers(clip, vision=setup != "full fine-tune", text=False)
    loss = build_loss(args.loss, rank=context.rank, world_size=context.world_size,
                      embed_dim=clip.config.projection_dim, seed=0)
    module = DualEncoder(clip, loss).to(device)
    set_train_mode(clip, vision_frozen=setup != "full fine-tune", text_frozen=False)
    ddp = distributed.wrap_ddp(module, context)
    optimizer = torch.optim.AdamW(param_groups(module, 0.2), lr=1e-5, fused=device.type == "cuda")
    bf16 = args.precision == "bf16"
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
    full = synthetic_batch(args.batch, len(module.texts), args.context, clip.config.vision_config.image_size,
                           clip.config.projection_dim, device)
    unused = "pixel_values" if setup == "vision frozen, cached embeddings" else "image_embeds"
    inputs = {key: value for key, value in full.items() if key != unused}

    def step() -> None:
        accumulate_gradients(ddp, [inputs], autocast)
        torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        clamp_logit_scale(clip, 4.6052)

    for _ in range(args.warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    distributed.barrier()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    distributed.barrier()
    elapsed = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    return args.batch * context.world_size * args.steps / elapsed, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="vit-b-32", choices=sorted(PRESETS))
    parser.add_argument("--batch", type=int, default=256, help="per GPU")
    parser.add_argument("--context", type=int, default=32, help="text tokens (COCO captions fit in 32)")
    parser.add_argument("--loss", default="semclip")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--precision", default="bf16", choices=["bf16", "fp32"])
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    context = distributed.init_distributed()
    device = torch.device(args.device) if args.device else context.device
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    rows = []
    try:
        for setup in ("vision frozen, cached embeddings", "vision frozen, images encoded", "full fine-tune"):
            throughput, peak = measure(args, setup, context, device)
            peaks = distributed.all_reduce_mean(torch.tensor(peak, device=device)).item()
            rows.append((setup, throughput, peaks))
            if device.type == "cuda":
                torch.cuda.empty_cache()  # the set-up's model and optimizer are gone with measure()
    finally:
        distributed.destroy_distributed()
    if context.is_main:
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        print(f"\n{args.preset}, loss {args.loss}, batch {args.batch} per process x {context.world_size} "
              f"process(es), {args.precision}, {args.context} tokens, {name}, {args.steps} timed steps\n")
        print("| set-up | processes | samples/s | samples/s per process | peak memory per GPU (GiB) |")
        print("|---|---|---|---|---|")
        for setup, throughput, peak in rows:
            print(f"| {setup} | {context.world_size} | {throughput:.0f} | {throughput / context.world_size:.0f} "
                  f"| {peak:.1f} |")


if __name__ == "__main__":
    main()
