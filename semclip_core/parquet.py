"""The one-line error for a file that cannot be read as Parquet, the same in both products.

pyarrow finds a truncated file or a corrupt page only as it reads it, and says so in a message of
several lines (or none); the user needs the path and its first line, not a traceback.
"""

from __future__ import annotations

from pathlib import Path

from semclip_core.errors import UserError


def unreadable(path: Path, exc: BaseException) -> UserError:
    """A Parquet file that cannot be read (not Parquet, truncated, a corrupt page), as one line."""
    return UserError(f"cannot read {path} as Parquet: {(str(exc).strip().splitlines() or [type(exc).__name__])[0]}")
