"""The typed configuration of a training run: CLI flags, a YAML/JSON config file and Python callers
all build one `TrainConfig`, which is validated on construction and saved resolved in the run dir.

Precedence, lowest first: field defaults < the saved config of the run being resumed < the
`--config` file < flags given on the command line.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from semclip_train.errors import SemClipError
from semclip_train.training.loss_names import DEFAULT_LOSS, LossName
from semclip_core.mapping_text import DuplicateKey, parse_mapping_text

Precision = Literal["auto", "bf16", "fp32"]
Tracker = Literal["auto", "tensorboard", "wandb", "mlflow", "none"]
CONFIG_NAME = "config.json"
DEFAULT_WARMUP = 50
FLOAT32_MAX = 3.4028234663852886e38
FLOAT32_FIELDS = ("lr", "min_lr", "weight_decay", "eps", "grad_clip", "alpha", "beta", "gamma")


class TrainConfig(BaseModel):
    """Everything that defines a training run (defaults: the SemCLIP paper's recipe)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # data
    triples: Path | None = Field(default=None, description=(
        "Triples written by triplegen generate: its dataset folder or a .parquet file."))  # None only when resuming
    image_root: Path | None = Field(default=None, description=(
        "Folder that image paths are relative to (default: the triples file's folder)."))
    val_fraction: float = Field(default=0.05, ge=0.0, lt=1.0, description="Fraction of distinct images held out.")
    strict_images: bool = Field(default=False, description="Stop at the first unreadable image instead of skipping it.")
    workers: int = Field(default=2, ge=0, description="DataLoader worker processes.")
    absent_share: float | None = Field(default=None, ge=0.0, le=1.0, description=(
        "Share of absent-object rows (triplegen --absent-objects) in every batch (default: as they come in the "
        "data). 0: absent-object rows are not used for training at all."))
    # model
    model: str | None = Field(default=None, description="Pretrained CLIP: hub name or local folder.")
    clip_config: Path | None = Field(default=None, description=(
        "Random init from a CLIPConfig JSON or folder (tests, ablations)."))  # the flag is --model-config
    processor: str | None = Field(default=None, description=(
        "Processor folder or name (default: --model or --model-config)."))
    freeze_vision: bool = Field(default=True, description="Freeze the vision tower (as in the paper).")
    freeze_text: bool = Field(default=False, description="Freeze the text tower.")
    grad_checkpointing: bool = Field(default=False, description="Recompute activations in backward (less memory).")
    cache_image_embeddings: bool = Field(default=True, description=(
        "Encode each image once while the vision tower is frozen."))
    image_cache_dir: Path | None = Field(default=None, description=(
        "Where cached embeddings live (default: OUTPUT/image_cache)."))
    # loss
    loss: LossName = Field(default=DEFAULT_LOSS, description=(
        "Training objective; semclip is the paper's exact objective."))
    alpha: float | None = Field(default=None, ge=0.0, description=(
        "Weight of the contrastive term (default: the loss's own)."))
    beta: float | None = Field(default=None, ge=0.0, description="Weight of the paraphrase term (default: the loss's own).")
    gamma: float | None = Field(default=None, ge=0.0, description="Weight of the negation term (default: the loss's own).")
    n_projections: int | None = Field(default=None, ge=1, description=(
        "Projection vectors of the SemCLIP terms (default: the loss's own, 2)."))
    learnable_projections: bool | None = Field(default=None, description=(
        "Train the projection basis (default: fixed)."))
    normalize_projections: bool | None = None  # a key of --config files only (losses.SemClipLoss)
    paraphrase_positives: bool | None = Field(default=None, description=(
        "Score the image against the paraphrase too, as a second caption (SemCLIP losses; default: off)."))
    # optimisation
    epochs: int = Field(default=1, ge=1, description="Passes over the training split.")
    max_steps: int | None = Field(default=None, ge=1, description="Optimizer steps; overrides --epochs.")
    batch_size: int = Field(default=256, ge=1, description="Per-process micro-batch.")
    grad_accum: int = Field(default=1, ge=1, description="Micro-batches per step (does not add negatives).")
    lr: float = Field(default=5e-5, gt=0.0, description="Peak learning rate.")
    min_lr: float = Field(default=0.0, ge=0.0)
    weight_decay: float = Field(default=0.2, ge=0.0, description="AdamW weight decay on matrices.")
    # None: min(50, a tenth of the run's steps), so a short run still reaches its lr (`warmup_for`)
    warmup_steps: int | None = Field(default=None, ge=0, description=(
        f"Linear warm-up steps, then cosine to 0 (default: min({DEFAULT_WARMUP}, a tenth of the steps))."))
    beta1: float = Field(default=0.9, gt=0.0, lt=1.0)
    beta2: float = Field(default=0.98, gt=0.0, lt=1.0)
    eps: float = Field(default=1e-6, gt=0.0)
    grad_clip: float | None = Field(default=1.0, gt=0.0, description="Gradient-norm clip.")
    precision: Precision = Field(default="auto", description="auto: bf16 on CUDA, fp32 on CPU.")
    seed: int = Field(default=0, description="Seed of split, order and init.")
    device: str | None = Field(default=None, description="Device (default: the rank's CUDA device, else cpu).")
    # run
    output: Path | None = Field(default=None, description="Run folder (config, metrics, checkpoints, final model).")
    resume: Path | None = Field(default=None, description=(
        "Continue the run in this folder from its latest checkpoint."))
    checkpoint_every: int = Field(default=500, ge=1, description="Checkpoint every N steps (and each epoch end).")
    log_every: int = Field(default=10, ge=1, description="Log every N steps.")
    eval_every: int | None = Field(default=None, ge=1, description="Run the --eval evaluations every N steps.")
    eval: list[str] = Field(default_factory=list, description=(
        "Evaluation during training, e.g. ccneg:val.parquet (repeatable; see semclip_train.evaluation.evaluate)."))
    report_to: list[Tracker] = Field(default_factory=lambda: ["auto"], description=(
        "Also log to tensorboard, wandb or mlflow (repeatable; none: only metrics.jsonl; auto: tensorboard where "
        "installed). Settings from the environment: WANDB_PROJECT, WANDB_MODE=offline, MLFLOW_TRACKING_URI, "
        "MLFLOW_EXPERIMENT_NAME."))
    quiet: bool = Field(default=False, description="No progress bar or messages.")

    @model_validator(mode="after")
    def _consistent(self) -> "TrainConfig":
        if self.output is None and self.resume is None:
            raise ValueError("an output folder is needed (--output)")
        if self.resume is not None and self.output is not None and _same(self.resume, self.output) is False:
            raise ValueError(f"--resume {self.resume} and --output {self.output} name different runs")
        if self.triples is None:
            raise ValueError("the triples Parquet file is needed (--triples)")
        if self.model is None and self.clip_config is None:
            raise ValueError("name a pretrained model (--model) or a random-init config (--model-config)")
        if self.model is not None and self.clip_config is not None:
            raise ValueError("--model and --model-config exclude each other")
        if self.freeze_vision and self.freeze_text:
            raise ValueError("both towers frozen: only the logit scale would train")
        if self.eval and self.eval_every is None:
            raise ValueError("--eval needs --eval-every N")
        if "none" in self.report_to and len(self.report_to) > 1:
            raise ValueError("--report-to none excludes other trackers")
        if self.min_lr > self.lr:
            raise ValueError(f"min_lr {self.min_lr} is above lr {self.lr}")
        return self

    @field_validator(*FLOAT32_FIELDS, mode="before")
    @classmethod
    def _finite_in_float32(cls, value: Any) -> Any:
        """The optimizer computes in float32: a value beyond its range (lr 1e39) overflows inside
        AdamW with a traceback, and nan or inf make every step NaN, so they are refused here as bad
        input (before the range checks, whose message would not say why)."""
        try:
            number = float(value)
        except (TypeError, ValueError):
            return value  # not a number at all: pydantic's own message says so
        if not (math.isfinite(number) and abs(number) <= FLOAT32_MAX):
            raise ValueError(f"{number:g} is not a finite float32 number (the largest is {FLOAT32_MAX:.4g})")
        return value

    def warmup_for(self, total_steps: int) -> int:
        """The warm-up steps of a run of `total_steps`: as set, else min(50, a tenth of the steps)
        (50 would keep a 20-step run below its lr throughout). A warm-up longer than the run never
        reaches the peak lr, which is refused rather than reported as reached."""
        if self.warmup_steps is None:
            return min(DEFAULT_WARMUP, total_steps // 10)
        if self.warmup_steps > total_steps:
            raise SemClipError(f"--warmup-steps {self.warmup_steps} is longer than the run's {total_steps} steps, "
                             f"so the learning rate would never reach --lr {self.lr:g}; lower it or leave it unset "
                             f"(default: min({DEFAULT_WARMUP}, a tenth of the steps))")
        return self.warmup_steps

    @property
    def run_dir(self) -> Path:
        return self.output if self.output is not None else self.resume  # type: ignore[return-value]

    @property
    def processor_source(self) -> str:
        return self.processor or self.model or str(self.clip_config)

    @property
    def max_logit_scale(self) -> float:
        return math.log(100.0)  # clamp as in CLIP and OpenCLIP

    def loss_options(self) -> dict[str, Any]:
        """Only the loss options the user set: a loss refuses options that do not apply to it."""
        names = ("alpha", "beta", "gamma", "n_projections", "learnable_projections", "normalize_projections",
                 "paraphrase_positives")
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}


def _same(a: Path, b: Path) -> bool:
    return a.expanduser().resolve() == b.expanduser().resolve()


# Keys spelled as the flags that do not name a field: `--model-config`, and the negative halves of
# the on/off flags (`skip-bad-images: true` is `strict_images: false`).
FLAG_KEYS = {"model_config": "clip_config"}
NEGATIVE_KEYS = {
    "skip_bad_images": "strict_images", "no_freeze_vision": "freeze_vision", "no_freeze_text": "freeze_text",
    "no_grad_checkpointing": "grad_checkpointing", "no_cache_image_embeddings": "cache_image_embeddings",
    "fixed_projections": "learnable_projections", "no_quiet": "quiet",
    "no_paraphrase_positives": "paraphrase_positives",
}


def read_config_file(path: Path) -> dict[str, Any]:
    """A YAML or JSON mapping of option names to values, spelled as the fields (`clip_config`) or as
    the flags (`model-config`, `skip-bad-images: true`)."""
    if not path.is_file():
        raise SemClipError(f"config file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SemClipError(f"cannot read config file {path}: {exc}") from None
    try:
        data = parse_mapping_text(text, json_format=path.suffix.lower() == ".json")
    except DuplicateKey as exc:
        raise SemClipError(f"config file {path}: {exc}; give each option once") from None
    except Exception as exc:  # yaml and json raise different types; both are the user's file
        raise SemClipError(f"cannot parse config file {path}: {' '.join(str(exc).split())}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SemClipError(f"config file {path} must hold a mapping of option names to values")
    return config_keys(data, str(path))


def config_keys(data: dict[str, Any], where: str) -> dict[str, Any]:
    """Option names as fields: dashes become underscores, flag spellings their field."""
    options: dict[str, Any] = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name in NEGATIVE_KEYS:
            if not isinstance(value, bool):
                raise SemClipError(f"{where}: {key} must be true or false, got {value!r}")
            name, value = NEGATIVE_KEYS[name], not value
        name = FLAG_KEYS.get(name, name)
        if name in options:
            raise SemClipError(f"{where}: {key} sets {name} a second time")
        if name not in TrainConfig.model_fields:
            raise SemClipError(f"{where}: unknown option {key!r}; the keys are the options of semclip-train --help")
        options[name] = value
    return options


def build_config(**layers: dict[str, Any] | None) -> TrainConfig:
    """Merge option layers (later wins) into a validated config; errors become one line."""
    merged: dict[str, Any] = {}
    for layer in layers.values():
        merged.update({key: value for key, value in (layer or {}).items() if value is not None})
    try:
        return TrainConfig(**merged)
    except ValidationError as exc:
        raise SemClipError(f"invalid training config: {_describe(exc)}") from None


def _describe(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    extra = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return (f"{where}: {message}" if where else message) + extra


def resolve_config(flags: dict[str, Any], config_file: Path | None = None) -> TrainConfig:
    """The run's config from defaults, the resumed run's saved config, a config file and flags."""
    from_file = read_config_file(config_file) if config_file is not None else {}
    resume = flags.get("resume") or from_file.get("resume")
    saved: dict[str, Any] = {}
    if resume is not None:
        saved_path = Path(resume) / CONFIG_NAME
        if not saved_path.is_file():
            raise SemClipError(f"--resume {resume}: no {CONFIG_NAME} there, not a run folder")
        try:
            saved = json.loads(saved_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError too
            raise SemClipError(f"--resume {resume}: {saved_path} is unreadable ({str(exc).splitlines()[0]}); "
                               "restore it, or start a new run with --output") from None
        if not isinstance(saved, dict):
            raise SemClipError(f"--resume {resume}: {saved_path} does not hold a training config")
        saved.pop("resume", None)
    return build_config(saved=saved, file=from_file, flags=flags)


def save_config(config: TrainConfig, folder: Path) -> Path:
    """Write the resolved config as JSON, atomically."""
    from semclip_core.files import write_text_atomic

    return write_text_atomic(folder / CONFIG_NAME, config.model_dump_json(indent=2))
