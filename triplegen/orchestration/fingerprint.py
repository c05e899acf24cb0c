"""A run's fingerprint: the settings and inputs that decide its rows.

A resumed run compares it with the one its work folder was started with (triplegen.orchestration.resume), and a
rerun with the one stored in the finished output (triplegen.orchestration.finished): either way a run never mixes
rows made under other settings. Settings that do not change the rows (where it runs, how many
requests are in flight, the executor) are not in it.
"""

from __future__ import annotations

from triplegen.checks.blind import blind_settings
from triplegen.config import GenerateConfig
from triplegen.cooccurrence import file_digest
from triplegen.orchestration.plan import GenerationPlan
from triplegen.io.readers import CaptionSource


def run_fingerprint(config: GenerateConfig, template, source: CaptionSource, plan: GenerationPlan) -> dict:
    fingerprint = {
        "prompt_hash": template.hash,
        "prompt": f"{template.name} v{template.version}",
        "backend": config.resolved_backend(),
        "model": config.model,
        "seed": config.seed,
        "columns": [source.columns.caption, source.columns.image, source.columns.id],
        "input": source.fingerprint()["files"],
        "shard": str(config.shard) if config.shard else None,
        "limit": config.limit,
        "chunk_size": config.chunk_size,
        "sampling": plan.sampling,
        "max_attempts": config.max_attempts,
        "checks": {"semantic": config.semantic_check},
        "constrain": config.constrain,
        "retry_temperature": config.retry_temperature,
    }
    if plan.judge_template is not None:
        fingerprint["judge"] = {"model": config.judge_model, "base_url": config.judge_base_url,
                                "prompt_hash": plan.judge_template.hash}
    if config.blind_model is not None:
        fingerprint["blind"] = blind_settings(config.blind_model)
    if plan.absent_template is not None:  # only then, so that older runs still resume
        fingerprint["absent"] = {"count": config.absent_objects, "objects_col": config.objects_col,
                                 "prompt_hash": plan.absent_template.hash}
        # counted over the whole input: unfinished rows edited in place change it (triplegen.orchestration.resume)
        fingerprint["vocabulary"] = plan.vocabulary.own.digest()
        if config.cooccurrence is not None:  # only then, so that runs without a table still resume
            fingerprint["cooccurrence"] = file_digest(config.cooccurrence)  # its content: a table edited in place too
        if config.object_synonyms is not None:
            fingerprint["object_synonyms"] = plan.vocabulary.lexicon.fingerprint()
    return fingerprint
