"""Wire protocols. Each module turns a Conversation into a request and response bytes into events.

Modules are imported lazily by `get_protocol` so that a run pays only for the protocol it uses.
"""

from __future__ import annotations

import importlib
import sys
import types

from .base import Protocol

# httpx imports its own command-line tool (httpx._main, which loads click, rich and pygments)
# whenever click is installed, and click comes with uvicorn under the MCP SDK: some 30 ms and
# several MiB on every piped answer, for a CLI we never run. A stand-in module answers that import.
if "httpx" not in sys.modules and "httpx._main" not in sys.modules:
    _cli = types.ModuleType("httpx._main", "httpx's command-line tool, not loaded by modelswitch")

    def _no_cli() -> None:
        raise SystemExit("httpx's command-line tool is not available inside modelswitch")

    _cli.main = _no_cli  # type: ignore[attr-defined]
    sys.modules["httpx._main"] = _cli

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
