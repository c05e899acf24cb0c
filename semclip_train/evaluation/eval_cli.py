"""`semclip-eval`: thin Typer commands, each loading one data set and calling one function of
`semclip_train.evaluation.evaluate`; a table on screen, `--json` for papers, `--plot` for people."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer

from semclip_core.cli_errors import Group
from semclip_core.files import refuse_folder, refuse_link, refuse_overwriting_inputs, write_text_atomic
from semclip_train.errors import SemClipError
from semclip_train.extras import needs_train_extra, require_matplotlib


def _examples(*lines: str) -> str:
    """An epilog that click prints as written (\\b stops it from re-wrapping the lines)."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


app = typer.Typer(
    cls=Group,  # errors: one line and an exit code (semclip_core.cli_errors)
    help="Evaluate a CLIP checkpoint on negation, paraphrase and retrieval benchmarks.",
    epilog=_examples(
        "semclip-eval ccneg --model runs/x/final --data ccneg.parquet --image-root ccneg_images",
        "semclip-eval sugarcrepe-pp --model runs/x/final --data-dir scpp/data --image-root coco/val2017",
        "semclip-eval negbench --model runs/x/final --data COCO_val_mcq_llama3.1_rephrased.csv --image-root coco/val2017",
        "semclip-eval zeroshot --model runs/x/final --data imagefolder/ --classes classes.txt",
        "semclip-eval retrieval --model runs/x/final --triples test.parquet --image-root /data/coco",
        "semclip-eval synthetic --model runs/x/final",
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

# Options shared by every benchmark command, declared once: `benchmark` adds them to each command.
Model = Annotated[list[str], typer.Option("--model", "-m", help="A CLIP checkpoint folder (e.g. runs/x/final) or hub name; repeat to compare models side by side (one table, one plot).")]
JsonOut = Annotated[Optional[Path], typer.Option("--json", help="Write the results as JSON to this file.")]
PlotOut = Annotated[Optional[Path], typer.Option("--plot", help="Write similarity histograms (true vs false captions) as PNG; needs matplotlib.")]
BatchSize = Annotated[int, typer.Option("--batch-size", min=1, help="Texts or images encoded at once.")]
Device = Annotated[str, typer.Option("--device", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:1, mps.")]
CacheDir = Annotated[Optional[Path], typer.Option("--cache-dir", help="Keep embeddings here (safetensors, per model fingerprint) for later runs.")]
ImageRoot = Annotated[Optional[Path], typer.Option("--image-root", help="Folder that relative image paths are read from.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No table or progress on screen.")]


@dataclass(frozen=True)
class Shared:
    """What every benchmark command is given besides its data: the models and how to run and report."""

    model: list[str]
    json_out: Path | None = None
    plot: Path | None = None
    batch_size: int = 64
    device: str = "auto"
    cache_dir: Path | None = None
    quiet: bool = False


_SHARED_TYPES = {"model": Model, "json_out": JsonOut, "plot": PlotOut, "batch_size": BatchSize, "device": Device,
                 "cache_dir": CacheDir, "quiet": Quiet}


def benchmark(function: Callable[..., None]) -> Callable[..., None]:
    """A command `function(shared, **its own options)` whose parameters, as Typer reads them, are
    `--model`, its own options, then the other shared options (with `Shared`'s defaults)."""
    own = [parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY)
           for parameter in inspect.signature(function, eval_str=True).parameters.values()
           if parameter.name != "shared"]
    shared = [inspect.Parameter(field.name, inspect.Parameter.KEYWORD_ONLY, annotation=_SHARED_TYPES[field.name],
                                default=inspect.Parameter.empty if field.default is dataclasses.MISSING
                                else field.default)
              for field in dataclasses.fields(Shared)]

    @functools.wraps(function)
    def command(**options: Any) -> None:
        given = Shared(**{field.name: options.pop(field.name) for field in dataclasses.fields(Shared)})
        function(given, **options)

    del command.__wrapped__  # Typer reads the signature below, not the function's
    command.__signature__ = inspect.Signature([shared[0], *own, *shared[1:]])  # type: ignore[attr-defined]
    command.__annotations__ = {}
    return command


def _embedder(model: str, batch_size: int, device: str, cache_dir: Path | None, quiet: bool):
    from transformers.utils import logging as transformers_logging

    from semclip_train.evaluation.embed import Embedder
    from semclip_train.model import load_clip

    transformers_logging.disable_progress_bar()  # our own progress bar is enough

    clip, processor = load_clip(model)
    return Embedder(clip, processor, device=device, batch_size=batch_size, cache_dir=cache_dir, show_progress=not quiet,
                    name=model)


def _format(value: Any) -> str:
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{100 * value:.1f}%"
    return str(value)


def print_table(title: str, rows: dict[str, dict[str, Any]]) -> None:
    """Rows x values; fractions as percentages, counts as integers."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    columns = list(dict.fromkeys(name for values in rows.values() for name in values))
    if len(columns) > len(rows) + 2:  # wide and short: one line per value reads better
        rows = {name: {row: values[name] for row, values in rows.items() if name in values} for name in columns}
        columns = list(dict.fromkeys(name for values in rows.values() for name in values))
    # names are data, not rich markup: "scope[a A without a B]" or a path with brackets stays whole
    table = Table(title=Text(title))
    table.add_column("")
    for name in columns:
        table.add_column(Text(name), justify="right")
    for row, values in rows.items():
        table.add_row(Text(row), *(_format(values[name]) if name in values else "" for name in columns))
    Console().print(table)


def _check_outputs(shared: Shared, *inputs: Path | None) -> None:
    """Before any work: the outputs are files that replace neither a data file nor a file of a model,
    the cache is not kept inside a model or data folder, and a plot can be drawn."""
    json_out, plot, cache_dir, models = shared.json_out, shared.plot, shared.cache_dir, shared.model
    for path, flag in ((json_out, "--json"), (plot, "--plot")):
        refuse_folder(path, flag)
        if path is not None:
            refuse_link(path, flag)
    if plot is not None:
        require_matplotlib()
    given = [Path(p) for p in inputs if p is not None and Path(p).exists()]
    model_folders = [Path(model) for model in models if Path(model).is_dir()]
    files = [p for p in given if p.is_file()] + [p for folder in model_folders for p in folder.iterdir() if p.is_file()]
    refuse_overwriting_inputs({"--json": json_out, "--plot": plot}, files)
    if cache_dir is not None:
        _refuse_cache_inside_inputs(cache_dir, [*model_folders, *given])


def _refuse_cache_inside_inputs(cache_dir: Path, inputs: list[Path]) -> None:
    """The cache writes a folder per model into `--cache-dir`: never into a model's or a data set's
    folder (a model folder that gains files is no longer the model that was uploaded)."""
    where = Path(os.path.realpath(cache_dir))
    for source in inputs:
        real = Path(os.path.realpath(source))
        inside = where.is_relative_to(real) if real.is_dir() else where == real
        if inside:
            raise SemClipError(f"--cache-dir {cache_dir} is, or lies inside, the input {source}: keep the cache "
                               "elsewhere")


def _labels(models: list[str]) -> list[str]:
    from semclip_train.evaluation.plots import model_label

    labels = [model_label(model) for model in models]
    return [label if labels.count(label) == 1 else model for label, model in zip(labels, models)]


def _side_by_side(results: dict) -> dict[str, dict[str, Any]]:
    """{"row name" : {model: value}}: one line per value, one column per model."""
    table: dict[str, dict[str, Any]] = {}
    for label, result in results.items():
        for row, values in result.rows.items():
            for name, value in values.items():
                key = name if len(result.rows) == 1 else f"{row} {name}"
                table.setdefault(key, {})[label] = value
    return table


def _evaluate(shared: Shared, data: str, evaluate) -> None:
    """Run `evaluate(embedder)` for each model (the data is loaded once), then table, JSON and plot."""
    models, json_out, plot, quiet = shared.model, shared.json_out, shared.plot, shared.quiet
    batch_size, device, cache_dir = shared.batch_size, shared.device, shared.cache_dir
    results, payloads = {}, []
    for model, label in zip(models, _labels(models)):
        started = time.perf_counter()
        embedder = _embedder(model, batch_size, device, cache_dir, quiet)
        result = evaluate(embedder)
        results[label] = result
        payloads.append({"model": model, "label": label, "data": data, "fingerprint": embedder.fingerprint,
                         "device": str(embedder.device), "seconds": round(time.perf_counter() - started, 2),
                         **result.to_json()})
    benchmark = next(iter(results.values())).benchmark
    if not quiet:
        if len(results) == 1:
            label, result = next(iter(results.items()))
            print_table(f"{benchmark}: {label}", result.rows)
        else:
            print_table(f"{benchmark}: {' vs '.join(results)}", _side_by_side(results))
    if json_out is not None:
        payload = payloads[0] if len(payloads) == 1 else {"benchmark": benchmark, "models": payloads}
        write_text_atomic(json_out, json.dumps(payload, indent=2) + "\n")
    if plot is not None:
        from semclip_train.evaluation.plots import plot_similarities

        plot_similarities(results, plot)


@app.command(epilog=_examples("semclip-eval ccneg --model runs/x/final --data ccneg_eval.parquet --image-root ccneg_images \\", "    --json ccneg.json --plot ccneg.png"))
@needs_train_extra("semclip-eval")
@benchmark
def ccneg(
    shared: Shared,
    data: Annotated[Path, typer.Option("--data", help="Parquet with image, caption and negation columns (see ccneg-convert).")],
    image_root: ImageRoot = None,
    caption_col: Annotated[str, typer.Option(help="Column of the true captions.")] = "caption",
    negation_col: Annotated[str, typer.Option(help="Column of the negated captions.")] = "negation",
) -> None:
    """CC-Neg accuracy: how often cos(image, caption) > cos(image, negated caption); chance 50%."""
    from semclip_train.evaluation.eval_data import load_ccneg
    from semclip_train.evaluation.evaluate import evaluate_ccneg

    _check_outputs(shared, data, image_root)
    items = load_ccneg(data, image_root, caption_col=caption_col, negation_col=negation_col)
    _evaluate(shared, str(data), lambda embedder: evaluate_ccneg(embedder, items, str(data.resolve())))


@app.command("ccneg-convert", epilog=_examples("semclip-eval ccneg-convert ccneg_preprocessed.pt -o ccneg_eval.parquet \\", "    --strip-prefix /workspace/datasets/ccneg/ccneg_images/"))
@needs_train_extra("semclip-eval")
def ccneg_convert(
    source: Annotated[Path, typer.Argument(help="CC-Neg's ccneg_preprocessed.pt (read with weights_only=True).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The Parquet to write (id, image, caption, negation).")],
    split: Annotated[str, typer.Option(help="eval (the last 40,000 entries), train (the rest) or all.")] = "eval",
    strip_prefix: Annotated[Optional[str], typer.Option(help="Remove this prefix from image paths, so they become relative to --image-root.")] = None,
    keep_commas: Annotated[bool, typer.Option(help="Keep commas in negated captions (the reference evaluation deletes them).")] = False,
) -> None:
    """Convert CC-Neg's annotations into the Parquet that `semclip-eval ccneg` reads."""
    from semclip_train.evaluation.eval_data import convert_ccneg

    rows = convert_ccneg(source, output, split=split, strip_prefix=strip_prefix, keep_commas=keep_commas)
    typer.echo(f"wrote {rows} rows ({split} split) to {output}")


@app.command("sugarcrepe-pp", epilog=_examples("semclip-eval sugarcrepe-pp --model runs/x/final --data-dir scpp/data --image-root coco/val2017", "semclip-eval sugarcrepe-pp --model runs/x/final --data-dir scpp/data   (TOT only, no images)"))
@needs_train_extra("semclip-eval")
@benchmark
def sugarcrepe_pp(
    shared: Shared,
    data_dir: Annotated[Path, typer.Option("--data-dir", help="Folder with replace_att.json ... swap_obj.json.")],
    image_root: Annotated[Optional[Path], typer.Option("--image-root", help="COCO val2017 images; without it only the text-only TOT is computed.")] = None,
    subset: Annotated[Optional[list[str]], typer.Option("--subset", help="Only these files (repeatable), e.g. --subset swap_obj.")] = None,
) -> None:
    """SugarCrepe++ ITT (image to text) and TOT (text only), per file and their mean."""
    from semclip_train.evaluation.eval_data import load_sugarcrepe
    from semclip_train.evaluation.evaluate import evaluate_sugarcrepe

    from semclip_train.evaluation.eval_data import SUGARCREPE_SUBSETS

    _check_outputs(shared, image_root, data_dir, *(data_dir / f"{name}.json" for name in subset or SUGARCREPE_SUBSETS))
    subsets = load_sugarcrepe(data_dir, image_root, subset)
    _evaluate(shared, str(data_dir), lambda embedder: evaluate_sugarcrepe(embedder, subsets, str(data_dir.resolve())))


@app.command(epilog=_examples(
    "semclip-eval negbench --model runs/x/final --data COCO_val_mcq_llama3.1_rephrased.csv \\",
    "    --data VOC2007_mcq_llama3.1_rephrased.csv --strip-prefix /path/in/the/csv/ --image-root data/ --json negbench.json",
    "(the CSVs: NegBench's Google Drive folder, linked from datasets.md in github.com/m1k2zoo/negbench)",
))
@needs_train_extra("semclip-eval")
@benchmark
def negbench(
    shared: Shared,
    data: Annotated[list[Path], typer.Option("--data", metavar="<path>", help="A NegBench multiple-choice CSV (*_mcq_*.csv); repeat for several.")],
    image_root: ImageRoot = None,
    strip_prefix: Annotated[Optional[list[str]], typer.Option("--strip-prefix", metavar="<str>", help="Remove this prefix from the CSV's image paths, so they become relative to --image-root (repeatable).")] = None,
) -> None:
    """NegBench multiple choice: the image picks the closest caption; accuracy per template of the true caption (affirmation, negation, hybrid) and, for COCO/VOC, which kind of wrong caption was picked."""
    from semclip_train.evaluation.negbench import evaluate_negbench, load_negbench

    _check_outputs(shared, image_root, *data)
    sets = load_negbench(data, image_root, strip_prefix)
    dataset = ";".join(str(path.resolve()) for path in data)
    _evaluate(shared, ", ".join(str(path) for path in data), lambda embedder: evaluate_negbench(embedder, sets, dataset))


@app.command(epilog=_examples("semclip-eval zeroshot --model runs/x/final --data imagefolder/ --classes classes.txt", "(classes.txt: one class folder per line, optionally a TAB and the name used in prompts)"))
@needs_train_extra("semclip-eval")
@benchmark
def zeroshot(
    shared: Shared,
    data: Annotated[Path, typer.Option("--data", help="imagefolder/<class>/*.jpg")],
    classes: Annotated[Optional[Path], typer.Option("--classes", help="Class folders in label order (default: sorted folder names).")] = None,
    prompt: Annotated[str, typer.Option(help="Prompt with {} for the class name.")] = "this is a photo of a {}",
    negated_prompt: Annotated[str, typer.Option(help="Its negation.")] = "this is not a photo of a {}",
) -> None:
    """Zero-shot top-1/top-5 with the prompt and with its negation; a model that reads "not" scores far lower on the negated prompts (a larger gap is better)."""
    from semclip_train.evaluation.eval_data import load_image_folder
    from semclip_train.evaluation.evaluate import evaluate_zeroshot

    _check_outputs(shared, data, classes)
    folder = load_image_folder(data, classes)
    _evaluate(shared, str(data),
              lambda embedder: evaluate_zeroshot(embedder, folder, prompt, negated_prompt, str(data.resolve())))


@app.command(epilog=_examples("semclip-eval retrieval --model runs/x/final --triples test.parquet --image-root /data/coco"))
@needs_train_extra("semclip-eval")
@benchmark
def retrieval(
    shared: Shared,
    triples: Annotated[Path, typer.Option("--triples", help="A triple Parquet (image, caption, paraphrase, negation).")],
    image_root: ImageRoot = None,
) -> None:
    """Image-text Recall@1/5/10 with original and paraphrased captions, the negation accuracy and the reference's combined score."""
    from semclip_train.evaluation.eval_data import load_triples
    from semclip_train.evaluation.evaluate import evaluate_retrieval

    _check_outputs(shared, triples, image_root)
    items = load_triples(triples, image_root)
    _evaluate(shared, str(triples), lambda embedder: evaluate_retrieval(embedder, items, str(triples.resolve())))


@app.command(epilog=_examples("semclip-eval synthetic --model runs/x/final   (generates the held-out split of seed 0)", "semclip-eval synthetic --model runs/x/final --world 101   (world 101 of the family)", "semclip-eval synthetic --model runs/x/final --data bench/test.parquet --plot synthetic.png"))
@needs_train_extra("semclip-eval")
@benchmark
def synthetic(
    shared: Shared,
    data: Annotated[Optional[Path], typer.Option("--data", help="A test.parquet written by the synthetic generator (default: generate it); it names its world.")] = None,
    world: Annotated[str, typer.Option(help="The world to generate: 'default' (the project's), a number of the family (other objects, grammar, relation and negation wordings), or a world JSON file.")] = "default",
    seed: Annotated[int, typer.Option(help="Generator seed (the test split uses seed + 1, as the generator).")] = 0,
    count: Annotated[int, typer.Option(min=1, help="Test items to generate.")] = 300,
    image_size: Annotated[int, typer.Option(min=8, help="Pixels per side of the generated images.")] = 32,
) -> None:
    """The built-in shapes benchmark (no download): negation accuracy in both directions (the negation adds a "no" / the true caption has it), the scope of "no" ("a A and no B" vs "a B and no A", each clause order), paraphrase and image-caption retrieval."""
    from semclip_train.evaluation.eval_data import load_triples
    from semclip_train.evaluation.evaluate import evaluate_synthetic
    from semclip_train.evaluation.synthetic_data import load_scenes, load_world, write_benchmark
    from semclip_train.evaluation.worlds import world_from_spec

    _check_outputs(shared, data)
    if data is not None and world != "default":
        raise SemClipError("--world generates a test split and --data reads one (which names its own world); give one")
    try:
        chosen = world_from_spec(world)
    except ValueError as exc:
        raise SemClipError(f"--world: {exc}") from None
    with tempfile.TemporaryDirectory(prefix="semclip-synthetic-") as scratch:
        if data is None:
            try:
                data = write_benchmark(scratch, test_count=count, seed=seed, image_size=image_size, splits=("test",),
                                       world=chosen)["test"]
            except ValueError as exc:
                raise SemClipError(str(exc)) from None
            label = f"generated ({chosen.name} world, seed {seed}, {count} items, {image_size} px)"
            dataset = f"synthetic-{seed}-{count}-{image_size}" + ("" if world == "default" else f"-{chosen.name}")
        else:
            label, dataset, chosen = str(data), str(data.resolve()), load_world(data)
        items, scenes = load_triples(data), load_scenes(data)
        _evaluate(shared, label, lambda embedder: evaluate_synthetic(embedder, items, dataset, scenes, seed, chosen))


def main() -> None:
    app()
