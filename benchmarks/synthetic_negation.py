"""Does a CLIP fine-tuned on triplegen's triples understand negation, or only dislike "no"?

    python benchmarks/synthetic_negation.py

The situation of real data, on the synthetic shapes world (semclip_train/evaluation/synthetic.py): captions are
affirmative, and each image has object labels. Per seed:

1. a small CLIP is pretrained from scratch on affirmative captions only (the `clip` loss, both
   towers), so its "no" is untrained and leans one way or the other by chance;
2. `triplegen generate` (rules backend) turns other affirmative captions into triples, once as
   they are (`base`: "no" only ever appears in the negations) and once with `--absent-objects 1`
   (`absent`: also true captions that deny a missing object, with negations that claim it or move
   the "no" onto a shown object);
3. the pretrained model is fine-tuned with the vision tower frozen, with each loss, on each set;
4. every model is scored on a held-out test split (up to 2,000 scenes, 300 in the project's world;
   one right answer per caption):
   `adds_no` / `drops_no`: cos(I, caption) > cos(I, negation) where the negation adds a "no" /
   where the true caption holds it; `scope_after` / `scope_before`: "a A and no B" over "a B and no A"
   and "no B and a A" over "no A and a B" (same words, the scope of "no" decides); `scope_other`:
   the same with "without" and "there is no ... but there is"; `objects`: "a A" over "a B" on the same
   objects (what the frozen vision tower tells apart, which caps scope), and `scope_after_seen` /
   `scope_before_seen`: scope on the items whose objects the model tells apart; `text_neg`: cos(c, c+) > cos(c, c-) and
   > cos(c+, c-); `c2p_r1`: caption -> paraphrase R@1 (text only); `retrieval`: the mean of image ->
   caption and caption -> image R@1 and R@5.

Prints a table per seed and the mean over seeds, the acceptance line for the default loss, and
writes results.json under --output.

Other worlds of the family (semclip_train/evaluation/worlds.py: other objects, attributes, scene sizes,
relation words, caption grammars and scope wordings) with `--worlds 101,102,103`; each world is run
with every seed. `caption_r1` is the mean of image -> caption and caption -> image R@1 on 2,000 other held-out
plain captions (no "no": the retrieval a user's captions see), a hit being any caption true of the
image (any image true of the caption). A setting
`absent@0.25` trains on the `absent` triples with `--absent-share 0.25`; `--runs` names the
setting/loss pairs to train instead of every pair of `--settings` and `--losses`, and a loss may
carry an option: `absent/semclip-hardneg+pp` is `semclip-train --paraphrase-positives`, and
`absent/semclip-hardneg+paper` is `--beta 1 --gamma 1` (the paper's weights of the text terms).
`--text-width` and `--text-layers` size the small CLIP's text tower (default 256 wide, 4 deep),
`--vision-width` and `--patch-size` its vision tower (default 64 wide, 8-pixel patches), and
`--pretrain-steps` sets how long the starting model learns its world (default 1,500). With `--reuse`,
a run whose folder under --output holds a final model trained with the same config on the same data
(the same training rows and tokenizer) is scored again rather than retrained, so other losses can be
added to a finished start, or its runs scored on another `--test-items`; its cpu_s is then left blank.
The code is not compared: after a change to semclip-train, train again without it.
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

# A small CLIP that learns a world from scratch in minutes on one core. The text tower is the larger
# one: at 128 wide, absent-object rows cost 1.5-3 points of plain-caption retrieval on held-out worlds,
# at 256 none (docs/benchmarks.md, fourth round).
PRESET = {
    "text": {"hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 4, "num_attention_heads": 4},
    "vision": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
               "image_size": 32, "patch_size": 8},
    "projection_dim": 64,
}
LOSSES = ("clip", "semclip", "negclip", "semclip-hardneg")
SETTINGS = ("base", "absent")
COLUMNS = ("adds_no", "drops_no", "scope_after", "scope_before", "scope", "objects", "scope_after_seen",
           "scope_before_seen", "scope_other", "text_neg_acc", "cap2para_r1", "caption_r1", "retrieval")
LOSS_OPTIONS = {"pp": {"paraphrase_positives": True}, "paper": {"beta": 1.0, "gamma": 1.0}}  # LOSS+OPTION
DEFAULT_RUN = "absent/semclip-hardneg"  # the default recipe: --absent-objects 1 and the default loss


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=Path("runs/synthetic-negation"))
    parser.add_argument("--seeds", default="0,3", help="comma-separated; each seed is a new world sample and model")
    parser.add_argument("--worlds", default="default", help="comma-separated worlds: 'default' or numbers of the family")
    parser.add_argument("--losses", default=",".join(LOSSES))
    parser.add_argument("--settings", default=",".join(SETTINGS), help="base, absent, or absent@SHARE")
    parser.add_argument("--runs", default="", help="comma-separated SETTING/LOSS pairs (default: all of both lists)")
    parser.add_argument("--pretrain-items", type=int, default=20_000)
    # at 600 steps a starting model told a world's objects apart in 82% of items and fine-tuning with its
    # vision frozen cannot raise that; at 1,500 in 91%, at 3,000 no better (docs/benchmarks.md, fifth round)
    parser.add_argument("--pretrain-steps", type=int, default=1500)
    parser.add_argument("--captions", type=int, default=10_000, help="affirmative captions given to triplegen")
    parser.add_argument("--labelled-share", type=float, default=1.0,
                        help="share of those captions whose image has object labels (the rest get none)")
    # the bar's margins are a point or two, and a 300-item split holds about 50 drops_no items
    parser.add_argument("--test-items", type=int, default=None,
                        help="held-out test scenes (default: up to 2,000, as many as the world has whose captions are "
                             "true of no other; 300 on the project's world, and on every world before the eighth round)")
    parser.add_argument("--plain-items", type=int, default=2000, help="held-out plain captions for caption_r1")
    parser.add_argument("--steps", type=int, default=400, help="fine-tuning steps")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=5e-4, help="fine-tuning learning rate")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--text-width", type=int, default=PRESET["text"]["hidden_size"],
                        help="the text tower's hidden size (its MLP is twice that)")
    parser.add_argument("--text-layers", type=int, default=PRESET["text"]["num_hidden_layers"])
    parser.add_argument("--vision-width", type=int, default=PRESET["vision"]["hidden_size"],
                        help="the vision tower's hidden size (its MLP is twice that)")
    parser.add_argument("--patch-size", type=int, default=PRESET["vision"]["patch_size"],
                        help="the vision tower's patch size on 32-pixel images")
    parser.add_argument("--reuse", action="store_true",
                        help="score, not retrain, runs already trained with the same config on the same data")
    parser.add_argument("--pretrain-only", action="store_true",
                        help="only pretrain and score the starting models (to see which way their 'no' leans)")
    return parser.parse_args()


def names(text: str, known: tuple[str, ...]) -> list[str]:
    chosen = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in known]
    if unknown:
        raise SystemExit(f"unknown choice(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    return chosen


def prepare(folder: Path, seed: int, args, world) -> dict:
    """Pretraining triples, triplegen's two training sets, the test split and a random-init config."""
    import pyarrow.parquet as pq

    from semclip_train.evaluation.synthetic_data import write_benchmark
    from semclip_train.evaluation.worlds import DEFAULT
    from semclip_train.random_model import write_random_clip_folder
    from triplegen import GenerateConfig, generate

    data = folder / "data"
    pretrain = write_benchmark(data / "pretrain", args.pretrain_items, seed=seed, absent_rate=0.0,
                               splits=("train",), world=world)["train"]
    captions = write_benchmark(data, args.captions, seed=seed + 100, absent_rate=0.0, splits=("captions",),
                               world=world)["captions"]
    if args.labelled_share < 1.0:
        captions = unlabel(captions, args.labelled_share, seed)
    test = write_benchmark(data, test_count=args.test_items or (300 if world is DEFAULT else 2000), seed=seed,
                           absent_rate=0.5, splits=("test",), world=world, test_at_most=not args.test_items)["test"]
    plain = write_benchmark(data / "plain", args.plain_items, seed=seed + 200, absent_rate=0.0, splits=("train",),
                            world=world)["train"]
    triples, made = {}, {}
    for setting in SETTINGS:
        config = GenerateConfig(input=captions, output=data / f"triples-{setting}.parquet", overwrite=True, quiet=True,
                                absent_objects=1 if setting == "absent" else 0)
        summary = generate(config)
        triples[setting], made[setting] = summary.output, summary.run["counts"]
    texts = [row[k] for path in (pretrain, *triples.values())
             for row in pq.read_table(path, columns=["caption", "paraphrase", "negation"]).to_pylist() for k in row]
    text = {**PRESET["text"], "hidden_size": args.text_width, "intermediate_size": 2 * args.text_width,
            "num_hidden_layers": args.text_layers}
    vision = {**PRESET["vision"], "hidden_size": args.vision_width, "intermediate_size": 2 * args.vision_width,
              "patch_size": args.patch_size}
    model_config = write_random_clip_folder(data / "model-config", texts,
                                            preset={**PRESET, "text": text, "vision": vision}, vocab_size=400)
    return {"pretrain": pretrain, "triples": triples, "test": test, "plain": plain, "plain_truth": truth_matrix(plain),
            "model_config": model_config,
            "made": made,
            "denials": denied_shown_objects(triples["absent"]), "directions": directions(test)}


def directions(test: Path) -> dict[str, int]:
    """How many test items each direction's accuracy is measured on: at 300 scenes, about 50 drops_no."""
    import pyarrow.parquet as pq

    from semclip_train.evaluation.evaluate import adds_negation

    texts = pq.read_table(test, columns=["caption", "negation"]).to_pydict()
    adds = sum(adds_negation(texts["caption"], texts["negation"]))
    return {"adds_no": adds, "drops_no": len(texts["caption"]) - adds}


def unlabel(path: Path, share: float, seed: int) -> Path:
    """Keep the object labels of only `share` of the captions, as when a detector ran on part of the data."""
    import random

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    rng = random.Random(seed)
    objects = [labels if rng.random() < share else [] for labels in table.column("objects").to_pylist()]
    table = table.set_column(table.schema.get_field_index("objects"), "objects", pa.array(objects, pa.list_(pa.string())))
    pq.write_table(table, path)
    return path


def denied_shown_objects(path: Path) -> int:
    """Absent-object captions (and paraphrases) that deny an object listed for their image: must be 0."""
    import pyarrow.parquet as pq

    from triplegen.rules.scope import read_objects

    rows = pq.read_table(path, columns=["caption", "paraphrase", "kind", "objects"]).to_pylist()
    return sum(
        any(read_objects(row[field], row["objects"])[label].denied for label in row["objects"])
        for row in rows if row["kind"] != "caption" for field in ("caption", "paraphrase")
    )


def data_fingerprint(data: Path) -> str | None:
    """What a trained run depends on in `data`: every row of its training Parquet files (not their
    metadata, which records when triplegen ran) and the tokenizer. The test split and the plain captions
    are left out, as no run learns from them: a run can be scored on a larger split without retraining.
    None when there is no data yet."""
    import hashlib

    import pyarrow.parquet as pq

    from triplegen.orchestration.resume import input_digest

    scored_only = (data / "test.parquet", data / "plain")
    files = sorted(path for path in data.rglob("*") if path.suffix in (".parquet", ".json") and path.is_file()
                   and not any(path == held or held in path.parents for held in scored_only))
    if not files:
        return None
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(data)).encode())
        digest.update(path.read_bytes() if path.suffix == ".json" else input_digest(pq.read_table(path)).encode())
    return digest.hexdigest()


def train(triples: Path, out: Path, args, seed: int, reuse: bool = False, **options):
    """The run's final model and its CPU seconds (None when an earlier identical run is reused)."""
    from semclip_train import TrainConfig, train as run

    steps, workers = options.pop("steps", args.steps), options.pop("workers", 0)
    config = TrainConfig(triples=triples, output=out, val_fraction=0.0, workers=workers, batch_size=args.batch_size,
                         max_steps=steps, warmup_steps=steps // 20, weight_decay=0.1, seed=seed,
                         checkpoint_every=steps, log_every=50, device="cpu", precision="fp32", quiet=True, **options)
    saved = out / "config.json"
    if reuse and (out / "final" / "model.safetensors").is_file() and saved.is_file() \
            and json.loads(saved.read_text()) == json.loads(config.model_dump_json()):
        return out / "final", None
    shutil.rmtree(out, ignore_errors=True)
    started = time.process_time()
    result = run(config)
    return result.final_dir, time.process_time() - started


def evaluate(model_dir: Path, data: dict, seed: int, world) -> dict[str, float]:
    """The test split's row, and `caption_r1` on held-out plain captions (no "no" anywhere), which is
    what retrieval costs are measured on: on the test split, half the captions deny an object."""
    from semclip_train.evaluation.embed import Embedder
    from semclip_train.evaluation.eval_data import load_triples
    from semclip_train.evaluation.evaluate import evaluate_synthetic
    from semclip_train.evaluation.synthetic_data import load_scenes
    from semclip_train.model import load_clip

    model, processor = load_clip(str(model_dir))
    embedder = Embedder(model, processor, device="cpu", batch_size=256, fingerprint=str(model_dir))
    test = data["test"]
    row = evaluate_synthetic(embedder, load_triples(test), "test", load_scenes(test), seed, world).rows["synthetic"]
    row["retrieval"] = sum(row[k] for k in ("i2t_r1", "t2i_r1", "i2t_r5", "t2i_r5")) / 4
    row["caption_r1"] = semantic_r1(embedder, data["plain"], data["plain_truth"])
    return row


def truth_matrix(path: Path):
    """truth[c, i]: caption c is true of image i (plain captions repeat scenes, so several can be)."""
    import pyarrow.parquet as pq
    import torch

    from semclip_train.evaluation.synthetic import holds_all
    from semclip_train.evaluation.synthetic_data import load_scenes

    clauses = [[tuple(tuple(x) if isinstance(x, list) else x for x in clause) for clause in json.loads(form)]
               for form in pq.read_table(path, columns=["caption_form"]).column("caption_form").to_pylist()]
    scenes = load_scenes(path)
    return torch.tensor([[holds_all(form, scene) for scene in scenes] for form in clauses])


def semantic_r1(embedder, path: Path, truth) -> float:
    """Mean of image -> caption and caption -> image R@1, where a hit is any caption true of the image
    (any image the caption is true of): 2,000 plain captions in a world of a few hundred scenes."""
    import torch

    from semclip_train.evaluation.eval_data import load_triples

    items = load_triples(path)
    image, caption = embedder.images(items.images, "plain"), embedder.texts(items.captions, "plain")
    sim = torch.nn.functional.normalize(caption, dim=-1) @ torch.nn.functional.normalize(image, dim=-1).T
    columns = torch.arange(len(items.captions))
    to_image = truth[columns, sim.argmax(1)].float().mean()
    to_caption = truth[sim.argmax(0), columns].float().mean()
    return float((to_image + to_caption) / 2)


def run_seed(world_spec: str, seed: int, runs: list[tuple[str, str]], args) -> dict:
    from semclip_train.evaluation.worlds import world_from_spec

    world = world_from_spec(world_spec)
    folder = args.output / (f"seed{seed}" if world_spec == "default" else f"world{world_spec}-seed{seed}")
    before = data_fingerprint(folder / "data") if args.reuse else None
    data = prepare(folder, seed, args, world)
    reuse = before is not None and before == data_fingerprint(folder / "data")
    if args.reuse:
        print("  --reuse: " + ("same data, finished runs are scored again" if reuse else "new data, all runs train"),
              flush=True)
    print(f"{world.name} seed {seed}: triplegen made {data['made']['base']['accepted']:,} base rows and "
          f"{data['made']['absent']['accepted']:,} rows with --absent-objects 1; absent-object captions or "
          f"paraphrases that deny a shown object: {data['denials']}; test items: {data['directions']['adds_no']:,} "
          f"adds_no, {data['directions']['drops_no']:,} drops_no", flush=True)
    pretrained, seconds = train(data["pretrain"], folder / "pretrain", args, seed, loss="clip",
                                clip_config=data["model_config"], freeze_vision=False, cache_image_embeddings=False,
                                steps=args.pretrain_steps, lr=1e-3, workers=1, reuse=reuse)
    rows = {"pretrained": {**evaluate(pretrained, data, seed, world), "cpu_s": seconds}}
    print(f"  pretrained: {fmt(rows['pretrained'])}", flush=True)
    for setting, loss in runs if not args.pretrain_only else ():
        triples, _, share = setting.partition("@")
        name, _, option = loss.partition("+")
        options = {"absent_share": float(share)} if share else {}
        final, seconds = train(data["triples"][triples], folder / setting / loss, args, seed, loss=name,
                               model=str(pretrained), lr=args.lr, reuse=reuse, **options,
                               **LOSS_OPTIONS.get(option, {}))
        rows[f"{setting}/{loss}"] = {**evaluate(final, data, seed, world), "cpu_s": seconds}
        print(f"  {setting}/{loss}: {fmt(rows[f'{setting}/{loss}'])}", flush=True)
    return {"rows": rows, "denials": data["denials"], "made": data["made"], "directions": data["directions"],
            "world": world.to_json()}


def fmt(row: dict) -> str:
    return ", ".join(f"{name} {row[name]:.3f}" for name in COLUMNS if name in row)


def table(title: str, rows: dict[str, dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    view = Table(title=title)
    view.add_column("model")
    for name in COLUMNS:
        view.add_column(name, justify="right")
    for key, row in rows.items():
        view.add_row(key, *(f"{100 * row[name]:.1f}" if name in row else "" for name in COLUMNS))
    Console(width=200).print(view)


def acceptance(per_seed: list[dict], default_world: bool) -> str:
    """The bar for the default recipe. On the project's world: both directions, scope, retrieval within
    2 points of `clip` on the same rows; on other worlds: adds_no >= 97%, drops_no >= 95%, scope >= 90%
    in each clause order, caption R@1 at most 1 point below `clip` trained on plain triples."""
    ok = []
    for rows in per_seed:
        best = rows.get(DEFAULT_RUN)
        clip = rows.get("absent/clip" if default_world else "base/clip")
        if best is None or clip is None:
            return f"acceptance: needs {DEFAULT_RUN} and {'absent' if default_world else 'base'}/clip"
        if default_world:
            ok.append(best["adds_no"] >= 0.95 and best["drops_no"] >= 0.90 and best["scope"] >= 0.80
                      and best["retrieval"] >= clip["retrieval"] - 0.02)
        else:
            ok.append(best["adds_no"] >= 0.97 and best["drops_no"] >= 0.95 and best["scope_after"] >= 0.90
                      and best["scope_before"] >= 0.90 and best["caption_r1"] >= clip["caption_r1"] - 0.01)
    bar = ("adds_no >= 95%, drops_no >= 90%, scope >= 80%, retrieval >= clip - 2 points" if default_world else
           "adds_no >= 97%, drops_no >= 95%, scope_after and scope_before >= 90%, caption_r1 >= base/clip - 1 point")
    return f"acceptance ({bar}): {'PASS' if all(ok) else 'FAIL'} on {sum(ok)} of {len(ok)} seeds"


def run_names(args) -> list[tuple[str, str]]:
    if args.runs:
        pairs = [tuple(name.strip().split("/", 1)) for name in args.runs.split(",") if name.strip()]
    else:
        pairs = [(setting, loss) for setting in args.settings.split(",") for loss in names(args.losses, LOSSES)]
    for pair in pairs:
        loss, _, option = pair[-1].partition("+")
        if len(pair) != 2 or pair[0].partition("@")[0] not in SETTINGS or loss not in LOSSES \
                or option not in ("", *LOSS_OPTIONS) or (option and not loss.startswith("semclip")):
            raise SystemExit(f"unknown run {'/'.join(pair)!r}; a run is SETTING/LOSS, SETTING one of "
                             f"{', '.join(SETTINGS)} (optionally @SHARE), LOSS one of {', '.join(LOSSES)} "
                             f"(a SemCLIP loss optionally +{'/+'.join(LOSS_OPTIONS)})")
    return pairs


def main() -> None:
    args = parse_args()
    runs = run_names(args)
    import torch

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    results, verdicts = {}, []
    for world in [w.strip() for w in args.worlds.split(",") if w.strip()]:
        per_world = {}
        for seed in [int(s) for s in args.seeds.split(",")]:
            per_world[seed] = run_seed(world, seed, runs, args)
            table(f"world {world}, seed {seed} (held-out test split, %)", per_world[seed]["rows"])
        keys = list(next(iter(per_world.values()))["rows"])
        mean = {key: {name: sum(r["rows"][key].get(name) or 0.0 for r in per_world.values()) / len(per_world)
                      for name in (*COLUMNS, "cpu_s")} for key in keys}
        table(f"world {world}: mean over seeds {args.seeds} (%)", mean)
        verdicts.append(f"world {world}: " + acceptance([r["rows"] for r in per_world.values()], world == "default"))
        print(verdicts[-1])
        results[world] = {"seeds": per_world, "mean": mean, "acceptance": verdicts[-1]}
    payload = {"args": {k: str(v) for k, v in vars(args).items()}, "results": results, "acceptance": verdicts,
               "wall_s": time.perf_counter() - started}
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "results.json").write_text(json.dumps(payload, indent=2) + "\n")
    print("\n".join(verdicts))
    print(f"{payload['wall_s']:.0f} s wall; results in {args.output / 'results.json'}")


if __name__ == "__main__":
    main()
