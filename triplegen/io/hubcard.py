"""The Hub dataset card (`README.md`) of a triples folder: YAML metadata plus the Markdown body.

The YAML's `configs` are what make `load_dataset("out/coco")` return the triples alone (the default
config) and `load_dataset("out/coco", "rejects")` the rejects: without them `datasets` would read both
Parquet files as one table and fail on their different columns. The card is built with
`huggingface_hub`'s `DatasetCard`, so `hf upload` pushes a folder the Hub renders and loads as is.

A run without rejects still writes `rejects.parquet` (0 rows, its columns), but its card lists no
`rejects` config: `datasets` cannot load a split of 0 rows ("Instruction "train" corresponds to no
data!", with or without `features` in the card), nor can the Hub's viewer show one, so
`load_dataset(folder, "rejects")` then says that the folder has no such config, and the card why.
"""

from __future__ import annotations

from pathlib import Path

from triplegen.io.card import render_card
from triplegen.io.layout import CARD_NAME, CARD_TAG, TRIPLES_NAME

SIZES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
         (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"))


def size_category(rows: int) -> str:
    return next((label for limit, label in SIZES if rows < limit), "n>1B")


def render_dataset_card(run: dict, triples: Path, rejects: Path, card: Path) -> str:
    """The whole card: YAML (configs, license, size, tags) and the body of `triplegen.io.card`."""
    from huggingface_hub import DatasetCard, DatasetCardData

    same_folder = rejects.parent.resolve() == triples.parent.resolve()
    loadable = same_folder and run["counts"]["rejected"] > 0  # datasets cannot load a split of 0 rows
    configs = [{"config_name": "default", "data_files": [{"split": "train", "path": triples.name}], "default": True}]
    if loadable:
        configs.append({"config_name": "rejects", "data_files": [{"split": "train", "path": rejects.name}]})
    data = DatasetCardData(
        license=run["config"].get("license") or "unknown",
        language=["en"],
        size_categories=[size_category(run["counts"]["accepted"])],
        task_categories=["text-classification", "zero-shot-image-classification"],
        tags=[CARD_TAG, "negation", "paraphrase", "clip", "synthetic"],
        pretty_name=f"{triples.parent.name or triples.stem} (caption, paraphrase, negation) triples",
        configs=configs,
    )
    title = triples.parent.name if card.name == CARD_NAME and triples.name == TRIPLES_NAME else triples.name
    body = (render_card(run, triples, rejects, title) + "\n\n" + _prompt_section(run)
            + _load_section(triples, rejects, card, same_folder, loadable))
    return str(DatasetCard.from_template(data, template_str="---\n{{ card_data }}\n---\n\n" + body))


def _prompt_section(run: dict) -> str:
    prompt = run.get("prompt") or {}
    if run.get("backend") == "rules" or not prompt.get("user"):
        return ""
    return "\n".join(["## Prompt", "", f"`{prompt['name']}` v{prompt['version']}: system message", "", "```text",
                      prompt.get("system", "").strip(), "```", "", "user message (Jinja2; `{{ caption }}` is the caption)",
                      "", "```text", prompt["user"].strip(), "```", "", ""])


def _load_section(triples: Path, rejects: Path, card: Path, same_folder: bool, loadable: bool) -> str:
    folder = "path/to/" + (triples.parent.name or "folder")
    target = folder if triples.name == TRIPLES_NAME or card.name == CARD_NAME else f"{folder}/{triples.name}"
    lines = ["## Load it", "", "```python", "from datasets import load_dataset", ""]
    if card.name == CARD_NAME:
        lines += [f'ds = load_dataset("{folder}")["train"]            # the triples; or "user/name" once pushed']
        if loadable:
            lines += [f'rejects = load_dataset("{folder}", "rejects")["train"]']
        elif same_folder:
            lines += [f"# no row was rejected: {rejects.name} has 0 rows, and no \"rejects\" config (datasets cannot "
                      "load an empty split)"]
    else:
        lines += [f'ds = load_dataset("parquet", data_files="{folder}/{triples.name}")["train"]']
    lines += [
        "",
        "import polars as pl",
        f'df = pl.read_parquet("{folder}/{triples.name}")',
        "",
        "import json, pyarrow.parquet as pq  # the run's config, counts and token totals",
        f'run = json.loads(pq.read_schema("{folder}/{triples.name}").metadata[b"triplegen"])',
        "```",
        "",
        "`image` holds the input's values as given (here: strings). When they are paths of local files, make them",
        "images that `datasets` decodes (the folder the paths are relative to is yours to name):",
        "",
        "```python",
        "import os",
        "from datasets import Image",
        'ds = ds.map(lambda row: {"image": os.path.join("path/to/images", row["image"])}).cast_column("image", Image())',
        "```",
        "",
        f"Push it to the Hub with `hf upload user/name {folder} --repo-type dataset`; check it again at any time",
        f"with `triplegen validate {target}`, look at it with `triplegen view {target}`.",
        "",
    ]
    return "\n".join(lines)
