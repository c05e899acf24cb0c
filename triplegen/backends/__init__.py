"""Backends: where raw model text comes from. Imported lazily so the core needs no vLLM or torch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from triplegen.backends.base import Backend, Completion, Request

if TYPE_CHECKING:
    from triplegen.config import BackendOptions

__all__ = ["Backend", "Completion", "Request", "make_backend"]


def make_backend(options: BackendOptions, output_schema: dict) -> Backend:
    """Build the backend `options` name (the run's, a Ray worker's or the judge's; never the whole run
    config); `output_schema` is the prompt template's JSON schema."""
    name = options.name
    if name == "rules":
        from triplegen.backends.rules import RulesBackend

        return RulesBackend()
    if name == "vllm":
        from triplegen.backends.vllm import VllmBackend

        return VllmBackend(options, output_schema)
    if name == "openai":
        from triplegen.backends.openai import OpenAIBackend

        return OpenAIBackend(options, output_schema)
    raise ValueError(f"unknown backend {name!r}")
