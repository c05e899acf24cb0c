"""Output folders that `_load(tmp_path, folder)` reads: the card's configs, the earlier file form, merge."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from triplegen.cli import app

datasets = pytest.importorskip("datasets")
runner = CliRunner()
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "captions.parquet"


def _generate(*args: str) -> None:
    result = runner.invoke(app, ["generate", str(EXAMPLE), "--quiet", *args])
    assert result.exit_code == 0, result.output


def _load(tmp_path: Path, *args, **kwargs):
    """load_dataset with a cache of this test's own (the shared cache keys local folders loosely)."""
    return datasets.load_dataset(*args, cache_dir=str(tmp_path / "hf-cache"), **kwargs)


def _front_matter(card: Path) -> dict:
    return yaml.safe_load(card.read_text().split("---", 2)[1])


def test_a_dataset_folder_loads_both_configs_with_load_dataset(tmp_path):
    folder = tmp_path / "coco-triples"
    _generate("-o", str(folder), "--license", "cc-by-4.0")
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "rejects.parquet", "triples.parquet"]
    triples = _load(tmp_path, str(folder), split="train")
    rejects = _load(tmp_path, str(folder), "rejects", split="train")
    assert triples.num_rows == 298 and rejects.num_rows == 2  # every input row in exactly one of them
    assert {"caption", "paraphrase", "negation", "kind"} <= set(triples.column_names)
    assert set(rejects["reason"]) == {"empty_caption"}
    meta = _front_matter(folder / "README.md")
    assert meta["license"] == "cc-by-4.0" and meta["size_categories"] == ["n<1K"]
    card = (folder / "README.md").read_text()
    for text in ("| accepted | 298", "## Checks", "rules (the built-in rules generator", "load_dataset(",
                 'cast_column("image", Image())', "hf upload"):
        assert text in card, text
    written = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    again = runner.invoke(app, ["generate", str(EXAMPLE), "-o", str(folder), "--quiet", "--license", "cc-by-4.0"])
    assert again.exit_code == 0 and "already complete" in again.output, again.output
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == written  # nothing rewritten
    assert runner.invoke(app, ["validate", str(folder)]).exit_code == 0


def test_a_run_without_rejects_loads_and_its_card_says_why_there_is_no_rejects_config(tmp_path):
    """The README's COCO demo rejects nothing: `datasets` cannot load a split of 0 rows, so the card lists
    no rejects config (its load_dataset says so in one line) and says why; the file has the rejects' columns."""
    coco = Path(__file__).resolve().parents[2] / "examples" / "coco" / "annotations"
    captions, table, folder = tmp_path / "captions.parquet", tmp_path / "cooc.parquet", tmp_path / "triples"
    made = runner.invoke(app, ["coco", str(coco / "captions_val2017.json"), str(coco / "instances_val2017.json"),
                               "-o", str(captions), "--image-prefix", "val2017/", "--cooccurrence", str(table)])
    assert made.exit_code == 0, made.output
    _generate_from(captions, "-o", str(folder), "--absent-objects", "1", "--cooccurrence", str(table))
    rejects = pq.read_table(folder / "rejects.parquet")
    assert rejects.num_rows == 0 and rejects.schema.names[:4] == ["id", "caption", "raw_output", "reason"]
    assert _load(tmp_path, str(folder), split="train").num_rows == 40
    with pytest.raises(ValueError, match="BuilderConfig 'rejects' not found"):
        _load(tmp_path, str(folder), "rejects")
    assert [c["config_name"] for c in _front_matter(folder / "README.md")["configs"]] == ["default"]
    assert "no row was rejected" in (folder / "README.md").read_text()


def _generate_from(source: Path, *args: str) -> None:
    result = runner.invoke(app, ["generate", str(source), "--quiet", *args])
    assert result.exit_code == 0, result.output


def test_the_card_documents_how_local_images_become_datasets_images(tmp_path):
    from datasets import Image
    from PIL import Image as PILImage

    images = tmp_path / "images"
    images.mkdir()
    rows = [{"id": f"r{i}", "image": f"{i}.png", "caption": f"A red dog number {i} runs on a beach."} for i in range(3)]
    for row in rows:
        PILImage.new("RGB", (8, 8), "red").save(images / row["image"])
    import pyarrow as pa

    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "caps.parquet")
    result = runner.invoke(app, ["generate", str(tmp_path / "caps.parquet"), "-o", str(tmp_path / "ds"), "--quiet"])
    assert result.exit_code == 0, result.output
    ds = _load(tmp_path, str(tmp_path / "ds"), split="train")
    import os  # the card's snippet, with the folder the paths are relative to

    ds = ds.map(lambda row: {"image": os.path.join(str(images), row["image"])}).cast_column("image", Image())
    assert ds[0]["image"].size == (8, 8)


def test_the_earlier_file_form_keeps_its_names_and_never_replaces_a_foreign_readme(tmp_path):
    out = tmp_path / "out"
    _generate("-o", str(out / "triples.parquet"))
    assert (out / "triples.rejects.parquet").exists() and (out / "README.md").exists()
    assert _load(tmp_path, str(out), "rejects", split="train").num_rows == 2
    result = runner.invoke(app, ["generate", str(EXAMPLE), "-o", str(out / "llm.parquet")])  # same folder
    assert result.exit_code == 0, result.output
    assert "is not the card of llm.parquet" in " ".join(result.output.split()) and (out / "llm.card.md").exists()
    assert _front_matter(out / "README.md")["configs"][0]["data_files"][0]["path"] == "triples.parquet"
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "README.md").write_text("# my project\n")
    _generate("-o", str(mine / "t.parquet"))
    assert (mine / "README.md").read_text() == "# my project\n" and (mine / "t.card.md").exists()


def test_merged_shard_folders_load_as_one_dataset(tmp_path):
    for index in range(3):
        _generate("-o", str(tmp_path / "parts" / str(index)), "--shard", f"{index}/3")
    merged = tmp_path / "merged"
    result = runner.invoke(app, ["merge", *(str(tmp_path / "parts" / str(i)) for i in range(3)), "-o", str(merged),
                                 "--input", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert "all 300 input ids present once" in result.output and "card" in result.output
    assert _load(tmp_path, str(merged), split="train").num_rows == 298
    assert _load(tmp_path, str(merged), "rejects", split="train").num_rows == 2
    assert "| input rows | 300 |" in (merged / "README.md").read_text()


def test_a_folder_whose_backend_errors_were_retried_keeps_the_card_of_a_normal_run(tmp_path):
    """`--retry-backend-errors` rewrites the card as a run does: the same YAML (configs, license), so the
    folder still loads both configs; it once wrote the body alone, and `load_dataset(folder, "rejects")` failed."""
    from tests.triplegen.test_reliability import reject_as_backend_errors

    normal, retried = tmp_path / "normal" / "coco-triples", tmp_path / "retried" / "coco-triples"
    for folder in (normal, retried):
        _generate("-o", str(folder), "--license", "cc-by-4.0")
    lost = reject_as_backend_errors(retried / "triples.parquet", retried / "rejects.parquet", 10, 25)
    result = runner.invoke(app, ["generate", str(EXAMPLE), "-o", str(retried), "--license", "cc-by-4.0",
                                 "--retry-backend-errors"])
    assert result.exit_code == 0 and "Retrying 25 row(s)" in result.output, result.output
    assert f"card {retried / 'README.md'}" in " ".join(result.output.split()) and "card.md" not in result.output
    assert sorted(p.name for p in retried.iterdir()) == ["README.md", "rejects.parquet", "triples.parquet"]
    meta = _front_matter(retried / "README.md")
    assert meta == _front_matter(normal / "README.md")
    assert meta["license"] == "cc-by-4.0" and [c["config_name"] for c in meta["configs"]] == ["default", "rejects"]
    triples = _load(tmp_path, str(retried), split="train")
    assert triples.num_rows == 298 and lost <= set(triples["id"])
    rejects = _load(tmp_path, str(retried), "rejects", split="train")
    assert rejects.num_rows == 2 and set(rejects["reason"]) == {"empty_caption"}


def test_an_output_folder_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "taken").write_text("x")
    result = runner.invoke(app, ["generate", str(EXAMPLE), "-o", str(tmp_path / "taken"), "--quiet"])
    assert result.exit_code == 2 and "is a file" in result.output and "Traceback" not in result.output


class _InterruptedRules:
    """The rules backend, interrupted (as by Ctrl-C) on its `at`-th call; slowed so progress lines can tick."""

    def __init__(self, at: int | None = None, pause: float = 0.0):
        from triplegen.backends.rules import RulesBackend

        self.rules, self.at, self.pause, self.calls = RulesBackend(), at, pause, 0
        self.name, self.model, self.deterministic, self.needs_messages = "rules", "rules", True, False

    def generate(self, requests, sampling):
        import time

        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        time.sleep(self.pause)
        return self.rules.generate(requests, sampling)


def test_a_dataset_folder_run_resumes_after_an_interruption(tmp_path):
    from triplegen.config import GenerateConfig
    from triplegen.orchestration.run import generate

    config = GenerateConfig(input=EXAMPLE, output=tmp_path / "ds", chunk_size=50, quiet=True)
    with pytest.raises(KeyboardInterrupt):
        generate(config, backend=_InterruptedRules(at=3))
    assert not (tmp_path / "ds" / "README.md").exists()
    summary = generate(config)  # the same settings: the two finished chunks are kept
    assert summary.resumed_chunks == 2 and summary.card == tmp_path / "ds" / "README.md"
    assert _load(tmp_path, str(tmp_path / "ds"), split="train").num_rows == 298


def test_off_a_terminal_generate_prints_plain_progress_lines(tmp_path, monkeypatch):
    import io

    from rich.console import Console

    from triplegen.config import GenerateConfig
    from triplegen.orchestration.run import generate

    monkeypatch.setenv("SEMCLIP_PROGRESS_INTERVAL", "0.1")
    log = io.StringIO()  # a file, as stderr is under Slurm or nohup
    config = GenerateConfig(input=EXAMPLE, output=tmp_path / "ds", chunk_size=30)
    generate(config, backend=_InterruptedRules(pause=0.1), console=Console(file=log, width=200))
    lines = [line for line in log.getvalue().splitlines() if line.startswith("generate ")]
    assert len(lines) >= 4, log.getvalue()  # about one per 0.1 s over a run of about 1 s, and the last
    assert lines[-1].startswith("generate 300/300 rows (100%) · ETA 0m00s")
    assert "accepted 298" in lines[-1] and "rejected 2" in lines[-1] and "rows/s" in lines[-1]
    assert "\x1b[" not in log.getvalue()  # no bar, no cursor control codes
