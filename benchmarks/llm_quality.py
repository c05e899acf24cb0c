"""Triples right the first time: triplegen generate against the reference method, one model, one run.

    python benchmarks/llm_quality.py --model-dir models/smollm2 --captions 160

The captions are a seeded random sample of SugarCrepe++'s 4,757 (--pick first: the first ones).

(a) side by side on the same SugarCrepe++ captions and the same in-process engine: the reference
    method's four prompts (benchmarks/reference_method.py) and `triplegen generate` with its
    defaults; per caption and per accepted-and-correct triple: LLM calls, prompt tokens (all and
    computed, i.e. not served from vLLM's prefix cache), completion tokens, wall seconds; acceptance;
    correctness by a test that is not triplegen's checker. The captions are split into --rounds
    parts and the two methods alternate going first, so that the load of a shared machine falls on
    both. A seeded sample of accepted rows of each method is written to OUT/sample.md for reading.
(b) what the prompt and the constraint buy: first-attempt pass rate and tokens per call for the
    default template with and without the polarity constraint, with no examples and with the five
    examples of the former default (v1.0).
(c) the optional LLM judge (--judge-model, the same model) on the first --judge-captions captions.
(d) the served path: the same run through `vllm serve` (--base-url), with cached tokens reported.
(e) what hotter retries buy: the defaults with --retry-temperature 1.0 and 0.

The SugarCrepe++ JSON files are read from --data-dir (benchmarks/sugarcrepe_data.py); without them the
script stops with a one-line error (exit code 2).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from collections import Counter
from pathlib import Path

import yaml

os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from llm_backends import ENGINE, start_server, sugarcrepe_captions, write_input  # noqa: E402
from sugarcrepe_data import add_data_option, sugarcrepe_files  # noqa: E402
from reference_method import independent_verdict, run_reference  # noqa: E402

# The three examples the default template had besides its current two, up to version 1.0.
V1_EXAMPLES = [
    {"caption": "There is a clock on the kitchen wall.", "paraphrase": "A clock hangs on the wall of the kitchen.",
     "negation": "There is no clock on the kitchen wall."},
    {"caption": "A plate of pasta next to a glass of red wine.",
     "paraphrase": "A glass of red wine sits beside a plate of pasta.",
     "negation": "A plate of pasta with no glass of red wine next to it."},
    {"caption": "A kitchen with no people in it.", "paraphrase": "A kitchen where nobody is present.",
     "negation": "A kitchen with people in it."},
]


def generate_run(out: Path, captions: list[str], model_dir: Path, **options):
    """One `triplegen generate` run; (seconds, run metadata, accepted rows, rejected rows)."""
    import polars as pl

    from triplegen.config import EngineOptions, GenerateConfig
    from triplegen.orchestration.run import generate

    out.mkdir(parents=True, exist_ok=True)
    config = GenerateConfig(input=write_input(captions, out / "captions.parquet"), output=out / "t.parquet",
                            model=options.pop("model", str(model_dir)), engine=EngineOptions(**ENGINE), quiet=True,
                            overwrite=True, **options)
    start = time.perf_counter()
    summary = generate(config)
    seconds = time.perf_counter() - start
    return seconds, summary.run, pl.read_parquet(summary.output).to_dicts(), pl.read_parquet(summary.rejects).to_dicts()


def tally(name: str) -> dict:
    return {"method": name, "captions": 0, "accepted": [], "calls": 0, "prompt": 0, "cached": 0, "completion": 0,
            "seconds": 0.0}


def side_by_side(llm, model_dir: Path, captions: list[str], rounds: int, out: Path) -> list[dict]:
    reference, ours = tally("reference method (4 prompts, Yes/No judge)"), tally("triplegen generate (defaults)")
    parts = [captions[i::rounds] for i in range(rounds)]
    for index, part in enumerate(parts):
        order = [reference, ours] if index % 2 == 0 else [ours, reference]
        for method in order:
            method["captions"] += len(part)
            if method is reference:
                start = time.perf_counter()
                done = run_reference(llm, part, seed=index * 10_000)
                method["seconds"] += time.perf_counter() - start
                method["accepted"] += [(c, p, n) for c, p, n in zip(part, done.paraphrases, done.negations)]
                cost = done.cost
                method["calls"] += cost.calls
                method["prompt"] += cost.prompt_tokens
                method["cached"] += cost.cached_tokens
                method["completion"] += cost.completion_tokens
            else:
                seconds, run, accepted, _ = generate_run(out / f"ours-{index}", part, model_dir)
                method["seconds"] += seconds
                method["accepted"] += [(r["caption"], r["paraphrase"], r["negation"]) for r in accepted]
                method["calls"] += run["counts"]["judged"]
                method["prompt"] += run["tokens"]["prompt"]
                method["cached"] += run["tokens"]["cached"]
                method["completion"] += run["tokens"]["completion"]
    return [reference, ours]


def side_by_side_table(methods: list[dict]) -> str:
    lines = ["**(a) Side by side, same model, engine and captions**", "",
             "| method | captions | accepted | accepted and correct | LLM calls / caption | LLM calls / correct triple "
             "| prompt tokens / correct (computed) | completion tokens / correct | wall s | correct triples / s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for m in methods:
        correct = sum(not independent_verdict(*row) for row in m["accepted"])
        m["correct"] = correct
        per = max(correct, 1)
        m["rate"] = correct / m["seconds"]
        lines.append(
            f"| {m['method']} | {m['captions']} | {len(m['accepted'])} ({len(m['accepted']) / m['captions']:.1%}) "
            f"| {correct} ({correct / m['captions']:.1%}) | {m['calls'] / m['captions']:.2f} | {m['calls'] / per:.2f} "
            f"| {m['prompt'] / per:,.0f} ({(m['prompt'] - m['cached']) / per:,.0f}) | {m['completion'] / per:,.1f} "
            f"| {m['seconds']:.0f} | {m['rate']:.3f} |")
    ratio = (f"**{methods[1]['rate'] / methods[0]['rate']:.1f}x**" if methods[0]["rate"]
             else "n/a: no triple of the reference passes the independent test")
    lines += ["", f"Accepted-and-correct triples per second, triplegen / reference: {ratio}", "",
              "Problems found by the independent test among the accepted rows:", "",
              "| method | " + " | ".join(PROBLEMS) + " |", "|---|" + "---:|" * len(PROBLEMS)]
    for m in methods:
        found = Counter(p for row in m["accepted"] for p in independent_verdict(*row))
        lines.append(f"| {m['method']} | " + " | ".join(str(found[p]) for p in PROBLEMS) + " |")
    return "\n".join(lines)


PROBLEMS = ["paraphrase polarity", "negation polarity", "paraphrase copy", "negation copy", "paraphrase cut off",
            "negation cut off"]


def write_sample(methods: list[dict], n: int, path: Path) -> None:
    lines = ["# Accepted rows to read by eye (seeded sample)", ""]
    for m in methods:
        rows = random.Random(0).sample(m["accepted"], min(n, len(m["accepted"])))
        lines += [f"## {m['method']}", ""]
        for i, (caption, paraphrase, negation) in enumerate(rows, 1):
            flags = ", ".join(independent_verdict(caption, paraphrase, negation)) or "-"
            lines += [f"{i}. caption: {caption}", f"   - paraphrase: {paraphrase!r}", f"   - negation: {negation!r}",
                      f"   - independent test: {flags}", ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def template_variant(out: Path, label: str, examples: list[dict]) -> str:
    from triplegen.templates import template_source

    data = yaml.safe_load(template_source("default")[1])
    data["examples"] = examples
    path = out / "prompts" / label / "default.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return str(path)


def prompt_variants(model_dir: Path, captions: list[str], out: Path) -> str:
    from triplegen.templates import load_template

    two = [e.model_dump(exclude_defaults=True) for e in load_template("default").examples]
    variants = [
        ("default v2 (2 examples), polarity constraint", "default", "polarity"),
        ("default v2 (2 examples), template schema only", "default", "none"),
        ("no examples, polarity constraint", template_variant(out, "zero", []), "polarity"),
        ("v1.0's 5 examples, polarity constraint", template_variant(out, "five", two + V1_EXAMPLES), "polarity"),
        ("v1.0's 5 examples, template schema only (the former default)", template_variant(out, "five", two + V1_EXAMPLES),
         "none"),
    ]
    lines = ["**(b) What the examples and the constraint buy (first attempt only)**", "",
             "| variant | passed the checks | prompt tokens / call | computed prompt tokens / call "
             "| completion tokens / call | top reasons |", "|---|---:|---:|---:|---:|---|"]
    for index, (label, prompt, constrain) in enumerate(variants):
        _, run, accepted, _ = generate_run(out / f"variant-{index}", captions, model_dir, prompt=prompt,
                                           constrain=constrain, max_attempts=1)
        calls, tokens = run["counts"]["judged"], run["tokens"]
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(run["reject_reasons"].items(), key=lambda kv: -kv[1])[:3])
        lines.append(f"| {label} | {len(accepted) / len(captions):.1%} | {tokens['prompt'] / calls:.0f} "
                     f"| {(tokens['prompt'] - tokens['cached']) / calls:.0f} | {tokens['completion'] / calls:.1f} "
                     f"| {reasons or '-'} |")
    return "\n".join(lines)


def retry_table(model_dir: Path, captions: list[str], out: Path) -> str:
    """What hotter retries buy: the defaults with retries at 1.0 and at the template's 0.2."""
    lines = ["**(e) Retries: at --retry-temperature 1.0 (default) and at the template's 0.2 (0)**", "",
             "| retries at | retried captions | of those, accepted in the end | accepted | LLM calls / accepted |",
             "|---|---:|---:|---:|---:|"]
    for label, temperature in (("1.0 (default)", 1.0), ("0.2 (--retry-temperature 0)", 0.0)):
        _, run, accepted, rejected = generate_run(out / f"retry-{temperature}", captions, model_dir,
                                                  retry_temperature=temperature)
        retried = [r for r in accepted + rejected if r["attempts"] > 1]
        saved = sum(r["attempts"] > 1 for r in accepted)
        lines.append(f"| {label} | {len(retried)} | {saved} | {len(accepted)} of {len(captions)} "
                     f"| {run['counts']['judged'] / max(len(accepted), 1):.2f} |")
    return "\n".join(lines)


def judge_table(model_dir: Path, captions: list[str], out: Path) -> str:
    _, run, accepted, rejected = generate_run(out / "judge", captions, model_dir, judge_model=str(model_dir))
    counts = run["judge_counts"]
    by_judge = [r for r in rejected if r["reason"].startswith("judge_")]
    raw = {r["id"]: json.loads(r["raw_output"]) for r in by_judge}
    correct_rejected = sum(not independent_verdict(r["caption"], raw[r["id"]]["paraphrase"], raw[r["id"]]["negation"])
                           for r in by_judge)
    reasons = Counter(r["reason"] for r in by_judge)
    return "\n".join([
        f"**(c) The LLM judge (same model), {len(captions)} captions**", "",
        "| measure | value |", "|---|---:|",
        f"| rows the checks accepted, sent to the judge | {len(accepted) + len(by_judge)} |",
        f"| judge calls | {counts.get('calls', 0)} |",
        f"| judge prompt tokens (computed) | {counts.get('prompt_tokens', 0):,} "
        f"({counts.get('prompt_tokens', 0) - counts.get('cached_tokens', 0):,}) |",
        f"| judge completion tokens | {counts.get('completion_tokens', 0):,} |",
        f"| rejected by the judge | {len(by_judge)} ({', '.join(f'{k} {v}' for k, v in reasons.most_common())}) |",
        f"| of those, correct by the independent test | {correct_rejected} |",
        f"| kept by the judge | {len(accepted)} |",
    ])


def served_table(model_dir: Path, captions: list[str], out: Path) -> str:
    process, url = start_server(model_dir, out / "server.log", ("--enable-prompt-tokens-details",))
    try:
        from triplegen.config import ServerOptions

        seconds, run, accepted, _ = generate_run(out / "served", captions, model_dir, model="smollm2",
                                                 server=ServerOptions(base_urls=[url], concurrency=16))
    finally:
        process.terminate()
        process.wait(timeout=60)
    calls, tokens = run["counts"]["judged"], run["tokens"]
    correct = sum(not independent_verdict(r["caption"], r["paraphrase"], r["negation"]) for r in accepted)
    per = max(correct, 1)
    return "\n".join([
        "**(d) Served (`--base-url`, vLLM's OpenAI-compatible server with --enable-prompt-tokens-details)**", "",
        "| measure | value |", "|---|---:|",
        f"| constraint | {'applied' if run['constraint']['applied'] else 'not applied'}: {run['constraint']['note']} |",
        f"| accepted | {len(accepted)} of {len(captions)} ({len(accepted) / len(captions):.1%}) |",
        f"| accepted and correct (independent test) | {correct} |",
        f"| LLM calls / correct triple | {calls / per:.2f} |",
        f"| prompt tokens / correct (computed) | {tokens['prompt'] / per:,.0f} "
        f"({(tokens['prompt'] - tokens['cached']) / per:,.0f}; cached reported by {tokens['cache_reports']} of {calls} calls) |",
        f"| completion tokens / correct | {tokens['completion'] / per:.1f} |",
        f"| wall s | {seconds:.0f} |",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=Path("models/smollm2"))
    add_data_option(parser)
    parser.add_argument("--captions", type=int, default=160)
    parser.add_argument("--pick", choices=["random", "first"], default="random",
                        help="a seeded random sample of the captions (--pick-seed) or the first ones in file order")
    parser.add_argument("--pick-seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sample", type=int, default=50)
    parser.add_argument("--judge-captions", type=int, default=40)
    parser.add_argument("--out", type=Path, default=Path("out/llm-quality"))
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: a,b,c,d,e")
    args = parser.parse_args()
    sugarcrepe_files(args.data)
    skip = set(args.skip.split(","))

    from triplegen.backends.vllm import release_engines, shared_engine
    from triplegen.config import EngineOptions
    from triplegen.smollm2 import prepare_smollm2

    model_dir = prepare_smollm2(args.model_dir)
    if args.pick == "first":
        captions = sugarcrepe_captions(args.data, args.captions)
    else:
        captions = random.Random(args.pick_seed).sample(sugarcrepe_captions(args.data, 0, every=True), args.captions)
    args.out.mkdir(parents=True, exist_ok=True)
    tables = []
    try:
        llm = shared_engine(str(model_dir), EngineOptions(**ENGINE))
        if "a" not in skip:
            methods = side_by_side(llm, model_dir, captions, args.rounds, args.out)
            tables.append(side_by_side_table(methods))
            write_sample(methods, args.sample, args.out / "sample.md")
        if "b" not in skip:
            tables.append(prompt_variants(model_dir, captions, args.out))
        if "c" not in skip:
            tables.append(judge_table(model_dir, captions[: args.judge_captions], args.out))
        if "e" not in skip:
            tables.append(retry_table(model_dir, captions, args.out))
    finally:
        release_engines()  # an engine left running keeps the interpreter from exiting
    if "d" not in skip:
        tables.append(served_table(model_dir, captions, args.out))
    print("\n\n".join(tables))


if __name__ == "__main__":
    main()
