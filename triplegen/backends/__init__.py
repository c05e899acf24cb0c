"""Backends: where raw model text comes from. Imported lazily so the core needs no vLLM or torch."""

from __future__ import annotations

from triplegen.backends.base import Backend, BackendSettings, Completion, Request

__all__ = ["Backend", "Completion", "Request", "make_backend"]


def make_backend(config: BackendSettings, output_schema: dict) -> Backend:
    """Build the backend the settings name; `output_schema` is the prompt template's JSON schema."""
    name = config.resolved_backend()
    if name == "rules":
        from triplegen.backends.rules import RulesBackend

        return RulesBackend()
    if name == "vllm":
        from triplegen.backends.vllm import VllmBackend

        return VllmBackend(config, output_schema)
    if name == "openai":
        from triplegen.backends.openai import OpenAIBackend

        return OpenAIBackend(config, output_schema)
    raise ValueError(f"unknown backend {name!r}")
