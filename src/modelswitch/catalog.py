"""`modelswitch models`: every model, its provider, reasoning, key status and price."""

from __future__ import annotations

import json
import sys

from .config import Config, ModelSpec, ProviderSpec
from .secrets import key_available, key_source
from .startup import load_config


def key_status(p: ProviderSpec) -> str:
    if p.managed:
        return "managed (starts on use)"
    if not p.needs_key:
        return "local" if p.local else "no key needed"
    if key_available(p):
        return f"ok ({key_source(p)})"
    return f"set {p.api_key_env}" if p.api_key_env else "missing"


def price_text(m: ModelSpec) -> str:
    if not m.price:
        return "—"
    return f"{m.price.input:g}/{m.price.output:g} {m.price.currency}"


def first_local_model(config: Config) -> ModelSpec | None:
    """The first model a running local server offers (a user with no key may still have one)."""
    for p in config.providers.values():
        if p.local:
            found = list(p.models) or local_models(config, p, timeout=0.3)
            if found:
                return found[0]
    return None


def local_models(config: Config, p: ProviderSpec, timeout: float = 0.5) -> list[ModelSpec]:
    """Models a reachable local server reports; nothing (quietly) when it is not running."""
    from . import errors, transport
    from .providers import get_protocol

    protocol = get_protocol(p.type)
    request_for = getattr(protocol, "models_request", None)
    parse = getattr(protocol, "parse_models", None)
    if request_for is None or parse is None:
        return []
    try:
        body = transport.fetch(request_for(p.base_url), timeout=timeout)
    except errors.ConnectError:
        return []
    known = {m.id for m in p.models}
    return [ModelSpec(provider=p.name, id=mid) for mid in parse(body) if mid not in known]


def rows(config: Config, probe_local: bool = True) -> list[dict]:
    out = []
    for p in config.providers.values():
        models = list(p.models)
        if p.local and probe_local:
            models += local_models(config, p)
        for m in models:
            out.append({
                "alias": m.alias,
                "model": m.full_id,
                "provider": p.name,
                "type": p.type,
                "reasoning": m.reasoning not in (None, False),
                "key": key_status(p),
                "key_present": key_available(p),
                "price": None if not m.price else {
                    "input": m.price.input, "output": m.price.output,
                    "cached_input": m.price.cached_input, "currency": m.price.currency,
                    "date": m.price.date,
                },
                "default": config.default is not None and config.default in (m.alias, m.full_id),
            })
    return out


def show_models(config_path: str | None, *, json_out: bool) -> int:
    config = load_config(config_path)
    data = rows(config)
    if json_out:
        sys.stdout.write(json.dumps({"models": data}, ensure_ascii=False, indent=1) + "\n")
        return 0
    from .render import print_info, print_table

    table = []
    for r in data:
        spec = config.resolve(r["alias"]) if r["alias"] else None
        table.append([
            (r["alias"] or "") + (" *" if r["default"] else ""),
            r["model"],
            "yes" if r["reasoning"] else "",
            r["key"],
            price_text(spec) if spec else "—",
        ])
    print_table(["alias", "provider/model", "reasoning", "key", "price in/out per 1M"], table)
    local = [p for p in config.providers.values() if p.local]
    if local:
        print_info(
            "local servers: " + ", ".join(f"{p.name} ({p.base_url})" for p in local)
            + " — name any of their models as provider/model", style="dim",
        )
    return 0
