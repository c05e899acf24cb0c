"""A backend that reads only the caption (`needs_messages = False`) skips rendering, and nothing else changes."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from triplegen.backends.rules import RulesBackend
from triplegen.config import GenerateConfig
from triplegen.orchestration.run import generate
from triplegen.templates import load_template

CAPTIONS = ["A dog runs on the beach.", "Within a bathroom with a sink in the foreground.", "", "A man rides a horse.",
            "A dog runs on the beach.", "There is no cat on the sofa."]


class RecordingRules(RulesBackend):
    """The real rules backend, recording the messages each request carried."""

    def __init__(self):
        self.messages = {}

    def generate(self, requests, sampling):
        self.messages.update({r.caption: r.messages for r in requests})
        return super().generate(requests, sampling)


class UnflaggedRules:
    """A backend written before the flag existed (no `needs_messages`): it must still get messages."""

    name, model, deterministic = "rules", "rules", True

    def __init__(self):
        self.inner = RecordingRules()
        self.messages = self.inner.messages

    def generate(self, requests, sampling):
        return self.inner.generate(requests, sampling)

    def close(self):
        pass


def _run(tmp_path, name, backend):
    source = tmp_path / "caps.parquet"
    if not source.exists():
        pq.write_table(pa.table({"id": [f"r{i}" for i in range(len(CAPTIONS))], "caption": CAPTIONS}), source)
    summary = generate(GenerateConfig(input=source, output=tmp_path / name / "t.parquet", quiet=True), backend=backend)
    return pq.read_table(summary.output), pq.read_table(summary.rejects)


def test_rules_get_no_messages_and_write_the_same_rows_and_rejects(tmp_path):
    skipping, rendering = RecordingRules(), UnflaggedRules()
    accepted, rejects = _run(tmp_path, "skip", skipping)
    accepted_rendered, rejects_rendered = _run(tmp_path, "render", rendering)

    sent = sorted({c for c in CAPTIONS if c})
    assert sorted(skipping.messages) == sorted(rendering.messages) == sent
    assert all(messages == [] for messages in skipping.messages.values())
    template = load_template("default")
    assert all(rendering.messages[c] == template.render(c) for c in sent)

    assert accepted.equals(accepted_rendered) and rejects.equals(rejects_rendered)
    assert accepted.num_rows == 4 and sorted(rejects.column("reason").to_pylist()) == ["empty_caption", "missing_field"]
