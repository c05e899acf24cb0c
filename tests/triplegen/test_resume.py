"""Resume state: finished chunks are kept, a run with other settings is refused."""

from __future__ import annotations

import re

import pytest

from triplegen.errors import TripleGenError
from triplegen.resume import WorkFolder

FINGERPRINT = {"prompt_hash": "abc", "model": "rules", "backend": "rules", "seed": 0, "input": {"files": []}}


def test_finished_chunks_survive_a_restart_with_the_same_settings(tmp_path):
    folder = WorkFolder(tmp_path / "out.parquet")
    assert folder.open(FINGERPRINT, overwrite=False) == 0
    folder.mark_done(0, {"accepted": 3})
    folder.mark_done(2, {"accepted": 1})
    again = WorkFolder(tmp_path / "out.parquet")
    assert again.open(dict(FINGERPRINT), overwrite=False) == 2
    assert again.is_done(2) and not again.is_done(1)
    assert again.summaries() == [{"accepted": 3}, {"accepted": 1}]


@pytest.mark.parametrize("key, value, label", [
    ("prompt_hash", "def", "prompt (hash)"), ("model", "qwen", "model"), ("seed", 1, "seed"),
    ("input", {"files": ["x"]}, "input"), ("backend", "vllm", "backend"),
])
def test_changed_settings_are_refused_unless_overwrite(tmp_path, key, value, label):
    folder = WorkFolder(tmp_path / "out.parquet")
    folder.open(FINGERPRINT, overwrite=False)
    folder.mark_done(0, {})
    changed = {**FINGERPRINT, key: value}
    with pytest.raises(TripleGenError, match=rf"different {re.escape(label)}.*--overwrite to start over"):
        WorkFolder(tmp_path / "out.parquet").open(changed, overwrite=False)
    assert WorkFolder(tmp_path / "out.parquet").open(changed, overwrite=True) == 0
    assert not folder.is_done(0)


def test_an_existing_final_output_is_refused_without_overwrite(tmp_path):
    (tmp_path / "out.parquet").write_bytes(b"x")
    with pytest.raises(TripleGenError, match="already exists; pass --overwrite"):
        WorkFolder(tmp_path / "out.parquet").open(FINGERPRINT, overwrite=False)
    assert WorkFolder(tmp_path / "out.parquet").open(FINGERPRINT, overwrite=True) == 0
