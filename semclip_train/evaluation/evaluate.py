"""The benchmarks of the SemCLIP paper on one model: each function embeds its data set through an
`Embedder` (so data shared between metrics is encoded once) and applies the pure metrics.

A result is a small table (rows x named values) that the CLI prints and writes as JSON, plus the
per-item similarities of true and false captions that the plots show.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from semclip_train.errors import SemClipError
from semclip_train.evaluation import metrics
from semclip_train.evaluation.embed import Embedder

if TYPE_CHECKING:
    from semclip_train.evaluation.eval_data import CCNegSet, ImageFolderSet, SugarCrepeSubset, TripleSet
    from semclip_train.evaluation.worlds import World

PROMPT = "this is a photo of a {}"
NEGATED_PROMPT = "this is not a photo of a {}"
EVAL_KINDS = ("ccneg", "sugarcrepe-pp", "retrieval", "synthetic", "zeroshot", "negbench")


@dataclass
class EvalResult:
    benchmark: str
    rows: dict[str, dict[str, float]]  # e.g. {"replace_att": {"itt": 0.7, "tot": 0.6, "n": 788}}
    # Per-item cosines for the plots (not written to JSON): two entries, the true pair first
    # (e.g. "cos(image, caption)") and the false one second ("cos(image, negation)").
    similarities: dict[str, list[float]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"benchmark": self.benchmark, "results": self.rows}

    def flat(self) -> dict[str, float]:
        """{"benchmark/row/name": value} ("benchmark/name" for a one-row result): logged in training."""
        return {
            "/".join(dict.fromkeys((self.benchmark, row, name))): value
            for row, values in self.rows.items()
            for name, value in values.items()
        }


def _cosines(a: torch.Tensor, b: torch.Tensor) -> list[float]:
    return (torch.nn.functional.normalize(a.double(), dim=-1) * torch.nn.functional.normalize(b.double(), dim=-1)).sum(-1).tolist()


def _pair_cosines(anchor: torch.Tensor, true: torch.Tensor, false: torch.Tensor, name: str) -> dict[str, list[float]]:
    return {f"cos({name}, caption)": _cosines(anchor, true), f"cos({name}, negation)": _cosines(anchor, false)}


def evaluate_ccneg(embedder: Embedder, data: "CCNegSet", dataset: str | None = None) -> EvalResult:
    """CC-Neg "original over negation" accuracy and its scaled score."""
    image = embedder.images(data.images, dataset)
    caption = embedder.texts(data.captions, dataset)
    negation = embedder.texts(data.negations, dataset)
    accuracy = metrics.ccneg_accuracy(image, caption, negation)
    row = {"accuracy": accuracy, **_by_direction(image, caption, negation, data.captions, data.negations),
           "scaled_score": metrics.scaled_negation_score(accuracy), "n": len(data.captions)}
    return EvalResult("ccneg", {"ccneg": row}, _pair_cosines(image, caption, negation, "image"))


def evaluate_sugarcrepe(
    embedder: Embedder, subsets: dict[str, "SugarCrepeSubset"], dataset: str | None = None
) -> EvalResult:
    """ITT and TOT per file (TOT only when the subsets carry no images), and their mean."""
    rows: dict[str, dict[str, float]] = {}
    original: list[float] = []
    negated: list[float] = []
    for name, subset in subsets.items():
        caption = embedder.texts(subset.captions, dataset)
        caption2 = embedder.texts(subset.captions2, dataset)
        negative = embedder.texts(subset.negatives, dataset)
        if subset.images is not None:
            image = embedder.images(subset.images, dataset)
            rows[name] = {**metrics.sugarcrepe_pp(image, caption, caption2, negative), "n": len(subset.captions)}
            original += _cosines(image, caption)
            negated += _cosines(image, negative)
            labels = ("cos(image, P1)", "cos(image, N)")
        else:
            rows[name] = {"tot": metrics.sugarcrepe_pp_tot(caption, caption2, negative), "n": len(subset.captions)}
            original += _cosines(caption, caption2)
            negated += _cosines(caption, negative)
            labels = ("cos(P1, P2)", "cos(P1, N)")
    if len(rows) > 1:
        names = [key for key in next(iter(rows.values())) if key != "n"]
        rows["mean"] = {key: sum(row[key] for row in rows.values()) / len(rows) for key in names}
        rows["mean"]["n"] = sum(row["n"] for name, row in rows.items() if name != "mean")
    return EvalResult("sugarcrepe_pp", rows, {labels[0]: original, labels[1]: negated})


def evaluate_zeroshot(
    embedder: Embedder,
    data: "ImageFolderSet",
    prompt: str = PROMPT,
    negated_prompt: str = NEGATED_PROMPT,
    dataset: str | None = None,
) -> EvalResult:
    """Top-1/top-5 accuracy with the prompt and with its negation, and the gap (larger is better)."""
    for template in (prompt, negated_prompt):
        if template.count("{}") != 1:
            raise SemClipError(f"a prompt needs exactly one {{}} for the class name, got {template!r}")
    image = embedder.images(data.images, dataset)
    text = embedder.texts([prompt.format(name) for name in data.class_names], dataset)
    negated = embedder.texts([negated_prompt.format(name) for name in data.class_names], dataset)
    ks = (1, 5)
    result = metrics.negated_prompt_gap(image, text, negated, data.labels, ks)
    rows = {kind: {f"top{k}": value for k, value in values.items()} for kind, values in result.items()}
    for row in rows.values():
        row["n"] = len(data.labels)
    labels = torch.as_tensor(data.labels)
    return EvalResult(
        "zeroshot",
        rows,
        {
            "cos(image, true-class prompt)": _cosines(image, text[labels]),
            "cos(image, negated true-class prompt)": _cosines(image, negated[labels]),
        },
    )


def _recall_row(recall: dict[str, dict[int, float]]) -> dict[str, float]:
    short = {"image_to_text": "i2t", "text_to_image": "t2i"}
    return {f"{short[direction]}_r{k}": value for direction, values in recall.items() for k, value in values.items()}


def evaluate_retrieval(embedder: Embedder, data: "TripleSet", dataset: str | None = None) -> EvalResult:
    """Recall@1/5/10 both ways with the original and with the paraphrased captions; the triples'
    negations also give the CC-Neg-style accuracy and the reference code's combined score."""
    image = embedder.images(data.images, dataset)
    caption = embedder.texts(data.captions, dataset)
    paraphrase = embedder.texts(data.paraphrases, dataset)
    negation = embedder.texts(data.negations, dataset)
    by_caption = metrics.retrieval_recall(image, caption)
    by_paraphrase = metrics.retrieval_recall(image, paraphrase)
    accuracy = metrics.ccneg_accuracy(image, caption, negation)
    combined = metrics.combined_score(by_caption["text_to_image"][1], by_paraphrase["text_to_image"][1], accuracy)
    n = len(data.captions)
    rows = {
        "caption": {**_recall_row(by_caption), "n": n},
        "paraphrase": {**_recall_row(by_paraphrase), "n": n},
        "negation": {"accuracy": accuracy, **_by_direction(image, caption, negation, data.captions, data.negations),
                     "scaled_score": metrics.scaled_negation_score(accuracy), "n": n},
        "combined": {"score": combined},
    }
    return EvalResult("retrieval", rows, _pair_cosines(image, caption, negation, "image"))


def adds_negation(captions: list[str], negations: list[str]) -> list[bool]:
    """Per item: its negation holds more negation cues than its caption (the `adds_no` items)."""
    from triplegen.rules.polarity import negation_cues

    return [len(negation_cues(n)) > len(negation_cues(c)) for c, n in zip(captions, negations)]


def _by_direction(image: torch.Tensor, caption: torch.Tensor, negation: torch.Tensor, captions: list[str],
                  negations: list[str]) -> dict[str, float]:
    """CC-Neg accuracy on the items whose negation adds a negation cue ("a dog" / "no dog") and on
    those whose true caption holds it ("a cat and no dog" / "a cat and a dog"). A model that merely
    reads "no" as "false" wins the first and loses the second; CC-Neg measures only the first."""
    adds = torch.tensor(adds_negation(captions, negations))
    row = {}
    for name, mask in (("adds_no", adds), ("drops_no", ~adds)):
        if mask.any():
            row[name] = metrics.ccneg_accuracy(image[mask], caption[mask], negation[mask])
    return row


def _scope(embedder: Embedder, image: torch.Tensor, scenes: list, seed: int, dataset: str | None,
           world: "World | None" = None) -> dict[str, float]:
    """Accuracy on "a A and no B" vs "a B and no A" (same words, one "no" each) in both clause orders,
    each the mean over the world's wordings of that order. `objects` is "a A" over "a B" on the same
    objects: what the model sees, which caps the scope scores (with the vision tower frozen,
    fine-tuning cannot raise it); `scope_*_seen` score only the items whose objects it tells apart,
    which measures the reading of "no" apart from the eyes."""
    from semclip_train.evaluation.synthetic import object_pairs, scope_pairs
    from semclip_train.evaluation.worlds import DEFAULT

    world = world or DEFAULT

    def wins(pair: tuple[list[str], list[str]]) -> torch.Tensor:
        return metrics.ccneg_wins(image, embedder.texts(pair[0], dataset), embedder.texts(pair[1], dataset))

    seen = wins(object_pairs(scenes, seed, world))
    accuracy: dict[str, list[float]] = {}
    on_seen: dict[str, list[float]] = {}
    wordings: dict[str, float] = {}  # "scope[a A and no B]": which wording a model fails on
    for name, pair in scope_pairs(scenes, seed, world).items():
        right = wins(pair)
        score = right.double().mean().item()
        group, number = name.split("/")
        accuracy.setdefault(group, []).append(score)
        if seen.any():
            on_seen.setdefault(group, []).append(right[seen].double().mean().item())
        wordings[f"scope[{world.scope_forms[group][int(number)][0].format(a='A', b='B')}]"] = score
    mean = {group: sum(scores) / len(scores) for group, scores in accuracy.items()}
    row = {"scope_after": mean["after"], "scope_before": mean["before"], "scope": (mean["after"] + mean["before"]) / 2,
           "objects": seen.double().mean().item()}
    row |= {f"scope_{group}_seen": sum(scores) / len(scores) for group, scores in on_seen.items() if group != "other"}
    return row | ({"scope_other": mean["other"]} if "other" in mean else {}) | wordings


def evaluate_synthetic(embedder: Embedder, data: "TripleSet", dataset: str | None = None,
                       scenes: list | None = None, seed: int = 0, world: "World | None" = None) -> EvalResult:
    """The synthetic benchmark's one-row summary: negation (image and text only), split by direction,
    the scope of "no" (when the scenes are known), paraphrase retrieval (caption -> paraphrase, text
    to text; paraphrase -> image) and image-caption retrieval."""
    image = embedder.images(data.images, dataset)
    caption = embedder.texts(data.captions, dataset)
    paraphrase = embedder.texts(data.paraphrases, dataset)
    negation = embedder.texts(data.negations, dataset)
    pairs = metrics.retrieval_recall(image, caption, ks=(1, 5))
    text_to_text = metrics.retrieval_recall(caption, paraphrase, ks=(1,))["image_to_text"][1]
    paraphrase_to_image = metrics.retrieval_recall(image, paraphrase, ks=(1,))["text_to_image"][1]
    row = {
        "ccneg_acc": metrics.ccneg_accuracy(image, caption, negation),
        **_by_direction(image, caption, negation, data.captions, data.negations),
        **(_scope(embedder, image, scenes, seed, dataset, world) if scenes else {}),
        "text_neg_acc": metrics.sugarcrepe_pp_tot(caption, paraphrase, negation),
        "cap2para_r1": text_to_text,
        "para2img_r1": paraphrase_to_image,
        **_recall_row(pairs),
        "n": len(data.captions),
    }
    return EvalResult("synthetic", {"synthetic": row}, _pair_cosines(image, caption, negation, "image"))


@dataclass(frozen=True)
class EvalSpec:
    """`--eval KIND:PATH` of `semclip-train`, e.g. "ccneg:val.parquet" or "sugarcrepe-pp:scpp/data"."""

    kind: str
    path: Path

    @classmethod
    def parse(cls, text: str) -> "EvalSpec":
        kind, sep, path = text.partition(":")
        if not sep or not path:
            raise SemClipError(f"--eval must look like KIND:PATH (e.g. ccneg:val.parquet), got {text!r}")
        if kind not in EVAL_KINDS:
            raise SemClipError(f"--eval {text!r}: unknown kind {kind!r} (choose from {', '.join(EVAL_KINDS)})")
        return cls(kind, Path(path))


def evaluate_spec(embedder: Embedder, spec: EvalSpec, image_root: Path | None = None) -> EvalResult:
    """Load the data set a spec names and run its benchmark (SugarCrepe++: text-only TOT unless
    `image_root` holds the COCO images)."""
    from semclip_train.evaluation import eval_data

    dataset = str(spec.path.resolve())
    if spec.kind == "ccneg":
        return evaluate_ccneg(embedder, eval_data.load_ccneg(spec.path, image_root), dataset)
    if spec.kind == "sugarcrepe-pp":
        return evaluate_sugarcrepe(embedder, eval_data.load_sugarcrepe(spec.path, image_root), dataset)
    if spec.kind == "zeroshot":
        classes = spec.path / "classes.txt"
        folder = eval_data.load_image_folder(spec.path, classes if classes.is_file() else None)
        return evaluate_zeroshot(embedder, folder, dataset=dataset)
    if spec.kind == "negbench":
        from semclip_train.evaluation.negbench import evaluate_negbench, load_negbench

        return evaluate_negbench(embedder, load_negbench(spec.path, image_root), dataset)
    triples = eval_data.load_triples(spec.path, image_root)
    if spec.kind == "retrieval":
        return evaluate_retrieval(embedder, triples, dataset)
    from semclip_train.evaluation.synthetic_data import load_scenes

    return evaluate_synthetic(embedder, triples, dataset, load_scenes(spec.path))


def run_during_training(
    model: Any, processor: Any, specs: list[str] | list[EvalSpec], device: Any, image_root: Path | None = None
) -> dict[str, float]:
    """The trainer's `--eval-every` hook: every spec's metrics as {"ccneg/ccneg/accuracy": x, ...}.

    Evaluation runs in eval mode and restores each module's own train/eval mode afterwards (frozen
    towers stay in eval mode). Nothing is cached across calls: the weights change between them.
    """
    parsed = [spec if isinstance(spec, EvalSpec) else EvalSpec.parse(spec) for spec in specs]
    modes = {module: module.training for module in model.modules()}
    try:
        embedder = Embedder(model, processor, device=torch.device(device), fingerprint="training")
        results: dict[str, float] = {}
        for spec in parsed:
            results.update(evaluate_spec(embedder, spec, image_root).flat())
        return results
    finally:
        for module, training in modes.items():
            module.training = training
