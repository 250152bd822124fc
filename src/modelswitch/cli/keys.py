"""`modelswitch keys set|list|remove|path`: API keys kept in the keys file (config/keystore.py)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Optional

import typer

from .. import errors
from .util import run_guarded

if TYPE_CHECKING:
    from ..config.load import ProviderSpec

app = typer.Typer(
    name="keys",
    help="Save, list and remove API keys (kept in keys.toml, mode 600; the environment still wins).",
    no_args_is_help=True,
    add_completion=False,
)


def _config_path() -> str | None:
    obj = click_root_obj()
    return getattr(obj, "config", None)


def click_root_obj() -> object:
    import click

    ctx = click.get_current_context(silent=True)
    return ctx.find_root().obj if ctx is not None else None


def _keyed_provider(name: str | None) -> ProviderSpec:
    from ..engine.choice import load_config

    config = load_config(_config_path())
    keyed = [p for p in config.providers.values() if p.needs_key]
    for p in keyed:
        if p.name == name:
            return p
    names = ", ".join(p.name for p in keyed)
    if name is None:  # the providers to choose from, not click's bare "Missing argument"
        raise errors.UsageError(f"usage: modelswitch keys set PROVIDER; providers that take a key: {names}")
    raise errors.UsageError(f"unknown provider '{name}'; providers that take a key: {names}")


def read_secret(prompt: str) -> str:
    """A hidden prompt in a terminal; the first line of stdin when piped (`pass show x | ...`)."""
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass(prompt)
    return sys.stdin.readline().strip()


@app.command("set")
def set_(provider: Optional[str] = typer.Argument(None, help="A provider name, e.g. deepseek.")) -> None:
    """Save PROVIDER's key: asked for without echo, or read from stdin when piped."""

    def run() -> None:
        from ..config.keystore import set_key

        p = _keyed_provider(provider)
        key = read_secret(f"API key for {p.name} (input hidden): ")
        path = set_key(p.name, key)
        typer.echo(f"saved the key for {p.name} in {path}")
        if p.api_key_env:
            import os

            if os.environ.get(p.api_key_env, "").strip():
                typer.echo(f"note: {p.api_key_env} is set in this environment and is used first")

    run_guarded(run)


@app.command("list")
def list_() -> None:
    """Every provider that takes a key: where its key comes from, masked."""

    def run() -> None:
        import os

        from ..config.keys import key_origin
        from ..config.keystore import read_keys
        from ..engine.choice import load_config
        from ..redaction import mask
        from ..ui.render import print_table

        config = load_config(_config_path())
        stored = read_keys()
        rows = []
        for p in config.providers.values():
            if not p.needs_key:
                continue
            origin = key_origin(p)
            if origin is None:
                value = "—"
                origin = f"none (set {p.api_key_env} or `modelswitch keys set {p.name}`)" if p.api_key_env \
                    else f"none (`modelswitch keys set {p.name}`)"
            elif origin.startswith("env "):
                value = mask(os.environ.get(p.api_key_env or "", "").strip())
            elif origin == "keys file":
                value = mask(stored[p.name])
            elif origin == "config api_key":
                value = mask((p.api_key or "").strip())
            else:
                value = "(from the command, not run)"
            rows.append([p.name, origin, value])
        print_table(["provider", "key from", "value"], rows)

    run_guarded(run)


@app.command("remove")
def remove(provider: str = typer.Argument(..., help="The provider whose saved key to delete.")) -> None:
    """Delete PROVIDER's key from the keys file (the environment and config are left alone)."""

    def run() -> int:
        from ..config.keystore import keys_path, remove_key

        if not remove_key(provider):
            raise errors.UsageError(f"no key saved for '{provider}' in {keys_path()}")
        typer.echo(f"removed the key for {provider} from {keys_path()}")
        return 0

    run_guarded(run)


@app.command("path")
def path() -> None:
    """Print where saved keys are kept."""
    from ..config.keystore import keys_path

    typer.echo(str(keys_path()))
