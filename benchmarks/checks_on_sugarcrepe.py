"""What the paraphrase checks say about human texts: SugarCrepe++'s paraphrases and its hard negatives.

    python benchmarks/checks_on_sugarcrepe.py [--data-dir FOLDER]   # SugarCrepe++ (benchmarks/sugarcrepe_data.py)

A human paraphrase that a check fails is (mostly) a false alarm; a hard negative (one attribute,
object or relation replaced, or two swapped) that the paraphrase checks fail is a wrong paraphrase
they would catch. Prints one table: rows per reason code, columns per kind of text.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter

from sugarcrepe_data import add_data_option, sugarcrepe_files

from triplegen.checks.lexical import check_triple


def paraphrase_failures(caption: str, text: str) -> list[str]:
    return [code for code in check_triple(caption, text, None) if code.startswith("paraphrase")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_option(parser)
    files = sugarcrepe_files(parser.parse_args().data)
    columns: dict[str, Counter] = {"human paraphrases": Counter()}
    sizes: Counter = Counter()
    for path in files:
        items = json.loads(path.read_text(encoding="utf-8"))
        negatives = f"hard negatives: {path.stem}"
        columns[negatives] = Counter()
        for item in items:
            sizes["human paraphrases"] += 1
            sizes[negatives] += 1
            columns["human paraphrases"].update(paraphrase_failures(item["caption"], item["caption2"])[:1])
            columns[negatives].update(paraphrase_failures(item["caption"], item["negative_caption"])[:1])
    codes = sorted({code for counts in columns.values() for code in counts})
    print("| paraphrase check failed (first failure) | " + " | ".join(f"{name} ({sizes[name]:,})" for name in columns)
          + " |")
    print("|---|" + "---:|" * len(columns))
    for code in codes:
        print(f"| `{code}` | " + " | ".join(str(columns[name][code]) for name in columns) + " |")
    print("| any | " + " | ".join(f"{sum(c.values())} ({sum(c.values()) / sizes[n]:.1%})" for n, c in columns.items())
          + " |")


if __name__ == "__main__":
    main()
