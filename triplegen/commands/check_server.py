"""`triplegen check-server`: is a server ready for a run, and does it enforce the JSON schema?"""

from __future__ import annotations

from typing import Annotated

import typer

from triplegen.commands.options import ServedModel, ServerUrls
from triplegen.errors import TripleGenError

EXAMPLES = """\
Examples:

  triplegen check-server --base-url http://gpu1:8000/v1

  triplegen check-server --base-url http://gpu1:8000/v1 --base-url http://gpu2:8000/v1 --model Qwen/Qwen2.5-7B-Instruct

Exit code 0 when every server is ready, serves the model and enforces the schema; 2 otherwise.
"""


def check_server(
    base_url: ServerUrls = None,
    model: ServedModel = None,
    api_key_env: Annotated[str, typer.Option(help="Environment variable holding the API key.")] = "OPENAI_API_KEY",
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds per request.")] = 60.0,
    schema: Annotated[bool, typer.Option("--schema/--no-schema", help="Probe that response_format is enforced.")] = True,
) -> None:
    """Check readiness (/v1/models, model present) and JSON-schema enforcement of each server."""
    from triplegen.backends.openai import api_key
    from triplegen.servercheck import check_servers

    if not base_url:
        raise TripleGenError("name at least one server: --base-url http://HOST:PORT/v1")
    for report in check_servers(base_url, model, api_key(api_key_env), timeout, schema):
        enforced = {True: "schema enforced", None: "schema not checked"}[report.schema_enforced]
        typer.echo(f"{report.base_url}: ready, model {report.model!r}, {enforced} ({report.seconds:.1f}s)")


check_server.__doc__ = f"{check_server.__doc__}\n\n{EXAMPLES}"
