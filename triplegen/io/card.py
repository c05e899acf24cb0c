"""The body of the dataset card written beside a generated triples file: what is in it, how it was made."""

from __future__ import annotations

from pathlib import Path

from triplegen.checks.lexical import REASONS
from triplegen.rules.absent import NOTES as ABSENT_NOTES


def _pct(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "n/a"


_CONSTRAINT_KINDS = {
    "negation: edit": "negation as a guided edit (the caption's words up to the negation point, then a negation word)",
    "negation: cue": "negation must contain a negation word",
    "negation: no-cue": "negation of a negated caption must drop every negation word",
    "paraphrase: cue": "paraphrase of a negated caption must keep a negation word",
    "absent caption: denial": "absent-object caption as the caption's words with a fitting denial",
    "absent paraphrase: reworded": "absent-object paraphrase as the caption's words with the denial moved",
    "absent negation: affirm": "absent-assert negation as the caption with the denial affirmed",
    "absent negation: swap": "absent-swap negation as the caption with the denial moved onto a shown object",
}


def _constraint(run: dict) -> str:
    """Which structured-output constraint the rows were generated under (triplegen.checks.constraints)."""
    constraint = run.get("constraint") or {"mode": "none", "applied": False, "note": "not recorded"}
    if not constraint["applied"]:
        return f"template schema only ({constraint['note']})"
    counts = run.get("constraints", {})
    kinds = "; ".join(f"{text}: {counts[key]:,}" for key, text in _CONSTRAINT_KINDS.items() if counts.get(key))
    return f"{constraint['mode']}, per-caption JSON-schema patterns ({kinds or 'no caption generated'})"


def _cached(run: dict) -> str:
    """How much of the prompt the engine took from its prefix cache, when it said so."""
    tokens, caching = run["tokens"], run.get("prefix_caching")
    state = {True: "prefix caching on", False: "prefix caching off", None: "prefix caching: the server's setting"}[caching]
    if not tokens.get("cache_reports"):
        return f" ({state}; cached tokens not reported)"
    cached = tokens.get("cached", 0)
    return (f" ({state}: {cached:,} served from the cache, {tokens['prompt'] - cached:,} computed, "
            f"{_pct(cached, tokens['prompt'])} cached)")


def _judge_section(run: dict) -> list[str]:
    """What the optional LLM judge (--judge-model) cost and rejected."""
    judge = run.get("judge")
    if not judge:
        return []
    counts, prompt = run.get("judge_counts", {}), judge["prompt"]
    where = f"`{judge['model'] or 'the served model'}`" + (f" at {judge['base_url']}" if judge["base_url"] else "")
    rejected = {key.split(":", 1)[1]: n for key, n in counts.items() if key.startswith("rejected:")}
    lines = ["", "## LLM judge", "",
             f"Every row the checks accepted was also judged by {where} with the prompt {prompt['prompt_name']} "
             f"v{prompt['prompt_version']} (hash `{prompt['prompt_hash']}`): {counts.get('calls', 0):,} calls, "
             f"{counts.get('prompt_tokens', 0):,} prompt tokens ({counts.get('cached_tokens', 0):,} of them from the "
             f"prefix cache), {counts.get('completion_tokens', 0):,} completion tokens. It rejected "
             f"{sum(rejected.values()):,} rows (counted once, by their first judge reason):"]
    if rejected:
        lines += ["", "| reason | meaning | rows |", "|---|---|---|"]
        lines += [f"| `{code}` | {judge['reasons'].get(code, '')} | {n:,} |"
                  for code, n in sorted(rejected.items(), key=lambda item: -item[1])]
    return lines


def _blind_section(run: dict) -> list[str]:
    """How often the blind model (--blind-model) prefers the true text, per kind, and what it rejected."""
    blind = run.get("blind")
    if not blind:
        return []
    lines = ["", "## Blind check", "",
             f"A text-only language model, `{blind['model']}`, scored every row the checks accepted (mean "
             "log-probability per token). It rejected rows whose negation it finds far less likely than the caption "
             f"(`blind_detectable`: by more than {blind['detectable_margin']:.3f} nats/token) and absent-object rows "
             "whose caption it finds far less fluent than the source caption (`blind_disfluent`: by more than "
             f"{blind['disfluent_margin']:.3f}). \"prefers the caption\" is the share of rows it scores above their "
             "negation: 50% means the false texts cannot be told from the text alone.", "",
             "| kind | rows scored | prefers the caption | rejected: detectable | rejected: disfluent | "
             "rows in the triples | prefers the caption there |", "|---|---:|---:|---:|---:|---:|---:|"]
    for kind, n in sorted(run.get("blind_counts", {}).items()):
        lines.append(f"| {kind} | {n['scored']:,} | {_pct(n['prefers_true'], n['scored'])} | {n['detectable']:,} | "
                     f"{n['disfluent']:,} | {n['kept']:,} | {_pct(n['kept_prefers_true'], n['kept'])} |")
    return lines


def render_card(run: dict, output: Path, rejects: Path, title: str | None = None) -> str:
    """The card's Markdown body (how to load it: triplegen.io.hubcard); `run` is the Parquet file's metadata."""
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
        f"| prompt tokens | {tokens['prompt']:,}{_cached(run)} |",
        f"| completion tokens | {tokens['completion']:,} |",
        f"| output constraint | {_constraint(run)} |",
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
    lines += _blind_section(run)
    lines += _judge_section(run)
    if absent:
        lines += ["", "## Absent-object rows", "",
                  f"Besides the {captions_out:,} input captions, {absent:,} rows have a caption that is true and denies an "
                  "object the image does not show (`kind` absent-assert: the negation claims that object; absent-swap: "
                  "the negation moves the denial onto an object the image shows). Their `id` is the input id + "
                  "`#absent-N`, `source_id` the input id and `absent_object` the denied object. Filter with "
                  "`df.filter(pl.col(\"kind\") == \"caption\")` for the input captions only."]
        lines += _absent_notes(run.get("absent_notes") or {})
    return "\n".join(lines)


def _absent_notes(notes: dict[str, int]) -> list[str]:
    """Absent-object rows not written as drawn: rows never planned, and swaps written as asserts."""
    if not notes:
        return []
    lines = ["", "Not written as drawn (a row is never written where no wording or object fits):", "",
             "| reason | meaning | rows |", "|---|---|---:|"]
    return lines + [f"| `{code}` | {ABSENT_NOTES.get(code, '')} | {n:,} |"
                    for code, n in sorted(notes.items(), key=lambda item: -item[1])]
