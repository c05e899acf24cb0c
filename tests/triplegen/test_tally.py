"""The run's counters, declared once (`triplegen.orchestration.records.Tally`): summed the same way for a run, a merge
and a retry, and stored in the layout every output written so far has."""

from __future__ import annotations

from triplegen.orchestration.merge import combine_runs
from triplegen.orchestration.records import BlindCounts, ChunkSummary, RunMetadata, Tally

STORED = {
    "triplegen_version": "0.1", "config": {"shard": {"index": 0, "count": 2}}, "backend": "rules", "model": "rules",
    "prompt": {"name": "default"}, "absent_prompt": None, "attempts_allowed": 1, "constraint": None,
    "prefix_caching": None, "judge": {"model": "m"}, "blind": None,
    "counts": {"rows": 3, "accepted": 2, "rejected": 1, "generated": 3, "judged": 4, "retries": 1,
               "absent_planned": 0, "absent_accepted": 0},
    "tokens": {"prompt": 30, "completion": 12, "cached": 5, "cache_reports": 3},
    "reject_reasons": {"negation_polarity": 1}, "check_failures": {"negation_polarity": 2, "invalid_json": 0},
    "constraints": {"negation: edit": 3}, "absent_notes": {}, "judge_counts": {"calls": 2},
    "blind_counts": {"caption": {"scored": 2, "prefers_true": 1, "detectable": 0, "disfluent": 0, "kept": 2,
                                 "kept_prefers_true": 1}},
    "fingerprint": {"seed": 0}, "input_digest": "abc", "retried_backend_errors": 1,
}


def test_run_metadata_reads_and_writes_the_stored_layout():
    run = RunMetadata(**STORED)
    assert run.tally.judged == 4 and run.tally.cached_tokens == 5 and run.tally.judge == {"calls": 2}
    assert run.json_dict() == STORED  # extras kept, every key as stored


def test_a_sum_keeps_every_key_in_the_order_it_first_came_and_zero_counts():
    first = Tally(rows=2, check_failures={"b": 1, "a": 0}, blind={"caption": BlindCounts(scored=1)})
    second = ChunkSummary(chunk=1, rows=1, check_failures={"c": 2, "b": 1}, judge={"calls": 1},
                          blind={"absent-assert": BlindCounts(kept=1), "caption": BlindCounts(scored=2)})
    total = first + second
    assert total.rows == 3 and list(total.check_failures.items()) == [("b", 2), ("a", 0), ("c", 2)]
    assert total.judge == {"calls": 1} and list(total.blind) == ["caption", "absent-assert"]
    assert total.blind["caption"].scored == 3


def test_a_run_is_the_sum_of_its_chunks():
    summaries = [ChunkSummary(chunk=i, rows=2, accepted=1, rejected=1, reject_reasons={"invalid_json": 1},
                              prompt_tokens=10, constraints={"negation: edit": 1}) for i in range(3)]
    stored = RunMetadata(**STORED).add(summaries).json_dict()  # the stored totals plus the chunks'
    assert stored["counts"]["rows"] == 9 and stored["counts"]["judged"] == 4
    assert stored["tokens"] == {"prompt": 60, "completion": 12, "cached": 5, "cache_reports": 3}
    assert stored["reject_reasons"] == {"negation_polarity": 1, "invalid_json": 3}
    assert stored["constraints"] == {"negation: edit": 6} and stored["retried_backend_errors"] == 1


def test_a_merge_sums_every_counter_of_its_parts():
    second = {**STORED, "config": {"shard": {"index": 1, "count": 2}}, "judge_counts": {"calls": 3, "rejected:x": 1}}
    merged = combine_runs([STORED, second])
    assert merged["counts"]["rows"] == 6 and merged["tokens"]["prompt"] == 60
    assert merged["judge_counts"] == {"calls": 5, "rejected:x": 1}  # the judge's calls of both parts
    assert merged["constraints"] == {"negation: edit": 6}
    assert merged["blind_counts"]["caption"]["scored"] == 4
    assert merged["config"]["shard"] is None and "fingerprint" not in merged and merged["judge"] == {"model": "m"}
