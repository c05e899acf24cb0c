"""Which object an absent-object row denies, before and after the plausibility rule, side by side.

    python benchmarks/absent_plausibility.py [--sample 300] [--show 12] [--seed 0]

The old rule (`choose_absent` before the co-occurrence table): 80% among labels seen with any shown
object, weighted by summed co-occurrence counts, else by frequency. The new rule
(`ObjectVocabulary.fit`): a label must fit every shown object, or there is no absent object; "new +
table" adds a co-occurrence table (`generate --cooccurrence`).

Two data sets, each printed as a table of scenes (shown objects, then each rule's absent object) for
a person to judge, and a summary:

1. the bundled `examples/coco` (12 images; the table is its own instances file, and so is the
   referee of `lift` and `clash`);
2. a synthetic COCO-like world whose truth is known (PLACES): the input is `--sample` images, the
   table counts 20,000 others; `plausible` is the share of chosen objects that the image's place has.

`lift` is the geometric mean over the shown objects p of (n(a, p) + 0.5) / (n(a) n(p) / N + 0.5) for the
chosen absent object a, by the referee table, averaged over the rows (1: chance, below: rarely seen
together); `clash` the share of chosen objects that the referee never saw with one of the shown
objects although chance expects them together at least twice.
"""

from __future__ import annotations

import argparse
import bisect
import math
import random
from collections import Counter
from itertools import accumulate
from pathlib import Path

from triplegen.io.coco import coco_captions, coco_cooccurrence
from triplegen.cooccurrence import Cooccurrence
from triplegen.objects import ObjectVocabulary
from triplegen.rules.scope import mentions

HERE = Path(__file__).resolve().parent
COCO = HERE.parent / "examples" / "coco" / "annotations"
class OldRule:
    """`ObjectVocabulary.choose_absent` as it was: summed co-occurrence counts, else by frequency."""

    def __init__(self, rows: list[list[str]]):
        self.counts, self.together = Counter(), {}
        for labels in rows:
            self.counts.update(labels)
            for label in labels:
                self.together.setdefault(label, Counter()).update(o for o in labels if o != label)
        self.labels = sorted(self.counts)
        self.cumulative = list(accumulate(self.counts[label] for label in self.labels))

    def choose_absent(self, present, caption, rng, exclude=()):
        def allowed(label):
            return label not in present and label not in exclude and not mentions(caption, label)

        if rng.random() < 0.8:
            seen_with = Counter()
            for label in present:
                seen_with.update(self.together.get(label, {}))
            candidates = sorted(label for label in seen_with if allowed(label))
            if candidates:
                return rng.choices(candidates, weights=[seen_with[c] for c in candidates])[0]
        for _ in range(8):
            label = self.labels[bisect.bisect_right(self.cumulative, rng.randrange(self.cumulative[-1]))]
            if allowed(label):
                return label
        rest = [label for label in self.labels if allowed(label)]
        return rng.choice(rest) if rest else None


def rules(rows: list[list[str]], table: Cooccurrence | None) -> dict:
    new = ObjectVocabulary()
    for labels in rows:
        new.add(labels)
    chosen = {"old": OldRule(rows), "new": new.freeze()}
    if table is not None:
        with_table = ObjectVocabulary(table=table)
        for labels in rows:
            with_table.add(labels)
        chosen["new + table"] = with_table.freeze()
    return chosen


def choices(rows: list[tuple[str, str, list[str]]], table: Cooccurrence | None, seed: int) -> dict[str, list]:
    """Each rule's absent object per row, seeded as `plan_absent` seeds its first row."""
    made = rules([labels for _, _, labels in rows], table)
    return {name: [rule.choose_absent(labels, caption, random.Random(f"{seed}\x1f{row_id}\x1f1"))
                   for row_id, caption, labels in rows] for name, rule in made.items()}


def referee_scores(rows, chosen: list, referee: Cooccurrence) -> dict:
    lifts, clashes = [], 0
    for (_, _, present), absent in zip(rows, chosen):
        if absent is None:
            continue
        logs, clash = [], False
        for other in present:
            expected = referee.counts[absent] * referee.counts[other] / referee.images
            seen = referee.together(absent, other)
            logs.append(math.log((seen + 0.5) / (expected + 0.5)))
            clash |= seen == 0 and expected >= 2
        lifts.append(math.exp(sum(logs) / len(logs)))
        clashes += clash
    n = len(lifts)
    return {"rows": n, "lift": sum(lifts) / n if n else float("nan"), "clash": clashes / n if n else float("nan")}


def show(title: str, rows, made: dict[str, list], count: int) -> None:
    names = list(made)
    print(f"\n{title}\n\n| shown objects | caption | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    for i, (_, caption, labels) in enumerate(rows[:count]):
        cells = [made[name][i] or "-" for name in names]
        print(f"| {', '.join(labels)} | {caption[:60]} | " + " | ".join(cells) + " |")


def summary(made: dict[str, list], rows, referee: Cooccurrence) -> None:
    print("\n| rule | rows with an absent object | mean lift (referee) | clash |\n|---|---|---|---|")
    for name, chosen in made.items():
        score = referee_scores(rows, chosen, referee)
        print(f"| {name} | {score['rows']} of {len(rows)} | {score['lift']:.2f} | {100 * score['clash']:.1f}% |")


def example_coco(seed: int, count: int) -> None:
    table = coco_captions(COCO / "captions_val2017.json", COCO / "instances_val2017.json").to_pylist()
    rows = [(row["id"], row["caption"], row["objects"]) for row in table]
    cooc = coco_cooccurrence(COCO / "instances_val2017.json")
    made = choices(rows, cooc, seed)
    show("examples/coco (12 images, 24 captions; the table is the same instances file)", rows, made, count)
    summary(made, rows, cooc)


# A COCO-like world whose truth is known: each image is of one kind of place, shows a few of that
# place's objects, and people in most places. An absent object is plausible when the place has it.
PLACES = {
    "kitchen": ("oven", "sink", "refrigerator", "microwave", "bowl", "cup", "knife", "bottle"),
    "dining room": ("dining table", "pizza", "fork", "knife", "cup", "wine glass", "bowl", "chair"),
    "living room": ("couch", "tv", "remote", "chair", "book", "potted plant", "clock"),
    "street": ("car", "bus", "truck", "traffic light", "bicycle", "stop sign", "bench"),
    "ski slope": ("skis", "snowboard", "backpack"),
    "beach": ("surfboard", "kite", "umbrella", "boat"),
    "savanna": ("giraffe", "zebra", "elephant"),
    "bedroom": ("bed", "book", "clock", "teddy bear"),
}
PEOPLE = {"kitchen": 0.3, "dining room": 0.5, "living room": 0.3, "street": 0.7, "ski slope": 0.95, "beach": 0.9,
          "savanna": 0.05, "bedroom": 0.2}


def world(count: int, rng: random.Random) -> list[tuple[str, str, list[str]]]:
    """(id, caption, labels) per image; the caption names the place only, so it excludes no label."""
    images = []
    for i in range(count):
        place = rng.choice(sorted(PLACES))
        labels = [label for label in PLACES[place] if rng.random() < 0.4] or [rng.choice(PLACES[place])]
        if rng.random() < PEOPLE[place]:
            labels.insert(0, "person")
        images.append((f"{place}/{i}", f"A picture of a {place}.", labels))
    return images


def synthetic(sample: int, seed: int, count: int) -> None:
    table_images = world(20_000, random.Random(seed + 1))
    table = Cooccurrence.of_images(labels for _, _, labels in table_images)
    rows = world(sample, random.Random(seed))
    made = choices(rows, table, seed)
    show(f"A synthetic COCO-like world: {sample} images as the input, the table from 20,000 others", rows, made,
         count)
    print("\n| rule | rows with an absent object | plausible (the place has it) | mean lift (table) |")
    print("|---|---|---|---|")
    for name, chosen in made.items():
        picked = [(row_id.split("/")[0], absent) for (row_id, _, _), absent in zip(rows, chosen) if absent]
        fits = sum(absent == "person" or absent in PLACES[place] for place, absent in picked)
        score = referee_scores(rows, chosen, table)
        print(f"| {name} | {len(picked)} of {len(rows)} | {100 * fits / len(picked):.1f}% | {score['lift']:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample", type=int, default=300, help="images of the synthetic world given as the input")
    parser.add_argument("--show", type=int, default=12, help="scenes printed per data set")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    example_coco(args.seed, args.show)
    synthetic(args.sample, args.seed, args.show)


if __name__ == "__main__":
    main()
