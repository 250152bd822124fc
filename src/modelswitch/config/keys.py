"""API keys: where they come from. Every key resolved or configured is remembered
(redaction.remember) so `redact` can scrub it from any text before that text reaches a screen, a
log or the database.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable
from typing import Protocol

from ..errors import ConfigError
from ..redaction import is_secret_header, redact, remember
from .keystore import keys_path, read_keys
from .specs import ProviderSpec


class _ServerSecrets(Protocol):
    """What of an `[mcp.NAME]` server may hold a secret (load.McpServerSpec; load imports this module)."""

    @property
    def headers(self) -> tuple[tuple[str, str], ...]: ...

    @property
    def env(self) -> tuple[tuple[str, str], ...]: ...

    @property
    def url(self) -> str | None: ...

API_KEY_CMD_TIMEOUT = 10.0
UNSENDABLE = ("holds control characters or non-ASCII text, which cannot be sent in an HTTP header "
              "(the value is not shown)")

_cmd_cache: dict[str, str] = {}


def unsendable(value: str) -> bool:
    """Whether a value cannot travel in an HTTP header: control characters or non-ASCII."""
    return not value.isascii() or any(not c.isprintable() for c in value)


def remember_configured(providers: Iterable[ProviderSpec], mcp: Iterable[_ServerSecrets] = ()) -> None:
    """Register every key the config names without running anything: inline keys, the values of
    the api_key_env variables and of secret-looking headers, and an MCP server's secret-looking
    env values and headers (a tool may echo its own token), so a key pasted into a prompt (or
    echoed in an error body or a tool result) is masked even before it is used."""
    for p in providers:
        password = _url_password(p.base_url)
        if password:  # connect errors mask the whole URL; this is for a server that echoes it
            remember(password)
        _remember_headers(p.headers)
        if p.api_key:
            remember(p.api_key.strip())
        if p.api_key_env:
            value = os.environ.get(p.api_key_env, "").strip()
            if value:
                remember(value)
    for server in mcp:
        _remember_headers(server.headers)
        # By name only (GITHUB_TOKEN, BRAVE_API_KEY): an env value such as a path is no secret,
        # and masking it would rewrite every mention of it.
        _remember_headers(server.env)
        password = _url_password(server.url or "")
        if password:
            remember(password)
    for value in read_keys().values():
        remember(value)


def _remember_headers(pairs: Iterable[tuple[str, str]]) -> None:
    for name, value in pairs:
        if is_secret_header(name):
            remember(value.strip())
            # `Bearer sk-...`: the server may echo the token alone, without the scheme.
            remember(value.strip().rpartition(" ")[2])


def _url_password(url: str) -> str:
    """The password of an address, also when it holds an unencoded `/`, `#` or `?` (urlsplit
    would cut it there): everything between the first `:` of the userinfo and the last `@`."""
    from urllib.parse import unquote

    userinfo, at, _ = url.partition("://")[2].rpartition("@")
    return unquote(userinfo.partition(":")[2]) if at else ""


def check_header_value(value: str, *, where: str) -> None:
    """A key travels in a header: one httpx cannot send becomes an error that names `where`, never
    the value, before httpx can quote it in a message of its own."""
    if unsendable(value):
        raise ConfigError(UNSENDABLE, key=where)


def _env_key(p: ProviderSpec) -> str:
    return os.environ.get(p.api_key_env, "").strip() if p.api_key_env else ""


def key_available(p: ProviderSpec) -> bool:
    """Whether a key could be had without running anything (api_key_cmd counts as available)."""
    if not p.needs_key:
        return True
    return key_origin(p) is not None


def key_origin(p: ProviderSpec) -> str | None:
    """Where this provider's key comes from, in the order they are tried: the environment, then
    api_key_cmd, then the keys file, then an inline api_key; None when there is none."""
    if _env_key(p):
        return f"env {p.api_key_env}"
    if p.api_key_cmd:
        return "api_key_cmd"
    if read_keys().get(p.name):
        return "keys file"
    if p.api_key:
        return "config api_key"
    return None


def key_hint(p: ProviderSpec) -> str:
    """How to give this provider a key: `DEEPSEEK_API_KEY (or `modelswitch keys set deepseek`)`."""
    keys_set = f"`modelswitch keys set {p.name}`"
    return f"{p.api_key_env} (or {keys_set})" if p.api_key_env else keys_set


def key_source(p: ProviderSpec) -> str:
    """How a user would supply this provider's key, for messages."""
    if p.api_key_cmd:
        return "api_key_cmd"
    if p.api_key_env:
        return p.api_key_env
    return "api_key"


def auth_hint(p: ProviderSpec) -> str:
    """What to check when the server rejects the credentials: a secret-looking header the config
    sends (it is what the server saw, whatever the key), else where the key comes from."""
    headers = [name for name, _ in p.headers if is_secret_header(name)]
    if headers:
        return f"the {', '.join(headers)} header{'s' if len(headers) > 1 else ''} in [providers.{p.name}.headers]"
    return key_source(p) if p.needs_key else ""


def resolve_key(p: ProviderSpec) -> str | None:
    """The provider's key: $api_key_env, else api_key_cmd's output, else the keys file, else the
    inline api_key (the environment wins, so a one-off `DEEPSEEK_API_KEY=... modelswitch` works)."""
    value = _env_key(p)
    if value:
        return _usable(value, f"{p.api_key_env} (the key of provider '{p.name}')")
    if p.api_key_cmd:
        if p.api_key_cmd not in _cmd_cache:
            _cmd_cache[p.api_key_cmd] = _run_key_cmd(p)
        return _usable(_cmd_cache[p.api_key_cmd], f"providers.{p.name}.api_key_cmd")
    stored = read_keys().get(p.name)
    if stored:
        return _usable(stored, f"the key of provider '{p.name}' in {keys_path()}")
    if p.api_key:
        return _usable(p.api_key.strip(), f"providers.{p.name}.api_key")
    if p.api_key_env:
        raise ConfigError(
            f"no API key for provider '{p.name}': set {key_hint(p)}"
            f" (or api_key_cmd in [providers.{p.name}])"
        )
    return None


def _usable(key: str, where: str) -> str:
    remember(key)  # first, so that nothing downstream can print it even if it is rejected
    check_header_value(key, where=where)
    return key


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
    # `pass show NAME` prints the key, then `url: ...`, `user: ...` lines: the key is the first line.
    lines = done.stdout.decode("utf-8", "replace").strip().splitlines()
    key = lines[0].strip() if lines else ""
    if not key:
        raise ConfigError("printed nothing", key=where)
    return key
