"""The blind check's thresholds (triplegen.checks.blind), measured on SugarCrepe++'s human texts.

    triplegen prepare-smollm2 models/smollm2
    python benchmarks/blind_thresholds.py --model models/smollm2 [--data-dir FOLDER]   # SugarCrepe++

A blind (text-only) model scores each text by its mean log-probability per token. Human hard
negatives (`negative_caption`) are the reference for how much less likely a fair false text may be
than its caption; human paraphrases (`caption2`) for how much less fluent a fair rewrite may be.
The 95th percentile of each difference is the threshold: 5% of the human texts would be flagged.
Prints the percentiles, the chosen thresholds, and per file the share of pairs in which the model
prefers the caption (SugarCrepe's measure of a text-only bias; 50% is none) and the share flagged.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from sugarcrepe_data import add_data_option, sugarcrepe_files

from triplegen.checks.blind import BlindScorer
PERCENTILES = (5, 50, 95, 99)


def load_items(folder: Path | None, limit: int | None) -> dict[str, list[dict]]:
    files = sugarcrepe_files(folder)
    return {path.stem: json.loads(path.read_text(encoding="utf-8"))[:limit] for path in files}


def differences(items: dict[str, list[dict]], scores: dict[str, float], other: str) -> dict[str, np.ndarray]:
    """Per file, score(caption) - score(item[other]) of every item."""
    return {name: np.array([scores[item["caption"]] - scores[item[other]] for item in rows])
            for name, rows in items.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_option(parser)
    parser.add_argument("--model", default="models/smollm2", help="the blind model's folder")
    parser.add_argument("--limit", type=int, default=None, help="only the first N items of each file")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    items = load_items(args.data, args.limit)
    texts = sorted({item[key] for rows in items.values() for item in rows
                    for key in ("caption", "caption2", "negative_caption")})
    started = time.monotonic()
    scorer = BlindScorer(args.model, batch_size=args.batch_size)
    scores = dict(zip(texts, scorer.score(texts)))
    seconds = time.monotonic() - started
    negatives = differences(items, scores, "negative_caption")
    paraphrases = differences(items, scores, "caption2")
    every_negative = np.concatenate(list(negatives.values()))
    every_paraphrase = np.concatenate(list(paraphrases.values()))
    detectable, disfluent = np.percentile(every_negative, 95), np.percentile(every_paraphrase, 95)
    total = sum(map(len, items.values()))
    print(f"blind model {args.model}; {total:,} items, {len(texts):,} unique texts scored in {seconds:.0f} s\n")
    print("| score(caption) - score(other), nats/token | " + " | ".join(f"p{p}" for p in PERCENTILES) + " |")
    print("|---|" + "---:|" * len(PERCENTILES))
    for name, values in (("negative_caption (human hard negatives)", every_negative),
                         ("caption2 (human paraphrases)", every_paraphrase)):
        print(f"| {name} | " + " | ".join(f"{np.percentile(values, p):.3f}" for p in PERCENTILES) + " |")
    print(f"\nDETECTABLE_MARGIN = {detectable:.3f}   DISFLUENT_MARGIN = {disfluent:.3f}\n")
    print("| file | items | prefers caption over negative_caption | flagged detectable | "
          "prefers caption over caption2 | caption2 flagged disfluent |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in items:
        neg, par = negatives[name], paraphrases[name]
        print(f"| {name} | {len(neg):,} | {np.mean(neg > 0):.1%} | {np.mean(neg > detectable):.1%} | "
              f"{np.mean(par > 0):.1%} | {np.mean(par > disfluent):.1%} |")
    print(f"| all | {total:,} | {np.mean(every_negative > 0):.1%} | {np.mean(every_negative > detectable):.1%} | "
          f"{np.mean(every_paraphrase > 0):.1%} | {np.mean(every_paraphrase > disfluent):.1%} |")


if __name__ == "__main__":
    main()
