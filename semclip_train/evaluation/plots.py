"""Similarity distributions of true and false captions, as a PNG: an accuracy of 0.6 can hide two
almost identical distributions or two well-separated ones with outliers, and the plot tells which.

matplotlib is the optional `plot` extra; it is imported only here, when a plot is asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from semclip_core.files import atomic_path
from semclip_train.errors import SemClipError

if TYPE_CHECKING:
    from semclip_train.evaluation.evaluate import EvalResult


def difference_bins(gaps: list[float], count: int = 41) -> list[float]:
    """Bins of their own, symmetric about 0: differences are far narrower than the similarities, so
    the similarity bins would hold them all in one or two bars (or none, off their range)."""
    reach = max((abs(gap) for gap in gaps), default=0.0) or 1e-6
    reach *= 1.0001  # the extreme items fall inside the last bin, not on its edge
    return [-reach + 2 * reach * i / count for i in range(count + 1)]


def model_label(model: str) -> str:
    """A run's name for titles and tables: `runs/semclip-b32/final` is `semclip-b32`, a hub name stays whole."""
    path = Path(model)
    if path.exists():
        path = path.resolve()
        if path.name == "final" or path.name.startswith("step-"):
            return path.parent.parent.name if path.parent.name == "checkpoints" else path.parent.name
        return path.name
    return model


def plot_similarities(results: "dict[str, EvalResult]", path: str | Path, title: str | None = None) -> Path:
    """One column per model (labelled by its key): both cosine histograms on top, the per-item
    difference below, every item drawn."""
    figure = similarity_figure(results)
    if title:
        figure.suptitle(title)
    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=100, format=(path.suffix.lstrip(".") or "png"))
    return path


def similarity_figure(results: "dict[str, EvalResult]"):
    """The matplotlib Figure of `plot_similarities` (its panels can be inspected)."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise SemClipError("--plot needs matplotlib: pip install 'semclip[plot]'") from None
    usable = {label: result for label, result in results.items() if len(result.similarities) == 2}
    if not usable:
        raise SemClipError("this benchmark has no similarity distributions to plot")
    figure = Figure(figsize=(4.5 * len(usable), 6.5), layout="constrained")
    axes = figure.subplots(2, len(usable), squeeze=False)
    for column, (label, result) in enumerate(usable.items()):
        (true_name, true), (false_name, false) = result.similarities.items()
        top, bottom = axes[0][column], axes[1][column]
        low, high = min(min(true), min(false)), max(max(true), max(false))
        bins = [low + (high - low) * i / 40 for i in range(41)] if high > low else 40  # shared bins
        top.hist(false, bins=bins, alpha=0.6, label=false_name, color="tab:red")
        top.hist(true, bins=bins, alpha=0.6, label=true_name, color="tab:green")  # on top: often narrow
        top.set_title(f"{label}: {result.benchmark}")
        top.set_xlabel("cosine similarity")
        top.legend(fontsize="small")
        gaps = [t - f for t, f in zip(true, false)]
        wins = sum(gap > 0 for gap in gaps) / len(gaps) if gaps else 0.0
        bottom.hist(gaps, bins=difference_bins(gaps), color="tab:blue")
        bottom.axvline(0.0, color="black", linewidth=1)
        bottom.set_title(f"{label}: true minus false, {wins:.1%} of items > 0")
        bottom.set_xlabel("cosine difference")
    return figure
