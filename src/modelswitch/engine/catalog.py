"""Every model, its provider, reasoning, key status and price, as values (`models`, `/models`)."""

from __future__ import annotations

from collections.abc import Callable

from ..config.load import Config, ModelSpec, ProviderSpec
from ..config.keys import key_available, key_hint, key_source
from ..conversation import ToolSpec
from ..providers import search as _search


def key_status(p: ProviderSpec) -> str:
    if p.managed:
        return "managed (starts on use)"
    if not p.needs_key:
        return "local" if p.local else "no key needed"
    if key_available(p):
        return "ready"
    return f"needs {key_hint(p)}"


def price_text(m: ModelSpec) -> str:
    if not m.price:
        return "—"
    return f"{m.price.input:g}/{m.price.output:g} {m.price.currency}"


def first_local_model(config: Config) -> ModelSpec | None:
    """The first model a running local server offers (a user with no key may still have one)."""
    for p in config.providers.values():
        if p.local:
            found = list(p.models) or local_models(p, timeout=0.3)
            if found:
                return found[0]
    return None


def local_models(p: ProviderSpec, timeout: float = 0.5) -> list[ModelSpec]:
    """Models a reachable local server reports; nothing (quietly) when it is not running."""
    from .. import errors
    from ..providers import transport
    from ..providers import get_protocol

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


def all_models(config: Config) -> list[tuple[ProviderSpec, ModelSpec]]:
    """Every configured model, and what running local servers offer besides."""
    out = []
    for p in config.providers.values():
        models = list(p.models) + (local_models(p) if p.local else [])
        out += [(p, m) for m in models]
    return out


def is_default(config: Config, m: ModelSpec) -> bool:
    return config.default is not None and config.default in (m.alias, m.full_id)


def as_json(config: Config, models: list[tuple[ProviderSpec, ModelSpec]]) -> list[dict]:
    """`models --json`: one object per model."""
    return [
        {
            "alias": m.alias,
            "model": m.full_id,
            "provider": p.name,
            "type": p.type,
            "reasoning": m.reasoning not in (None, False),
            "tools": m.tools,
            "key": key_status(p),
            "key_present": key_available(p),
            "price": None if not m.price else {
                "input": m.price.input, "output": m.price.output,
                "cached_input": m.price.cached_input, "currency": m.price.currency,
                "date": m.price.date,
            },
            "default": is_default(config, m),
        }
        for p, m in models
    ]


TABLE_HEADERS = ["alias", "provider/model", "reasoning", "tools", "key", "price in/out per 1M"]
_TOOLS_CELL = {True: "yes", False: "no", None: ""}  # None: not declared, tools are tried




def table_rows(models: list[tuple[ProviderSpec, ModelSpec]], marked: Callable[[ModelSpec], bool]) -> list[list[str]]:
    """The models table (`models`, `/models`); `marked` models get a `*` (default, or current)."""
    return [
        [(m.alias or "") + (" *" if marked(m) else ""), m.full_id,
         "yes" if m.reasoning not in (None, False) else "", _TOOLS_CELL[m.tools], _key_cell(p), price_text(m)]
        for p, m in models
    ]


TABLE_FOLD = (4, 5, 1)  # in a narrow terminal the key hint wraps first, then the price, the model id last
TABLE_SHORT_KEY_NOTE = "key: needs = no key set (a wider terminal or models --json names its variable)"


def short_key(cell: str) -> str:
    """The key cell when the terminal has no room for the variable's name: `needs`."""
    return "needs" if cell.startswith("needs ") else cell


def _key_cell(p: ProviderSpec) -> str:
    # Short, so the table stays one line a model; how to set a key is said once, under it.
    if p.needs_key and not p.managed and not key_available(p):
        return f"needs {p.api_key_env}" if p.api_key_env else "needs a key"
    return key_status(p)


def table_notes(models: list[tuple[ProviderSpec, ModelSpec]]) -> list[str]:
    """The lines under the models table: how to set a missing key, what a blank tools cell means."""
    notes = []
    if any(_key_cell(p).startswith("needs") for p, _ in models):
        notes.append("set a key: modelswitch keys set PROVIDER, or the environment variable named")
    if any(m.tools is None for _, m in models):
        notes.append("tools: blank = not declared, offered and the API decides")
    return notes


def search_vendor(config: Config, spec: ModelSpec) -> str:
    """The web search mechanism this model's provider offers ("" for none known): the provider's
    own search, never a client-side one. OpenAI's Chat Completions searches only with its search
    models (`…-search-…`)."""
    provider = config.providers.get(spec.provider)
    if provider is None:
        return ""
    vendor = _search.vendor(provider.type, provider.base_url, provider.search)
    if vendor == "openai" and "search" not in spec.id:
        return ""
    return vendor or ""


def mcp_search_tool(config: Config) -> tuple[str, str] | None:
    """The MCP tool the config names as a web search (`[mcp.NAME] search = "TOOL"`): (server, tool)."""
    return next(((s.name, s.search) for s in config.mcp if s.search), None)


def can_search(config: Config, spec: ModelSpec) -> bool:
    return bool(search_vendor(config, spec))


def no_search_line(config: Config, spec: ModelSpec, limit: int = 6) -> str:
    """The one line for a model that cannot search: which models can (those with a key first)."""
    able = [m for m in config.models() if m.alias and can_search(config, m)]
    able.sort(key=lambda m: not key_available(config.provider(m.provider)))
    names = [m.name for m in able[:limit]] + ([f"+{len(able) - limit} more"] if len(able) > limit else [])
    which = f"models that can: {', '.join(names)}" if names else "no configured model can"
    provider = config.providers.get(spec.provider)
    plainly = _search.no_search(provider.base_url) if provider is not None else ""
    if plainly:  # said for what it is, not as the generic line
        return f"{spec.name} cannot search the web: {plainly}; {which}"
    return f"{spec.name} cannot search the web here; {which}"


def takes_tools(spec: ModelSpec) -> bool:
    """False only for a model declared `tools = false` (its API answers a `tools` list with 400);
    an undeclared model is offered tools and its API decides."""
    return spec.tools is not False


def offered_tools(spec: ModelSpec, tools: tuple[ToolSpec, ...]) -> tuple[ToolSpec, ...]:
    """The tools a request to `spec` carries: the rule every answer (ask, the REPL, @model,
    /compare, fallbacks and routes) goes through, in Answer."""
    return tools if takes_tools(spec) else ()


def no_tools_line(spec: ModelSpec) -> str:
    """The one line said when tools are on but this model is declared not to take them."""
    return f"{spec.name} does not take tools; answering without them (models marked tools: yes can)"
