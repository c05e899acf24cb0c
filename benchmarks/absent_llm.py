"""Absent-object rows written by an LLM: how many are accepted, and how many of those are right.

    python benchmarks/absent_llm.py --model-dir models/smollm2 --captions 40

Takes the first --captions SugarCrepe++ captions (file and id order) that name at least one COCO
object; each caption's object list is the objects it names (`ObjectLexicon.builtin()` mentions).
Runs `triplegen generate --absent-objects 1` through the in-process vLLM engine, once with the
row's own schema (`--constrain polarity`, the default: triplegen.checks.absent_constraints) and once with
the template's schema only (`--constrain none`), and prints per run: absent rows planned, accepted,
accepted and right by an independent check (below), LLM calls, and the reject reasons.

The independent check does not use triplegen's object reader or synonym table: a row is right when
its caption and paraphrase each deny the absent object ("no X", "without a X") and name it nowhere
else, deny no object the caption names, the caption keeps the source caption's words, and the
negation is false (it names the absent object without a denial, or denies a shown object).
The SugarCrepe++ JSON files are read from --data-dir (benchmarks/sugarcrepe_data.py); without them the
script stops with a one-line error (exit code 2).
"""

from __future__ import annotations

import argparse
import os
import re
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from llm_backends import ENGINE, sugarcrepe_captions  # noqa: E402
from sugarcrepe_data import add_data_option, sugarcrepe_files  # noqa: E402

# The benchmark's own names of the COCO objects (singular; plurals are formed below), kept apart
# from triplegen's table so that a mistake there is not repeated here.
NAMES = """person: person, man, woman, boy, girl, child, kid, people, men, women, player, lady, guy, skier,
surfer, skateboarder, rider | bicycle: bicycle, bike | car: car, taxi | motorcycle: motorcycle, motorbike |
airplane: airplane, plane, jet, aircraft | bus: bus | train: train | truck: truck | boat: boat, ship |
traffic light: traffic light | fire hydrant: fire hydrant, hydrant | stop sign: stop sign | bench: bench |
bird: bird | cat: cat, kitten | dog: dog, puppy | horse: horse | sheep: sheep | cow: cow, cattle |
elephant: elephant | bear: bear | zebra: zebra | giraffe: giraffe | backpack: backpack | umbrella: umbrella |
handbag: handbag, purse | tie: tie | suitcase: suitcase, luggage | frisbee: frisbee | skis: ski | snowboard:
snowboard | kite: kite | baseball bat: bat | skateboard: skateboard | surfboard: surfboard | tennis racket:
racket, racquet | bottle: bottle | wine glass: wine glass, glass | cup: cup, mug | fork: fork | knife: knife |
spoon: spoon | bowl: bowl | banana: banana | apple: apple | sandwich: sandwich | orange: orange | broccoli:
broccoli | carrot: carrot | hot dog: hot dog | pizza: pizza | donut: donut, doughnut | cake: cake | chair:
chair | couch: couch, sofa | potted plant: plant | bed: bed | dining table: table | toilet: toilet | tv: tv,
television | laptop: laptop | mouse: mouse | remote: remote | keyboard: keyboard | cell phone: phone,
cellphone | microwave: microwave | oven: oven | toaster: toaster | sink: sink | refrigerator: refrigerator,
fridge | book: book | clock: clock | vase: vase | scissors: scissors | teddy bear: teddy bear | toothbrush:
toothbrush | sports ball: ball | baseball glove: glove | hair drier: hair dryer"""
DENIAL = re.compile(r"\b(?:no|without(?:\s+(?:a|an|any))?)\s+$", re.IGNORECASE)


def names() -> dict[str, re.Pattern]:
    """label -> a pattern for its words, singular or plural."""
    table = {}
    for entry in " ".join(NAMES.split()).split(" | "):
        label, words = entry.split(": ")
        forms = {f for w in words.split(", ") for f in (w, w + "s", w + "es", w[:-1] + "ies", w[:-1] + "ves")}
        table[label] = re.compile(r"\b(?:" + "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
                                  + r")\b", re.IGNORECASE)
    return table


def mentions(text: str, label: str, table: dict) -> list[bool]:
    """For each mention of `label` in `text`: whether it is denied ("no dog", "without a dog")."""
    pattern = table.get(label) or re.compile(r"\b" + re.escape(label) + r"s?\b", re.IGNORECASE)
    return [bool(DENIAL.search(text[: m.start()])) for m in pattern.finditer(text)]


def right(row: dict, source: str, shown: list[str], table: dict) -> str | None:
    """None when the row is right by the benchmark's own reading, else what is wrong."""
    absent = row["absent_object"]
    for field in ("caption", "paraphrase"):
        said = mentions(row[field], absent, table)
        if said != [True]:
            return f"{field} does not deny the absent object exactly once"
        if any(any(mentions(row[field], label, table)) for label in shown if label != absent):
            return f"{field} denies a shown object"
    body = re.sub(r"[.!\s]+$", "", source).lower()
    if body not in row["caption"].lower():
        return "caption drops words of the source"
    claims = not all(mentions(row["negation"], absent, table)) if mentions(row["negation"], absent, table) else False
    denies_shown = any(any(mentions(row["negation"], label, table)) for label in shown if label != absent)
    return None if claims or denies_shown else "negation is not false"


def captions_with_objects(folder: Path | None, count: int, table: dict) -> list[tuple[str, list[str]]]:
    """The first `count` captions that name a COCO object, with the objects they name (triplegen's lexicon)."""
    from triplegen.rules.object_names import ObjectLexicon

    lexicon = ObjectLexicon.builtin()
    chosen = []
    for caption in sugarcrepe_captions(folder, 0, every=True):
        objects = [label for label in lexicon.names if lexicon.mentions(caption, label)]
        if objects:
            chosen.append((caption, objects))
        if len(chosen) == count:
            break
    return chosen


def run(rows: list[tuple[str, list[str]]], model_dir: Path, out: Path, constrain: str, attempts: int) -> dict:
    import polars as pl

    from triplegen.config import EngineOptions, GenerateConfig
    from triplegen.orchestration.run import generate

    out.mkdir(parents=True, exist_ok=True)
    source = out / "captions.parquet"
    pl.DataFrame({"id": [f"scpp-{i:03d}" for i in range(len(rows))], "caption": [c for c, _ in rows],
                  "objects": [o for _, o in rows]}).write_parquet(source)
    config = GenerateConfig(input=source, output=out / "t.parquet", model=str(model_dir), engine=EngineOptions(**ENGINE),
                            absent_objects=1, constrain=constrain, max_attempts=attempts, quiet=True, overwrite=True)
    start = time.perf_counter()
    summary = generate(config)
    seconds = time.perf_counter() - start
    accepted = pl.read_parquet(summary.output).filter(pl.col("kind") != "caption").to_dicts()
    rejects = pl.read_parquet(summary.rejects).filter(pl.col("id").str.contains("#absent-")).to_dicts()
    by_id = {f"scpp-{i:03d}": row for i, row in enumerate(rows)}
    wrong = Counter()
    for row in accepted:
        caption, shown = by_id[row["source_id"]]
        problem = right(row, caption, shown, names())
        wrong[problem] += problem is not None
    calls = sum(r["attempts"] for r in accepted) + sum(r["attempts"] for r in rejects)
    return {"constrain": constrain, "planned": summary.run["counts"].get("absent_planned", 0),
            "accepted": len(accepted), "right": len(accepted) - sum(wrong.values()), "calls": calls,
            "first": sum(r["attempts"] == 1 for r in accepted), "wrong": dict(+wrong), "seconds": seconds,
            "reasons": dict(Counter(r["reason"] for r in rejects).most_common()), "sample": accepted[:6]}


def report(result: dict) -> None:
    print(f"\n--constrain {result['constrain']}: {result['planned']} absent rows planned, {result['accepted']} accepted "
          f"({result['first']} at the first attempt), {result['right']} accepted and right; {result['calls']} LLM calls, "
          f"{result['seconds']:.0f} s")
    print(f"  reject reasons: {result['reasons'] or 'none'}")
    print(f"  accepted but wrong: {result['wrong'] or 'none'}")
    for row in result["sample"]:
        print(f"  - {row['kind']}: {row['caption']} | {row['paraphrase']} | {row['negation']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-dir", type=Path, required=True)
    add_data_option(parser)
    parser.add_argument("--captions", type=int, default=40)
    parser.add_argument("--max-attempts", type=int, default=3)
    parser.add_argument("--constrain", choices=["polarity", "none", "both"], default="both")
    parser.add_argument("--out", type=Path, default=Path("out/absent-llm"))
    args = parser.parse_args()
    sugarcrepe_files(args.data)
    rows = captions_with_objects(args.data, args.captions, names())
    modes = ["polarity", "none"] if args.constrain == "both" else [args.constrain]
    print(f"{len(rows)} SugarCrepe++ captions naming a COCO object; --absent-objects 1, --max-attempts {args.max_attempts}")
    for mode in modes:
        report(run(rows, args.model_dir, args.out / mode, mode, args.max_attempts))


if __name__ == "__main__":
    main()
