"""TOML configuration -> frozen dataclasses, with the built-in presets merged underneath.

Every problem is a ConfigError naming the file and the key path (`providers.deepseek.models.r1.
temperature`), or tomllib's line and column for a syntax error. Unknown keys are not fatal: they
become warnings with a did-you-mean, because a typo should not lock a user out of their chats.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import ConfigError, UsageError
from ..providers import PROTOCOL_NAMES as PROTOCOLS
from ..providers.search import OPENAI_VENDORS
from ..redaction import mask_url
from ..vocab import TEMPERATURE_RANGE, parse_reasoning
from .keys import UNSENDABLE, key_available, unsendable
from .specs import (
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_HEDGE_AFTER, DEFAULT_READ_TIMEOUT, DEFAULT_RETRIES, ModelSpec, Price,
    ProviderSpec,
)


_TOP_KEYS = {"default", "providers", "compact_at", "mcp", "tools"}
_MCP_KEYS = {"command", "env", "cwd", "url", "headers", "enabled", "trust", "timeout", "search"}
_TOOLS_KEYS = {"max_rounds", "timeout", "max_result_chars"}
DEFAULT_TOOL_ROUNDS = 10
DEFAULT_TOOL_TIMEOUT = 60.0
DEFAULT_TOOL_RESULT_CHARS = 20_000
_PROVIDER_KEYS = {
    "type", "base_url", "api_key_env", "api_key_cmd", "api_key", "headers", "timeout",
    "connect_timeout", "retries", "models", "local", "managed", "search", "reasoning_passback",
    "thinking_toggle",
}
_MODEL_KEYS = {
    "id", "temperature", "max_tokens", "reasoning", "price", "fallback", "context_window",
    "retries", "search", "vision", "routes", "strategy", "hedge_after", "tools", "reasoning_passback",
    "thinking_toggle",
}
# How a model with `routes` picks one: in order on failure, by recent time to first token
# (the saved history), or hedged (the next one asked too when no token came in hedge_after s).
ROUTE_STRATEGIES = ("fallback", "fastest", "hedge")
_PRICE_KEYS = {"input", "output", "cached_input", "currency", "date"}
@dataclass(frozen=True, slots=True)
class McpServerSpec:
    """One `[mcp.NAME]` server: a command run over stdio, or a streamable HTTP `url`."""

    name: str
    command: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    cwd: str | None = None
    url: str | None = None
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    enabled: bool = True
    trust: tuple[str, ...] = ()  # tools that run without asking (and under `ask --tools`)
    timeout: float | None = None  # per call; None: the [tools] timeout
    # The tool of this server that searches the web: offered when search is on for a model
    # whose provider cannot search (`search = "web_search"`).
    search: str | None = None


@dataclass(frozen=True, slots=True)
class ToolSettings:
    """`[tools]`: how far one answer's tool loop may go."""

    max_rounds: int = DEFAULT_TOOL_ROUNDS
    timeout: float = DEFAULT_TOOL_TIMEOUT
    max_result_chars: int = DEFAULT_TOOL_RESULT_CHARS


@dataclass(frozen=True, slots=True)
class Config:
    path: Path
    exists: bool
    default: str | None
    providers: dict[str, ProviderSpec]
    aliases: dict[str, ModelSpec]
    warnings: tuple[str, ...] = ()
    # Compact the chat automatically once it fills this fraction of the model's window (0 < x <= 1).
    compact_at: float | None = None
    mcp: tuple[McpServerSpec, ...] = ()
    tools: ToolSettings = ToolSettings()

    def models(self) -> list[ModelSpec]:
        """Every named model, provider by provider, in config order."""
        return [m for p in self.providers.values() for m in p.models]

    def provider(self, name: str) -> ProviderSpec:
        try:
            return self.providers[name]
        except KeyError:
            raise UsageError(f"unknown provider '{name}'{_suggest(name, self.providers)}") from None

    def resolve(self, name: str) -> ModelSpec:
        """A model by alias or as provider/model-id (any id, listed or not)."""
        name = name.strip()
        if name in self.aliases:
            return self.aliases[name]
        provider, sep, model_id = name.partition("/")
        if sep and model_id and provider in self.providers:
            for m in self.providers[provider].models:
                if m.id == model_id:
                    return m
            return ModelSpec(provider=provider, id=model_id)
        if sep and provider not in self.providers:
            raise UsageError(
                f"unknown provider '{provider}' in '{name}'{_suggest(provider, self.providers)}"
                f" — {MODELS_HINT}"
            )
        candidates = list(self.aliases) + [m.full_id for m in self.models()]
        raise UsageError(
            f"unknown model '{name}'{_suggest(name, candidates)} — {MODELS_HINT}"
        )

    def default_model(self) -> ModelSpec | None:
        """The configured default, else the first model whose provider has a key available."""
        if self.default:
            return self.resolve(self.default)
        for p in self.providers.values():
            if p.models and not p.local and key_available(p):
                return p.models[0]
        return None


# Where an unknown-model error points; the REPL says `/models` instead (no shell there).
MODELS_HINT = "see `modelswitch models`"


def _suggest(name: str, candidates: Iterable[object]) -> str:
    # Short names ("r2" for "r1") are a letter apart; longer ones need more in common.
    cutoff = 0.5 if len(name) <= 3 else 0.65
    close = difflib.get_close_matches(name, [str(c) for c in candidates], n=1, cutoff=cutoff)
    return f" — did you mean '{close[0]}'?" if close else ""


def load_presets() -> dict[str, Any]:
    text = resources.files("modelswitch.config").joinpath("presets.toml").read_text("utf-8")
    return tomllib.loads(text)


def load(path: Path, *, required: bool = False) -> Config:
    """Read the user's config (if any) over the presets and validate the result.

    `required`: the user named this file (--config, MODELSWITCH_CONFIG), so it must be there;
    falling back to the presets would send their requests somewhere they did not choose.
    """
    exists = _present(path, required)
    user = _read(path) if exists else {}
    config = build(user, path, exists=exists, presets=_with_managed_local(load_presets()))
    if exists and _has_inline_key(user) and path.stat().st_mode & 0o044:
        warning = (f"{path} holds an inline api_key and other users can read it: "
                   f"chmod 600 {path} (or use api_key_env / api_key_cmd)")
        config = replace(config, warnings=config.warnings + (warning,))
    return config


def problems(path: Path, *, required: bool = False, warnings: list[str] | None = None) -> list[ConfigError]:
    """Every error in the file at once (for `config validate`), not only the first; the warnings
    (unknown keys) go to `warnings`, so a user fixing the errors sees those typos in the same pass."""
    found: list[ConfigError] = []
    try:
        exists = _present(path, required)
        partial = build(_read(path) if exists else {}, path, exists=exists,
                        presets=_with_managed_local(load_presets()), collect=found)
        if warnings is not None:
            warnings.extend(partial.warnings)
    except ConfigError as exc:  # unreadable or not TOML: nothing further can be checked
        found.append(exc)
    return found


def _url_problem(url: str) -> str | None:
    """Why `url` cannot be a server's address (None when it can): http or https in any case, a host."""
    from urllib.parse import urlsplit

    shown = mask_url(url)
    if any(c.isspace() for c in url):
        return f"'{shown}' has a space in it: an address has none (a password with one must be written %20)"
    scheme, sep, _ = url.partition("://")
    if not sep:
        return f"'{shown}' {_scheme_advice(shown)}"
    if scheme.lower() not in ("http", "https"):
        return f"'{shown}' must start with http:// or https://"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return f"'{shown}' is not a valid URL (check the host and the port)"
    if not parts.hostname:
        return f"'{shown}' has no host: write e.g. {scheme.lower()}://api.example.com/v1"
    return None


def _scheme_advice(shown: str) -> str:
    """What to write instead of an address without `scheme://`: `https//h` and `https:/h` are a
    mistyped scheme (prefixing another https:// would make it worse), `h/v1` lacks one."""
    mistyped = re.match(r"(https?)(?::/*|/+)(?=[^/\d])", shown, re.IGNORECASE)
    # Masked credentials (`***@`) make no line to copy: then say only what to change.
    if mistyped:
        scheme, rest = mistyped.group(1).lower(), shown[mistyped.end():]
        fix = f"{scheme}:// in place of '{mistyped.group(0)}'" if "@" in rest else f"{scheme}://{rest}"
        return f"has a mistyped scheme: write {fix}"
    rest = shown.lstrip("/")
    if "@" in rest:
        return "has no scheme: put https:// (or http://) in front of it"
    return f"has no scheme: write https://{rest}"


def _lower_scheme(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme.lower()}://{rest}"


def _present(path: Path, required: bool) -> bool:
    """Whether there is a config file at `path`; an explicitly named one that is not a file is an error."""
    if path.is_file():
        return True
    if not required and not path.exists() and not path.is_symlink():
        return False
    if path.is_dir():
        why = "is a directory, not a config file"
    elif path.is_symlink():
        why = "is a symbolic link that leads nowhere (a loop, or its target is missing)"
    elif path.exists():
        why = "is not a regular file"
    else:
        why = "no such file (it was named by --config or MODELSWITCH_CONFIG; `modelswitch config init` writes one)"
    raise ConfigError(why, path=str(path))


def _read(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", path=str(path)) from None
    try:
        # utf-8-sig: editors on Windows start a file with a BOM, which TOML would call a bad statement.
        return tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise ConfigError("not UTF-8 text", path=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        # tomllib puts "(at line N, column M)" in its message: that is the pointer users need.
        raise ConfigError(f"invalid TOML: {exc}", path=str(path)) from None


def _with_managed_local(presets: dict[str, Any]) -> dict[str, Any]:
    """The managed llama.cpp provider (local/smol), first, once it is set up."""
    from ..local import server as local

    table = local.preset_table()
    if table is None:
        return presets
    return {**presets, "providers": {"local": table, **presets.get("providers", {})}}


def _has_inline_key(user: dict[str, Any]) -> bool:
    providers = user.get("providers")
    return isinstance(providers, dict) and any(
        isinstance(p, dict) and "api_key" in p for p in providers.values()
    )


def build(
    user: dict[str, Any], path: Path, *, exists: bool = True, presets: dict[str, Any] | None = None,
    collect: list[ConfigError] | None = None,
) -> Config:
    """Validate `user` (a parsed TOML document) merged over `presets`.

    The first problem raises, unless `collect` is given: then every problem is appended to it and
    the Config returned is only good for finding more.
    """
    v = _Validator(str(path), collect)
    v.check_keys(user, _TOP_KEYS, "")
    default = v.opt(user, "default", str, "default")
    compact_at = v.opt(user, "compact_at", (int, float), "compact_at")
    if compact_at is not None and (isinstance(compact_at, bool) or not 0 < compact_at <= 1):
        v.fail("compact_at", f"must be a fraction of the window between 0 and 1 (e.g. 0.8), got {compact_at!r}")
        compact_at = None
    user_providers = v.opt(user, "providers", dict, "providers") or {}

    preset_providers: dict[str, Any] = (presets or {}).get("providers", {})
    providers: dict[str, ProviderSpec] = {}
    owner: dict[str, str] = {}  # alias -> the user's provider that defines it

    # The user's providers come first (their order is their preference); a preset of the same
    # name supplies whatever keys and models the user did not write.
    for pname, ptable in user_providers.items():
        key = f"providers.{pname}"
        if not isinstance(ptable, dict):
            v.fail(key, f"must be a table, got {_tname(ptable)}")
            continue
        own_models = v.opt(ptable, "models", dict, f"{key}.models") or {}
        for alias in own_models:
            if alias in owner:
                v.fail(f"{key}.models.{alias}", f"duplicate alias '{alias}' (also in providers.{owner[alias]})")
                continue
            owner[alias] = pname
        base = preset_providers.get(pname, {})
        merged = {**base, **ptable, "models": {**base.get("models", {}), **own_models}}
        providers[pname] = v.provider(pname, merged, from_preset=False, user_keys=ptable)

    presets_v = _Validator("built-in presets")
    for pname, ptable in preset_providers.items():
        if pname not in providers:
            providers[pname] = presets_v.provider(pname, ptable, from_preset=True)

    # A user's alias shadows a preset model of the same alias in another provider.
    aliases: dict[str, ModelSpec] = {}
    for pname, spec in list(providers.items()):
        kept = tuple(m for m in spec.models if owner.get(m.alias or "", pname) == pname)
        providers[pname] = _replace_models(spec, kept)
        for m in kept:
            if m.alias:
                aliases.setdefault(m.alias, m)

    servers = tuple(
        server for name, table in (v.opt(user, "mcp", dict, "mcp") or {}).items() if (server := v.mcp(name, table))
    )
    tool_settings = v.tools(v.opt(user, "tools", dict, "tools") or {})
    config = Config(
        path=path, exists=exists, default=default, providers=providers, aliases=aliases,
        warnings=tuple(v.warnings), compact_at=float(compact_at) if compact_at is not None else None,
        mcp=servers, tools=tool_settings,
    )
    _check_references(config, v)
    return config


def _replace_models(spec: ProviderSpec, models: tuple[ModelSpec, ...]) -> ProviderSpec:
    return replace(spec, models=models)


def _check_references(config: Config, v: _Validator) -> None:
    if config.default:
        try:
            config.resolve(config.default)
        except UsageError as exc:
            v.fail("default", f"names nothing: {exc}")
    for m in config.models():
        for i, fb in enumerate(m.fallback):
            try:
                config.resolve(fb)
            except UsageError as exc:
                v.fail(f"providers.{m.provider}.models.{m.alias}.fallback[{i}]", str(exc))
        for i, route in enumerate(m.routes):
            provider, sep, model_id = route.partition("/")
            if not sep or not model_id or provider not in config.providers:
                v.fail(f"providers.{m.provider}.models.{m.alias}.routes[{i}]",
                       f"must be provider/model-id with a configured provider, got {route!r}")


def _tname(value: object) -> str:
    return {
        str: "a string", int: "an integer", float: "a number", bool: "true/false", list: "an array",
        dict: "a table",
    }.get(type(value), type(value).__name__)


class _Validator:
    """Checks tables; each problem raises at once, or (with `collect`) is noted and checking goes on."""

    def __init__(self, path: str, collect: list[ConfigError] | None = None) -> None:
        self.path = path
        self.warnings: list[str] = []
        self.collect = collect

    def fail(self, key: str, message: str) -> None:
        error = ConfigError(message, path=self.path, key=key)
        if self.collect is None:
            raise error
        self.collect.append(error)

    def check_keys(self, table: dict[str, Any], allowed: set[str], prefix: str) -> None:
        for k in table:
            if k not in allowed:
                where = f"{prefix}.{k}" if prefix else k
                self.warnings.append(f"{self.path}: unknown key '{where}'{_suggest(k, allowed)}")

    def opt(self, table: dict[str, Any], name: str, kind: type | tuple[type, ...], key: str) -> Any:
        if name not in table:
            return None
        value = table[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # TOML booleans are ints in Python; a number field must not silently accept `true`.
        if isinstance(value, bool) and bool not in kinds:
            ok = False
        elif float in kinds and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        else:
            ok = isinstance(value, kinds)
        if not ok:
            want = " or ".join(_tname(k()) if k is not bool else "true/false" for k in kinds)
            self.fail(key, f"must be {want}, got {_tname(value)} {value!r}")
            return None
        return float(value) if kinds == (float,) else value

    def positive(self, table: dict[str, Any], name: str, kind: type, key: str) -> Any:
        value = self.opt(table, name, kind, key)
        if value is not None and value <= 0:
            self.fail(key, f"must be greater than 0, got {value!r}")
            return None
        return value

    def provider(
        self, name: str, t: dict[str, Any], *, from_preset: bool, user_keys: dict[str, Any] | None = None
    ) -> ProviderSpec:
        key = f"providers.{name}"
        self.check_keys(user_keys if user_keys is not None else t, _PROVIDER_KEYS, key)
        ptype = self.opt(t, "type", str, f"{key}.type") or "openai"
        if ptype not in PROTOCOLS:
            self.fail(
                f"{key}.type", f"unknown type '{ptype}'{_suggest(ptype, PROTOCOLS)} (one of: {', '.join(PROTOCOLS)})"
            )
        base_url = self.opt(t, "base_url", str, f"{key}.base_url") or ""
        if not base_url:
            self.fail(f"{key}.base_url", "missing: the provider's API address is required")
        elif problem := _url_problem(base_url):
            self.fail(f"{key}.base_url", problem)
        else:
            base_url = _lower_scheme(base_url)  # HTTPS://… works; code below compares "https://"
        headers = self.opt(t, "headers", dict, f"{key}.headers") or {}
        for hk, hv in headers.items():
            if not isinstance(hv, str):
                self.fail(f"{key}.headers.{hk}", f"must be a string, got {_tname(hv)}")
            elif unsendable(hv):
                self.fail(f"{key}.headers.{hk}", UNSENDABLE)
        api_key = self.opt(t, "api_key", str, f"{key}.api_key")
        if api_key and unsendable(api_key.strip()):
            self.fail(f"{key}.api_key", UNSENDABLE)
        timeout = self.positive(t, "timeout", float, f"{key}.timeout")
        connect = self.positive(t, "connect_timeout", float, f"{key}.connect_timeout")
        retries = self.opt(t, "retries", int, f"{key}.retries")
        if retries is not None and retries < 0:
            self.fail(f"{key}.retries", f"must be 0 or more, got {retries}")
        models_t = self.opt(t, "models", dict, f"{key}.models") or {}
        models = tuple(m for alias, mt in models_t.items() if (m := self.model(name, alias, mt)))
        return ProviderSpec(
            name=name,
            type=ptype,
            base_url=base_url.rstrip("/"),
            api_key_env=self.opt(t, "api_key_env", str, f"{key}.api_key_env"),
            api_key_cmd=self.opt(t, "api_key_cmd", str, f"{key}.api_key_cmd"),
            api_key=api_key,
            headers=tuple((hk, hv) for hk, hv in headers.items() if isinstance(hv, str)),
            connect_timeout=connect or DEFAULT_CONNECT_TIMEOUT,
            read_timeout=timeout or DEFAULT_READ_TIMEOUT,
            retries=DEFAULT_RETRIES if retries is None else retries,
            models=models,
            local=bool(self.opt(t, "local", bool, f"{key}.local")),
            managed=bool(self.opt(t, "managed", bool, f"{key}.managed")),
            from_preset=from_preset,
            search=self.search_vendor(t, f"{key}.search"),
            reasoning_passback=self.opt(t, "reasoning_passback", bool, f"{key}.reasoning_passback"),
            thinking_toggle=self.opt(t, "thinking_toggle", bool, f"{key}.thinking_toggle"),
        )

    def search_vendor(self, t: dict[str, Any], key: str) -> str | None:
        name = self.opt(t, "search", str, key)
        if name is not None and name not in OPENAI_VENDORS:
            self.fail(key, f"must be one of {', '.join(OPENAI_VENDORS)}, got {name!r}")
            return None
        return name

    def model(self, provider: str, alias: str, t: object) -> ModelSpec | None:
        key = f"providers.{provider}.models.{alias}"
        if not isinstance(t, dict):
            self.fail(key, f"must be a table, got {_tname(t)}")
            return None
        if "/" in alias or not alias.strip():
            self.fail(key, "an alias may not be empty or contain '/'")
        self.check_keys(t, _MODEL_KEYS, key)
        model_id = self.opt(t, "id", str, f"{key}.id") or ""
        if not model_id:
            self.fail(f"{key}.id", "missing: the provider's model id is required")
        reasoning = self.opt(t, "reasoning", (bool, str, int), f"{key}.reasoning")
        if isinstance(reasoning, str):  # the words `/set reasoning` takes mean the same here
            try:
                reasoning = parse_reasoning(reasoning)
            except UsageError:
                self.fail(f"{key}.reasoning", f"must be true, false, low, medium, high or a token budget, got {reasoning!r}")
                reasoning = None
        fallback = self.opt(t, "fallback", list, f"{key}.fallback") or []
        for i, fb in enumerate(fallback):
            if not isinstance(fb, str):
                self.fail(f"{key}.fallback[{i}]", f"must be a model name, got {_tname(fb)}")
        temperature = self.opt(t, "temperature", float, f"{key}.temperature")
        low, high = TEMPERATURE_RANGE
        if temperature is not None and not low <= temperature <= high:
            self.fail(f"{key}.temperature", f"must be between {low:g} and {high:g}, got {temperature}")
        retries = self.opt(t, "retries", int, f"{key}.retries")
        if retries is not None and retries < 0:
            self.fail(f"{key}.retries", f"must be 0 or more, got {retries}")
        routes = self.opt(t, "routes", list, f"{key}.routes") or []
        for i, route in enumerate(routes):
            if not isinstance(route, str):
                self.fail(f"{key}.routes[{i}]", f"must be provider/model-id, got {_tname(route)}")
        strategy = self.opt(t, "strategy", str, f"{key}.strategy") or "fallback"
        if strategy not in ROUTE_STRATEGIES:
            self.fail(f"{key}.strategy", f"must be one of {', '.join(ROUTE_STRATEGIES)}, got {strategy!r}")
        hedge_after = self.positive(t, "hedge_after", float, f"{key}.hedge_after")
        return ModelSpec(
            provider=provider,
            id=model_id,
            alias=alias,
            temperature=temperature,
            max_tokens=self.positive(t, "max_tokens", int, f"{key}.max_tokens"),
            reasoning=reasoning,
            price=self.price(t, f"{key}.price"),
            fallback=tuple(fb for fb in fallback if isinstance(fb, str)),
            context_window=self.positive(t, "context_window", int, f"{key}.context_window"),
            retries=retries,
            search=bool(self.opt(t, "search", bool, f"{key}.search")),
            vision=bool(self.opt(t, "vision", bool, f"{key}.vision")),
            routes=tuple(r for r in routes if isinstance(r, str)),
            strategy=strategy,
            hedge_after=DEFAULT_HEDGE_AFTER if hedge_after is None else float(hedge_after),
            tools=self.opt(t, "tools", bool, f"{key}.tools"),
            reasoning_passback=self.opt(t, "reasoning_passback", bool, f"{key}.reasoning_passback"),
            thinking_toggle=self.opt(t, "thinking_toggle", bool, f"{key}.thinking_toggle"),
        )

    def mcp(self, name: str, t: object) -> McpServerSpec | None:
        key = f"mcp.{name}"
        if not isinstance(t, dict):
            self.fail(key, f"must be a table, got {_tname(t)}")
            return None
        self.check_keys(t, _MCP_KEYS, key)
        command = self.opt(t, "command", (list, str), f"{key}.command")
        if isinstance(command, str):
            command = command.split()
        url = self.opt(t, "url", str, f"{key}.url")
        if command is not None and (not command or not all(isinstance(c, str) and c for c in command)):
            self.fail(f"{key}.command", 'must be a program and its arguments, e.g. ["uvx", "mcp-server-time"]')
            command = None
        if bool(command) == bool(url):
            self.fail(key, "needs either command (a server run over stdio) or url (streamable HTTP), not both")
        if url and (problem := _url_problem(url)):
            self.fail(f"{key}.url", problem)
        elif url:
            url = _lower_scheme(url)
        tables = {}
        for field_name in ("env", "headers"):
            table = self.opt(t, field_name, dict, f"{key}.{field_name}") or {}
            for tk, tv in table.items():
                if not isinstance(tv, str):
                    self.fail(f"{key}.{field_name}.{tk}", f"must be a string, got {_tname(tv)}")
                elif field_name == "headers" and unsendable(tv):
                    self.fail(f"{key}.headers.{tk}", UNSENDABLE)
            tables[field_name] = tuple((tk, tv) for tk, tv in table.items() if isinstance(tv, str))
        trust = self.opt(t, "trust", list, f"{key}.trust") or []
        for i, tool in enumerate(trust):
            if not isinstance(tool, str):
                self.fail(f"{key}.trust[{i}]", f"must be a tool name, got {_tname(tool)}")
        enabled = self.opt(t, "enabled", bool, f"{key}.enabled")
        search = self.opt(t, "search", str, f"{key}.search")
        if search is not None and not search.strip():
            self.fail(f"{key}.search", "must name one of the server's tools, e.g. \"web_search\"")
        return McpServerSpec(
            name=name,
            command=tuple(command or ()),
            env=tables["env"],
            cwd=self.opt(t, "cwd", str, f"{key}.cwd"),
            url=url,
            headers=tables["headers"],
            enabled=True if enabled is None else enabled,
            trust=tuple(x for x in trust if isinstance(x, str)),
            timeout=self.positive(t, "timeout", float, f"{key}.timeout"),
            search=search.strip() if search and search.strip() else None,
        )

    def tools(self, t: dict[str, Any]) -> ToolSettings:
        self.check_keys(t, _TOOLS_KEYS, "tools")
        rounds = self.opt(t, "max_rounds", int, "tools.max_rounds")
        if rounds is not None and rounds < 0:
            self.fail("tools.max_rounds", f"must be 0 or more, got {rounds}")
            rounds = None
        return ToolSettings(
            max_rounds=DEFAULT_TOOL_ROUNDS if rounds is None else rounds,
            timeout=self.positive(t, "timeout", float, "tools.timeout") or DEFAULT_TOOL_TIMEOUT,
            max_result_chars=self.positive(t, "max_result_chars", int, "tools.max_result_chars")
            or DEFAULT_TOOL_RESULT_CHARS,
        )

    def price(self, t: dict[str, Any], key: str) -> Price | None:
        p = self.opt(t, "price", dict, key)
        if p is None:
            return None
        self.check_keys(p, _PRICE_KEYS, key)
        values = {}
        for name in ("input", "output", "cached_input"):
            value = self.opt(p, name, float, f"{key}.{name}")
            if value is not None and value < 0:
                self.fail(f"{key}.{name}", f"must be 0 or more, got {value}")
            values[name] = value
        if values["input"] is None or values["output"] is None:
            self.fail(key, "needs both input and output (price per million tokens)")
            return None
        currency = self.opt(p, "currency", str, f"{key}.currency") or "USD"
        if len(currency) != 3 or not currency.isalpha():
            self.fail(f"{key}.currency", f"must be an ISO currency code like USD or CNY, got {currency!r}")
        return Price(
            input=values["input"], output=values["output"], currency=currency.upper(),
            cached_input=values["cached_input"], date=self.opt(p, "date", str, f"{key}.date"),
        )
