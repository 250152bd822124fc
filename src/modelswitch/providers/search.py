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

Not here yet: Kimi's `$web_search` (a tool round the client must echo back: it needs the tool
loop) and DeepSeek (its API offers no search).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ..events import Citation, Event, Notice
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
)

OPENAI_VENDORS = ("openrouter", "openai", "perplexity", "qwen", "hunyuan", "zhipu")

# Top-level chunk keys that carry sources; a chunk without any of them skips this module.
TOP_LEVEL_KEYS = frozenset(("citations", "search_results", "search_info", "web_search"))

QWEN_NO_SOURCES = ("Qwen searched the web (enable_search), but its OpenAI-compatible API does not "
                   "return the sources, so none can be listed")


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


def ending_notices(name: str, sources: Sources) -> list[Event]:
    """What the end of a searched answer says besides its sources."""
    if name == "qwen" and not sources:
        return [Notice(QWEN_NO_SOURCES)]
    return []
