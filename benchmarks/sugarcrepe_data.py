"""Where the benchmarks find SugarCrepe++, and the one-line error when it is not there.

SugarCrepe++ (Dumpala et al., NeurIPS 2024 Datasets and Benchmarks; CC BY 4.0) is five JSON files,
the `data` folder of github.com/Sri-Harsha/scpp. A benchmark reads them from `--data-dir FOLDER`
(`--data` is the same option), else from the folder in $SEMCLIP_SUGARCREPE_PP_DIR, else from the
data folder the project keeps beside its clone; tests/conftest.py looks in the same places.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ENVIRONMENT_VARIABLE = "SEMCLIP_SUGARCREPE_PP_DIR"
FILES = ("replace_att.json", "replace_obj.json", "replace_rel.json", "swap_att.json", "swap_obj.json")
SOURCE = "the data folder of github.com/Sri-Harsha/scpp"
_BESIDE_THE_CLONE = Path(__file__).resolve().parents[2] / "shared" / "data" / "sugarcrepe_pp"


def default_folder() -> Path:
    return Path(os.environ.get(ENVIRONMENT_VARIABLE) or _BESIDE_THE_CLONE)


def add_data_option(parser: argparse.ArgumentParser, *extra_names: str) -> None:
    """`--data-dir` (and `--data`, its earlier name) into `args.data`, resolved by `sugarcrepe_files`."""
    parser.add_argument("--data-dir", "--data", *extra_names, dest="data", type=Path, default=None,
                        help=f"folder of the SugarCrepe++ JSON files ({SOURCE}); default ${ENVIRONMENT_VARIABLE}")


def sugarcrepe_files(folder: Path | None) -> list[Path]:
    """The five JSON files in `folder` (None: the default), or exit 2 with one line saying where to get them."""
    folder = folder or default_folder()
    missing = [name for name in FILES if not (folder / name).is_file()]
    if missing:
        found = f"no SugarCrepe++ JSON files in {folder}" if len(missing) == len(FILES) else (
            f"SugarCrepe++ in {folder} lacks {', '.join(missing)}")
        print(f"error: {found}; get them from {SOURCE} and pass --data-dir FOLDER or set {ENVIRONMENT_VARIABLE}",
              file=sys.stderr)
        raise SystemExit(2)
    return [folder / name for name in sorted(FILES)]
