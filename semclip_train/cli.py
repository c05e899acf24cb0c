"""`semclip-train`: a thin Typer layer that builds a `TrainConfig` and calls `semclip_train.train`.

Every option defaults to None here, so that only flags the user typed override the `--config` file
(and the resumed run's saved config); the real defaults live in `TrainConfig`.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from semclip_core.cli_errors import Command

EXAMPLES = """\
Examples:

  semclip-train --triples triples.parquet --image-root /data/coco \\
      --model openai/clip-vit-base-patch32 --output runs/semclip-b32

  torchrun --nproc-per-node 8 -m semclip_train --config train.yaml   (same flags, data parallel)

  semclip-train --resume runs/semclip-b32                             (continue after a crash)

The default loss, semclip-hardneg, is SemCLIP with the negations also used as hard negatives of
the image (as NegCLIP): with absent-object rows (triplegen --absent-objects) it learns negation in
both directions and which object a "no" applies to. --loss semclip is the paper's exact objective.
The other defaults follow the paper's recipe: vision tower frozen, AdamW lr 5e-5, weight decay 0.2,
min(50, a tenth of the steps) warm-up steps then cosine to 0, gradient clipping 1.0, bf16 on CUDA.

A --config file (YAML or JSON) takes every option above as a key, spelled as the flag without
"--" (model-config: tiny/, skip-bad-images: true, no-freeze-vision: true) or with underscores;
flags on the command line override it. Keys without a flag: min-lr, beta1, beta2, eps,
normalize-projections.

A run that diverges (a loss, gradient, weight or embedding that is not finite) stops with exit code 1
and keeps its last good checkpoint; a second run on the same --output is refused while one runs.
The same command on a finished run says it is complete and exits 0 without rewriting anything.
"""

DATA, MODEL, LOSS, OPTIM, RUN = "Data", "Model", "Loss", "Optimisation", "Run"


class LossChoice(str, Enum):
    semclip_hardneg = "semclip-hardneg"
    clip = "clip"
    semclip = "semclip"
    paraphrase_only = "paraphrase-only"
    negation_only = "negation-only"
    negclip = "negclip"
    conclip = "conclip"


class TrackerChoice(str, Enum):
    auto = "auto"
    tensorboard = "tensorboard"
    wandb = "wandb"
    mlflow = "mlflow"
    none = "none"


class PrecisionChoice(str, Enum):
    auto = "auto"
    bf16 = "bf16"
    fp32 = "fp32"


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)


def _opt(help: str, panel: str, *names: str, **kw: Any):
    return typer.Option(*names, help=help, rich_help_panel=panel, show_default=False, **kw)


@app.command(cls=Command, epilog=EXAMPLES, context_settings={"help_option_names": ["-h", "--help"]})
def train_command(
    triples: Annotated[Path | None, _opt("Triples written by triplegen generate: its dataset folder or a .parquet file.", DATA)] = None,
    image_root: Annotated[Path | None, _opt("Folder that image paths are relative to "
                                            "[default: the triples file's folder].", DATA)] = None,
    val_fraction: Annotated[float | None, _opt("Fraction of distinct images held out [0.05].", DATA)] = None,
    strict_images: Annotated[bool | None, _opt("Stop at the first unreadable image instead of skipping it.",
                                               DATA, "--strict-images/--skip-bad-images")] = None,
    workers: Annotated[int | None, _opt("DataLoader worker processes [2].", DATA)] = None,
    absent_share: Annotated[float | None, _opt(
        "Share of absent-object rows (triplegen --absent-objects) in every batch; default: as they come in the "
        "data. 0: absent-object rows are not used for training at all.", DATA)] = None,
    model: Annotated[str | None, _opt("Pretrained CLIP: hub name or local folder.", MODEL)] = None,
    model_config: Annotated[Path | None, _opt("Random init from a CLIPConfig JSON or folder (tests, ablations).",
                                              MODEL)] = None,
    processor: Annotated[str | None, _opt("Processor folder or name [default: --model or --model-config].",
                                          MODEL)] = None,
    freeze_vision: Annotated[bool | None, _opt("Freeze the vision tower [on, as in the paper].", MODEL,
                                               "--freeze-vision/--no-freeze-vision")] = None,
    freeze_text: Annotated[bool | None, _opt("Freeze the text tower [off].", MODEL,
                                             "--freeze-text/--no-freeze-text")] = None,
    grad_checkpointing: Annotated[bool | None, _opt("Recompute activations in backward (less memory).", MODEL,
                                                    "--grad-checkpointing/--no-grad-checkpointing")] = None,
    cache_image_embeddings: Annotated[bool | None, _opt(
        "Encode each image once while the vision tower is frozen [on].", MODEL,
        "--cache-image-embeddings/--no-cache-image-embeddings")] = None,
    image_cache_dir: Annotated[Path | None, _opt("Where cached embeddings live [OUTPUT/image_cache].",
                                                 MODEL)] = None,
    loss: Annotated[LossChoice | None, _opt("Training objective [semclip-hardneg]; semclip is the paper's exact objective.", LOSS)] = None,
    alpha: Annotated[float | None, _opt("Weight of the contrastive term.", LOSS)] = None,
    beta: Annotated[float | None, _opt("Weight of the paraphrase term.", LOSS)] = None,
    gamma: Annotated[float | None, _opt("Weight of the negation term.", LOSS)] = None,
    n_projections: Annotated[int | None, _opt("Projection vectors of the SemCLIP terms [2].", LOSS)] = None,
    learnable_projections: Annotated[bool | None, _opt("Train the projection basis [fixed].", LOSS,
                                                       "--learnable-projections/--fixed-projections")] = None,
    epochs: Annotated[int | None, _opt("Passes over the training split [1].", OPTIM)] = None,
    max_steps: Annotated[int | None, _opt("Optimizer steps; overrides --epochs.", OPTIM)] = None,
    batch_size: Annotated[int | None, _opt("Per-process micro-batch [256].", OPTIM)] = None,
    grad_accum: Annotated[int | None, _opt("Micro-batches per step (does not add negatives) [1].", OPTIM)] = None,
    lr: Annotated[float | None, _opt("Peak learning rate [5e-5].", OPTIM)] = None,
    weight_decay: Annotated[float | None, _opt("AdamW weight decay on matrices [0.2].", OPTIM)] = None,
    warmup_steps: Annotated[int | None, _opt(
        "Linear warm-up steps, then cosine to 0 [min(50, a tenth of the steps)].", OPTIM)] = None,
    grad_clip: Annotated[float | None, _opt("Gradient-norm clip [1.0].", OPTIM)] = None,
    precision: Annotated[PrecisionChoice | None, _opt("auto: bf16 on CUDA, fp32 on CPU.", OPTIM)] = None,
    seed: Annotated[int | None, _opt("Seed of split, order and init [0].", OPTIM)] = None,
    output: Annotated[Path | None, _opt("Run folder (config, metrics, checkpoints, final model).", RUN,
                                        "--output", "-o")] = None,
    resume: Annotated[Path | None, _opt("Continue the run in this folder from its latest checkpoint.", RUN)] = None,
    config: Annotated[Path | None, _opt("YAML or JSON file of options; flags override it.", RUN)] = None,
    checkpoint_every: Annotated[int | None, _opt("Checkpoint every N steps (and each epoch end) [500].",
                                                 RUN)] = None,
    log_every: Annotated[int | None, _opt("Log every N steps [10].", RUN)] = None,
    eval_every: Annotated[int | None, _opt("Run the --eval evaluations every N steps.", RUN)] = None,
    eval: Annotated[list[str] | None, _opt("Evaluation during training, e.g. ccneg:val.parquet (repeatable).",
                                           RUN)] = None,
    report_to: Annotated[list[TrackerChoice] | None, _opt(
        "Also log to tensorboard, wandb or mlflow (repeatable; none: only metrics.jsonl) [auto: tensorboard where "
        "installed]. Settings from the environment: WANDB_PROJECT, WANDB_MODE=offline, MLFLOW_TRACKING_URI, "
        "MLFLOW_EXPERIMENT_NAME.", RUN)] = None,
    device: Annotated[str | None, _opt("Device [the rank's CUDA device, else cpu].", RUN)] = None,
    quiet: Annotated[bool | None, _opt("No progress bar or messages.", RUN, "--quiet/--no-quiet", "-q")] = None,
) -> None:
    """Fine-tune CLIP on (caption, paraphrase, negation) triples with the SemCLIP loss or a baseline."""
    flags = {key: value for key, value in locals().items() if key != "config" and value is not None}
    from semclip_train.extras import require_train_extra

    require_train_extra("semclip-train")
    from semclip_train.config import resolve_config
    from semclip_train.trainer import train

    if "model_config" in flags:
        flags["clip_config"] = flags.pop("model_config")
    for key in ("loss", "precision"):
        if key in flags:
            flags[key] = flags[key].value
    if not flags.get("eval"):
        flags.pop("eval", None)
    if flags.get("report_to"):
        flags["report_to"] = [choice.value for choice in flags["report_to"]]
    else:
        flags.pop("report_to", None)
    resolved = resolve_config(flags, config)
    result = train(resolved)
    if not resolved.quiet and result.already_complete:
        typer.echo(f"{result.run_dir} is complete: final/ was trained with these settings ({result.steps} steps); "
                   "nothing was rewritten")
    elif not resolved.quiet and result.final_dir is not None:
        typer.echo(f"trained {result.steps} steps on {result.samples_seen} samples; model in {result.final_dir}")


def main() -> None:
    app()
