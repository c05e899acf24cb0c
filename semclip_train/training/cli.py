"""`semclip-train`: a thin Typer layer that builds a `TrainConfig` and calls `semclip_train.train`.

Every option defaults to None here, so that only flags the user typed override the `--config` file
(and the resumed run's saved config); the real defaults live in `TrainConfig`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from semclip_core.cli_errors import Command
from semclip_core.field_options import choices, field_option, given, shown_default
from semclip_core.help_panels import PanelledHelp
from semclip_train.training.config import DEFAULT_WARMUP, Precision, Tracker, TrainConfig, resolve_config
from semclip_train.training.loss_names import DEFAULT_LOSS, LossName


def _default(field: str) -> str | None:
    return shown_default(TrainConfig.model_fields[field])


EXAMPLES = f"""\
Examples:

  semclip-train --triples triples.parquet --image-root /data/coco \\
      --model openai/clip-vit-base-patch32 --output runs/semclip-b32

  torchrun --nproc-per-node 8 -m semclip_train --config train.yaml   (same flags, data parallel)

  semclip-train --resume runs/semclip-b32                             (continue after a crash)

The default loss, {DEFAULT_LOSS}, is SemCLIP with each row's negation also used as a hard negative
of its image and the text terms at a tenth of the contrastive term's weight (--beta 1 --gamma 1:
the paper's): with absent-object rows (triplegen --absent-objects) it learns negation in
both directions and which object a "no" applies to. --loss semclip is the paper's exact objective.
The other defaults follow the paper's recipe: vision tower frozen, AdamW lr {_default("lr")}, weight decay
{_default("weight_decay")}, min({DEFAULT_WARMUP}, a tenth of the steps) warm-up steps then cosine to 0, gradient clipping
{_default("grad_clip")}, bf16 on CUDA.

A --config file (YAML or JSON) takes every option above as a key, spelled as the flag without
"--" (model-config: tiny/, skip-bad-images: true, no-freeze-vision: true) or with underscores;
flags on the command line override it. Keys without a flag: min-lr, beta1, beta2, eps,
normalize-projections.

A run that diverges (a loss, gradient, weight or embedding that is not finite) stops with exit code 1
and keeps its last good checkpoint; a second run on the same --output is refused while one runs.
The same command on a finished run says it is complete and exits 0 without rewriting anything.
"""

DATA, MODEL, LOSS, OPTIM, RUN = "Data", "Model", "Loss", "Optimisation", "Run"
LossChoice = choices("LossChoice", LossName)
TrackerChoice = choices("TrackerChoice", Tracker)
PrecisionChoice = choices("PrecisionChoice", Precision)

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)


class TrainCommand(PanelledHelp, Command):
    """One-line errors, and `--help` in the panels data, model, loss, optimisation and run."""


def _opt(field: str, panel: str, *names: str) -> Any:
    return field_option(TrainConfig, field, *names, panel=panel)


@app.command(cls=TrainCommand, epilog=EXAMPLES, context_settings={"help_option_names": ["-h", "--help"]})
def train_command(
    ctx: typer.Context,
    triples: Annotated[Path | None, _opt("triples", DATA)] = None,
    image_root: Annotated[Path | None, _opt("image_root", DATA)] = None,
    val_fraction: Annotated[float | None, _opt("val_fraction", DATA)] = None,
    strict_images: Annotated[bool | None, _opt("strict_images", DATA, "--strict-images/--skip-bad-images")] = None,
    workers: Annotated[int | None, _opt("workers", DATA)] = None,
    absent_share: Annotated[float | None, _opt("absent_share", DATA)] = None,
    model: Annotated[str | None, _opt("model", MODEL)] = None,
    clip_config: Annotated[Path | None, _opt("clip_config", MODEL, "--model-config")] = None,
    processor: Annotated[str | None, _opt("processor", MODEL)] = None,
    freeze_vision: Annotated[bool | None, _opt("freeze_vision", MODEL, "--freeze-vision/--no-freeze-vision")] = None,
    freeze_text: Annotated[bool | None, _opt("freeze_text", MODEL, "--freeze-text/--no-freeze-text")] = None,
    grad_checkpointing: Annotated[bool | None, _opt("grad_checkpointing", MODEL,
                                                    "--grad-checkpointing/--no-grad-checkpointing")] = None,
    cache_image_embeddings: Annotated[bool | None, _opt(
        "cache_image_embeddings", MODEL, "--cache-image-embeddings/--no-cache-image-embeddings")] = None,
    image_cache_dir: Annotated[Path | None, _opt("image_cache_dir", MODEL)] = None,
    loss: Annotated[LossChoice | None, _opt("loss", LOSS)] = None,
    alpha: Annotated[float | None, _opt("alpha", LOSS)] = None,
    beta: Annotated[float | None, _opt("beta", LOSS)] = None,
    gamma: Annotated[float | None, _opt("gamma", LOSS)] = None,
    n_projections: Annotated[int | None, _opt("n_projections", LOSS)] = None,
    learnable_projections: Annotated[bool | None, _opt("learnable_projections", LOSS,
                                                       "--learnable-projections/--fixed-projections")] = None,
    paraphrase_positives: Annotated[bool | None, _opt("paraphrase_positives", LOSS,
                                                      "--paraphrase-positives/--no-paraphrase-positives")] = None,
    epochs: Annotated[int | None, _opt("epochs", OPTIM)] = None,
    max_steps: Annotated[int | None, _opt("max_steps", OPTIM)] = None,
    batch_size: Annotated[int | None, _opt("batch_size", OPTIM)] = None,
    grad_accum: Annotated[int | None, _opt("grad_accum", OPTIM)] = None,
    lr: Annotated[float | None, _opt("lr", OPTIM)] = None,
    weight_decay: Annotated[float | None, _opt("weight_decay", OPTIM)] = None,
    warmup_steps: Annotated[int | None, _opt("warmup_steps", OPTIM)] = None,
    grad_clip: Annotated[float | None, _opt("grad_clip", OPTIM)] = None,
    precision: Annotated[PrecisionChoice | None, _opt("precision", OPTIM)] = None,
    seed: Annotated[int | None, _opt("seed", OPTIM)] = None,
    output: Annotated[Path | None, _opt("output", RUN, "--output", "-o")] = None,
    resume: Annotated[Path | None, _opt("resume", RUN)] = None,
    config: Annotated[Path | None, typer.Option(help="YAML or JSON file of options; flags override it.",
                                                rich_help_panel=RUN, show_default=False)] = None,
    checkpoint_every: Annotated[int | None, _opt("checkpoint_every", RUN)] = None,
    log_every: Annotated[int | None, _opt("log_every", RUN)] = None,
    eval_every: Annotated[int | None, _opt("eval_every", RUN)] = None,
    eval: Annotated[list[str] | None, _opt("eval", RUN)] = None,
    report_to: Annotated[list[TrackerChoice] | None, _opt("report_to", RUN)] = None,
    device: Annotated[str | None, _opt("device", RUN)] = None,
    quiet: Annotated[bool | None, _opt("quiet", RUN, "--quiet/--no-quiet", "-q")] = None,
) -> None:
    """Fine-tune CLIP on (caption, paraphrase, negation) triples with the SemCLIP loss or a baseline."""
    flags = given(ctx)
    flags.pop("config", None)
    from semclip_train.extras import require_train_extra

    require_train_extra("semclip-train")
    from semclip_train.training.trainer import train

    resolved = resolve_config(flags, config)
    result = train(resolved)
    if not resolved.quiet and result.already_complete:
        typer.echo(f"{result.run_dir} is complete: final/ was trained with these settings ({result.steps} steps); "
                   "nothing was rewritten")
    elif not resolved.quiet and result.final_dir is not None:
        typer.echo(f"trained {result.steps} steps on {result.samples_seen} samples; model in {result.final_dir}")


def main() -> None:
    app()
