"""API keys: where they come from, and how they are kept out of every output.

Every key that is resolved is remembered so `redact` can scrub it from any text before that text
reaches a screen, a log or the session database.
"""

from __future__ import annotations

import os
import re
import subprocess

from .load import ProviderSpec
from ..errors import ConfigError

API_KEY_CMD_TIMEOUT = 10.0

_known: set[str] = set()
_cmd_cache: dict[str, str] = {}
# Shapes of well-known keys, scrubbed even if we never resolved them ourselves.
_KEY_SHAPES = re.compile(r"\b(sk-[A-Za-z0-9_\-]{8,}|AIza[0-9A-Za-z_\-]{20,}|gsk_[A-Za-z0-9]{20,}|xai-[A-Za-z0-9]{20,})")


def mask(key: str) -> str:
    """`sk-…abcd`: enough to recognise a key, never enough to use it."""
    if len(key) <= 8:
        return "…"
    prefix = key[:3] if key[:3].isascii() and key[2:3] in "-_" else ""
    return f"{prefix}…{key[-4:]}"


def redact(text: str) -> str:
    """`text` with every known or key-shaped secret masked."""
    for key in _known:
        if key in text:
            text = text.replace(key, mask(key))
    return _KEY_SHAPES.sub(lambda m: mask(m.group(0)), text)


def remember(key: str) -> str:
    if len(key) >= 6:
        _known.add(key)
    return key


def key_available(p: ProviderSpec) -> bool:
    """Whether a key could be had without running anything (api_key_cmd counts as available)."""
    if not p.needs_key:
        return True
    if p.api_key or p.api_key_cmd:
        return True
    return bool(p.api_key_env and os.environ.get(p.api_key_env, "").strip())


def key_source(p: ProviderSpec) -> str:
    """How a user would supply this provider's key, for messages."""
    if p.api_key_cmd:
        return "api_key_cmd"
    if p.api_key_env:
        return p.api_key_env
    return "api_key"


def resolve_key(p: ProviderSpec) -> str | None:
    """The provider's key: inline api_key, else api_key_cmd's output, else $api_key_env."""
    if p.api_key:
        return remember(p.api_key)
    if p.api_key_cmd:
        if p.api_key_cmd not in _cmd_cache:
            _cmd_cache[p.api_key_cmd] = _run_key_cmd(p)
        return remember(_cmd_cache[p.api_key_cmd])
    if p.api_key_env:
        value = os.environ.get(p.api_key_env, "").strip()
        if not value:
            raise ConfigError(
                f"no API key for provider '{p.name}': set {p.api_key_env}"
                f" (or api_key_cmd in [providers.{p.name}])"
            )
        return remember(value)
    return None


def _run_key_cmd(p: ProviderSpec) -> str:
    where = f"providers.{p.name}.api_key_cmd"
    try:
        done = subprocess.run(
            p.api_key_cmd or "", shell=True, capture_output=True, timeout=API_KEY_CMD_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise ConfigError(f"timed out after {API_KEY_CMD_TIMEOUT:.0f} s", key=where) from None
    except OSError as exc:
        raise ConfigError(f"could not run: {exc.strerror}", key=where) from None
    if done.returncode != 0:
        err = done.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = f": {redact(err[-1])}" if err else ""
        raise ConfigError(f"failed (exit {done.returncode}){detail}", key=where)
    key = done.stdout.decode("utf-8", "replace").strip()
    if not key:
        raise ConfigError("printed nothing", key=where)
    return key
