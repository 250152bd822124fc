"""Real recorded responses of web search, grounding and tool calls, replayed through our parsers.

Each fixture is a provider's response as a public test suite recorded it (provenance, licence and
every change in tests/fixtures/meta/NAME.meta.json). The expected values below are read from the
recording itself, not from what our parser happens to return: a parser change that loses or
invents a source, a query, a call or a word fails here.
"""

from __future__ import annotations

import json

from modelswitch.conversation import Conversation, Message, ModelRef, ToolResult, ToolRound, ToolSpec
from modelswitch.events import (
    Citation,
    Done,
    Notice,
    ReasoningDelta,
    ReplayState,
    SearchQuery,
    TextDelta,
    ToolCall,
    Usage,
)
from modelswitch.providers import get_protocol
from modelswitch.providers.base import Target
from tests.loopback import FIXTURES
from tests.validators import splits

ASK = Conversation().add(Message(role="user", text="What is the weather in San Francisco today?"))


def of(kind: type, events: list) -> list:
    return [e for e in events if isinstance(e, kind)]


def text_of(events: list) -> str:
    return "".join(e.text for e in of(TextDelta, events))


def parse(protocol: str, target: Target, chunks: list[bytes]) -> list:
    return list(get_protocol(protocol).parse_stream(chunks, target))


# -- Anthropic: the web_search server tool, two rounds, citations_delta ----------------------------

ANTHROPIC_SEARCH = "anthropic_stream_web_search_citations_sonnet4.sse"
CLAUDE = Target("anthropic", "https://api.anthropic.com", "claude-sonnet-4-0", api_key="k", search="anthropic")

# The cited passages of the recording, each with the source its citations_delta named (the
# sources are numbered by first citation; the same source cited again keeps its number).
ANTHROPIC_ANSWER = (
    "Based on the search results, I can provide you with information about San Francisco's weather"
    " today (September 16, 2025):\n\nAccording to AccuWeather's forecast, "
    "today (September 16) shows a high of 76°F and low of 59°F [1]"
    " for San Francisco.\n\nFrom the recent San Francisco Chronicle weather report, "
    "average mid-September highs in San Francisco are around 70 degrees [2]"
    ", so today's forecast of 76°F is slightly above the typical temperature for this time of year."
    "\n\nThe general weather pattern for San Francisco in September includes:\n- "
    "Daytime temperatures usually reach 22°C (72°F) in San Francisco in September, falling to 13°C"
    " (55°F) at night [3]\n- "
    "There are normally 9 hours of bright sunshine each day in San Francisco in September [3]\n- "
    "San Francisco experiences minimal rainfall in September, with an average precipitation of just"
    " 3mm. Typically, there are no rainy days during this month [4]"
    "\n\nSo for today, you can expect partly sunny to sunny skies with a high around 76°F (24°C)"
    " and a low around 59°F (15°C), with very little chance of rain. It's shaping up to be a"
    " pleasant day in San Francisco!"
)
ANTHROPIC_BETWEEN_ROUNDS = (
    "Based on the search results, I can see that the information is a bit dated (most results are"
    " from about 6 days to a week ago), but I can provide you with the available weather information"
    " for San Francisco. Let me search for more current information."
)


def test_anthropic_recorded_web_search_stream_in_any_chunking() -> None:
    data = (FIXTURES / ANTHROPIC_SEARCH).read_bytes()
    for chunks in splits(data, range(3)):
        events = parse("anthropic", CLAUDE, chunks)
        assert of(SearchQuery, events) == [SearchQuery("San Francisco weather today"),
                                           SearchQuery("San Francisco weather September 16 2025")]
        assert of(Citation, events) == [
            Citation("San Francisco, CA Monthly Weather | AccuWeather",
                     "https://www.accuweather.com/en/us/san-francisco/94103/september-weather/347629",
                     "San Francisco, CA Weather Today WinterCast Local {stormName} Tracker Hourly Daily Radar "
                     "MinuteCast® Monthly Air Quality Health & Activities · News · F..."),
            Citation("Here’s when S.F. weather could hit 90 degrees next week",
                     "https://www.sfchronicle.com/weather-forecast/article/weather-forecast-san-francisco-21043269.php",
                     "Average mid-September highs in San Francisco are around 70 degrees."),
            Citation("San Francisco weather in September 2025 | California",
                     "https://www.weather2travel.com/california/san-francisco/september/",
                     "... Daytime temperatures usually reach 22°C in San Francisco in September, falling to "
                     "13°C at night."),
            Citation("Weather San Francisco in September 2025: Temperature & Climate",
                     "https://en.climate-data.org/north-america/united-states-of-america/california/"
                     "san-francisco-385/t/september-9/",
                     "San Francisco experiences minimal rainfall in September, with an average precipitation "
                     "of just 3mm. Typically, there are no rainy days during this mon..."),
        ]
        assert text_of(events) == ANTHROPIC_BETWEEN_ROUNDS + ANTHROPIC_ANSWER
        assert "".join(e.text for e in of(ReasoningDelta, events)).endswith(
            "I'll include \"today\" in the search query to get the most current information.")
        # Each query is shown before the text that follows its search, as it ran.
        kinds = [(type(e), getattr(e, "query", None)) for e in events]
        second = kinds.index((SearchQuery, "San Francisco weather September 16 2025"))
        assert text_of(events[:second]) == ANTHROPIC_BETWEEN_ROUNDS
        assert of(Usage, events)[0].input_tokens == 22397 and of(Usage, events)[0].output_tokens == 637
        assert of(Notice, events) == [] and events[-1] == Done("stop")


def test_anthropic_recorded_search_blocks_go_back_exactly_to_the_same_model() -> None:
    events = parse("anthropic", CLAUDE, [(FIXTURES / ANTHROPIC_SEARCH).read_bytes()])
    answer = Message(role="assistant", text=text_of(events), model=ModelRef("claude", CLAUDE.model_id, "anthropic"),
                     replay=tuple(of(ReplayState, events)), citations=tuple(of(Citation, events)))
    history = ASK.add(answer).add(Message(role="user", text="And tomorrow?"))
    body = get_protocol("anthropic").build_request(CLAUDE, history).body
    sent = body["messages"][1]["content"]
    assert [b["type"] for b in sent] == ["thinking", "server_tool_use", "web_search_tool_result",
                                         "server_tool_use", "web_search_tool_result", "text"]
    recorded = [json.loads(line[6:]) for line in (FIXTURES / ANTHROPIC_SEARCH).read_text("utf-8").splitlines()
                if line.startswith("data: ")]
    results = [e["content_block"] for e in recorded
               if e["type"] == "content_block_start" and e["content_block"]["type"] == "web_search_tool_result"]
    # The result blocks, encrypted_content and all, are the ones the API sent, unchanged.
    assert [sent[2], sent[4]] == results
    assert (sent[1]["id"], sent[1]["input"]) == ("srvtoolu_01FYcUbzEaqqQh1WBRj1QX3h",
                                                 {"query": "San Francisco weather today"})
    assert sent[0]["signature"] == "Er8ECkYIBxgC...(abridged)"


# -- Gemini: a streamed functionCall with its thoughtSignature, and the answer after it -------------

GEMINI_CALL = "gemini3pro_stream_functioncall_thoughtsignature_turn1.sse"
GEMINI_AFTER = "gemini3pro_stream_functioncall_thoughtsignature_turn2.sse"
GEMINI3 = Target("gemini", "https://generativelanguage.googleapis.com", "gemini-3-pro-preview", api_key="k")


def recorded_request(name: str) -> dict:
    return json.loads((FIXTURES / "meta" / f"{name}.meta.json").read_text("utf-8"))["request"]["body"]


def test_gemini_recorded_function_call_keeps_its_signature_and_goes_back_as_accepted() -> None:
    import base64

    data = (FIXTURES / GEMINI_CALL).read_bytes()
    for chunks in splits(data, range(3)):
        events = parse("gemini", GEMINI3, chunks)
        assert of(ToolCall, events) == [ToolCall("call_0", "get_country", "{}")]
        assert text_of(events) == "" and events[-1] == Done("tool_calls")
    signature = json.loads(data.split(b"\r\n\r\n")[0][6:])["candidates"][0]["content"]["parts"][0]["thoughtSignature"]
    ref = ModelRef("gemini", GEMINI3.model_id, "gemini")
    rnd = ToolRound("", "", ref, tuple(of(ToolCall, events)), (ToolResult("call_0", "get_country", "Mexico"),),
                    tuple(of(ReplayState, events)))
    question = recorded_request(GEMINI_CALL.removesuffix(".sse"))["contents"][0]["parts"][0]["text"]
    conv = Conversation().add(Message("user", question)).add(Message("assistant", "", model=ref, rounds=(rnd,)))
    body = get_protocol("gemini").build_request(GEMINI3, conv).body
    assert body is not None
    # The signature stays on its functionCall part, byte for byte as streamed.
    assert body["contents"][1] == {"role": "model", "parts": [
        {"functionCall": {"name": "get_country", "args": {}}, "thoughtSignature": signature}]}
    assert body["contents"][2] == {"role": "user", "parts": [
        {"functionResponse": {"name": "get_country", "response": {"result": "Mexico"}}}]}
    # The request Gemini accepted (200) carried the same signature bytes (its recorder re-encoded
    # them as URL-safe base64).
    accepted = recorded_request(GEMINI_AFTER.removesuffix(".sse"))["contents"][1]["parts"][0]
    assert base64.urlsafe_b64decode(accepted["thoughtSignature"]) == base64.b64decode(signature)
    after = parse("gemini", GEMINI3, [(FIXTURES / GEMINI_AFTER).read_bytes()])
    assert text_of(after) == "The capital of Mexico is Mexico City." and after[-1] == Done("stop")


# -- Perplexity: citations repeated on every chunk, [n] markers in the text -----------------------

PERPLEXITY_CITED = (
    "https://populationstat.com/united-states/san-francisco",
    "https://en.wikipedia.org/wiki/San_Francisco",
    "https://fred.stlouisfed.org/graph/?g=4K5j",
    "https://www.california-demographics.com/cities_by_population",
    "https://worldpopulationreview.com/us-cities/california/san-francisco",
    "https://worldpopulationreview.com/us-counties/california/san-francisco-county",
    "https://www.worldometers.info/world-population/us-population/",
)


def test_perplexity_recorded_stream_lists_each_source_once_in_its_own_numbering() -> None:
    data = (FIXTURES / "perplexity_sonar_stream_citations.sse").read_bytes()
    target = Target("perplexity", "https://api.perplexity.ai", "sonar", api_key="k", search="perplexity")
    for chunks in splits(data, range(3)):
        events = parse("openai", target, chunks)
        # The list arrives whole on every chunk: each URL once, in Perplexity's order, so the
        # text's own [2][3] point at the right sources.
        assert [c.url for c in of(Citation, events)] == list(PERPLEXITY_CITED)
        assert all(c.title == "" and c.cited_text == "" for c in of(Citation, events))
        assert text_of(events) == "The current population of **[2][3]"
        assert of(Usage, events)[-1].input_tokens == 10 and of(Usage, events)[-1].output_tokens == 336
        assert of(Notice, events) == [] and events[-1] == Done("stop")


# -- OpenAI-compatible tool calls: parallel fragments, and two relays' variations ----------------

def test_openai_recorded_parallel_calls_join_their_own_fragments() -> None:
    data = (FIXTURES / "openai_chat_stream_parallel_toolcalls_gpt4_0125.sse").read_bytes()
    target = Target("openai", "https://api.openai.com/v1", "gpt-4-0125-preview", api_key="k")
    for chunks in splits(data, range(3)):
        events = parse("openai", target, chunks)
        assert of(ToolCall, events) == [
            ToolCall("call_3Gyr3HylFJwfrtKrL6NaIit1", "search", '{"search_query": "Discourse AI bot"}'),
            ToolCall("call_H7YkbgYurHpyJqzwUN4bghwN", "search", '{"query": "Discourse AI bot2"}'),
        ]
        assert text_of(events) == "" and events[-1] == Done("tool_calls")


def test_openrouter_recorded_kimi_call_variants_give_one_call_each() -> None:
    target = Target("openrouter", "https://openrouter.ai/api/v1", "moonshotai/kimi-k2", api_key="k")
    # Variant a repeats the id and name on its second fragment and never sends a finish_reason;
    # variant c names the call first and sends the arguments alone.
    for name, call_id, usage in (("openrouter_kimi_k2_stream_toolcall_repeated_id_no_finish_reason.sse", "0", (57, 17)),
                                 ("openrouter_kimi_k2_stream_toolcall_split_name_then_arguments.sse", "llm_version:0", (56, 12))):
        data = (FIXTURES / name).read_bytes()
        for chunks in splits(data, range(3)):
            events = parse("openai", target, chunks)
            assert of(ToolCall, events) == [ToolCall(call_id, "llm_version", "{}")], name
            assert (of(Usage, events)[-1].input_tokens, of(Usage, events)[-1].output_tokens) == usage
            assert events[-1] == Done("tool_calls") and of(Notice, events) == []


# -- OpenAI search models: url_citation annotations ------------------------------------------------

def test_openai_recorded_search_preview_annotations_give_each_source_once() -> None:
    data = (FIXTURES / "openai_chat_search_preview_nonstream_url_citations.json").read_bytes()
    recorded = json.loads(data)["choices"][0]["message"]
    target = Target("openai", "https://api.openai.com/v1", "gpt-4o-search-preview", api_key="k", search="openai")
    events = parse("openai", target, [data])
    reuters = "https://www.reuters.com/"
    assert [(c.title, c.url) for c in of(Citation, events)] == [
        ("Iceland volcano emits smoke and glowing lava in 12th eruption since 2021",
         reuters + "business/environment/iceland-volcano-erupts-12th-time-since-2021-2025-07-16/?utm_source=openai"),
        ("Iceland to launch negotiations on security, defence partnership with EU",
         reuters + "world/iceland-launch-negotiations-security-defence-partnership-with-eu-2025-07-17/?utm_source=openai"),
        ("News | Icelandic Meteorological office", "https://en.vedur.is/about-imo/news?utm_source=openai"),
        ("Latest news - Iceland Monitor", "https://icelandmonitor.mbl.is/news/latest/?utm_source=openai"),
        ("Iceland volcano eruption forces evacuation of town and iconic geothermal spa",
         "https://apnews.com/article/c72f44eb9ecb5f2d87e87fd53ed3b26d?utm_source=openai"),
    ]
    # The text already links its sources: it is kept exactly, with no markers added.
    assert text_of(events) == recorded["content"]
    assert of(Usage, events)[0].output_tokens == 603 and events[-1] == Done("stop")


# -- Gemini with Google Search: the search results count as input ------------------------------

def test_gemini_recorded_search_usage_adds_up_to_the_total_google_reports() -> None:
    for name, model, (tokens_in, tokens_out) in (
        ("gemini25pro_stream_google_search_grounding.sse", "gemini-2.5-pro", (17 + 104, 205 + 319)),
        ("gemini25flash_stream_google_search_usage_tooluse_tokens.sse", "gemini-2.5-flash", (17 + 308, 37 + 333)),
    ):
        data = (FIXTURES / name).read_bytes()
        last = json.loads(data.rstrip().split(b"\r\n\r\n")[-1][6:])["usageMetadata"]
        usage = of(Usage, parse("gemini", Target("gemini", "https://g", model, api_key="k", search="gemini"), [data]))
        assert len(usage) == 1, name
        # promptTokenCount + toolUsePromptTokenCount in, candidates + thoughts out: Google's total.
        assert (usage[0].input_tokens, usage[0].output_tokens) == (tokens_in, tokens_out)
        assert usage[0].input_tokens + usage[0].output_tokens == last["totalTokenCount"]
    flash = (FIXTURES / "gemini25flash_stream_google_search_usage_tooluse_tokens.sse").read_bytes()
    assert text_of(parse("gemini", Target("gemini", "https://g", "gemini-2.5-flash", api_key="k"), [flash])) == \
        "The current date is Wednesday, August 26, 2026."


# -- Ollama: a tool call on the native NDJSON stream --------------------------------------------

def test_ollama_recorded_tool_call_parses_and_goes_back_in_ollamas_shape() -> None:
    data = (FIXTURES / "ollama_chat_ndjson_toolcall_llama31.ndjson").read_bytes()
    target = Target("ollama", "http://127.0.0.1:11434", "llama3.1:8b")
    for chunks in splits(data, range(3)):
        events = parse("ollama", target, chunks)
        assert of(ToolCall, events) == [ToolCall("call_icagibop", "get_weather", '{"city": "Paris"}')]
        # done_reason "stop" after a call is a finished tool round.
        assert text_of(events) == "" and events[-1].finish_reason == "tool_calls"
    rnd = ToolRound("", "", ModelRef("ollama", "llama3.1:8b", "ollama"), tuple(of(ToolCall, events)),
                    (ToolResult("call_icagibop", "get_weather", "sunny"),))
    conv = Conversation().add(Message("user", "Weather in Paris?")).add(Message("assistant", "", rounds=(rnd,)))
    body = get_protocol("ollama").build_request(
        Target("ollama", "http://127.0.0.1:11434", "llama3.1:8b", tools=(ToolSpec("get_weather", "weather"),)), conv).body
    assert body is not None
    # Arguments go back as the object Ollama sent, the result under the tool's name.
    assert body["messages"][1:] == [
        {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
        {"role": "tool", "content": "sunny", "tool_name": "get_weather"},
    ]
