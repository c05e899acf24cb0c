"""Which negations a model gets wrong: CC-Neg accuracy on a synthetic test split, per kind of negation.

    python benchmarks/negation_kinds.py runs/synthetic-negation/world303-seed0/absent/semclip-hardneg/final \
        runs/synthetic-negation/world303-seed0/data/test.parquet

`adds_no` (benchmarks/synthetic_negation.py) pools every item whose negation holds more "no"s than
its caption. The test split keeps each item's logical form, so the items can be told apart by the
clause their negation flips: a relation denied as a whole ("no A is beneath a B"), one of the two
related objects denied ("there is no A, and there is a B"), or a lone object denied; each also
split by whether the true caption already denies an object. The `drops_no` items (the true caption
denies an object, the negation claims it) are split by how far the denied object is from the nearest
object shown: one attribute away ("no brown cross" beside a blue cross) asks the eyes more than the
reading of "no". Prints one row per kind: items and the share in which the image is closer to the
caption than to the negation; then the caption shapes (each object named replaced by X: "A X with a X
beneath it and no X.") that the model gets wrong most often, which points at a wording or a relation
word rather than a kind of negation.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def kind_of(caption_form: list, negation_form: list) -> str:
    caption_tags = [clause[0] for clause in caption_form]
    tags = [clause[0] for clause in negation_form]
    if "norel" in tags:
        kind = "a relation denied: no A is beneath a B"
    elif "rel" in caption_tags and "rel" not in tags:
        kind = "a related object denied, " + ("the first" if tags[0] == "absent" else "the second")
    else:
        kind = "a lone object denied"
    return kind + (" (caption denies one too)" if "absent" in caption_tags else "")


def distance_kind(caption_form: list, scene: list[dict]) -> str:
    """How many attributes set the caption's denied object apart from the closest object in the scene."""
    denied = next(clause[1] for clause in caption_form if clause[0] == "absent")
    shown = [{value for key, value in thing.items() if key not in ("row", "col")} for thing in scene]
    distance = min(len(set(denied) - attributes) for attributes in shown)
    return "the denied object claimed, " + ("one attribute from a shown object" if distance == 1 else
                                            f"{distance} attributes from any shown object")


def caption_shape(caption: str, caption_form: list) -> str:
    """The caption with every object it names (present or denied) replaced by X."""
    names = {" ".join(words) for clause in caption_form for words in clause[1:] if isinstance(words, list)}
    for name in sorted(names, key=len, reverse=True):
        caption = re.sub(re.escape(name), "X", caption, flags=re.IGNORECASE)
    return caption


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="a model folder (a run's final/)")
    parser.add_argument("test", type=Path, help="the test split the benchmark wrote (data/test.parquet)")
    args = parser.parse_args()
    if not (args.model / "config.json").is_file() or not args.test.is_file():
        raise SystemExit(f"need a model folder with config.json and a test.parquet; got {args.model} and {args.test}")

    import pyarrow.parquet as pq
    from rich.console import Console

    from semclip_train.evaluation import metrics
    from semclip_train.evaluation.embed import Embedder
    from semclip_train.evaluation.eval_data import load_triples
    from semclip_train.evaluation.evaluate import adds_negation
    from semclip_train.model import load_clip

    items = load_triples(args.test)
    rows = pq.read_table(args.test, columns=["caption_form", "negation_form", "scene"]).to_pylist()
    model, processor = load_clip(str(args.model))
    embedder = Embedder(model, processor, device="cpu", batch_size=256, fingerprint=str(args.model))
    right = metrics.ccneg_wins(embedder.images(items.images, "test"), embedder.texts(items.captions, "caption"),
                               embedder.texts(items.negations, "negation")).tolist()
    by_kind: dict[str, dict[str, list[bool]]] = {"adds_no": defaultdict(list), "drops_no": defaultdict(list)}
    by_shape: dict[str, list[bool]] = defaultdict(list)
    for adds, caption, row, ok in zip(adds_negation(items.captions, items.negations), items.captions, rows, right):
        caption_form = json.loads(row["caption_form"])
        if adds:
            by_kind["adds_no"][kind_of(caption_form, json.loads(row["negation_form"]))].append(ok)
        else:
            by_kind["drops_no"][distance_kind(caption_form, json.loads(row["scene"]))].append(ok)
        by_shape[f"{'adds_no' if adds else 'drops_no'}: {caption_shape(caption, caption_form)}"].append(ok)
    console = Console(width=160)
    for direction, kinds in by_kind.items():
        if kinds:
            console.print(kind_table(f"{direction} per kind of negation: {args.model}", dict(sorted(kinds.items())),
                                     total=f"all ({direction})"))
    worst = sorted(((shape, oks) for shape, oks in by_shape.items() if len(oks) >= 5 and not all(oks)),
                   key=lambda pair: sum(pair[1]) / len(pair[1]))[:8]
    if worst:
        console.print(kind_table("the caption shapes most often wrong (5 items or more)", dict(worst), "caption shape"))


def kind_table(title: str, kinds: dict[str, list[bool]], first: str = "negation", total: str | None = None):
    """One row per kind (in the given order): items and the share right; `total` names a pooled last row."""
    from rich.table import Table

    view = Table(title=title)
    for column in (first, "items", "right"):
        view.add_column(column, justify="left" if column == first else "right")
    rows = list(kinds.items())
    if total:
        rows.append((total, [ok for oks in kinds.values() for ok in oks]))
    for kind, oks in rows:
        view.add_row(kind, str(len(oks)), f"{100 * sum(oks) / len(oks):.1f}%")
    return view


if __name__ == "__main__":
    main()
