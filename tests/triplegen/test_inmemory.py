"""`triplegen.generate` on rows in memory: a list, polars and pandas DataFrames, a datasets.Dataset."""

from __future__ import annotations

import pandas as pd
import polars as pl
import pytest

import triplegen
from triplegen.errors import TripleGenError

CAPTIONS = ["A dog runs on a beach.", "A chef garnishes a plate of pasta.", "   "]


def test_a_list_of_captions_comes_back_as_polars_frames_with_the_rejects():
    result = triplegen.generate(CAPTIONS, quiet=True)
    assert isinstance(result.triples, pl.DataFrame) and isinstance(result.rejects, pl.DataFrame)
    assert result.triples["caption"].to_list() == CAPTIONS[:2]
    assert result.triples["paraphrase"][1] == "A chef is garnishing a plate of pasta."
    assert result.rejects["reason"].to_list() == ["empty_caption"]  # nothing dropped silently
    assert not result.summary.output.exists()  # no output named: only the frames remain


def test_pandas_in_pandas_out_and_columns_carried(tmp_path):
    frame = pd.DataFrame({"id": ["a", "b"], "caption": CAPTIONS[:2], "image": ["1.jpg", "2.jpg"], "source": ["x", "y"]})
    result = triplegen.generate(frame, output=tmp_path / "ds", quiet=True)
    assert isinstance(result.triples, pd.DataFrame)
    assert list(result.triples["id"]) == ["a", "b"] and list(result.triples["source"]) == ["x", "y"]
    assert (tmp_path / "ds" / "README.md").exists()  # with an output, the dataset folder stays


def test_a_dataset_in_a_dataset_out_and_as_frame():
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict({"caption": CAPTIONS[:2], "image": ["1.jpg", "2.jpg"]})
    result = triplegen.generate(ds, quiet=True)
    assert isinstance(result.triples, datasets.Dataset) and result.triples.num_rows == 2
    assert isinstance(triplegen.generate(ds, as_frame="pandas", quiet=True).triples, pd.DataFrame)


def test_a_file_config_can_return_frames(tmp_path):
    source = tmp_path / "caps.parquet"
    pl.DataFrame({"caption": CAPTIONS}).write_parquet(source)
    result = triplegen.generate(triplegen.GenerateConfig(input=source, output=tmp_path / "out", quiet=True),
                                as_frame="polars")
    assert result.triples.height == 2 and result.rejects.height == 1


def test_something_else_is_one_clear_error():
    with pytest.raises(TripleGenError, match="a list of captions"):
        triplegen.generate(42)
