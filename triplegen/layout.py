"""Where a run's files go: a dataset folder that `datasets.load_dataset(folder)` reads, or a file.

`-o out/coco` (no `.parquet` suffix) names a dataset folder, the form the Hub expects:

    out/coco/triples.parquet    the accepted rows     load_dataset("out/coco")
    out/coco/rejects.parquet    the rejected rows     load_dataset("out/coco", "rejects")
    out/coco/README.md          the dataset card, whose YAML `configs` make those two calls work

`-o out/triples.parquet` (the earlier form) keeps its files where they were (`triples.parquet`,
`triples.rejects.parquet`) and writes the card as `README.md` beside them, so that folder loads the
same way, unless that README.md is someone else's: the user's own, or the card of another output in
the same folder. Then the card goes to `<stem>.card.md`, as before, and the run says so. A
README.md that triplegen did not write is never replaced.
"""

from __future__ import annotations

from pathlib import Path

import yaml

TRIPLES_NAME = "triples.parquet"
REJECTS_NAME = "rejects.parquet"
CARD_NAME = "README.md"
CARD_TAG = "triplegen"


def is_dataset_folder(output: Path) -> bool:
    """`-o` names a folder unless it ends in .parquet."""
    return output.suffix.lower() != ".parquet"


def output_files(output: Path, rejects: Path | None = None) -> tuple[Path, Path]:
    """(triples, rejects) for an `-o` value: a dataset folder or a Parquet file."""
    output = Path(output)
    if is_dataset_folder(output):
        return output / TRIPLES_NAME, Path(rejects) if rejects else output / REJECTS_NAME
    return output, Path(rejects) if rejects else output.with_name(output.stem + ".rejects.parquet")


def resolve_triples(path: Path) -> Path:
    """A path a user gives to read triples (validate, merge, view, train): a folder means its triples file,
    the one its triplegen card names (else `triples.parquet`)."""
    path = Path(path)
    if not path.is_dir():
        return path
    owner = card_owner(path / CARD_NAME)
    return path / (owner or TRIPLES_NAME)


def find_rejects(path: Path) -> Path | None:
    """The rejects written with the triples that `path` (a dataset folder or a triples file) names."""
    triples = resolve_triples(path)
    candidates = [triples.with_name(triples.stem + ".rejects.parquet")]
    if triples.name == TRIPLES_NAME:
        candidates.insert(0, triples.with_name(REJECTS_NAME))
    return next((c for c in candidates if c.exists()), None)


def card_owner(readme: Path) -> str | None:
    """The data file a triplegen card's default config names; None for a README triplegen did not write."""
    try:
        text = readme.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if not text.startswith("---"):
        return None
    try:
        meta = yaml.safe_load(text.split("---", 2)[1]) or {}
    except (yaml.YAMLError, IndexError):
        return None
    if not isinstance(meta, dict) or CARD_TAG not in (meta.get("tags") or []):
        return None
    for config in meta.get("configs") or []:
        if isinstance(config, dict) and config.get("config_name") == "default":
            files = config.get("data_files")
            if isinstance(files, list) and files and isinstance(files[0], dict):
                return files[0].get("path")
            return files if isinstance(files, str) else None
    return None


def card_file(triples: Path) -> Path:
    """README.md beside the triples, unless it belongs to something else: then `<stem>.card.md`."""
    readme = triples.with_name(CARD_NAME)
    if not readme.exists() or card_owner(readme) == triples.name:
        return readme
    return triples.with_name(triples.stem + ".card.md")
