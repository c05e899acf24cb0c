"""The training loop: plain PyTorch, one process or many under `torchrun` (DDP).

Batches. `batch_size` is per process and per micro-step; one optimizer step consumes
`batch_size * world_size * grad_accum` triples. The global micro-batch (`batch_size * world_size`
items, every rank's features gathered with gradients) is the set of contrastive negatives.

Gradient accumulation does NOT enlarge that set: each micro-batch's loss sees only its own global
micro-batch, and the step averages the micro-batch gradients (the reference code's accumulation does
the same). It lets a larger *effective* batch fit in memory for the averaging of gradients, not for
the contrastive denominator; with `grad_accum = k` the step equals one on k times the batch only
for losses without cross-sample terms (the text-to-text SemCLIP terms), not for InfoNCE.
For more negatives use more ranks, a larger `batch_size`, or `--grad-checkpointing`.

Determinism. The data order depends only on (seed, epoch); the torch generator is re-seeded from
(seed, rank, step) at every step (per-rank seeding that a resume reproduces exactly), and a
checkpoint stores the optimizer and RNG states, so `--resume` ends where an uninterrupted run ends.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semclip_train.training import distributed
from semclip_train.training.components import (
    build_data, build_image_cache, build_loader, build_model, build_optimizer, precision_context,
)
from semclip_train.errors import SemClipError
from semclip_train.training.config import TrainConfig, save_config
from semclip_train.training.data import absent_per_batch
from semclip_train.training.health import check_finite, check_model
from triplegen.rules.polarity import is_negated

LOCK_NAME = ".semclip-train.lock"


@dataclass
class TrainResult:
    """What a finished run produced; `final_dir` loads with `CLIPModel.from_pretrained`."""

    run_dir: Path
    final_dir: Path | None
    steps: int
    samples_seen: int
    last_metrics: dict[str, float] = field(default_factory=dict)
    val_loss: float | None = None
    skipped_images: int = 0
    skipped_rows: int = 0
    already_complete: bool = False  # a rerun of a finished run: nothing was trained or written


def lr_at(step: int, lr: float, min_lr: float, warmup_steps: int, total_steps: int) -> float:
    """Linear warm-up over `warmup_steps`, then cosine from `lr` to `min_lr` at `total_steps`."""
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * progress))


def clamp_logit_scale(clip: torch.nn.Module, maximum: float) -> None:
    """Keep the temperature in [0, ln 100] after each step, as CLIP and OpenCLIP do."""
    with torch.no_grad():
        clip.logit_scale.clamp_(0.0, maximum)


def seed_step(seed: int, rank: int, step: int) -> None:
    torch.manual_seed((seed * 1_000_003 + rank * 7_919 + step) % 2**63)


def train(config: TrainConfig) -> TrainResult:
    """Train as `config` says; under torchrun every rank calls this (only rank 0 writes)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    caller_group = distributed.world_size() > 1  # a caller's own process group is left alone
    context = distributed.init_distributed()
    try:
        return _train(config, context)
    finally:
        if not caller_group:
            distributed.destroy_distributed()


def _train(config: TrainConfig, context: distributed.DistributedContext) -> TrainResult:
    """One run per folder: rank 0 holds its lock (released by the kernel even on kill -9)."""
    from semclip_core.files import RunLock, refuse_file, remove_stale_temps

    from semclip_train.training.run_folder import (
        describe_difference, finished_counts, finished_with, refuse_overlapping_inputs,
    )

    run_dir = config.run_dir
    refuse_file(run_dir, "--output")
    refuse_overlapping_inputs(config)
    if finished_with(config):
        steps, samples_seen = finished_counts(run_dir)
        return TrainResult(run_dir, run_dir / "final", steps, samples_seen, already_complete=True)
    if config.resume is None and ((run_dir / "checkpoints").exists() or (run_dir / "final").exists()):
        raise SemClipError(f"{run_dir} already holds a run with other settings{describe_difference(config)}: "
                           f"pass --resume {run_dir} to continue it with these, or another --output")
    if not context.is_main:
        return _loop(_prepare(config, context))
    with RunLock(run_dir / LOCK_NAME, f"--output {run_dir}"):
        for folder in (run_dir, run_dir / "checkpoints"):  # temporaries of a killed run
            remove_stale_temps(folder)
        return _loop(_prepare(config, context))


@dataclass
class Run:
    """Everything the loop needs, built by `_prepare`; `step` and the position are where it resumes."""

    config: TrainConfig
    context: distributed.DistributedContext
    device: torch.device
    data: Any
    module: torch.nn.Module  # the DualEncoder (CLIP + loss), unwrapped
    ddp: torch.nn.Module  # the same, wrapped for DDP when distributed
    processor: Any
    cache: Any
    loader: Any
    sampler: Any
    optimizer: torch.optim.Optimizer
    autocast: Any
    log: Any
    steps_per_epoch: int
    total_steps: int
    warmup_steps: int
    step: int = 0
    samples_seen: int = 0
    epoch: int = 0
    step_in_epoch: int = 0
    checkpoint: Path | None = None  # the last good checkpoint

    @property
    def samples_per_step(self) -> int:
        return self.config.batch_size * self.context.world_size * self.config.grad_accum

    def inputs(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A collated batch on the device; cached image embeddings instead of pixels when caching."""
        pin = self.device.type == "cuda"
        inputs = {"input_ids": batch["input_ids"].to(self.device, non_blocking=pin),
                  "attention_mask": batch["attention_mask"].to(self.device, non_blocking=pin)}
        if self.cache is not None:
            inputs["image_embeds"] = self.cache.lookup(batch["image_index"])
        else:
            inputs["pixel_values"] = batch["pixel_values"].to(self.device, non_blocking=pin)
        return inputs


def _loop(run: Run) -> TrainResult:
    """The training loop, as nanoGPT's: schedule, forward/backward, a finite check, update, then
    logging, evaluation, validation and checkpoints."""
    from semclip_train.model import set_train_mode
    from semclip_train.training.checkpoint import checkpoint_state, save_checkpoint, save_final

    config, clip, log = run.config, run.module.clip, run.log
    step, samples_seen = run.step, run.samples_seen
    last_terms: dict[str, float] = {}
    val_loss, probe = None, None
    tick, tick_step = time.perf_counter(), step
    try:  # the progress bar must stop and metrics.jsonl close even when a step fails
        log.start(run.total_steps, step)
        epoch, done_in_epoch = run.epoch, run.step_in_epoch
        while step < run.total_steps:
            run.sampler.set_epoch(epoch, start=done_in_epoch * config.grad_accum)
            batches = iter(run.loader)
            for step_in_epoch in range(done_in_epoch, run.steps_per_epoch):
                if step >= run.total_steps:
                    break
                seed_step(config.seed, run.context.rank, step)
                lr = lr_at(step, config.lr, config.min_lr, run.warmup_steps, run.total_steps)
                for group in run.optimizer.param_groups:
                    group["lr"] = lr
                micro_batches = [run.inputs(next(batches)) for _ in range(config.grad_accum)]
                terms = accumulate_gradients(run.ddp, micro_batches, run.autocast)
                probe = micro_batches[-1]  # the checks before a checkpoint embed it
                grad_norm = clip_gradients(run.module, config.grad_clip)
                check_finite(run, step + 1, terms["loss"], grad_norm)  # before the update touches the weights
                apply_update(run.module, run.optimizer, config)
                step += 1
                samples_seen += run.samples_per_step

                if step % config.log_every == 0 or step == run.total_steps:
                    rate = (step - tick_step) * run.samples_per_step / (time.perf_counter() - tick)
                    last_terms = {k: distributed.all_reduce_mean(v).item() for k, v in terms.items()}
                    log.step(step, {"epoch": epoch, "samples_seen": samples_seen, "lr": lr, "samples_per_s": rate,
                                    "grad_norm": grad_norm.item(), "logit_scale": clip.logit_scale.exp().item(),
                                    **last_terms})
                    tick, tick_step = time.perf_counter(), step
                if config.eval_every is not None and step % config.eval_every == 0:
                    if run.context.is_main:
                        check_model(run, step, probe)  # a diverged model is stopped, not scored 0%
                    run_evaluation(config, clip, run.processor, run.device, step, log, run.context)
                    set_train_mode(clip, config.freeze_vision, config.freeze_text)
                end_of_epoch = step_in_epoch + 1 == run.steps_per_epoch
                if end_of_epoch:
                    val_loss = validate(run)
                    if val_loss is not None:
                        log.event({"event": "validation", "step": step, "epoch": epoch, "val_loss": val_loss})
                    set_train_mode(clip, config.freeze_vision, config.freeze_text)
                if run.context.is_main and (step % config.checkpoint_every == 0 or end_of_epoch
                                            or step == run.total_steps):
                    check_model(run, step, probe)
                    position = (epoch + 1, 0) if end_of_epoch else (epoch, step_in_epoch + 1)
                    run.checkpoint = save_checkpoint(config.run_dir, run.module, checkpoint_state(
                        config, run.optimizer, step, samples_seen, position))
            epoch, done_in_epoch = epoch + 1, 0

        if run.context.is_main:
            check_model(run, step, probe)
        final_dir = (save_final(config.run_dir, clip, run.processor, _model_card(config, step, samples_seen))
                     if run.context.is_main else None)
        distributed.barrier()
        return TrainResult(config.run_dir, final_dir, step, samples_seen, last_terms, val_loss,
                           len(run.data.all.skipped_images), run.data.all.skipped_rows)
    finally:
        log.close()


def _prepare(config: TrainConfig, context: distributed.DistributedContext) -> Run:
    """Data, model, checkpoint, optimizer, loaders and log of a run (a resumed one where it stopped)."""
    from semclip_train.training.checkpoint import (
        latest_checkpoint, load_checkpoint, load_optimizer_state, restore_rng_state,
    )
    from semclip_train.model import set_train_mode
    from semclip_train.training.metrics_log import MetricsLog, NullLog

    rank, world = context.rank, context.world_size
    device = torch.device(config.device) if config.device else context.device
    random.seed(config.seed + rank)
    np.random.seed((config.seed + rank) % 2**32)
    torch.manual_seed(config.seed + rank)
    run_dir = config.run_dir
    checkpoint = latest_checkpoint(run_dir) if config.resume is not None else None
    autocast = precision_context(config, device)
    if config.quiet:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    if config.eval_every is not None:  # bad --eval specs fail now, not after hours of training
        from semclip_train.evaluation.evaluate import EvalSpec

        [EvalSpec.parse(spec) for spec in config.eval]

    data = build_data(config)
    if config.absent_share is not None:  # a share the data or the batch cannot give fails before any work
        absent_per_batch(data.train, config.absent_share, config.batch_size, world)
    module, processor = build_model(config, rank, world)
    module.to(device)
    resumed: dict[str, Any] = load_checkpoint(checkpoint, module) if checkpoint is not None else {}
    if context.is_main:
        save_config(config, run_dir)
    distributed.barrier()
    log = (MetricsLog(run_dir, config.quiet, resumed.get("step"), config.report_to, config.model_dump(mode="json"))
           if context.is_main else NullLog())
    global_batch = config.batch_size * world
    _report_data(log, data, global_batch, module.texts)

    cache = build_image_cache(config, module, processor, data, device, autocast, rank, world)
    loader, sampler = build_loader(data.train, processor, module.texts, config, rank, world, cache is None,
                                   device.type == "cuda", config.absent_share)
    steps_per_epoch = len(sampler) // config.grad_accum  # the sampler is at the start of an epoch
    if steps_per_epoch == 0 and config.absent_share is not None:
        rows, per_batch = sampler.driver
        kind = "absent-object" if config.absent_share == 1 else "ordinary"
        raise SemClipError(f"{len(rows)} {kind} training rows cannot fill one step, which takes "
                           f"{per_batch * config.grad_accum} of them with --absent-share {config.absent_share:g} "
                           f"({per_batch} per global batch of {global_batch}, x grad-accum {config.grad_accum})")
    if steps_per_epoch == 0:
        raise SemClipError(f"{len(data.train)} training rows cannot fill one step of "
                           f"{global_batch * config.grad_accum} (batch x ranks x grad-accum)")
    total_steps = config.max_steps or config.epochs * steps_per_epoch
    if resumed.get("step", 0) > total_steps:
        raise SemClipError(f"checkpoint {checkpoint} is at step {resumed['step']}, beyond this run's {total_steps} "
                           "steps (--max-steps, --epochs): raise them to continue it")
    warmup_steps = config.warmup_for(total_steps)
    log.event(schedule(config, total_steps, warmup_steps))
    optimizer = build_optimizer(module, config, device)
    if resumed:
        load_optimizer_state(optimizer, resumed["optimizer"], checkpoint)
        if context.is_main:
            restore_rng_state(resumed["rng"], checkpoint)
    ddp = distributed.wrap_ddp(module, context)
    set_train_mode(module.clip, config.freeze_vision, config.freeze_text)
    return Run(config, context, device, data, module, ddp, processor, cache, loader, sampler, optimizer, autocast,
               log, steps_per_epoch, total_steps, warmup_steps, step=resumed.get("step", 0),
               samples_seen=resumed.get("samples_seen", 0), epoch=resumed.get("epoch", 0), step_in_epoch=resumed.get("step_in_epoch", 0), checkpoint=checkpoint)


def _report_data(log, data, global_batch: int, texts: tuple[str, ...]) -> None:
    """What the data gave: rows, images, what was skipped and why; training captions without any
    negation; and a validation split that is too small for one batch, which would otherwise give no
    validation loss without a word."""
    val_batches = len(data.val) // global_batch
    negated = sum(map(is_negated, data.train.texts["caption"]))
    log.event({"event": "data", "train_rows": len(data.train), "val_rows": len(data.val), "val_batches": val_batches,
               "captions_with_negation": negated, "ordinary_rows": len(data.train.ordinary_rows()),
               "absent_rows": len(data.train.absent_rows()),
               "images": len(data.all.images), "skipped_images": len(data.all.skipped_images),
               "skipped_rows": data.all.skipped_rows, "skipped": data.all.skipped_images})
    if data.all.skipped_images:
        log.message(f"skipped {len(data.all.skipped_images)} unreadable image(s) and their "
                    f"{data.all.skipped_rows} row(s); see the 'data' record in metrics.jsonl")
    if "negation" in texts and not negated:
        log.message("no training caption contains a negation, so the model can only learn that a text with "
                    "'no' is false, not what 'no' means; add true captions that deny a missing object "
                    "(triplegen generate --absent-objects 1, with object labels per image)")
    if len(data.val) and not val_batches:
        log.message(f"no validation loss: the validation split has {len(data.val)} rows, fewer than one batch of "
                    f"{global_batch} (batch x ranks); raise --val-fraction or lower --batch-size")


def clip_gradients(module: torch.nn.Module, max_norm: float | None) -> torch.Tensor:
    """Clip the gradient norm (when `max_norm` is set); returns the norm before clipping."""
    return torch.nn.utils.clip_grad_norm_(module.parameters(), max_norm if max_norm is not None else float("inf"))


def _model_card(config: TrainConfig, step: int, samples_seen: int) -> str:
    from semclip_train.training.metrics_log import read_metrics
    from semclip_train.training.model_card import render_model_card

    return render_model_card(config, step, samples_seen, read_metrics(config.run_dir))


def apply_update(module: torch.nn.Module, optimizer: torch.optim.Optimizer, config: TrainConfig) -> None:
    """Step, clear gradients, clamp the temperature."""
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    clamp_logit_scale(module.clip, config.max_logit_scale)


def accumulate_gradients(ddp: torch.nn.Module, micro_batches: list[dict], autocast) -> dict[str, torch.Tensor]:
    """Backward through each micro-batch's loss / k; DDP syncs gradients only on the last one."""
    totals: dict[str, torch.Tensor] = {}
    k = len(micro_batches)
    for i, inputs in enumerate(micro_batches):
        sync = i == k - 1 or not hasattr(ddp, "no_sync")
        with contextlib.nullcontext() if sync else ddp.no_sync():
            with autocast():
                terms = ddp(**inputs)
            (terms["loss"] / k).backward()
        for name, value in terms.items():
            totals[name] = totals.get(name, 0.0) + value.detach().float() / k
    return totals


@torch.no_grad()
def validate(run: Run) -> float | None:
    """Mean loss over the validation split's full global batches (None when it has none, which
    `_report_data` said at the start)."""
    config, world = run.config, run.context.world_size
    if len(run.data.val) < config.batch_size * world:
        return None
    loader, sampler = build_loader(run.data.val, run.processor, run.module.texts, config, run.context.rank, world,
                                   run.cache is None, False)
    sampler.set_epoch(0)
    run.module.eval()
    losses = []
    for batch in loader:
        with run.autocast():
            losses.append(run.module(**run.inputs(batch))["loss"].float())
    return distributed.all_reduce_mean(torch.stack(losses).mean()).item()


def run_evaluation(config, clip, processor, device, step, log, context) -> None:
    """`--eval-every`: rank 0 runs the evaluations named by `--eval` (see evaluate.py)."""
    if context.is_main:
        from semclip_train.evaluation.evaluate import run_during_training

        clip.eval()
        results = run_during_training(clip, processor, config.eval, device, image_root=config.image_root)
        log.event({"event": "evaluation", "step": step, **{f"eval/{k}": v for k, v in results.items()}})
    distributed.barrier()


def schedule(config: TrainConfig, total_steps: int, warmup_steps: int) -> dict[str, Any]:
    """The learning-rate schedule as run, for metrics.jsonl and the model card (the default warm-up
    depends on the run's length): the peak is reached at the last warm-up step."""
    peak_step = max(warmup_steps, 1)
    return {"event": "schedule", "total_steps": total_steps, "warmup_steps": warmup_steps, "peak_step": peak_step,
            "peak_lr": lr_at(peak_step - 1, config.lr, config.min_lr, warmup_steps, total_steps)}
