"""The body of the dataset card written beside a generated triples file: what is in it, how it was made."""

from __future__ import annotations

from pathlib import Path

from triplegen.checks import REASONS


def _pct(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "n/a"


def render_card(run: dict, output: Path, rejects: Path, title: str | None = None) -> str:
    """The card's Markdown body (how to load it: triplegen.hubcard); `run` is the Parquet file's metadata."""
    counts, tokens, prompt = run["counts"], run["tokens"], run["prompt"]
    config = run["config"]
    backend = run["backend"]
    if backend == "rules":
        backend += " (the built-in rules generator, no LLM)"
    rows = counts["rows"]
    absent = counts.get("absent_planned", 0)
    captions_out = counts["accepted"] + counts["rejected"] - absent  # one per input row
    lines = [
        f"# {title or output.name}",
        "",
        f"(caption, paraphrase, negation) triples made by `triplegen generate` from `{config['input']}`.",
        f"Rejected rows, with the raw output and the reason, are in `{rejects.name}`.",
        "",
        "| | |",
        "|---|---|",
        f"| input rows | {rows:,} |",
        f"| accepted | {counts['accepted']:,} ({_pct(counts['accepted'], rows + absent)}) |",
        f"| rejected | {counts['rejected']:,} ({_pct(counts['rejected'], rows + absent)}) |",
        f"| unique captions sent to the backend | {counts['generated']:,} |",
        f"| retries | {counts['retries']:,} |",
        f"| backend | {backend} |",
        f"| model | {run['model']} |",
        f"| prompt | {prompt['name']} v{prompt['version']} (hash `{prompt['hash']}`) |",
        f"| seed | {config['seed']} |",
        f"| attempts allowed | {run['attempts_allowed']} |",
        f"| prompt tokens | {tokens['prompt']:,} |",
        f"| completion tokens | {tokens['completion']:,} |",
    ]
    if absent:
        accepted = counts.get("absent_accepted", 0)
        absent_prompt = run.get("absent_prompt") or {}
        lines += [
            f"| absent-object rows (up to {config['absent_objects']} per caption with object labels) | "
            f"{absent:,}: {accepted:,} accepted, {absent - accepted:,} rejected |",
            f"| absent-object prompt | {absent_prompt.get('name')} v{absent_prompt.get('version')} "
            f"(hash `{absent_prompt.get('hash')}`) |",
        ]
    if config.get("shard"):
        shard = config["shard"]
        lines.append(f"| shard | {shard['index']}/{shard['count']} |")
    lines += ["", "## Checks", ""]
    judged = counts["judged"]
    failures = run["check_failures"]
    if failures:
        lines += [f"Pass rate of each check over the {judged:,} outputs judged (all attempts):", "",
                  "| reason | meaning | failures | pass rate |", "|---|---|---|---|"]
        for code, n in sorted(failures.items(), key=lambda item: -item[1]):
            lines.append(f"| `{code}` | {REASONS.get(code, '')} | {n:,} | {_pct(judged - n, judged) if judged else 'n/a'} |")
    else:
        lines.append(f"Every one of the {judged:,} outputs judged passed every check.")
    reasons = run["reject_reasons"]
    if reasons:
        lines += ["", "## Rejects by reason", "", "| reason | rows |", "|---|---|"]
        lines += [f"| `{code}` | {n:,} |" for code, n in sorted(reasons.items(), key=lambda item: -item[1])]
    if absent:
        lines += ["", "## Absent-object rows", "",
                  f"Besides the {captions_out:,} input captions, {absent:,} rows have a caption that is true and denies an "
                  "object the image does not show (`kind` absent-assert: the negation claims that object; absent-swap: "
                  "the negation moves the denial onto an object the image shows). Their `id` is the input id + "
                  "`#absent-N`, `source_id` the input id and `absent_object` the denied object. Filter with "
                  "`df.filter(pl.col(\"kind\") == \"caption\")` for the input captions only."]
    return "\n".join(lines)
