"""Wire protocols. Each module turns a Conversation into a request and response bytes into events.

Modules are imported lazily by `get_protocol` so that a run pays only for the protocol it uses.
"""

from __future__ import annotations

import importlib

from .base import Protocol

_MODULES = {
    "openai": "openai",
    "anthropic": "anthropic",
    "gemini": "gemini",
    "ollama": "ollama",
}

PROTOCOL_NAMES: tuple[str, ...] = tuple(_MODULES)


def get_protocol(name: str) -> Protocol:
    """The protocol implementation for a provider `type`."""
    module = importlib.import_module(f".{_MODULES[name]}", __name__)
    return module.PROTOCOL
