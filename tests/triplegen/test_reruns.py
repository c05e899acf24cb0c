"""Idempotent reruns: the same command on a finished output (Slurm --requeue, a Kubernetes Job restart, a
retry wrapper, a README line run twice) exits 0, says the output is complete and rewrites nothing;
other inputs or settings are still refused without --overwrite."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from triplegen.cli import app

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "captions.parquet"
COCO = REPO / "examples" / "coco" / "annotations"
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def stamps(folder: Path) -> dict[str, tuple[int, str]]:
    """Every file under `folder` with its modification time and content hash."""
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(folder.rglob("*")) if p.is_file()}


def refused(result, *texts: str) -> None:
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert result.output.startswith("error: ") and result.output.count("\n") == 1, result.output
    for text in texts:
        assert text in result.output, result.output


def test_a_finished_shard_rerun_is_complete_and_other_settings_are_refused(tmp_path):
    for index in range(2):
        args = ("generate", EXAMPLE, "-o", tmp_path / "parts" / str(index), "--shard", f"{index}/2", "-q")
        assert invoke(*args).exit_code == 0
        before = stamps(tmp_path)
        again = invoke(*args)
        assert again.exit_code == 0 and "already complete" in again.output, again.output
        assert stamps(tmp_path) == before
    refused(invoke("generate", EXAMPLE, "-o", tmp_path / "parts" / "1", "--shard", "0/2", "-q"),
            "already exists; pass --overwrite", "different shard")
    assert invoke("generate", EXAMPLE, "-o", tmp_path / "parts" / "1", "--shard", "1/2", "--overwrite",
                  "-q").exit_code == 0


def test_a_finished_output_counts_its_input_by_content_not_by_its_time(tmp_path):
    source = tmp_path / "caps.csv"
    source.write_text("id,caption\n" + "".join(f"r{i:03d},a dog number {i} runs on the grass\n" for i in range(40)))
    output = tmp_path / "out"
    assert invoke("generate", source, "-o", output, "-q").exit_code == 0
    before = stamps(output)
    os.utime(source, ns=(1, 1))  # staged again by a job's prologue: another time, the same rows
    assert "already complete" in invoke("generate", source, "-o", output, "-q").output
    stat = source.stat()
    source.write_text(source.read_text().replace("a dog number 3 ", "a cat number 3 "))  # same size, same time
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    refused(invoke("generate", source, "-o", output, "-q"), "already exists; pass --overwrite",
            f"it was made from other rows: {source} changed since")
    assert stamps(output) == before


def test_a_run_killed_while_deleting_its_work_folder_is_complete_on_the_rerun(tmp_path, monkeypatch):
    """kill -9 during the clean-up after the final files were written (as a Ray driver killed near the end)."""
    import semclip_core.files
    from triplegen.config import GenerateConfig
    from triplegen.orchestration.run import generate

    config = GenerateConfig(input=EXAMPLE, output=tmp_path / "out", chunk_size=50, quiet=True)
    real_rmtree = shutil.rmtree

    def killed_halfway(path, ignore_errors=False):
        files = sorted(Path(path).iterdir())
        for file in files[: len(files) // 2]:  # fingerprint.json and the first parts and markers go
            file.unlink()
        raise KeyboardInterrupt

    monkeypatch.setattr(semclip_core.files.shutil, "rmtree", killed_halfway)
    with pytest.raises(KeyboardInterrupt):
        generate(config)
    monkeypatch.setattr(semclip_core.files.shutil, "rmtree", real_rmtree)
    assert config.output.exists()
    summary = generate(config)  # the same command again
    assert summary.complete and summary.rows == 300
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # the half-deleted folder is gone
    assert sorted(p.name for p in config.output.parent.iterdir()) == ["README.md", "rejects.parquet", "triples.parquet"]


def test_a_merge_rerun_is_complete_and_other_parts_are_refused(tmp_path):
    for index in range(3):
        assert invoke("generate", EXAMPLE, "-o", tmp_path / "parts" / str(index), "--shard", f"{index}/3",
                      "-q").exit_code == 0
    parts = [tmp_path / "parts" / str(i) for i in range(3)]
    merge = ("merge", *parts, "-o", tmp_path / "merged", "--input", EXAMPLE)
    first = invoke(*merge)
    assert first.exit_code == 0, first.output
    before = stamps(tmp_path / "merged")
    again = invoke(*merge)
    assert again.exit_code == 0 and "already complete (merged from the same parts)" in again.output, again.output
    assert "all 300 input ids present once" in again.output and stamps(tmp_path / "merged") == before
    refused(invoke("merge", *parts[:2], "-o", tmp_path / "merged"), "already exists; pass --overwrite",
            "merged from other parts")
    assert stamps(tmp_path / "merged") == before


def test_a_coco_rerun_is_complete_and_a_changed_input_is_refused(tmp_path):
    captions, instances = tmp_path / "captions.json", tmp_path / "instances.json"
    shutil.copy(COCO / "captions_val2017.json", captions)
    shutil.copy(COCO / "instances_val2017.json", instances)
    out = tmp_path / "out"
    command = ("coco", captions, instances, "-o", out / "captions.parquet", "--image-prefix", "val2017/",
               "--cooccurrence", out / "cooccurrence.parquet")
    assert invoke(*command).exit_code == 0
    before = stamps(out)
    again = invoke(*command)
    assert again.exit_code == 0 and again.output.count("already complete (same inputs and settings)") == 2
    assert stamps(out) == before
    (out / "cooccurrence.parquet").unlink()  # a missing output is written, a complete one kept
    assert invoke(*command).exit_code == 0 and (out / "cooccurrence.parquet").exists()
    assert stamps(out)["captions.parquet"] == before["captions.parquet"]
    refused(invoke(*command[:5], "--image-prefix", "train2017/"), "already exists; pass --overwrite",
            "made from other inputs or settings")
    stat = instances.stat()
    data = json.loads(instances.read_text())
    data["annotations"] = data["annotations"][:-1]  # one instance less, at the same time
    instances.write_text(json.dumps(data))
    os.utime(instances, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    refused(invoke(*command), "captions.parquet already exists; pass --overwrite", "other inputs or settings")


def test_a_validate_rerun_keeps_its_report_and_clean_file(tmp_path):
    triples = tmp_path / "t.parquet"
    assert invoke("generate", EXAMPLE, "-o", triples, "-q").exit_code == 0
    command = ("validate", triples, "--report", tmp_path / "report.json", "--write-clean", tmp_path / "clean.parquet")
    assert invoke(*command).exit_code == 0
    before = stamps(tmp_path)
    again = invoke(*command)
    assert again.exit_code == 0 and again.output.count("not rewritten") == 2, again.output
    assert stamps(tmp_path) == before and not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    table = pq.read_table(triples)
    edited = table.set_column(table.schema.get_field_index("negation"), "negation",
                              pa.array(["A dog runs."] + table.column("negation").to_pylist()[1:]))
    pq.write_table(edited, triples)  # now a row fails: the report would differ
    refused(invoke(*command), "report.json already exists; pass --overwrite", "this run's --report differs")
    assert stamps(tmp_path)["report.json"] == before["report.json"]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert invoke(*command, "--overwrite").exit_code == 1  # replaced: one row fails
