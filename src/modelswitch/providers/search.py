"""Web search through each provider's own mechanism, for the OpenAI-compatible vendors.

Anthropic (the `web_search` server tool) and Gemini (the `google_search` tool) have a protocol of
their own and handle search in anthropic.py and gemini.py. Behind the one Chat Completions wire
every vendor spells search differently. The vendor is the provider's `search` setting when it
has one (a relay, a private host), else told by the host of `base_url`:

- OpenRouter: the web plugin, `plugins: [{"id": "web"}]`; sources as `url_citation` annotations.
- OpenAI: `web_search_options: {}` (search models only, e.g. gpt-4o-search-preview); sources as
  `url_citation` annotations on the delta.
- Perplexity: every answer is searched; `citations` (URLs) and `search_results` ({title, url,
  date}) at the top level of the chunks, and the text carries [n] markers of its own.
- Qwen (DashScope): `enable_search: true`. The OpenAI-compatible endpoint does not return the
  sources, which the user is told instead of being shown an empty list.
- Hunyuan: `enable_enhancement`, `citation` and `search_info`; sources in the chunk's
  `search_info.search_results` ({index, title, url}).
- Zhipu GLM: the `web_search` tool object with `search_result: true`; sources in the chunk's
  top-level `web_search` list ({title, link, content, ...}).
- Kimi (Moonshot): the built-in function `{"type": "builtin_function", "function": {"name":
  "$web_search"}}` in `tools`. The model answers with finish_reason `tool_calls` and a call to
  `$web_search` whose `arguments` ({"search_result": {"search_id": ...}, "usage": {"total_tokens":
  N}}) the client sends back unchanged as the tool message (`role: tool`, `tool_call_id`, `name`);
  Moonshot then reads the results it holds (N tokens, billed as input) and answers. That round is
  a ReplayState of this protocol and model: the answer is resumed with it (`Target.resume`, the
  engine sends the request again) and it goes back only to the same Kimi model while it searches.
  No sources are returned (documented: https://platform.moonshot.cn/docs/guide/use-web-search),
  which the user is told. The docs say a thinking model must have thinking off to search.

Not here: DeepSeek. Its docs (api-docs.deepseek.com/guides/web_tools) describe server tools,
`deepseek_web_search` declared in `tools` with thinking off on `deepseek-flash`, on its Messages,
Responses and Chat Completions APIs; the Chat Completions stream shape of their results could not
be read from the docs here, so nothing is sent for it (no field is guessed) and a DeepSeek model
is told so plainly (`NO_SEARCH`) rather than with the generic line.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from ..events import Citation, Event, Notice, ReplayState, SearchQuery
from .base import Sources

# Host suffix -> vendor. Hosts, not provider names: a user may name a profile anything.
_VENDORS = (
    ("openrouter.ai", "openrouter"),
    ("api.openai.com", "openai"),
    ("perplexity.ai", "perplexity"),
    ("dashscope.aliyuncs.com", "qwen"),
    ("dashscope-intl.aliyuncs.com", "qwen"),
    ("hunyuan.cloud.tencent.com", "hunyuan"),
    ("bigmodel.cn", "zhipu"),
    ("api.z.ai", "zhipu"),
    ("moonshot.cn", "kimi"),
    ("moonshot.ai", "kimi"),
)

OPENAI_VENDORS = ("openrouter", "openai", "perplexity", "qwen", "hunyuan", "zhipu", "kimi")

# Top-level chunk keys that carry sources; a chunk without any of them skips this module.
TOP_LEVEL_KEYS = frozenset(("citations", "search_results", "search_info", "web_search"))

QWEN_NO_SOURCES = ("Qwen searched the web (enable_search), but its OpenAI-compatible API does not "
                   "return the sources, so none can be listed")
KIMI_NO_SOURCES = ("Kimi searched the web ($web_search{tokens}), but its API does not return the "
                   "sources, so none can be listed")
# Hosts whose own search modelswitch does not speak, and the plain words for it.
NO_SEARCH = (("deepseek.com", "DeepSeek's own search (its deepseek_web_search server tool) is not supported here yet"),)

KIMI_TOOL = {"type": "builtin_function", "function": {"name": "$web_search"}}
KIMI_CALL = "$web_search"
_KIMI_ROUND = "kimi_web_search"  # the kind of ReplayState that holds one echoed round


def vendor(protocol: str, base_url: str, declared: str | None = None) -> str | None:
    """Which search mechanism a provider offers: "anthropic", "gemini", an OpenAI-compatible
    vendor from the list above, or None when modelswitch knows of none."""
    if protocol in ("anthropic", "gemini"):
        return protocol
    if protocol != "openai":
        return None
    if declared in OPENAI_VENDORS:
        return declared
    host = (urlsplit(base_url).hostname or "").lower()
    for suffix, name in _VENDORS:
        if host == suffix or host.endswith("." + suffix):
            return name
    return None


def request_fields(name: str) -> dict:
    """What a Chat Completions body gains to search with vendor `name` ({} for none)."""
    if name == "openrouter":
        return {"plugins": [{"id": "web"}]}
    if name == "openai":
        return {"web_search_options": {}}
    if name == "qwen":
        return {"enable_search": True}
    if name == "hunyuan":
        return {"enable_enhancement": True, "citation": True, "search_info": True}
    if name == "zhipu":
        return {"tools": [{"type": "web_search", "web_search": {"enable": True, "search_result": True}}]}
    if name == "kimi":
        return {"tools": [dict(KIMI_TOOL)]}
    return {}  # Perplexity always searches; others have no mechanism


def chunk_citations(obj: dict, sources: Sources) -> list[Event]:
    """New sources from a chunk's top-level fields (Perplexity, Hunyuan, Zhipu)."""
    found: list[Event] = []

    def add(title: object, url: object, text: object = "") -> None:
        citation = sources.add(title, url, text)[1]
        if citation is not None:
            found.append(citation)

    results = obj.get("search_results")
    titled = {r.get("url"): r.get("title") for r in results if isinstance(r, dict)} if isinstance(results, list) else {}
    citations = obj.get("citations")
    # Perplexity's text numbers its sources in `citations` order; search_results gives titles.
    for url in citations if isinstance(citations, list) else ():
        add(titled.get(url, ""), url)
    for url, title in titled.items():
        add(title, url)
    info = obj.get("search_info")
    hunyuan = info.get("search_results") if isinstance(info, dict) else None
    for r in hunyuan if isinstance(hunyuan, list) else ():
        if isinstance(r, dict):
            add(r.get("title"), r.get("url"))
    zhipu = obj.get("web_search")
    for r in zhipu if isinstance(zhipu, list) else ():
        if isinstance(r, dict):
            add(r.get("title"), r.get("link"), r.get("content"))
    return found


def annotation_citations(annotations: object, sources: Sources) -> list[Citation]:
    """New sources from `url_citation` annotations (OpenAI, OpenRouter)."""
    found: list[Citation] = []
    for a in annotations if isinstance(annotations, list) else ():
        if not isinstance(a, dict) or a.get("type") != "url_citation":
            continue
        body = a.get("url_citation")
        body = body if isinstance(body, dict) else a  # some relays flatten it
        citation = sources.add(body.get("title"), body.get("url"), body.get("content"))[1]
        if citation is not None:
            found.append(citation)
    return found


def ending_notices(name: str, sources: Sources, resumed: tuple[ReplayState, ...] = ()) -> list[Event]:
    """What the end of a searched answer says besides its sources (`resumed`: the rounds of
    provider search this answer already went through)."""
    if name == "qwen" and not sources:
        return [Notice(QWEN_NO_SOURCES)]
    rounds = [r for r in (_kimi_round(s) for s in resumed) if r is not None]
    if name == "kimi" and rounds and not sources:
        tokens = sum(_search_tokens(r) for r in rounds)
        return [Notice(KIMI_NO_SOURCES.format(tokens=f"; its results took {tokens:,} input tokens" if tokens else ""))]
    return []


def no_search(base_url: str) -> str:
    """The plain words for a host whose own search modelswitch does not speak ("" for others)."""
    host = (urlsplit(base_url).hostname or "").lower()
    return next((words for suffix, words in NO_SEARCH if host == suffix or host.endswith("." + suffix)), "")


# -- Kimi's $web_search round ---------------------------------------------------------------------


def kimi_round(calls: list[tuple[str, str, str]], model_id: str) -> list[Event]:
    """A stream's `$web_search` calls (id, name, arguments) as what is shown ("searching…") and the
    round the request is resumed with: the assistant's calls and, for each, the tool message that
    echoes its arguments unchanged, as Moonshot documents."""
    events: list[Event] = []
    tool_calls, echoes = [], []
    for n, (call_id, name, arguments) in enumerate(calls):
        call_id = call_id or f"call_{n}"
        tool_calls.append({"id": call_id, "type": "builtin_function", "function": {"name": name, "arguments": arguments}})
        echoes.append({"role": "tool", "tool_call_id": call_id, "name": name, "content": arguments})
        events.append(SearchQuery(_kimi_query(arguments)))
    messages = [{"role": "assistant", "content": None, "tool_calls": tool_calls}, *echoes]
    events.append(ReplayState("openai", model_id, json.dumps({"type": _KIMI_ROUND, "messages": messages},
                                                              ensure_ascii=False)))
    return events


def kimi_messages(states: tuple[ReplayState, ...]) -> list[dict]:
    """The echoed `$web_search` rounds among `states`, as the messages to send again."""
    out: list[dict] = []
    for state in states:
        messages = _kimi_round(state)
        if messages is not None:
            out.extend(messages)
    return out


def _kimi_round(state: ReplayState) -> list[dict] | None:
    """A stored round's messages, or None for any other state or one that is not well-formed
    (a stored session is untrusted: a broken round is left out, not sent)."""
    if state.protocol != "openai" or _KIMI_ROUND not in state.data:
        return None
    try:
        value = json.loads(state.data)
    except (ValueError, RecursionError):
        return None
    messages = value.get("messages") if isinstance(value, dict) and value.get("type") == _KIMI_ROUND else None
    if not isinstance(messages, list) or len(messages) < 2 or not all(isinstance(m, dict) for m in messages):
        return None
    first, rest = messages[0], messages[1:]
    calls = first.get("tool_calls")
    if first.get("role") != "assistant" or not isinstance(calls, list) or len(calls) != len(rest):
        return None
    ids = [c.get("id") for c in calls if isinstance(c, dict)]
    if [m.get("role") for m in rest] != ["tool"] * len(rest) or [m.get("tool_call_id") for m in rest] != ids:
        return None
    return messages


def _kimi_query(arguments: str) -> str:
    """What was searched, when the arguments say (the documented ones carry only a search id)."""
    try:
        value = json.loads(arguments)
    except (ValueError, RecursionError):
        return ""
    query = value.get("query") if isinstance(value, dict) else None
    return query if isinstance(query, str) else ""


def _search_tokens(messages: list[dict]) -> int:
    """The tokens the search results take, which Moonshot reports in the arguments' `usage`."""
    total = 0
    for m in messages[1:]:
        try:
            usage = json.loads(m.get("content") or "{}").get("usage")
        except (ValueError, RecursionError, AttributeError):
            continue
        tokens = usage.get("total_tokens") if isinstance(usage, dict) else None
        if isinstance(tokens, int) and not isinstance(tokens, bool) and 0 < tokens < 10**9:
            total += tokens
    return total
