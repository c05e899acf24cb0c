"""NegBench's multiple-choice questions (Alhamoud et al., "Vision-Language Models Do Not Understand
Negation", CVPR 2025, github.com/m1k2zoo/negbench): its CSV files, and a model's answers to them.

A question is an image and K captions (four in the COCO and VOC files); the model answers with the
caption closest to the image. Accuracy is split by the template of the true caption, because a
model that reads "does not feature a dog" as "features a dog" does well on affirmations and close
to zero on negations, which the overall number hides. Which wrong caption it picks tells the same
story: a model that mostly picks the affirmation of an absent object shows NegBench's "affirmation
bias".
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from semclip_train.errors import SemClipError
from semclip_train.evaluation import metrics
from semclip_train.evaluation.embed import Embedder
from semclip_train.evaluation.eval_data import check_images_exist
from semclip_train.evaluation.evaluate import EvalResult
from semclip_train.triples import ImageRef, image_ref, image_root_for

IMAGE_COLUMNS = ("image_path", "filepath")  # the published files use either
TEMPLATES = ("affirmation", "negation", "hybrid")
# correct_answer_template as written by NegBench ("positive", ...) or its README ("Affirmation", ...).
TEMPLATE_NAMES = {"positive": "affirmation", "negative": "negation", **{name: name for name in TEMPLATES}}
# NegBench builds each COCO/VOC question with the true caption first and the wrong ones in a fixed
# order: "features {N}, but not {B}", "features {N}" (the absent object affirmed), "does not
# feature {A}" (a present object negated); N is absent from the image, A and B are present.
COCO_VOC_OPTION_TYPES = {1: "hybrid", 2: "affirmation", 3: "negation"}


@dataclass
class NegBenchSet:
    """One MCQ file: question i shows images[i] with options[i], of which options[i][correct[i]] is true."""

    name: str
    path: Path
    images: list[ImageRef]
    options: list[list[str]]
    correct: list[int]
    templates: list[str] | None  # the true caption's template; None when the file has no such column

    def option_types(self) -> dict[int, str] | None:
        """Wrong options' templates by position, where the file follows NegBench's COCO/VOC layout.

        Only a 4-option file with every answer at index 0 and a template column qualifies; the
        synthetic and binary files place their captions differently, so they get accuracy only.
        """
        if len(self.options[0]) == 4 and self.templates is not None and not any(self.correct):
            return COCO_VOC_OPTION_TYPES
        return None


def load_negbench(
    paths: str | Path | Sequence[str | Path],
    image_root: str | Path | None = None,
    strip_prefix: str | Sequence[str] | None = None,
    check_images: bool = True,
) -> dict[str, NegBenchSet]:
    """NegBench MCQ CSVs by file name (stem). The published files hold absolute paths of the
    authors' machines: `strip_prefix` removes a leading prefix so that the rest is read under
    `image_root` (default: the CSV's folder). Every path must lie inside that root (the image-path
    policy of training and evaluation, `semclip_train.triples.image_ref`)."""
    paths = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(path) for path in paths]
    prefixes = [strip_prefix] if isinstance(strip_prefix, str) else list(strip_prefix or ())
    if not paths:
        raise SemClipError("no NegBench file given")
    sets: dict[str, NegBenchSet] = {}
    roots: dict[str, Path] = {}
    for path in paths:
        if path.stem in sets:
            raise SemClipError(f"two NegBench files are named {path.stem!r} ({sets[path.stem].path}, {path}): rename one")
        roots[path.stem] = image_root_for(path, image_root)
        sets[path.stem] = _read_file(path, roots[path.stem], prefixes)
    if check_images:
        check_images_exist([ref for questions in sets.values() for ref in questions.images],
                           Path(image_root) if image_root else None)
    return sets


def _read_file(path: Path, root: Path, prefixes: list[str]) -> NegBenchSet:
    header, rows = _read_csv(path)
    image_col = next((name for name in IMAGE_COLUMNS if name in header), None)
    numbers = sorted(int(match[1]) for name in header if (match := re.fullmatch(r"caption_(\d+)", name)))
    required = {"image_path (or filepath)": image_col, "correct_answer": "correct_answer" in header,
                "caption_0": 0 in numbers, "caption_1": 1 in numbers}
    absent = [name for name, there in required.items() if not there]
    if absent:
        raise SemClipError(f"{path} has no column {', '.join(absent)} (columns: {', '.join(header) or 'none'})")
    if numbers != list(range(len(numbers))):
        gap = min(set(range(len(numbers))) - set(numbers))
        raise SemClipError(f"{path} has caption_{numbers[-1]} but no caption_{gap}")
    captions = [f"caption_{k}" for k in numbers]
    has_templates = "correct_answer_template" in header
    images, options, correct, templates = [], [], [], []
    for line, values in rows:
        where = f"{path}, line {line}"
        texts = [values.get(name, "") for name in captions]
        empty = next((name for name, text in zip(captions, texts) if not text.strip()), None)
        if empty:
            raise SemClipError(f"{where}: {empty} is empty")
        options.append(texts)
        correct.append(_answer(values.get("correct_answer", ""), len(captions), where))
        if has_templates:
            template = values.get("correct_answer_template", "")
            if template.strip().lower() not in TEMPLATE_NAMES:
                raise SemClipError(f"{where}: unknown correct_answer_template {template!r} (expected positive, negative or hybrid)")
            templates.append(TEMPLATE_NAMES[template.strip().lower()])
        image = _strip(values.get(image_col, "").strip(), prefixes)
        if not image:
            raise SemClipError(f"{where}: {image_col} is empty")
        try:
            images.append(image_ref(image, root, where))
        except SemClipError as exc:
            hint = "; the CSV's paths are absolute: re-root them with --strip-prefix and --image-root"
            raise SemClipError(f"{exc}{hint if image.startswith('/') else ''}") from None
    return NegBenchSet(path.stem, path, images, options, correct, templates if has_templates else None)


def _read_csv(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """The header and (line number, row) pairs; a row with more fields than the header is refused,
    since that is a caption with an unquoted comma and every later column would be shifted."""
    if not path.is_file():
        raise SemClipError(f"NegBench file not found: {path}")
    rows = []
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = [name.strip() for name in next(reader, [])]
            if not any(header):
                raise SemClipError(f"{path} is empty: a NegBench CSV starts with a header line")
            for row in reader:
                if not row:
                    continue
                if len(row) > len(header):
                    raise SemClipError(f"{path}, line {reader.line_num}: {len(row)} fields but {len(header)} columns (an unquoted comma?)")
                rows.append((reader.line_num, dict(zip(header, row))))
    except UnicodeDecodeError:
        raise SemClipError(f"{path} is not a CSV file (not UTF-8 text)") from None
    except csv.Error as exc:
        raise SemClipError(f"{path} is not a readable CSV file: {exc}") from None
    if not rows:
        raise SemClipError(f"{path} has a header but no questions")
    return header, rows


def _answer(text: str, options: int, where: str) -> int:
    try:
        index = int(text.strip())
    except ValueError:
        raise SemClipError(f"{where}: correct_answer {text!r} is not an integer") from None
    if not 0 <= index < options:
        raise SemClipError(f"{where}: correct_answer {index} is out of range 0..{options - 1}")
    return index


def _strip(value: str, prefixes: list[str]) -> str:
    """The path after the first matching prefix; only at a folder boundary ("/data/coco" leaves "/data/coco2/x.jpg")."""
    for prefix in prefixes:
        rest = value[len(prefix) :]
        if prefix and value.startswith(prefix) and (prefix.endswith("/") or rest.startswith("/")):
            return rest.lstrip("/")
    return value


def evaluate_negbench(
    embedder: Embedder, data: NegBenchSet | dict[str, NegBenchSet], dataset: str | None = None
) -> EvalResult:
    """Accuracy overall ("all") and per template of the true caption, per file ("<file>/all", ...)
    when there are several. In the COCO/VOC layout each row also splits the wrong answers by the
    type of the picked option: "wrong_affirmation" is the share of errors that affirmed the absent
    object (the affirmation bias). `dataset` names the data for the embedding cache (None: none)."""
    sets = {data.name: data} if isinstance(data, NegBenchSet) else data
    rows: dict[str, dict[str, float]] = {}
    true_cos: list[float] = []
    wrong_cos: list[float] = []
    for name, questions in sets.items():
        key = dataset if dataset is None or len(sets) == 1 else f"{dataset}/{name}"
        image = embedder.images(questions.images, key)  # [N, d]
        k = len(questions.options[0])
        flat = [text for options in questions.options for text in options]
        options = embedder.texts(flat, key).view(len(questions.options), k, -1)  # [N, K, d]
        _, predicted = metrics.multiple_choice(image, options, questions.correct)
        prefix = f"{name}/" if len(sets) > 1 else ""
        rows.update({prefix + group: row for group, row in _rows(questions, predicted.cpu()).items()})
        scores = metrics.option_cosines(image, options).cpu()  # [N, K]
        correct = torch.as_tensor(questions.correct)[:, None]
        true_cos += scores.gather(1, correct).squeeze(1).tolist()
        wrong_cos += scores.scatter(1, correct, float("-inf")).max(dim=1).values.tolist()
    return EvalResult("negbench", rows, {"cos(image, correct option)": true_cos, "cos(image, best wrong option)": wrong_cos})


def _rows(questions: NegBenchSet, predicted: torch.Tensor) -> dict[str, dict[str, float]]:
    hit = predicted == torch.as_tensor(questions.correct)
    groups = {"all": torch.ones_like(hit)}
    if questions.templates is not None:
        for template in TEMPLATES:
            mask = torch.tensor([name == template for name in questions.templates])
            if mask.any():  # a template without questions has no accuracy, not 0%
                groups[template] = mask
    types = questions.option_types()
    rows = {}
    for group, mask in groups.items():
        row: dict[str, float] = {"accuracy": hit[mask].double().mean().item(), "n": int(mask.sum())}
        picked = [types[index] for index in predicted[mask & ~hit].tolist()] if types else []
        if picked:  # without errors the shares are undefined, not 0%
            row.update({f"wrong_{template}": picked.count(template) / len(picked) for template in TEMPLATES})
        rows[group] = row
    return rows
