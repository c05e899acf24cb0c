"""Does the SemCLIP loss teach a CLIP negation? A side-by-side run on the synthetic shapes benchmark.

    python benchmarks/synthetic_clip_vs_semclip.py

Generates the benchmark (coloured shapes in a 2 x 2 grid; captions, paraphrases and negations that
are exactly true or false of each image), builds one small random CLIP, and trains it from scratch
with each loss from the same seed, on the same data, for the same steps, through
`semclip_train.train`. Two training sets:

- `mixed`: half the captions also say what is absent ("a red circle and no blue square"), so the
  contrastive term alone sees true captions with "no";
- `affirmative`: captions never negate; "no" appears only in the triples' negations, as with web
  captions (CC-Neg's setting), so only the text-to-text terms of the loss ever see it.

Every model is evaluated on one held-out test split of the mixed kind:

- ccneg_acc: cos(image, caption) > cos(image, negation) ("original over negation"), and split by
  direction: adds_no (the negation adds a "no": "a red circle" / "no red circle") and
  drops_no (the true caption has the "no": "a red circle and no blue square" / "a red circle
  and a blue square"). A model that merely dislikes the word "no" wins the first and loses the second;
  scope_after / scope_before: "a A and no B" over "a B and no A" in both clause orders;
- text_neg_acc: cos(c, c+) > cos(c, c-) and cos(c, c+) > cos(c+, c-) (SugarCrepe++ TOT form);
- cap2para_r1: caption -> paraphrase Recall@1 among the test paraphrases (text to text);
- para2img_r1: paraphrase -> image Recall@1; i2t/t2i_r1/r5: image-caption retrieval;
- neg_cos_full / neg_cos_projN: mean cos(t, t-) in the full embedding and in the loss's projection
  p(x) = V^T x / ||V^T x|| (the seeded V the trainer builds): what the negation term acts on.

Prints one table and writes results.json (and similarities.png with --plot) under --output.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# A small CLIP that learns this world from scratch in minutes on two cores.
PRESET = {
    "text": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4},
    "vision": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "image_size": 32,
        "patch_size": 8,
    },
    "projection_dim": 64,
}
# name -> (loss, loss options)
VARIANTS = {
    "clip": ("clip", {}),
    "semclip": ("semclip", {}),  # paper defaults: a = b = g = 1, n = 2 fixed projections
    "semclip-n16": ("semclip", {"n_projections": 16}),
    "negation-only": ("negation-only", {}),
}
SETTINGS = {"mixed": 0.5, "affirmative": 0.0}  # name -> share of captions with an absent clause
TEST_ABSENT_RATE = 0.5


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=Path("runs/synthetic-benchmark"))
    parser.add_argument("--variants", default="clip,semclip,semclip-n16", help=f"comma-separated, from {', '.join(VARIANTS)}")
    parser.add_argument("--settings", default=",".join(SETTINGS), help=f"comma-separated, from {', '.join(SETTINGS)}")
    parser.add_argument("--train-items", type=int, default=20_000)
    parser.add_argument("--test-items", type=int, default=300)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (a data-loading worker uses one more core)")
    parser.add_argument("--plot", action="store_true", help="also write similarities.png (needs matplotlib)")
    return parser.parse_args()


def choose(text: str, known: dict) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise SystemExit(f"unknown choice(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    return names


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the data-loading worker)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def negation_cosines(embedder, data, n_projections: int, seed: int) -> tuple[float, float]:
    """Mean cos(t, t-) in the full space and after the loss's projection onto n seeded directions."""
    import torch.nn.functional as F

    from semclip_train.training.losses import orthonormal_basis

    caption = embedder.texts(data.captions, "test")
    negation = embedder.texts(data.negations, "test")
    full = (caption * negation).sum(-1).mean().item()
    basis = orthonormal_basis(caption.shape[1], n_projections, seed).to(caption)
    projected = (F.normalize(caption @ basis, dim=-1) * F.normalize(negation @ basis, dim=-1)).sum(-1)
    return full, projected.mean().item()


def run_variant(name: str, train_file: Path, run_dir: Path, args, model_dir: Path, test, test_file: Path) -> dict:
    from semclip_train import TrainConfig, train
    from semclip_train.evaluation.embed import Embedder
    from semclip_train.evaluation.evaluate import evaluate_synthetic
    from semclip_train.evaluation.synthetic_data import load_scenes
    from semclip_train.model import load_clip

    loss, options = VARIANTS[name]
    shutil.rmtree(run_dir, ignore_errors=True)
    config = TrainConfig(
        triples=train_file, clip_config=model_dir, loss=loss, **options,
        freeze_vision=False, cache_image_embeddings=False, val_fraction=0.0, workers=1,
        batch_size=args.batch_size, max_steps=args.steps, lr=args.lr, warmup_steps=args.steps // 20,
        weight_decay=0.1, seed=args.seed, output=run_dir, checkpoint_every=args.steps, log_every=50,
        device="cpu", precision="fp32", quiet=True,
    )
    started, cpu = time.perf_counter(), cpu_seconds()
    result = train(config)
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    model, processor = load_clip(str(result.final_dir))
    embedder = Embedder(model, processor, device="cpu", batch_size=256, fingerprint=str(run_dir))
    evaluation = evaluate_synthetic(embedder, test, "test", load_scenes(test_file), args.seed)
    row = evaluation.rows["synthetic"]
    n_projections = options.get("n_projections", 2)
    row["neg_cos_full"], row["neg_cos_proj2"] = negation_cosines(embedder, test, 2, args.seed)
    if n_projections != 2:
        row[f"neg_cos_proj{n_projections}"] = negation_cosines(embedder, test, n_projections, args.seed)[1]
    row.update(train_s=seconds, train_cpu_s=cpu)
    return {"row": row, "evaluation": evaluation}


def prepare(args, settings: list[str]):
    """Training triples per setting, the shared mixed test split, one random-init model folder."""
    import pyarrow.parquet as pq

    from semclip_train.evaluation.eval_data import load_triples
    from semclip_train.evaluation.synthetic_data import write_benchmark
    from semclip_train.random_model import write_random_clip_folder

    data = args.output / "data"
    train_files = {
        setting: write_benchmark(data / setting, args.train_items, seed=args.seed, absent_rate=SETTINGS[setting],
                                 splits=("train",))["train"]
        for setting in settings
    }
    test_file = write_benchmark(data, test_count=args.test_items, seed=args.seed, absent_rate=TEST_ABSENT_RATE,
                                splits=("test",))["test"]
    texts = [text for path in train_files.values()
             for row in pq.read_table(path, columns=["caption", "paraphrase", "negation"]).to_pylist()
             for text in row.values()]
    # 400: byte-level BPE merges up to whole words here (at most 18 tokens, no truncation).
    model_dir = write_random_clip_folder(args.output / "model-config", texts, preset=PRESET, vocab_size=400)
    return train_files, load_triples(test_file), test_file, model_dir


def main() -> None:
    args = parse_args()
    names, settings = choose(args.variants, VARIANTS), choose(args.settings, SETTINGS)
    import torch

    torch.set_num_threads(args.threads)
    started, cpu = time.perf_counter(), cpu_seconds()
    train_files, test, test_file, model_dir = prepare(args, settings)
    print(f"data: {args.train_items} training triples per setting, {len(test.captions)} test items "
          f"({time.perf_counter() - started:.0f} s); {args.steps} steps of {args.batch_size}, lr {args.lr}, "
          f"seed {args.seed}, {args.threads} torch thread(s)", flush=True)
    results = {}
    for setting in settings:
        for name in names:
            key = f"{setting}/{name}"
            results[key] = run_variant(name, train_files[setting], args.output / "runs" / setting / name, args, model_dir, test,
                                        test_file)
            print(f"  {key}: " + ", ".join(f"{k} {v:.3f}" for k, v in results[key]["row"].items() if k != "n"), flush=True)
    print_table(results)
    payload = {
        "command": "python benchmarks/synthetic_clip_vs_semclip.py " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k not in ("output", "plot")),
        "preset": PRESET,
        "results": {key: result["row"] for key, result in results.items()},
        "total_s": time.perf_counter() - started,
        "total_cpu_s": cpu_seconds() - cpu,
    }
    (args.output / "results.json").write_text(json.dumps(payload, indent=2) + "\n")
    if args.plot:
        from semclip_train.evaluation.plots import plot_similarities

        plot_similarities({key: r["evaluation"] for key, r in results.items()}, args.output / "similarities.png",
                          title="synthetic test split: cos(image, caption) vs cos(image, negation)")
    print(f"total {payload['total_s']:.0f} s wall, {payload['total_cpu_s']:.0f} s CPU; "
          f"results in {args.output / 'results.json'}")


def print_table(results: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    columns = list(dict.fromkeys(key for r in results.values() for key in r["row"] if key != "n"))
    table = Table(title="synthetic shapes benchmark, held-out test split (fractions; seconds for *_s)")
    table.add_column("setting/loss")
    for column in columns:
        table.add_column(column, justify="right")
    for name, result in results.items():
        row = result["row"]
        table.add_row(name, *(f"{row[c]:.3f}" if c in row else "" for c in columns))
    Console(width=250).print(table)


if __name__ == "__main__":
    main()
