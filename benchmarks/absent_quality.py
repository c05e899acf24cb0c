"""Absent-object rows on real captions: counts, reasons, and what a text-only model makes of them.

    triplegen prepare-smollm2 models/smollm2
    python benchmarks/absent_quality.py --blind-model models/smollm2 --out out/absent_quality

SugarCrepe++'s COCO captions (3,893 distinct) get object lists as COCO's instance lists have them:
the labels each caption names (triplegen's synonym table), plus, for a third of the images, one or
two objects the caption does not name, drawn among labels seen with the named ones. `triplegen
generate --absent-objects K` (rules) writes the rows. The script prints the rows per kind, the
rejects and the rows not written by reason, and the blind model's view: per kind, the share of rows
in which it scores the true caption above the false text (SugarCrepe's measure of a text-only bias,
50% is none), next to SugarCrepe++'s own human-checked negatives, before and after the generator's
blind check would reject rows. It also checks every absent row with a small synonym list of its
own (not triplegen's table): the caption never names the object it denies, a swap's negation never
denies an object it names. A sample of rows to read goes to OUT/sample.md.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import re
import time
from collections import Counter
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from sugarcrepe_data import add_data_option, sugarcrepe_files

from triplegen import GenerateConfig, generate
from triplegen.rules.object_names import ObjectLexicon

KINDS = ("caption", "absent-assert", "absent-swap")
# The independent check's words: written here, apart from triplegen's table, for the labels it covers.
INDEPENDENT = {
    "person": "person people man men woman women boy boys girl girls child children kid kids player players guy guys "
              "lady ladies skier skiers surfer surfers skateboarder skateboarders crowd rider riders baby",
    "airplane": "airplane airplanes plane planes jet jets aircraft airliner",
    "dining table": "table tables desk desks",
    "tv": "tv tvs television televisions monitor monitors",
    "couch": "couch couches sofa sofas",
    "bicycle": "bicycle bicycles bike bikes",
    "motorcycle": "motorcycle motorcycles motorbike motorbikes",
    "cell phone": "cell phone|cell phones|phone|phones|cellphone|cellphones",
    "mouse": "computer mouse|mouse|mice",
    "dog": "dog dogs puppy puppies",
    "cat": "cat cats kitten kittens",
    "car": "car cars",
    "bus": "bus buses",
    "truck": "truck trucks",
    "train": "train trains",
    "boat": "boat boats ship ships",
    "horse": "horse horses pony",
    "bed": "bed beds",
    "chair": "chair chairs",
    "cup": "cup cups mug mugs",
    "laptop": "laptop computer|laptop computers|laptop|laptops|computer|computers",
}


def load_captions(folder: Path | None) -> list[str]:
    files = sugarcrepe_files(folder)
    captions = {item["caption"]: None for path in files for item in json.loads(path.read_text(encoding="utf-8"))}
    return sorted(captions)


def object_lists(captions: list[str], rng: random.Random) -> list[list[str]]:
    """The labels each caption names, plus unnamed ones for a third of them (as COCO's lists have)."""
    lexicon = ObjectLexicon.builtin()
    labels = sorted(lexicon.names)
    named = [[label for label in labels if lexicon.mentions(caption, label)] for caption in captions]
    seen_with: dict[str, Counter] = {}
    for objects in named:
        for label in objects:
            seen_with.setdefault(label, Counter()).update(o for o in objects if o != label)
    lists = []
    for caption, objects in zip(captions, named):
        extra: list[str] = []
        if objects and rng.random() < 1 / 3:
            pool = sorted({o for label in objects for o in seen_with.get(label, ())} - set(objects))
            pool = [label for label in pool if not lexicon.mentions(caption, label)]
            extra = rng.sample(pool, min(len(pool), rng.choice([1, 2])))
        lists.append(objects + extra)
    return lists


def _independent_words(label: str) -> list[str]:
    words = INDEPENDENT.get(label)
    return words.split("|" if "|" in words else None) if words else [label, label + "s", label + "es"]


def _named(text: str, label: str) -> tuple[int, int]:
    """(times the small list finds the object named, times right after "no" / "without (a)")."""
    words = "|".join(re.escape(w).replace("\\ ", "\\s+") for w in sorted(_independent_words(label), key=len, reverse=True))
    named = re.findall(rf"\b(?:{words})\b", text, re.IGNORECASE)
    denied = re.findall(rf"\b(?:no|without(?:\s+an?)?)\s+(?:{words})\b", text, re.IGNORECASE)
    return len(named), len(denied)


def independent_problems(row: dict) -> list[str]:
    """What the small list above finds wrong with an absent row."""
    problems = []
    named, denied = _named(row["caption"], row["absent_object"])
    if named != denied:
        problems.append("caption names the object it denies")
    if row["kind"] == "absent-swap":
        for label in row["objects"]:
            named, denied = _named(row["negation"], label)
            if denied and named > denied:
                problems.append("swap negation denies an object it names")
    return problems


def wording_table(absent: pl.DataFrame, score) -> None:
    """Per wording and kind, the share of rows whose true caption the blind model prefers."""
    print("\n| wording | absent-assert: rows | prefers the caption | absent-swap: rows | prefers the caption |")
    print("|---|---:|---:|---:|---:|")
    by_wording: dict[str, dict[str, list[bool]]] = {}
    for row in absent.iter_rows(named=True):
        by_wording.setdefault(wording_of(row["caption"]), {}).setdefault(row["kind"], []).append(
            score[row["caption"]] > score[row["negation"]])
    for name, kinds in sorted(by_wording.items()):
        cells = [kinds.get(kind, []) for kind in KINDS[1:]]
        print(f"| {name} | " + " | ".join(f"{len(c):,} | {sum(c) / len(c):.1%}" if c else "0 | " for c in cells) + " |")


@functools.cache
def _wording_patterns() -> list[tuple[int, str, re.Pattern[str]]]:
    """(specificity, name, pattern) of every wording, compiled once: the longer a template's fixed
    text, the more specific it is ("with no X in sight" over "with no X")."""
    from triplegen.rules.denials import PAIR_WORDINGS, WORDINGS

    patterns = []
    for wording in (*WORDINGS.values(), *PAIR_WORDINGS.values()):
        pattern = re.escape(wording.deny)
        for slot, part in (("body", ".+"), ("bare", ".+?"), ("a", ".+?"), ("shown", ".+?"), ("be", "(?:is|are)")):
            pattern = pattern.replace(re.escape("{" + slot + "}"), part)
        patterns.append((len(re.sub(r"\{\w+\}", "", wording.deny)), wording.name, re.compile(pattern, re.IGNORECASE)))
    return patterns


def wording_of(caption: str) -> str:
    """Which of triplegen's wordings a true absent caption uses: the most specific template it fits
    (the plan's wording is not a column of the output)."""
    text = caption.rstrip(".!")
    fits = [(length, name) for length, name, pattern in _wording_patterns() if pattern.fullmatch(text)]
    return max(fits)[1] if fits else "other"


def blind_table(rows: pl.DataFrame, score, margin: float) -> list[tuple[str, int, float, int, float]]:
    """Per kind: rows, share preferring the caption, rows the blind check rejects, share after it."""
    lines = []
    for kind in (*KINDS, "all"):
        part = rows if kind == "all" else rows.filter(pl.col("kind") == kind)
        if part.height == 0:
            continue
        gaps = [score[c] - score[n] for c, n in zip(part["caption"], part["negation"])]
        kept = [g for g in gaps if g <= margin]
        lines.append((kind, len(gaps), sum(g > 0 for g in gaps) / len(gaps), len(gaps) - len(kept),
                      sum(g > 0 for g in kept) / max(len(kept), 1)))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_option(parser)
    parser.add_argument("--out", type=Path, default=Path("out/absent_quality"))
    parser.add_argument("--limit", type=int, default=None, help="only the first N captions (after shuffling)")
    parser.add_argument("--absent-objects", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--blind-model", default=None, help="a causal LM folder (triplegen prepare-smollm2 ...)")
    parser.add_argument("--sample", type=int, default=40, help="absent rows written to OUT/sample.md")
    parser.add_argument("--human", type=int, default=150, help="SugarCrepe++ items per file scored for comparison")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    captions = load_captions(args.data)
    rng.shuffle(captions)
    captions = captions[: args.limit]
    args.out.mkdir(parents=True, exist_ok=True)
    source = args.out / "captions.parquet"
    pq.write_table(pa.table({"id": [f"scpp-{i}" for i in range(len(captions))], "caption": captions,
                             "objects": pa.array(object_lists(captions, rng), pa.list_(pa.string()))}), source)
    started = time.perf_counter()
    summary = generate(GenerateConfig(input=source, output=args.out / "triples", absent_objects=args.absent_objects,
                                      objects_col="objects", seed=args.seed, overwrite=True, quiet=True))
    seconds = time.perf_counter() - started
    rows = pl.read_parquet(summary.output)
    rejects = pl.read_parquet(summary.rejects)
    run = summary.run
    print(f"{len(captions):,} captions -> {rows.height:,} rows, {rejects.height:,} rejects in {seconds:.1f} s "
          f"(--absent-objects {args.absent_objects}, rules)\n")
    print("| kind | rows |\n|---|---:|")
    for kind in KINDS:
        print(f"| {kind} | {rows.filter(pl.col('kind') == kind).height:,} |")
    print("\n| rejected: reason | rows |\n|---|---:|")
    for reason, n in sorted(run["reject_reasons"].items(), key=lambda item: -item[1]):
        print(f"| {reason} | {n:,} |")
    print("\n| absent rows not written as drawn | rows |\n|---|---:|")
    for note, n in sorted((run.get("absent_notes") or {}).items(), key=lambda item: -item[1]):
        print(f"| {note} | {n:,} |")

    absent = rows.filter(pl.col("kind") != "caption")
    problems = Counter(p for row in absent.iter_rows(named=True) for p in independent_problems(row))
    print(f"\nIndependent check of {absent.height:,} absent rows: "
          + (", ".join(f"{p}: {n}" for p, n in problems.items()) or "no problem found"))

    if args.blind_model:
        from triplegen.checks.blind import DETECTABLE_MARGIN, BlindScorer

        scorer = BlindScorer(args.blind_model)
        human = {path.stem: rng.sample(items, min(args.human, len(items))) for path in sugarcrepe_files(args.data)
                 for items in [json.loads(path.read_text(encoding="utf-8"))]}
        texts = sorted({*rows["caption"], *rows["negation"],
                        *(t for items in human.values() for i in items for t in (i["caption"], i["negative_caption"]))})
        score = dict(zip(texts, scorer.score(texts)))
        print(f"\nBlind model {args.blind_model}: share of rows in which it scores the true caption above the false "
              f"text (50% = cannot tell); the generator's blind check rejects gaps above {DETECTABLE_MARGIN:.3f}\n")
        print("| rows | n | prefers the caption | rejected by --blind-model | prefers the caption after |")
        print("|---|---:|---:|---:|---:|")
        for kind, n, share, rejected, after in blind_table(rows, score, DETECTABLE_MARGIN):
            print(f"| {kind} | {n:,} | {share:.1%} | {rejected:,} | {after:.1%} |")
        for name, items in human.items() if args.human else ():
            gaps = [score[i["caption"]] - score[i["negative_caption"]] for i in items]
            print(f"| SugarCrepe++ {name} (human) | {len(gaps):,} | {sum(g > 0 for g in gaps) / len(gaps):.1%} | | |")
        wording_table(absent, score)

    sample = absent.sample(min(args.sample, absent.height), seed=args.seed)
    lines = [f"# {sample.height} absent-object rows to read\n"]
    for row in sample.iter_rows(named=True):
        lines += [f"- `{row['id']}` {row['kind']}, absent `{row['absent_object']}`, objects {row['objects']}",
                  f"  - caption: {row['caption']}", f"  - paraphrase: {row['paraphrase']}",
                  f"  - negation: {row['negation']}"]
    (args.out / "sample.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"\nsample of rows to read: {args.out / 'sample.md'}")


if __name__ == "__main__":
    main()
