"""What every command does first: load the config, pick the model, and explain when there is none."""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Callable
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
    remember_configured(config.providers.values())


def _loaded(config: Config) -> Config:
    from ..config.keys import remember_configured

    remember_configured(config.providers.values())  # masked wherever they turn up, even unused
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


def first_run_local(config: Config, wanted: str | None, setup: Callable[[], object]) -> Config:
    """No key, no model, no local server, a person at a terminal: set up the bundled local model
    (`setup` runs it and shows its progress: the caller's drawing, not ours)."""
    from ..local import server as local
    from .catalog import first_local_model

    if wanted or local.is_set_up() or config.default_model() is not None or first_local_model(config):
        return config
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        return config  # a pipe or a script never starts a 16-minute build by surprise
    warn("No API key is set and no model is configured: setting up the bundled local model "
         "(llama.cpp + SmolLM2-135M, works offline). Ctrl-C stops; `modelswitch local setup` resumes.")
    setup()
    # Now with the `local` provider, first among local ones.
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
    keyed = [p for p in config.providers.values() if p.api_key_env and p.models]
    examples = ", ".join(f"{p.api_key_env} ({p.name})" for p in keyed[:6])
    local = [p for p in config.providers.values() if p.local]
    servers = ", ".join(f"{p.name} at {p.base_url}" for p in local)
    first = keyed[0] if keyed else None
    lines = ["no model is ready to use. To get one, either:"]
    if first:
        lines.append(
            f"  - set an API key, e.g. `export {first.api_key_env}=...` then "
            f"`modelswitch ask -m {first.models[0].name} \"hi\"`; also known: {examples}, "
            "… (`modelswitch models` lists all)"
        )
    if servers:
        lines.append(f"  - or start a local server (none is running at: {servers})")
    lines.append(f"  - or write a config with `modelswitch config init` ({config.path})")
    return "\n".join(lines)
