"""triplegen: turn captions into (caption, paraphrase, negation) triples and check them.

    import triplegen
    summary = triplegen.generate(triplegen.GenerateConfig(input="caps.parquet", output="out/coco"))
    report = triplegen.validate(["out/coco"])
    result = triplegen.generate(["A dog runs on a beach.", "A chef garnishes a plate."])  # in memory
    result.triples, result.rejects                                                     # polars DataFrames

The entry points are imported on first use, so `import triplegen` stays fast and needs no pyarrow
work, torch or vLLM until a run starts.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["GenerateConfig", "TripleGenError", "generate", "merge_shards", "validate", "__version__"]

_LAZY = {
    "generate": ("triplegen.orchestration.run", "generate"),
    "validate": ("triplegen.checks.validation", "validate"),
    "merge_shards": ("triplegen.orchestration.merge", "merge_shards"),
    "GenerateConfig": ("triplegen.config", "GenerateConfig"),
    "TripleGenError": ("triplegen.errors", "TripleGenError"),
}


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        module, attribute = _LAZY[name]
        value = getattr(import_module(module), attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'triplegen' has no attribute {name!r}")
