"""The model card (`final/README.md`) of a trained model: what it was fine-tuned from, on what, with
which loss and for how long, and what it scored; `hf upload user/name runs/x/final` pushes it as is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from semclip_train.training.config import TrainConfig


def render_model_card(config: TrainConfig, steps: int, samples_seen: int, records: list[dict[str, Any]]) -> str:
    """Markdown with YAML metadata built by huggingface_hub's ModelCard; `records` are metrics.jsonl's."""
    from huggingface_hub import ModelCard, ModelCardData

    hub_base = config.model is not None and not Path(config.model).exists()
    data = ModelCardData(
        library_name="transformers",
        pipeline_tag="zero-shot-image-classification",
        base_model=config.model if hub_base else None,
        tags=["clip", "semclip", "negation", "paraphrase", config.loss],
        license=None,
    )
    base = config.model or f"random initialisation from the CLIPConfig in `{config.clip_config}`"
    steps_line = next((r for r in reversed(records) if "step" in r and "event" not in r), {})
    data_line = next((r for r in records if r.get("event") == "data"), {})
    lines = [
        f"# {config.run_dir.resolve().name}",
        "",
        f"A CLIP model fine-tuned with `semclip-train` to tell a caption from its negation and to keep a paraphrase "
        f"close, with the `{config.loss}` loss.",
        "",
        "| | |",
        "|---|---|",
        f"| base model | {base} |",
        f"| triples | `{config.triples}` ({data_line.get('train_rows', '?')} training rows, "
        f"{data_line.get('val_rows', '?')} validation rows, {data_line.get('images', '?')} images) |",
        *_absent_line(config, data_line),
        f"| loss | `{config.loss}` |",
        f"| steps | {steps} |",
        f"| samples seen | {samples_seen:,} |",
        f"| batch size | {config.batch_size} per process, gradient accumulation {config.grad_accum} |",
        _lr_line(config, records),
        f"| frozen | {', '.join(t for t, f in (('vision tower', config.freeze_vision), ('text tower', config.freeze_text)) if f) or 'nothing'} |",
        f"| seed | {config.seed} |",
    ]
    if steps_line:
        lines.append(f"| last training loss | {steps_line.get('loss', float('nan')):.4f} (step {steps_line['step']}) |")
    lines += _results(records)
    lines += [
        "", "## Use it", "", "```python", "from transformers import CLIPModel, CLIPProcessor", "",
        'model = CLIPModel.from_pretrained("path/to/final")', 'processor = CLIPProcessor.from_pretrained("path/to/final")',
        "```", "",
        "Evaluate it with `semclip-eval ccneg|sugarcrepe-pp|negbench|retrieval|synthetic --model path/to/final`; push it with",
        "`hf upload user/name path/to/final`. The full training config is `config.json` in the run folder.", "",
    ]
    return str(ModelCard.from_template(data, template_str="---\n{{ card_data }}\n---\n\n" + "\n".join(lines)))


def _results(records: list[dict[str, Any]]) -> list[str]:
    """The last validation loss and the last evaluation's values, as a table (none when there are none)."""
    results: dict[str, float] = {}
    for record in records:
        if record.get("event") == "validation" and "val_loss" in record:
            results["val/loss"] = record["val_loss"]
        if record.get("event") == "evaluation":
            results.update({k: v for k, v in record.items() if k.startswith("eval/") and isinstance(v, (int, float))})
    if not results:
        return ["", "No validation split or evaluation was run (`--val-fraction`, `--eval-every`, `--eval`)."]
    return ["", "## Evaluation (last values during training)", "", "| metric | value |", "|---|---|",
            *(f"| {name} | {value:.4f} |" if isinstance(value, float) else f"| {name} | {value} |"
              for name, value in results.items())]


def _lr_line(config: TrainConfig, records: list[dict[str, Any]]) -> str:
    """The learning rate as the run's schedule reached it (metrics.jsonl's last `schedule` record)."""
    plan = next((r for r in reversed(records) if r.get("event") == "schedule"), None)
    if plan is None:  # a run logged before schedules were recorded
        warmup = config.warmup_steps if config.warmup_steps is not None else "min(50, a tenth of the run)"
        return f"| learning rate | {config.lr:g} (warm-up {warmup} steps, then cosine) |"
    return (f"| learning rate | peak {plan['peak_lr']:g} at step {plan['peak_step']} (warm-up {plan['warmup_steps']} "
            f"steps, then cosine to {config.min_lr:g} at step {plan['total_steps']}) |")


def _absent_line(config: TrainConfig, data_line: dict[str, Any]) -> list[str]:
    """The absent-object rows (triplegen --absent-objects) and their share of each batch, when there are any."""
    share = config.absent_share
    if share is None and not data_line.get("absent_rows"):
        return []
    mix = ("as they came in the data" if share is None else "not trained on (`--absent-share 0`)" if share == 0
           else f"{share * 100:g}% of every batch (`--absent-share {share:g}`)")
    return [f"| absent-object rows | {data_line.get('absent_rows', '?')} of the training rows; {mix} |"]
