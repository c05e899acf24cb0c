"""The hostile-user probes of docs/reliability.md for triplegen: inputs are never replaced, a changed
input is never resumed, one run per output, every bad input is one line, files as users expect."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from tests.conftest import lock_held_elsewhere
from triplegen.cli import app
from triplegen.config import GenerateConfig
from triplegen.orchestration.resume import WorkFolder
from triplegen.orchestration.run import generate

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "captions.parquet"
runner = CliRunner()


def invoke(*args) -> object:
    return runner.invoke(app, [str(a) for a in args])


def one_line_error(result, message: str, code: int = 2) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip() and not line.startswith("note:")]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.output


def captions(path: Path, n: int = 40) -> Path:
    rows = {"id": [f"r{i:03d}" for i in range(n)], "image": [f"img/{i}.jpg" for i in range(n)],
            "caption": [f"a dog number {i} runs on the grass" for i in range(n)]}
    pl.DataFrame(rows).write_parquet(path)
    return path


def run(tmp_path: Path, *args) -> tuple[Path, object]:
    output = tmp_path / "out" / "t.parquet"
    return output, invoke("generate", EXAMPLE, "-o", output, "-q", *args)


# 2. Outputs never replace inputs (also through links), --overwrite or not.

def test_generate_refuses_to_write_over_its_input_through_any_flag_or_link(tmp_path):
    source = tmp_path / "caps.parquet"
    source.write_bytes(EXAMPLE.read_bytes())
    (tmp_path / "link.parquet").symlink_to(source)
    os.link(source, tmp_path / "hard.parquet")
    before = source.read_bytes()
    for args in (["-o", source], ["-o", tmp_path / "link.parquet"], ["-o", tmp_path / "hard.parquet"],
                 ["-o", tmp_path / "t.parquet", "--rejects", tmp_path / "link.parquet"]):
        one_line_error(invoke("generate", source, *args, "--overwrite", "-q"), "writing it would destroy the input")
    folder = tmp_path / "parts"
    folder.mkdir()
    (folder / "a.parquet").write_bytes(before)
    one_line_error(invoke("generate", folder, "-o", folder / "sub" / "t.parquet", "-q"), "inside the input folder")
    assert source.read_bytes() == before and (tmp_path / "link.parquet").is_symlink()


def test_validate_and_merge_refuse_to_write_over_their_inputs(tmp_path):
    output, result = run(tmp_path)
    assert result.exit_code == 0, result.output
    before = output.read_bytes()
    (tmp_path / "link.parquet").symlink_to(output)
    one_line_error(invoke("validate", output, "--write-clean", output, "--overwrite"), "would destroy the input")
    one_line_error(invoke("validate", output, "--report", tmp_path / "link.parquet", "--overwrite"), "destroy the input")
    one_line_error(invoke("merge", output, "-o", output, "--overwrite"), "would destroy the input")
    rejects = output.with_name("t.rejects.parquet")
    one_line_error(invoke("merge", output, "-o", tmp_path / "m.parquet", "--rejects", rejects, "--overwrite"),
                   "would destroy the input")
    one_line_error(invoke("merge", output, "-o", EXAMPLE, "--overwrite", "--input", EXAMPLE), "destroy the input")
    assert output.read_bytes() == before


def test_outputs_that_are_folders_or_under_a_file_are_one_line(tmp_path):
    output, result = run(tmp_path)
    folder = tmp_path / "folder"
    folder.mkdir()
    as_file = tmp_path / "d.parquet"  # -o FOLDER is a dataset folder (triplegen.io.layout); a .parquet name is a file
    as_file.mkdir()
    one_line_error(invoke("generate", EXAMPLE, "-o", as_file, "-q"), "is a folder")
    one_line_error(invoke("generate", EXAMPLE, "-o", tmp_path / "x.parquet", "--rejects", folder, "-q"), "is a folder")
    one_line_error(invoke("generate", EXAMPLE, "-o", output / "t.parquet", "-q"), "is a file, not a folder")
    one_line_error(invoke("validate", output, "--report", folder), "--report")
    one_line_error(invoke("validate", output, "--write-clean", folder), "is a folder")
    one_line_error(invoke("merge", output, "-o", as_file), "is a folder")
    (tmp_path / "f.parquet").mkdir()
    one_line_error(invoke("coco", "nope.json", "-o", tmp_path / "f.parquet"), "is a folder")


# 4. Resume detects a changed input even when its size and modification time are kept.

def test_resume_refuses_an_input_changed_in_place_with_the_same_size_and_mtime(tmp_path):
    source = tmp_path / "caps.csv"
    source.write_text("id,caption\n" + "".join(f"r{i:03d},a dog number {i} runs on the grass\n" for i in range(40)))
    config = GenerateConfig(input=source, output=tmp_path / "t.parquet", chunk_size=8, quiet=True)
    with pytest.raises(KeyboardInterrupt):
        interrupt_after_chunks(config, 2)
    work = WorkFolder(config.output)
    assert len(work.done_chunks()) == 2
    before = source.stat()
    source.write_text(source.read_text().replace("a dog number 3 ", "a cat number 3 "))  # same size
    os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (source.stat().st_size, source.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    result = invoke("generate", source, "-o", config.output, "--chunk-size", 8, "-q")
    one_line_error(result, "changed since the unfinished run")
    assert "chunk 0" in result.output and len(work.done_chunks()) == 2
    assert invoke("generate", source, "-o", config.output, "--chunk-size", 8, "-q", "--overwrite").exit_code == 0


def interrupt_after_chunks(config: GenerateConfig, chunks: int) -> None:
    """Run until `chunks` chunks are finished, then stop as Ctrl-C would."""
    from triplegen.orchestration import progress

    original = progress.RunProgress.advance
    seen = []

    def advance(self, summary, resumed=False):
        original(self, summary, resumed)
        seen.append(summary)
        if len(seen) == chunks:
            raise KeyboardInterrupt

    progress.RunProgress.advance = advance
    try:
        generate(config)
    finally:
        progress.RunProgress.advance = original


# 5. One run per output; a killed run does not leave its output locked.

def test_a_second_run_on_the_same_output_is_refused_and_a_killed_one_leaves_no_lock(tmp_path):
    output = tmp_path / "t.parquet"
    with lock_held_elsewhere(output.with_name(".t.parquet.lock")) as pid:
        one_line_error(invoke("generate", EXAMPLE, "-o", output, "-q"), f"-o {output} is in use by another run (pid {pid}")
    assert invoke("generate", EXAMPLE, "-o", output, "-q").exit_code == 0
    assert not output.with_name(".t.parquet.lock").exists()


# 7. Every bad input is one line and the documented exit code.

def _corrupt_page(source: Path, target: Path) -> Path:
    table = pq.read_table(source)
    pq.write_table(table, target, row_group_size=50, compression="none")
    offset = pq.ParquetFile(target).metadata.row_group(3).column(3).data_page_offset
    data = bytearray(target.read_bytes())
    data[offset:offset + 24] = b"\xff" * 24
    target.write_bytes(bytes(data))
    return target


def test_a_corrupt_page_is_exit_2_for_validate_and_merge(tmp_path):
    output, result = run(tmp_path)
    broken = _corrupt_page(output, tmp_path / "broken.parquet")
    one_line_error(invoke("validate", broken), f"cannot read {broken} as Parquet")
    one_line_error(invoke("merge", broken, "-o", tmp_path / "m.parquet"), f"cannot read {broken} as Parquet")


def test_merge_refuses_a_parquet_that_is_not_triples(tmp_path):
    one_line_error(invoke("merge", EXAMPLE, "-o", tmp_path / "m.parquet"),
                   "is not a triples file (no column paraphrase, negation)")


def test_invalid_utf8_late_in_a_csv_is_found_before_generation_starts(tmp_path):
    path = tmp_path / "caps.csv"
    with open(path, "wb") as handle:
        handle.write(b"id,caption,note\n")
        handle.write(b"".join(b"r%d,a dog number %d runs,ok\n" % (i, i) for i in range(50_000)))
        handle.write(b"bad,a dog,caf\xe9\n")
    output = tmp_path / "t.parquet"
    one_line_error(invoke("generate", path, "-o", output, "-q"), "is not valid UTF-8 (line 50,002)")
    assert not WorkFolder(output).path.exists()  # refused before any chunk


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_rows_over_one_mib_are_read(tmp_path, suffix):
    import json

    big = "a dog " * 400_000  # 2.4 MB in one caption
    path = tmp_path / f"caps{suffix}"
    rows = [{"id": "a", "caption": "a dog runs"}, {"id": "big", "caption": big}, {"id": "c", "caption": "a cat sits"}]
    if suffix == ".csv":
        path.write_text("id,caption\n" + "".join(f"{r['id']},{r['caption']}\n" for r in rows))
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    output = tmp_path / "t.parquet"
    assert invoke("generate", path, "-o", output, "-q").exit_code == 0
    ids = pl.read_parquet(output)["id"].to_list() + pl.read_parquet(tmp_path / "t.rejects.parquet")["id"].to_list()
    assert sorted(ids) == ["a", "big", "c"]


def test_a_folder_with_other_files_names_them_and_ignores_only_hidden_and_underscore_files(tmp_path):
    folder = tmp_path / "in"
    (folder / "_temporary").mkdir(parents=True)
    (folder / "a.parquet").write_bytes(EXAMPLE.read_bytes())
    (folder / "_SUCCESS").touch()
    (folder / ".DS_Store").touch()
    (folder / "_temporary" / "x.csv").touch()
    assert invoke("generate", folder, "-o", tmp_path / "t.parquet", "-q").exit_code == 0
    (folder / "more.csv").write_text("id,caption\n1,a dog\n")
    one_line_error(invoke("generate", folder, "-o", tmp_path / "u.parquet", "-q"), "not Parquet (more.csv)")


# 8. Files as users expect.

def test_outputs_get_the_permissions_of_the_umask(tmp_path):
    previous = os.umask(0o002)
    try:
        output, result = run(tmp_path)
        report = tmp_path / "report.json"
        assert invoke("validate", output, "--report", report).exit_code == 0
    finally:
        os.umask(previous)
    assert result.exit_code == 0, result.output
    for path in (output, output.with_name("t.rejects.parquet"), output.with_name("README.md"), report):
        assert stat.S_IMODE(path.stat().st_mode) == 0o664, path


def test_temporary_files_of_a_killed_run_are_removed_on_resume(tmp_path):
    output = tmp_path / "t.parquet"
    work = WorkFolder(output)
    work.path.mkdir(parents=True)
    left = [work.path / ".chunk-000001.parquet.0123456789ab.tmp", tmp_path / ".t.parquet.a1b2c3d4e5f6.tmp"]
    for path in left:
        path.write_bytes(b"half a file")
    someone_elses = tmp_path / ".other.parquet.a1b2c3d4e5f6.tmp"
    someone_elses.write_bytes(b"not ours")
    assert invoke("generate", EXAMPLE, "-o", output, "-q").exit_code == 0
    assert not any(path.exists() for path in left) and someone_elses.exists()


def test_merge_with_a_glob_that_also_matches_the_rejects_files(tmp_path):
    for i in range(2):
        result = invoke("generate", EXAMPLE, "-o", tmp_path / f"part{i}.parquet", "--shard", f"{i}/2", "-q")
        assert result.exit_code == 0, result.output
    parts = sorted(tmp_path.glob("part*.parquet"))  # what the shell gives for part*.parquet
    assert len(parts) == 4
    result = invoke("merge", *parts, "-o", tmp_path / "triples.parquet", "--input", EXAMPLE)
    assert result.exit_code == 0, result.output
    assert "all 300 input ids present once" in result.output
    assert "part0.rejects.parquet is taken as the rejects of" in result.output


# 6. Rows rejected as backend_error by an older run (which rejected them while its server was down).

def reject_as_backend_errors(output: Path, rejects: Path, start: int, count: int) -> set[str]:
    """Rewrite a finished rules run as an older version left it when its server died: `count` accepted
    rows from `start` on moved to the rejects as `backend_error`, the counts to match; their ids."""
    import json

    out, rej = pq.read_table(output), pq.read_table(rejects)
    lost = out.slice(start, count)
    run_metadata = json.loads(out.schema.metadata[b"triplegen"])
    run_metadata["counts"]["accepted"] -= count
    run_metadata["counts"]["rejected"] += count
    run_metadata["reject_reasons"]["backend_error"] = count
    metadata = {b"triplegen": json.dumps(run_metadata).encode()}
    kept = pa.concat_tables([out.slice(0, start), out.slice(start + count)])
    pq.write_table(kept.replace_schema_metadata(metadata), output)
    failed = [{"id": r["id"], "caption": r["caption"], "raw_output": None, "reason": "backend_error",
               "detail": "6 attempt(s) failed; last: connection error", "kind": "caption", "attempts": 1,
               "backend": "rules", "model": "rules"} for r in lost.to_pylist()]
    pq.write_table(pa.concat_tables([rej, pa.Table.from_pylist(failed, schema=rej.schema)]), rejects)
    return set(lost.column("id").to_pylist())


def test_retry_backend_errors_gives_an_older_runs_backend_errors_another_try(tmp_path):
    import json

    output, result = run(tmp_path)
    rejects = output.with_name("t.rejects.parquet")
    lost = reject_as_backend_errors(output, rejects, 10, 25)

    result = invoke("generate", EXAMPLE, "-o", output, "-q", "--retry-backend-errors")
    assert result.exit_code == 0, result.output
    new_out, new_rej = pl.read_parquet(output), pl.read_parquet(rejects)
    ids = new_out["id"].to_list() + new_rej["id"].to_list()
    assert len(ids) == len(set(ids)) == 300
    assert "backend_error" not in set(new_rej["reason"]) and lost <= set(new_out["id"])
    stored = json.loads(pq.read_schema(output).metadata[b"triplegen"])
    assert stored["counts"]["accepted"] == len(new_out) and stored["counts"]["rejected"] == len(new_rej)
    assert stored["retried_backend_errors"] == 25 and "backend_error" not in stored["reject_reasons"]
    again = invoke("generate", EXAMPLE, "-o", output, "--retry-backend-errors")
    assert again.exit_code == 0 and "nothing to retry" in again.output
    assert invoke("validate", output).exit_code == 0
