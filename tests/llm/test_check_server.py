"""`triplegen check-server` and the start-up check: readiness, model, schema enforcement."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tests.llm.conftest import free_port
from tests.llm.fault_proxy import FaultProxy
from triplegen.cli import app
from triplegen.errors import TripleGenError
from triplegen.servercheck import check_server

pytestmark = pytest.mark.vllm


def test_a_real_vllm_server_passes_the_check(tiny_server):
    report = check_server(tiny_server.base_url)
    assert report.model == "tiny-llama" and report.schema_enforced is True
    result = CliRunner().invoke(app, ["check-server", "--base-url", tiny_server.base_url, "--model", "tiny-llama"])
    assert result.exit_code == 0, result.output
    assert "ready, model 'tiny-llama', schema enforced" in result.output


def test_a_server_that_ignores_the_schema_is_refused(tiny_server):
    with FaultProxy(tiny_server.base_url.removesuffix("/v1"), strip_schema=True) as proxy:
        with pytest.raises(TripleGenError, match="ignores the JSON schema in response_format"):
            check_server(proxy.base_url)
        result = CliRunner().invoke(app, ["check-server", "--base-url", proxy.base_url])
        # the same proxy passes when the probe is skipped: the refusal comes from the probe alone
        skipped = check_server(proxy.base_url, check_schema=False)
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and "ignores the JSON schema" in result.output
    assert "Traceback" not in result.output
    assert skipped.schema_enforced is None


def test_a_missing_model_and_a_dead_server_get_one_line_errors(tiny_server):
    runner = CliRunner()
    missing = runner.invoke(app, ["check-server", "--base-url", tiny_server.base_url, "--model", "gpt-9"])
    assert missing.exit_code == 2
    assert "does not serve model 'gpt-9' (it serves: tiny-llama)" in missing.output
    dead = runner.invoke(app, ["check-server", "--base-url", f"http://127.0.0.1:{free_port()}/v1"])
    assert dead.exit_code == 2 and "not reachable" in dead.output
    none = runner.invoke(app, ["check-server"])
    assert none.exit_code == 2 and "--base-url" in none.output
