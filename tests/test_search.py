"""Web search with citations: each provider's own mechanism on the wire, the sources as typed
events, kept with the answer, shown under it, stored, exported, and sent on as text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelswitch import errors
from modelswitch.cli.main import app
from modelswitch.config import load as config
from modelswitch.conversation import Conversation, Message, ModelRef
from modelswitch.engine.answer import Answer, Settings
from modelswitch.events import Citation, Notice, ReplayState, SearchQuery, TextDelta
from modelswitch.providers import get_protocol
from modelswitch.providers.base import Target
from modelswitch.providers.search import QWEN_NO_SOURCES
from tests.loopback import LoopbackServer
from tests.search_fakes import QUERY, SOURCES, FakeAnthropicSearch, FakeChatSearch, FakeGeminiSearch
from tests.validators import drive

ASK = Conversation().add(Message(role="user", text="tell me about pelicans"))
CITED = tuple(Citation(t, u, q) for t, u, q in SOURCES)


def text_of(events: list) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def of(kind: type, events: list) -> list:
    return [e for e in events if isinstance(e, kind)]


# -- Anthropic: the web_search server tool -------------------------------------------------------


def anthropic(server: LoopbackServer, search: str = "anthropic", model: str = "claude-sonnet-4-5") -> tuple[FakeAnthropicSearch, Target]:
    fake = FakeAnthropicSearch()
    server.default = fake
    return fake, Target("anthropic", server.url, model, api_key=fake.key, search=search)


def test_anthropic_search_tool_queries_citations_and_markers(server: LoopbackServer) -> None:
    fake, target = anthropic(server)
    events = drive(get_protocol("anthropic"), target, ASK)
    assert fake.rejected == []
    assert fake.accepted[0]["tools"] == [{"type": "web_search_20250305", "name": "web_search", "max_uses": 5}]
    assert of(SearchQuery, events) == [SearchQuery(QUERY)]
    assert of(Citation, events) == list(CITED)  # cited_text is the source's own passage
    # Each cited passage is followed by the numbers of its sources, in first-cited order.
    assert text_of(events) == ("Here is what I found. Pelicans are large water birds [1], and the brown "
                               "pelican lives on coasts [2][1].")
    # The query is shown before the answer's first word.
    kinds = [type(e) for e in events]
    assert kinds.index(SearchQuery) < kinds.index(TextDelta)


def test_anthropic_search_off_sends_no_tool(server: LoopbackServer) -> None:
    fake, target = anthropic(server, search="")
    events = drive(get_protocol("anthropic"), target, ASK)
    assert "tools" not in fake.accepted[0]
    assert of(Citation, events) == [] and of(SearchQuery, events) == []


def _answered(events: list, model: str, protocol: str = "anthropic") -> Message:
    return Message(role="assistant", text=text_of(events), model=ModelRef("p", model, protocol),
                   replay=tuple(of(ReplayState, events)), citations=tuple(of(Citation, events)))


def test_anthropic_search_blocks_go_back_only_to_the_same_model_with_search_on(server: LoopbackServer) -> None:
    fake, target = anthropic(server)
    first = _answered(drive(get_protocol("anthropic"), target, ASK), target.model_id)
    history = ASK.add(first).add(Message(role="user", text="and their wingspan?"))
    drive(get_protocol("anthropic"), target, history)
    sent = fake.accepted[1]["messages"][1]["content"]
    # The fake accepts only blocks it issued, unchanged.
    assert [b["type"] for b in sent] == ["server_tool_use", "web_search_tool_result", "text"]
    assert fake.rejected == []
    # Search off, or another model: no search blocks, the sources travel as text.
    for other in (Target("anthropic", server.url, target.model_id, api_key=fake.key),
                  Target("anthropic", server.url, "claude-haiku-4-5", api_key=fake.key, search="anthropic")):
        drive(get_protocol("anthropic"), other, history)
        content = fake.accepted[-1]["messages"][1]["content"]
        assert [b["type"] for b in content] == ["text"]
        assert content[0]["text"].endswith("Sources:\n[1] Pelican - Wikipedia — https://en.wikipedia.org/wiki/Pelican\n"
                                           "[2] Brown pelican | Audubon — https://www.audubon.org/field-guide/bird/brown-pelican")
    assert fake.rejected == []


def test_anthropic_search_error_is_a_notice(server: LoopbackServer) -> None:
    from tests.loopback import Reply

    events = [
        {"type": "message_start", "message": {"usage": {"input_tokens": 5, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "web_search_tool_result",
         "tool_use_id": "srvtoolu_1", "content": {"type": "web_search_tool_result_error", "error_code": "max_uses_exceeded"}}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": "No luck."}},
        {"type": "content_block_stop", "index": 1},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 3}},
        {"type": "message_stop"},
    ]
    server.add(Reply(chunks=[f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events]))
    out = drive(get_protocol("anthropic"), Target("anthropic", server.url, "claude-sonnet-4-5", api_key="k",
                                                  search="anthropic"), ASK)
    assert Notice("web search failed (max_uses_exceeded)") in out


# -- Gemini: the google_search tool and groundingMetadata ----------------------------------------


def test_gemini_google_search_grounding(server: LoopbackServer) -> None:
    fake = FakeGeminiSearch()
    server.default = fake
    target = Target("gemini", server.url, "gemini-2.5-flash", api_key=fake.key, search="gemini")
    events = drive(get_protocol("gemini"), target, ASK)
    assert fake.rejected == []
    assert fake.accepted[0]["tools"] == [{"google_search": {}}]
    assert of(SearchQuery, events) == [SearchQuery(QUERY), SearchQuery("brown pelican habitat")]
    assert of(Citation, events) == [Citation(t, u) for t, u, _ in SOURCES]
    assert text_of(events) == "Pelicans are large water birds. The brown pelican lives on coasts."
    # The next request carries the sources as text (Gemini has no search state to replay).
    drive(get_protocol("gemini"), target, ASK.add(_answered(events, "gemini-2.5-flash", "gemini"))
          .add(Message(role="user", text="more")))
    assert "[2] Brown pelican | Audubon" in fake.accepted[1]["contents"][1]["parts"][0]["text"]
    assert fake.rejected == []


# -- OpenAI-compatible vendors -------------------------------------------------------------------

VENDOR_MODELS = {"openrouter": "openai/gpt-4o", "openai": "gpt-4o-mini-search-preview", "perplexity": "sonar",
                 "hunyuan": "hunyuan-turbos-latest", "zhipu": "glm-4.5", "qwen": "qwen-plus"}


@pytest.mark.parametrize("vendor", ["openrouter", "openai", "perplexity", "hunyuan", "zhipu"])
def test_openai_compatible_vendor_sources(server: LoopbackServer, vendor: str) -> None:
    fake = FakeChatSearch(vendor=vendor)
    server.default = fake
    target = Target(vendor, server.url, VENDOR_MODELS[vendor], api_key=fake.key, search=vendor)
    events = drive(get_protocol("openai"), target, ASK)
    assert fake.rejected == []
    cited = of(Citation, events)
    assert [(c.title, c.url) for c in cited] == [(t, u) for t, u, _ in SOURCES]
    if vendor in ("openrouter", "zhipu"):  # they hand over the passage too
        assert [c.cited_text for c in cited] == [q for _, _, q in SOURCES]
    assert text_of(events).startswith("Pelicans are large water birds")
    assert not of(Notice, events)


@pytest.mark.parametrize("vendor", ["openrouter", "openai", "hunyuan", "zhipu", "qwen"])
def test_search_fields_sent_only_when_search_is_on(server: LoopbackServer, vendor: str) -> None:
    fake = FakeChatSearch(vendor=vendor)
    server.default = fake
    drive(get_protocol("openai"), Target(vendor, server.url, VENDOR_MODELS[vendor], api_key=fake.key), ASK)
    drive(get_protocol("openai"), Target(vendor, server.url, VENDOR_MODELS[vendor], api_key=fake.key, search=vendor), ASK)
    assert fake.rejected == []
    off, on = (set(b) - {"model", "messages", "stream", "stream_options"} for b in fake.accepted)
    assert off == set() and on != set()


def test_qwen_says_its_sources_are_not_returned(server: LoopbackServer) -> None:
    fake = FakeChatSearch(vendor="qwen")
    server.default = fake
    events = drive(get_protocol("openai"), Target("qwen", server.url, "qwen-plus", api_key=fake.key, search="qwen"), ASK)
    assert fake.accepted[0]["enable_search"] is True
    assert of(Citation, events) == []
    assert Notice(QWEN_NO_SOURCES) in events


def test_sources_go_to_the_next_model_as_text(server: LoopbackServer) -> None:
    fake = FakeChatSearch(vendor="perplexity")
    server.default = fake
    cited = Message(role="assistant", text="Pelicans are large [1].", model=ModelRef("a", "claude", "anthropic"),
                    citations=CITED)
    drive(get_protocol("openai"), Target("p", server.url, "sonar", api_key=fake.key),
          ASK.add(cited).add(Message(role="user", text="sure?")))
    sent = fake.accepted[0]["messages"][1]["content"]
    assert sent == ("Pelicans are large [1].\n\nSources:\n[1] Pelican - Wikipedia — https://en.wikipedia.org/wiki/Pelican\n"
                    "[2] Brown pelican | Audubon — https://www.audubon.org/field-guide/bird/brown-pelican")


def test_hostile_source_text_is_cleaned_and_capped() -> None:
    from modelswitch.providers.base import Sources

    sources = Sources()
    n, c = sources.add("A\n  title", " https://x.example/a ", "q" * 2000)
    assert n == 1 and c is not None and c.title == "A title" and c.url == "https://x.example/a"
    assert len(c.cited_text) == 500
    assert sources.add("again", "https://x.example/a") == (1, None)
    assert sources.add("no url", None) == (0, None) and sources.add("blank", "  ") == (0, None)


# -- config, engine, CLI -------------------------------------------------------------------------


def search_config(tmp_path: Path, url: str, vendor: str = "openrouter") -> Path:
    p = tmp_path / "search.toml"
    p.write_text(f"""
default = "web"
[providers.relay]
base_url = "{url}/v1"
api_key_env = "RELAY_KEY"
search = "{vendor}"
retries = 0
[providers.relay.models.web]
id = "{VENDOR_MODELS[vendor]}"
search = true
[providers.relay.models.plain]
id = "plain-model"
[providers.local]
base_url = "{url}/local/v1"
retries = 0
[providers.local.models.nosearch]
id = "tiny"
""", "utf-8")
    return p


def test_config_search_settings_are_validated(tmp_path: Path) -> None:
    cfg = config.build({"providers": {"x": {"type": "openai", "base_url": "http://h", "search": "openrouter",
                                            "models": {"m": {"id": "m", "search": True}}}}}, tmp_path / "c.toml")
    assert cfg.providers["x"].search == "openrouter" and cfg.resolve("m").search is True
    with pytest.raises(errors.ConfigError, match="search"):
        config.build({"providers": {"x": {"type": "openai", "base_url": "http://h", "search": "bing"}}}, tmp_path / "c.toml")
    with pytest.raises(errors.ConfigError, match="search"):
        config.build({"providers": {"x": {"type": "openai", "base_url": "http://h",
                                          "models": {"m": {"id": "m", "search": "yes"}}}}}, tmp_path / "c.toml")


def test_answer_keeps_citations_once_each_in_order(server: LoopbackServer, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY_KEY", "sk-test")
    server.default = FakeChatSearch(vendor="openrouter")
    cfg = config.load(search_config(tmp_path, server.url))
    answer = Answer(cfg, ASK, cfg.resolve("web"))
    list(answer)
    assert answer.message.citations == CITED
    # /search off overrides the model's `search = true`.
    answer = Answer(cfg, ASK, cfg.resolve("web"), settings=Settings(search=False))
    list(answer)
    assert answer.message.citations == () and "plugins" not in server.default.accepted[-1]  # type: ignore[union-attr]


def invoke(args: list[str]):  # noqa: ANN201
    return CliRunner().invoke(app, args, catch_exceptions=False)


@pytest.fixture
def relay(server: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeChatSearch:
    monkeypatch.setenv("RELAY_KEY", "sk-test")
    monkeypatch.setenv("MODELSWITCH_CONFIG", str(search_config(tmp_path, server.url)))
    fake = FakeChatSearch(vendor="openrouter")
    server.default = fake
    return fake


def test_ask_json_has_citations(relay: FakeChatSearch) -> None:
    result = invoke(["ask", "--json", "pelicans?"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["citations"] == [{"title": t, "url": u, "cited_text": q} for t, u, q in SOURCES]
    assert relay.accepted[0]["plugins"] == [{"id": "web"}]


def test_ask_jsonl_has_citation_events(relay: FakeChatSearch) -> None:
    result = invoke(["ask", "--jsonl", "pelicans?"])
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    cites = [e for e in lines if e["type"] == "citation"]
    assert [(c["title"], c["url"]) for c in cites] == [(t, u) for t, u, _ in SOURCES]
    assert lines[-1]["type"] == "done"


def test_ask_plain_pipe_lists_sources_under_the_answer(relay: FakeChatSearch) -> None:
    result = invoke(["ask", "pelicans?"])
    assert result.stdout == (
        "Pelicans are large water birds [1]; the brown pelican lives on coasts [2].\n\n"
        "Sources:\n[1] Pelican - Wikipedia — https://en.wikipedia.org/wiki/Pelican\n"
        "[2] Brown pelican | Audubon — https://www.audubon.org/field-guide/bird/brown-pelican\n")


def test_ask_no_search_and_search_flags(relay: FakeChatSearch) -> None:
    invoke(["ask", "--no-search", "pelicans?"])
    assert "plugins" not in relay.accepted[-1]
    invoke(["ask", "--search", "-m", "plain", "pelicans?"])
    assert relay.accepted[-1]["plugins"] == [{"id": "web"}]


def test_ask_search_on_a_model_without_search_says_which_can(relay: FakeChatSearch, server: LoopbackServer) -> None:
    from tests.loopback import Reply

    server.add(Reply.say("a plain answer", path="/local/"))
    result = invoke(["ask", "--search", "-m", "nosearch", "hi"])
    assert result.exit_code == 0
    assert "nosearch cannot search the web here; models that can: web, plain" in result.stderr
    assert result.stdout == "a plain answer\n"


def test_session_stores_and_exports_sources(relay: FakeChatSearch) -> None:
    assert invoke(["ask", "--session", "birds", "pelicans?"]).exit_code == 0
    exported = json.loads(invoke(["sessions", "export", "birds", "--format", "json"]).stdout)
    assert exported["turns"][1]["citations"][1]["url"] == SOURCES[1][1]
    md = invoke(["sessions", "export", "birds"]).stdout
    assert "1. [Pelican - Wikipedia](<https://en.wikipedia.org/wiki/Pelican>)" in md
    # The sources come back with the session: the next question sends them along as text.
    assert invoke(["ask", "--session", "birds", "--no-search", "and?"]).exit_code == 0
    assert "Sources:\n[1] Pelican - Wikipedia" in relay.accepted[-1]["messages"][1]["content"]


def test_imported_session_keeps_sources(relay: FakeChatSearch, tmp_path: Path) -> None:
    invoke(["ask", "--session", "birds", "pelicans?"])
    path = tmp_path / "birds.json"
    path.write_text(invoke(["sessions", "export", "birds", "--format", "json"]).stdout, "utf-8")
    assert invoke(["sessions", "import", str(path), "--name", "copy"]).exit_code == 0
    again = json.loads(invoke(["sessions", "export", "copy", "--format", "json"]).stdout)
    assert again["turns"][1]["citations"] == exported_citations()


def exported_citations() -> list[dict]:
    return [{"title": t, "url": u, "cited_text": q} for t, u, q in SOURCES]


# -- the REPL ------------------------------------------------------------------------------------


def test_search_command_and_toolbar(relay: FakeChatSearch, tmp_path: Path) -> None:
    from modelswitch.engine.session import ChatSession
    from modelswitch.repl import builtins  # noqa: F401 - registers the commands
    from modelswitch.repl.loop import Repl

    cfg = config.load(search_config(tmp_path, "http://127.0.0.1:9"))
    session = ChatSession(cfg, cfg.resolve("plain"))
    repl = Repl(session, color=False, interactive=False)
    assert session.searching is False and "search on" not in repl.toolbar()
    assert session.set_search(True) == "web search on (plain searches with its provider's own search)"
    assert " · search on" in repl.toolbar(200)
    said = session.switch("nosearch")
    # Models whose key is set come first.
    assert "\nnosearch cannot search the web here; models that can: web, plain, " in said
    assert "search: this model cannot" in repl.toolbar(200)
    session.set_search(False)
    assert "search on" not in repl.toolbar()
    # The model's own `search = true` is the default until /search says otherwise.
    assert ChatSession(cfg, cfg.resolve("web")).searching is True


def test_search_command_rejects_other_words(relay: FakeChatSearch, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from modelswitch.engine.session import ChatSession
    from modelswitch.repl.builtins import BUILTINS
    from modelswitch.repl.loop import Repl

    cfg = config.load(search_config(tmp_path, "http://127.0.0.1:9"))
    repl = Repl(ChatSession(cfg, cfg.resolve("plain")), color=False, interactive=False)
    handler = next(c for c in BUILTINS if c.name == "search").handler
    with pytest.raises(errors.UsageError, match="on or off"):
        handler(repl, "maybe")
    handler(repl, "")
    assert "web search is off (/search on|off)" in capsys.readouterr().err


# -- recorded real streams -----------------------------------------------------------------------


def test_recorded_gemini_grounding_stream(server: LoopbackServer) -> None:
    from tests.loopback import FIXTURES, Reply
    from tests.validators import splits

    data = (FIXTURES / "gemini25pro_stream_google_search_grounding.sse").read_bytes()
    target = Target("gemini", server.url, "gemini-2.5-pro", api_key="k", search="gemini")
    for chunks in splits(data, range(3)):
        server.add(Reply(chunks=chunks))
        events = drive(get_protocol("gemini"), target, ASK)
        # Read from the file by eye: one query, five sources (four redirects and a google.com link).
        assert of(SearchQuery, events) == [SearchQuery("weather in San Francisco today")]
        cited = of(Citation, events)
        assert [c.title for c in cited] == ["wunderground.com", "weatherbug.com", "ktvu.com",
                                            "Weather information for San Francisco, CA, US", "weather.gov"]
        assert cited[3].url == "https://www.google.com/search?q=weather+in+San Francisco, CA,+US"
        assert all(c.url.startswith("https://vertexaisearch.cloud.google.com/grounding-api-redirect/")
                   for c in cited if c is not cited[3])
        assert text_of(events).endswith("a similar mild and dry weather pattern.")


def test_recorded_openrouter_web_plugin_stream(server: LoopbackServer) -> None:
    from tests.loopback import FIXTURES, Reply
    from tests.validators import splits

    data = (FIXTURES / "openrouter_stream_web_plugin_url_citations.sse").read_bytes()
    target = Target("openrouter", server.url, "deepseek/deepseek-chat", api_key="k", search="openrouter")
    for chunks in splits(data, range(3)):
        server.add(Reply(chunks=chunks))
        events = drive(get_protocol("openai"), target, ASK)
        assert text_of(events) == "https://github.com/pydantic/pydantic-ai"
        cited = of(Citation, events)
        assert [c.url for c in cited] == [
            "https://github.com/pydantic/pydantic-ai", "https://github.com/pydantic/pydantic-ai/tree/v1.84.0",
            "https://pydantic.dev/pydantic-ai", "https://github.com/pydantic/pydantic-ai/blob/main/AGENTS.md",
            "https://github.com/pydantic/pydantic-ai/tree/v1.67.0"]
        assert cited[2].title == ""  # recorded so; the list then shows the URL alone
        assert cited[0].cited_text.startswith("# pydantic/pydantic-ai ... How Python does AI")
        assert not of(Notice, events)


def test_ask_jsonl_shows_the_search_before_the_text(server: LoopbackServer, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "claude.toml"
    cfg.write_text(f"""
default = "claude"
[providers.anth]
type = "anthropic"
base_url = "{server.url}"
api_key_env = "ANTH_KEY"
retries = 0
[providers.anth.models.claude]
id = "claude-sonnet-4-5"
search = true
""", "utf-8")
    monkeypatch.setenv("MODELSWITCH_CONFIG", str(cfg))
    monkeypatch.setenv("ANTH_KEY", "sk-ant-test")
    server.default = fake = FakeAnthropicSearch()
    lines = [json.loads(line) for line in invoke(["ask", "--jsonl", "pelicans?"]).stdout.splitlines()]
    kinds = [e["type"] for e in lines]
    assert lines[kinds.index("search")] == {"type": "search", "query": QUERY}
    assert kinds.index("search") < kinds.index("text") < kinds.index("citation")
    assert fake.rejected == []
