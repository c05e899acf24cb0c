"""The run folder of `semclip-train`: which folders it may not overlap, and when a rerun has nothing
to do.

A run writes `config.json`, `metrics.jsonl`, `checkpoints/`, `final/` and caches into its folder, and
removes a killed run's temporaries there, so the folder must be the run's own: `-o` naming the model
being fine-tuned (`--model M -o M`) would replace `M/config.json` with the run's config and leave
the model unloadable. An output that is, holds or lies inside a folder the run reads (the model, the
`--model-config`, the processor, the triples, the image root) is refused before anything is written.

A finished run (`final/` written) rerun with the same settings is complete: the command says so and
exits 0 without rewriting anything, as a Slurm `--requeue` or a retry wrapper needs. Other settings on
that folder are still refused (or continued with `--resume`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from semclip_train.errors import SemClipError
from semclip_train.training.config import CONFIG_NAME, TrainConfig

# Settings that change how a run is shown, not what it trains; a rerun may differ in them.
PRESENTATION = ("quiet", "workers", "resume", "output")


def read_inputs(config: TrainConfig) -> dict[str, Path]:
    """The local files and folders a run reads, by the flag that names them."""
    named = {"--model": config.model, "--model-config": config.clip_config, "--processor": config.processor,
             "--triples": config.triples, "--image-root": config.image_root}
    return {flag: Path(value) for flag, value in named.items() if value is not None and Path(value).exists()}


def refuse_overlapping_inputs(config: TrainConfig) -> None:
    """Refuse a run folder (or image cache folder) that is, holds, or lies inside anything the run reads."""
    outputs = {"--output": (config.run_dir, "a run writes config.json, checkpoints/ and final/ into its folder"),
               "--image-cache-dir": (config.image_cache_dir, "the cache writes its files there")}
    for flag, (path, why) in outputs.items():
        if path is None:
            continue
        output = Path(os.path.realpath(path))
        for input_flag, source in read_inputs(config).items():
            relation = _overlap(output, Path(os.path.realpath(source)))
            if relation is not None:
                raise SemClipError(f"{flag} {path} {relation} {input_flag} {source}; {why}, which would change "
                                   "its input: name a folder of its own")


def _overlap(output: Path, source: Path) -> str | None:
    if output == source:
        return "is"
    if source.is_relative_to(output):
        return "holds"
    if source.is_dir() and output.is_relative_to(source):
        return "lies inside"
    return None


def _settings(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if key not in PRESENTATION}


def saved_config(run_dir: Path) -> dict[str, Any] | None:
    try:
        saved = json.loads((run_dir / CONFIG_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return saved if isinstance(saved, dict) else None


def finished_with(config: TrainConfig) -> bool:
    """True when the run folder holds a finished run (`final/`) trained with these settings."""
    saved = saved_config(config.run_dir)
    if saved is None or not (config.run_dir / "final").is_dir():
        return False
    return _settings(saved) == _settings(config.model_dump(mode="json"))


def describe_difference(config: TrainConfig) -> str:
    """The first setting in which `config` differs from the folder's saved run, for the refusal."""
    saved = _settings(saved_config(config.run_dir) or {})
    wanted = _settings(config.model_dump(mode="json"))
    key = next((key for key in wanted if saved.get(key) != wanted[key]), None)
    if key is None:
        return ""
    return f" (its {key} is {json.dumps(saved.get(key))}, here {json.dumps(wanted[key])})"


def finished_counts(run_dir: Path) -> tuple[int, int]:
    """(steps, samples seen) of a finished run, from the last step its metrics.jsonl logged."""
    from semclip_train.training.metrics_log import read_metrics

    try:
        records = read_metrics(run_dir)
    except (OSError, ValueError):
        return 0, 0
    last = next((r for r in reversed(records) if "step" in r and "event" not in r), {})
    return int(last.get("step", 0)), int(last.get("samples_seen", 0))
