"""Quality and speed of the rules generator on real captions (the 3,893 distinct SugarCrepe++ captions).

    python benchmarks/rules_quality.py                    # speed, check pass rates, failure reasons
    python benchmarks/rules_quality.py --semantic         # + all-MiniLM-L6-v2 similarity distributions
    python benchmarks/rules_quality.py --blind-model models/smollm2   # + a text-only model's view per negation shape

Speed is the rules backend alone (`RulesBackend.generate`, JSON included) in this one process, so
on one core; best of --repeats passes over the captions with the tokenizer and cue caches cleared
before each, CPU seconds (process time) beside wall seconds because these machines are shared.
Quality is every pair through `check_triple`, the checks `generate` and `validate` apply.
The semantic part prints cosine similarity to the caption for human paraphrases (caption2), human
hard negatives, unrelated captions (a fixed shuffle), and the rules' own outputs: the numbers the
thresholds in `triplegen/checks/semantic.py` were chosen from. The blind part scores each caption and
its rules negation with a small causal LM (`triplegen.checks.blind`), per shape of negation: a
negation the model tells from its caption without the image teaches CLIP the wording, not the image.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import Counter
from pathlib import Path

from sugarcrepe_data import add_data_option, sugarcrepe_files

from triplegen.backends.base import Request
from triplegen.backends.rules import RulesBackend
from triplegen.checks.lexical import CheckConfig, check_triple, content_words
from triplegen.rules.lexicon import tokenize
from triplegen.rules.polarity import cue_spans


def load_items(folder: Path | None) -> list[dict]:
    files = sugarcrepe_files(folder)
    return [item for path in files for item in json.loads(path.read_text(encoding="utf-8"))]


def time_backend(captions: list[str], repeats: int, batch: int = 256) -> tuple[float, float, list[dict]]:
    """Best captions/s over `repeats` cold passes: (per CPU second, per wall second, outputs)."""
    backend = RulesBackend()
    requests = [Request(str(i), caption, [], seed=0) for i, caption in enumerate(captions)]
    best_cpu = best_wall = 0.0
    outputs: list[dict] = []
    for _ in range(repeats):
        tokenize.cache_clear()
        cue_spans.cache_clear()
        cpu, wall = time.process_time(), time.perf_counter()
        completions = [c for s in range(0, len(requests), batch) for c in backend.generate(requests[s : s + batch], {})]
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        best_cpu, best_wall = max(best_cpu, len(captions) / cpu), max(best_wall, len(captions) / wall)
        outputs = [json.loads(c.text) for c in completions]
    return best_cpu, best_wall, outputs


def quality(captions: list[str], outputs: list[dict]) -> tuple[dict[str, float], Counter]:
    reasons: Counter = Counter()
    passed = Counter()
    for caption, pair in zip(captions, outputs):
        found = check_triple(caption, pair["paraphrase"] or None, pair["negation"] or None)
        reasons.update(found)
        passed["paraphrase"] += not any(r.startswith("paraphrase") or r == "empty_paraphrase" for r in found)
        passed["negation"] += not any(r.startswith("negation") or r == "empty_negation" for r in found)
        passed["triple"] += not found
    return {key: value / len(captions) for key, value in passed.items()}, reasons


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)

    def at(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    return " | ".join(f"{at(p):.3f}" for p in (1, 5, 50, 95, 99))


def comparison_pairs(items: list[dict], captions: list[str], outputs: list[dict]) -> list[tuple[str, list]]:
    """(name, [(caption, other), ...]) for the human and the rules outputs, and a fixed unrelated shuffle."""
    shuffled = captions[:]
    random.Random(0).shuffle(shuffled)
    return [
        ("human paraphrase (caption2)", [(i["caption"], i["caption2"]) for i in items]),
        ("human hard negative", [(i["caption"], i["negative_caption"]) for i in items]),
        ("unrelated caption (shuffled)", list(zip(captions, shuffled))),
        ("rules paraphrase", [(c, o["paraphrase"]) for c, o in zip(captions, outputs) if o["paraphrase"]]),
        ("rules negation", [(c, o["negation"]) for c, o in zip(captions, outputs) if o["negation"]]),
    ]


def overlap_table(rows: list[tuple[str, list]]) -> None:
    bound = CheckConfig().min_negation_overlap
    print("\nShare of the caption's content words kept (the negation_unrelated check)\n")
    print(f"| pair | n | p1 | p5 | median | p95 | p99 | below {bound} |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, pairs in rows:
        shares = []
        for caption, other in pairs:
            words = content_words(caption)
            shares.append(len(words & content_words(other)) / len(words) if words else 1.0)
        below = sum(s < bound for s in shares) / len(shares)
        print(f"| {name} | {len(pairs):,} | {percentiles(shares)} | {below:.2%} |")


def semantic_table(rows: list[tuple[str, list]], threads: int) -> None:
    import torch

    from triplegen.checks.semantic import SemanticChecker

    torch.set_num_threads(threads)
    checker = SemanticChecker()
    texts = sorted({text for _, pairs in rows for pair in pairs for text in pair})
    started = time.perf_counter()
    embeddings = checker.embed(texts)  # (len(texts), 384), each text once
    seconds = time.perf_counter() - started
    index = {text: i for i, text in enumerate(texts)}
    p_min, n_min = checker.min_paraphrase_similarity, checker.min_negation_similarity
    print(f"\nCosine similarity to the caption (all-MiniLM-L6-v2, {len(texts):,} texts embedded in {seconds:.0f} s "
          f"on {threads} thread(s))\n")
    print(f"| pair | n | p1 | p5 | median | p95 | p99 | below {p_min} | below {n_min} |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, pairs in rows:
        left = embeddings[[index[a] for a, _ in pairs]]
        right = embeddings[[index[b] for _, b in pairs]]
        sims = (left * right).sum(-1).tolist()
        below = [sum(s < bound for s in sims) / len(sims) for bound in (p_min, n_min)]
        print(f"| {name} | {len(pairs):,} | {percentiles(sims)} | {below[0]:.2%} | {below[1]:.2%} |")
    print(f"\nThe check rejects a paraphrase below {p_min} (low_paraphrase_similarity) and a negation below "
          f"{n_min} (low_negation_similarity: off topic).")


def negation_shape(caption: str, negation: str) -> str:
    """Where the rules put the denial, read off the first word the negation changes."""
    if cue_spans(caption):
        return "the caption's negation removed"
    before = [t.lower for t in tokenize(caption)]
    after = [t.lower for t in tokenize(negation)]
    k = next((i for i, (a, b) in enumerate(zip(before, after)) if a != b), min(len(before), len(after)))
    word = after[k] if k < len(after) else ""
    if word in ("no", "nobody", "nothing") and k > 0 and before[k - 1] == "with":
        return '"with no X": what "with" names'
    if word in ("no", "nobody", "nothing") and k > 0 and before[k - 1] in ("is", "are", "'s", "was", "were"):
        return '"there is no X"'
    if word in ("no", "nobody", "nothing"):
        return '"No X ...": the subject'
    if word in ("not", "cannot", "does", "do", "did"):
        return 'a verb or participle with "not"'
    return "other"


def blind_table(captions: list[str], outputs: list[dict], items: list[dict], model: str) -> None:
    from triplegen.checks.blind import DETECTABLE_MARGIN, BlindScorer

    scorer = BlindScorer(model)
    pairs = [(c, o["negation"]) for c, o in zip(captions, outputs) if o["negation"]]
    groups: dict[str, list[tuple[str, str]]] = {}
    for caption, negation in pairs:
        groups.setdefault(negation_shape(caption, negation), []).append((caption, negation))
    groups = {"all rules negations": pairs, **dict(sorted(groups.items(), key=lambda kv: -len(kv[1])))}
    groups["human hard negatives (SugarCrepe++)"] = [(i["caption"], i["negative_caption"]) for i in items]
    texts = sorted({text for group in groups.values() for pair in group for text in pair})
    score = dict(zip(texts, scorer.score(texts)))
    print(f"\nBlind model {model}: share of pairs in which it scores the caption above the negation (50%: "
          f"cannot tell), and above it by more than {DETECTABLE_MARGIN:.3f} nats/token (what --blind-model "
          "rejects as blind_detectable)\n")
    print("| negation | pairs | prefers the caption | blind_detectable |")
    print("|---|---:|---:|---:|")
    for name, group in groups.items():
        gaps = [score[caption] - score[negation] for caption, negation in group]
        print(f"| {name} | {len(group):,} | {sum(g > 0 for g in gaps) / len(gaps):.1%} "
              f"| {sum(g > DETECTABLE_MARGIN for g in gaps) / len(gaps):.1%} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_option(parser)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--semantic", action="store_true", help="also embed with all-MiniLM-L6-v2")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the embedding model")
    parser.add_argument("--blind-model", default=None, help="a causal LM folder (triplegen prepare-smollm2 ...)")
    args = parser.parse_args()

    items = load_items(args.data)
    captions = sorted({item["caption"] for item in items})
    per_cpu, per_wall, outputs = time_backend(captions, args.repeats)
    shares, reasons = quality(captions, outputs)

    print(f"Rules generator on {len(captions):,} distinct SugarCrepe++ captions (one process)\n")
    print("| measure | value |")
    print("|---|---:|")
    print(f"| captions/s per CPU second (best of {args.repeats}) | {per_cpu:,.0f} |")
    print(f"| captions/s wall clock (best of {args.repeats}) | {per_wall:,.0f} |")
    print(f"| negations passing the checks | {shares['negation']:.2%} |")
    print(f"| paraphrases passing the checks | {shares['paraphrase']:.2%} |")
    print(f"| triples passing all checks | {shares['triple']:.2%} |")
    print("\n| reason | rows |")
    print("|---|---:|")
    for reason, count in reasons.most_common() or [("(none)", 0)]:
        print(f"| {reason} | {count} |")
    rows = comparison_pairs(items, captions, outputs)
    overlap_table(rows)
    if args.semantic:
        semantic_table(rows, args.threads)
    if args.blind_model:
        blind_table(captions, outputs, items, args.blind_model)


if __name__ == "__main__":
    main()
