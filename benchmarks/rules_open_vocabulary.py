"""The rules generator with and without lemminflect's open vocabulary of verbs, side by side in one run.

    python benchmarks/rules_open_vocabulary.py [--data-dir DIR]     # DIR: the SugarCrepe++ JSON files
    python benchmarks/rules_open_vocabulary.py --open-verbs-only     # without SugarCrepe++

Two caption sets: the 200 captions of `benchmarks/data/open_verb_captions.txt` (verbs outside the
hand-kept list) and the 3,893 distinct SugarCrepe++ captions (benchmarks/sugarcrepe_data.py: where they
are looked for; without them the script stops with a one-line error, unless --open-verbs-only). "hand list"
is the generator as it was (verbs from the list only, no grammar filter on its candidates); "open"
is the current one. Every output goes through `check_triple` (which now includes the
`*_ungrammatical` check); `existential + verb` counts the "There is a chef garnishes ..." outputs.
A sample of outputs is printed to read by eye.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

from sugarcrepe_data import add_data_option, sugarcrepe_files

from triplegen.checks.lexical import check_triple
from triplegen.rules import clause, paraphrase as paraphrase_module
from triplegen.rules.dangling_verb import dangling_verb
from triplegen.rules.lexicon import tokenize
from triplegen.rules.negation import negate
from triplegen.rules.paraphrase import paraphrase

HERE = Path(__file__).resolve().parent


@contextmanager
def hand_list_only():
    """The generator before lemminflect: no open-vocabulary verbs, no grammar filter on candidates."""
    saved = clause.open_verb_base, paraphrase_module.dangling_verb
    clause.open_verb_base = lambda form, tag="VBZ": None
    paraphrase_module.dangling_verb = lambda text: None
    clause.find_predicate.cache_clear()
    try:
        yield
    finally:
        clause.open_verb_base, paraphrase_module.dangling_verb = saved
        clause.find_predicate.cache_clear()
        tokenize.cache_clear()


def run(captions: list[str]) -> tuple[list[tuple[str, str | None, str | None]], dict]:
    outputs = [(c, paraphrase(c), negate(c)) for c in captions]
    reasons = Counter(r for c, p, n in outputs for r in check_triple(c, p, n))
    stats = {
        "existential + verb (paraphrase)": sum(p is not None and dangling_verb(p) is not None for _, p, _ in outputs),
        "existential + verb (negation)": sum(n is not None and dangling_verb(n) is not None for _, _, n in outputs),
        "triples passing all checks": sum(not check_triple(c, p, n) for c, p, n in outputs),
        "progressive paraphrase (is/are ...ing)": sum(p is not None and (" is " in p or " are " in p) and "ing" in p
                                                     and not p.lower().startswith("there") for _, p, _ in outputs),
        "do-support negation (does/do not)": sum(n is not None and (" does not " in n or " do not " in n)
                                                 for _, _, n in outputs),
    }
    return outputs, {**stats, "reasons": dict(reasons)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_option(parser, "--sugarcrepe")
    parser.add_argument("--open-verbs-only", action="store_true", help="only the bundled open-verb captions")
    parser.add_argument("--samples", type=int, default=12)
    args = parser.parse_args()
    sets = {"open-verb captions": (HERE / "data" / "open_verb_captions.txt").read_text().splitlines()}
    if not args.open_verbs_only:
        items = [i for path in sugarcrepe_files(args.data) for i in json.loads(path.read_text())]
        sets["SugarCrepe++ captions"] = sorted({item["caption"] for item in items})
    for name, captions in sets.items():
        with hand_list_only():
            before, old = run(captions)
        after, new = run(captions)
        print(f"\n{name} ({len(captions):,})\n\n| measure | hand list | open (lemminflect) |\n|---|---:|---:|")
        for key in old:
            if key != "reasons":
                print(f"| {key} | {old[key]:,} | {new[key]:,} |")
        for code in sorted(set(old["reasons"]) | set(new["reasons"])):
            print(f"| reason `{code}` | {old['reasons'].get(code, 0):,} | {new['reasons'].get(code, 0):,} |")
        changed = [(b, a) for b, a in zip(before, after) if b != a]
        print(f"\n{len(changed):,} of {len(captions):,} triples changed; the first {args.samples}:\n")
        for (caption, p0, n0), (_, p1, n1) in changed[: args.samples]:
            print(f"- {caption}\n  - paraphrase: {p0}  ->  {p1}\n  - negation: {n0}  ->  {n1}")


if __name__ == "__main__":
    main()
