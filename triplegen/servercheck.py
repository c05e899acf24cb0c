"""Before a served run: is each server up, does it serve the model, and does it enforce the schema?

A server that silently ignores `response_format` (an old vLLM, a proxy that drops the field, a server
without structured-output support) would turn a long run into a file of rejects, so it is probed
with a schema that free text almost never satisfies and refused with a clear message if it fails.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass

from triplegen.errors import MissingExtraError, TripleGenError

# Free text from a model that ignores the schema will not be this object.
PROBE_SCHEMA = {
    "type": "object",
    "properties": {"probe": {"type": "string", "pattern": "^zq-[0-9]{3}$"}},
    "required": ["probe"],
    "additionalProperties": False,
}
PROBE_MESSAGES = [{"role": "user", "content": "Say hello to the reader in one friendly sentence."}]
PROBE_MAX_TOKENS = 256
PROBE_TRIES = 3  # transport failures tolerated during the probe
PROBE_PREFIX = '{"probe":"zq-'


def response_format(schema: dict, name: str = "triple") -> dict:
    """The OpenAI `response_format` that asks the server to enforce `schema`."""
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}


@dataclass
class ServerReport:
    """What the check found out about one server."""

    base_url: str
    models: list[str]
    model: str
    schema_enforced: bool | None  # None: not checked
    probe_output: str | None = None
    seconds: float = 0.0


def _client(base_url: str, api_key: str, timeout_s: float):
    try:
        import openai
    except ImportError:
        raise MissingExtraError("the openai backend", "openai", "openai") from None
    return openai, openai.OpenAI(base_url=base_url, api_key=api_key, timeout=timeout_s, max_retries=0)


def served_models(base_url: str, api_key: str, timeout_s: float = 30.0) -> list[str]:
    """The model ids `/v1/models` lists; a one-line error when the server is not ready."""
    openai, client = _client(base_url, api_key, timeout_s)
    try:
        return [model.id for model in client.models.list()]
    except openai.APIStatusError as exc:
        raise TripleGenError(f"{base_url}/models answered HTTP {exc.status_code}: server not ready") from None
    except openai.APIError as exc:
        raise TripleGenError(f"{base_url} is not reachable ({type(exc).__name__}: {exc})") from None
    finally:
        client.close()


def choose_model(base_url: str, models: list[str], model: str | None) -> str:
    if model is None:
        if len(models) == 1:
            return models[0]
        raise TripleGenError(f"{base_url} serves {len(models)} models {models}: name one with --model")
    if model not in models:
        raise TripleGenError(f"{base_url} does not serve model {model!r} (it serves: {', '.join(models) or 'none'})")
    return model


def probe_schema(base_url: str, model: str, api_key: str, timeout_s: float = 60.0) -> tuple[bool, str]:
    """Ask for JSON that matches PROBE_SCHEMA; return (enforced, what the server wrote)."""
    import jsonschema

    openai, client = _client(base_url, api_key, timeout_s)
    try:
        for attempt in range(PROBE_TRIES):
            try:
                response = client.chat.completions.create(
                    model=model,
                    messages=PROBE_MESSAGES,
                    response_format=response_format(PROBE_SCHEMA, "probe"),
                    max_tokens=PROBE_MAX_TOKENS,
                    temperature=0.0,
                    seed=0,
                )
                text = response.choices[0].message.content or ""
                truncated = response.choices[0].finish_reason == "length"
                break
            except openai.BadRequestError as exc:
                return False, f"HTTP 400: {exc.message}"
            except (openai.APIError, ValueError, AttributeError, IndexError, TypeError) as exc:
                if attempt == PROBE_TRIES - 1:
                    raise TripleGenError(
                        f"{base_url}: the structured-output probe failed {PROBE_TRIES} times "
                        f"({type(exc).__name__}: {exc})"
                    ) from None
                time.sleep(1.0 * (attempt + 1))
    finally:
        client.close()
    if truncated:
        return is_probe_prefix(text), text
    try:
        jsonschema.validate(json.loads(text), PROBE_SCHEMA)
    except (ValueError, jsonschema.ValidationError):
        return False, text
    return True, text


def probe_response_format(base_url: str, model: str, api_key: str, schema: dict, timeout_s: float = 60.0) -> str | None:
    """None when the server takes a request whose `response_format` holds `schema`, else its refusal.

    One token is enough: a server that cannot compile the schema refuses the request (HTTP 400)
    before generating anything. Transport failures are not refusals and raise TripleGenError.
    """
    openai, client = _client(base_url, api_key, timeout_s)
    try:
        client.chat.completions.create(model=model, messages=PROBE_MESSAGES, max_tokens=1, temperature=0.0,
                                       response_format=response_format(schema))
    except openai.BadRequestError as exc:
        return f"{base_url} refused the schema: HTTP 400: {' '.join(str(exc.message).split())[:200]}"
    except openai.APIError as exc:
        raise TripleGenError(f"{base_url}: the schema probe failed ({type(exc).__name__}: {exc})") from None
    finally:
        client.close()
    return None


def is_probe_prefix(text: str) -> bool:
    """Whether truncated output is the start of a probe answer (JSON allows any whitespace, and a
    weak model under a grammar may spend its whole budget on it)."""
    compact = re.sub(r"\s+", "", text)
    if compact and PROBE_PREFIX.startswith(compact):
        return True
    return re.fullmatch(r'\{"probe":"zq-[0-9]{0,3}("\}?)?', compact) is not None


def check_server(
    base_url: str,
    model: str | None = None,
    api_key: str = "EMPTY",
    timeout_s: float = 60.0,
    check_schema: bool = True,
) -> ServerReport:
    """Readiness, model and schema enforcement of one server; TripleGenError when unusable."""
    start = time.monotonic()
    base_url = base_url.rstrip("/")
    models = served_models(base_url, api_key, timeout_s)
    chosen = choose_model(base_url, models, model)
    enforced, output = (None, None)
    if check_schema:
        enforced, output = probe_schema(base_url, chosen, api_key, timeout_s)
        if not enforced:
            shown = output if len(output) <= 120 else output[:117] + "..."
            raise TripleGenError(
                f"{base_url} ignores the JSON schema in response_format (asked for "
                f'{{"probe": "zq-NNN"}}, got {shown!r}): it would fill the run with rejects; use a '
                "server that enforces structured output (vLLM >= 0.12)"
            )
    return ServerReport(base_url, models, chosen, enforced, output, time.monotonic() - start)


def check_servers(
    base_urls: list[str],
    model: str | None = None,
    api_key: str = "EMPTY",
    timeout_s: float = 60.0,
    check_schema: bool = True,
) -> list[ServerReport]:
    """Check every server; they must all serve the same model."""
    if not base_urls:
        raise TripleGenError("no server named: pass --base-url http://HOST:PORT/v1")
    reports = []
    for url in base_urls:
        reports.append(check_server(url, model, api_key, timeout_s, check_schema))
        model = model or reports[0].model
    return reports
