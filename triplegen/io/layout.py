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

Every other name a run gives a file beside its output comes from here too: the lock, the work
folders of a run and of `--retry-backend-errors`, the vLLM engine log. A run decides them once, as
`OutputFiles`, when it starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

TRIPLES_NAME = "triples.parquet"
REJECTS_NAME = "rejects.parquet"
CARD_NAME = "README.md"
CARD_TAG = "triplegen"
REJECTS_SUFFIX = ".rejects.parquet"  # `<stem>.rejects.parquet` beside `<stem>.parquet`
CARD_SUFFIX = ".card.md"


def is_dataset_folder(output: Path) -> bool:
    """`-o` names a folder unless it ends in .parquet."""
    return output.suffix.lower() != ".parquet"


def output_files(output: Path, rejects: Path | None = None) -> tuple[Path, Path]:
    """(triples, rejects) for an `-o` value: a dataset folder or a Parquet file."""
    output = Path(output)
    if is_dataset_folder(output):
        return output / TRIPLES_NAME, Path(rejects) if rejects else output / REJECTS_NAME
    return output, Path(rejects) if rejects else rejects_beside(output)


def rejects_beside(triples: Path) -> Path:
    """`<stem>.rejects.parquet`: the rejects of a triples file that is not `triples.parquet` in a folder."""
    return triples.with_name(triples.stem + REJECTS_SUFFIX)


def owner_of_rejects(path: Path) -> Path | None:
    """The triples file whose rejects `path` would be by its name (`t.rejects.parquet` -> `t.parquet`)."""
    if not path.name.endswith(REJECTS_SUFFIX):
        return None
    return path.with_name(path.name[: -len(REJECTS_SUFFIX)] + ".parquet")


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
    candidates = [rejects_beside(triples)]
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
    return triples.with_name(triples.stem + CARD_SUFFIX)


def lock_file(output: Path) -> Path:
    """The lock that keeps a second run off the same output: `.<name>.lock` beside it."""
    return output.with_name(f".{output.name}.lock")


def work_folder(output: Path) -> Path:
    """The resumable run's finished chunks (triplegen.orchestration.resume): `<name>.parts` beside the output."""
    return output.with_name(output.name + ".parts")


def retry_folder(output: Path) -> Path:
    """The finished chunks of `--retry-backend-errors`: `<name>.retry.parts` beside the output."""
    return work_folder(output.with_name(output.name + ".retry"))


def engine_log(triples: Path, rejects: Path) -> Path:
    """`out/coco.vllm.log` for the dataset folder `out/coco` (outside what `hf upload` pushes),
    `out/triples.vllm.log` for `-o out/triples.parquet`."""
    if triples.name == TRIPLES_NAME and rejects == triples.with_name(REJECTS_NAME):
        return triples.parent.with_name(triples.parent.name + ".vllm.log")
    return triples.with_name(triples.stem + ".vllm.log")


def viewer_page(given: Path, triples: Path) -> Path:
    """`triplegen view`'s page: `out/coco.html` for the folder `out/coco`, `out/triples.html` for
    `out/triples.parquet`; beside the data, never inside a folder that `hf upload` would push."""
    return given.with_name(given.name + ".html") if given.is_dir() else triples.with_suffix(".html")


@dataclass(frozen=True)
class OutputFiles:
    """The files of one run, decided once when it starts (the card's name reads the README beside it)."""

    triples: Path
    rejects: Path
    card: Path

    @classmethod
    def of(cls, triples: Path, rejects: Path) -> "OutputFiles":
        return cls(triples, rejects, card_file(triples))

    @property
    def lock(self) -> Path:
        return lock_file(self.triples)
