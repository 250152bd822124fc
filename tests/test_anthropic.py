"""Anthropic Messages: recorded streams parse exactly; requests are what the API accepts."""

from __future__ import annotations

import json

import pytest

from modelswitch import errors
from modelswitch.config.load import Price
from modelswitch.conversation import Conversation, Message, ModelRef
from modelswitch.events import Done, Notice, ReasoningDelta, ReplayState, TextDelta, Usage
from modelswitch.config.pricing import Cost, cost_of
from modelswitch.providers import get_protocol
from modelswitch.providers.anthropic import PROTOCOL, max_tokens_for, thinking_plan
from modelswitch.providers.base import Target
from tests.loopback import FIXTURES, LoopbackServer, Reply
from tests.validators import FakeAnthropic, drive, splits

TARGET = Target("anthropic", "https://api.anthropic.com", "claude-haiku-4-5", api_key="sk-ant-test")

# Worked out by reading each file, not by running the parser.
EXPECTED = {
    "anthropic_stream_text_haiku45.sse": (
        "Hello", "", Usage(10, 4, 0, 0), "stop", 0,
    ),
    "anthropic_stream_thinking_haiku45.sse": (
        '1. **Pouch** - references their iconic bill pouch\n2. **Pelé** - playful take on "pelican"',
        "The user wants two names for a pet pelican, and they want me to be brief. I'll suggest two "
        "names that would suit a pelican well.\n\nSome good options:\n- Pelé (play on pelican)\n- Pouch "
        "(referencing their bill pouch)\n- Captain Beak\n- Squirt\n- Scoop\n- Wing\n\nLet me give two "
        "brief, catchy names:",
        Usage(46, 133, 0, 0), "stop", 1,
    ),
    "anthropic_stream_thinking_sonnet45.sse": (
        "- Captain\n- Scoop",
        "The user wants two names for a pet pelican, and wants me to be brief. I'll give two simple, "
        "fitting names.\n\nSome options:\n- Pete\n- Percy\n- Captain\n- Scoop\n- Bill\n- Gully\n\nI'll "
        "pick two good ones and keep it very short.",
        Usage(46, 84, 0, 0), "stop", 1,
    ),
    # Adaptive thinking: a "\n\n" text block comes BEFORE the thinking block.
    "anthropic_stream_adaptive_thinking_opus46.sse": (
        "\n\n1. **Captain Scoop**\n2. **Gullet**", "Brief answer with two pet pelican names.",
        Usage(34, 44, 0, 0), "stop", 1,
    ),
    "anthropic_stream_thinking_tooluse_turn1.sse": (
        "",
        "The user wants me to:\n1. Use the fixed_version tool\n2. Tell them the version\n3. Make a short "
        "joke about it\n\nLet me first call the fixed_version tool to see what version it returns.",
        Usage(598, 92, 53, 0), "tool_calls", 1,
    ),
    "anthropic_stream_thinking_tooluse_turn2_thinking_passed_back.sse": (
        "The version is **0.32a0**.\n\nHere's a joke about it: \n\nLooks like this version is still in "
        "alpha testing... I guess you could say it's going through a \"0.32a good time\" before becoming "
        "stable! 😄\n\n(It's at version 0.32a, which means it's far from 1.0, so plenty of room to grow!)",
        "", Usage(707, 89, 0, 0), "stop", 0,
    ),
}


def collect(events: list) -> tuple[str, str, list[Usage], list[ReplayState], list]:
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    reasoning = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
    usages = [e for e in events if isinstance(e, Usage)]
    replays = [e for e in events if isinstance(e, ReplayState)]
    return text, reasoning, usages, replays, [e for e in events if isinstance(e, Done)]


def sse(*events: tuple[str, dict]) -> bytes:
    return b"".join(f"event: {name}\ndata: {json.dumps(d)}\n\n".encode() for name, d in events)


START = ("message_start", {"type": "message_start", "message": {"usage": {"input_tokens": 5, "output_tokens": 1}}})
TEXT0 = ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})


def delta(text: str) -> tuple[str, dict]:
    return ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}})


def test_registered_under_its_name() -> None:
    assert get_protocol("anthropic") is PROTOCOL and PROTOCOL.name == "anthropic"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_recorded_stream_parses_exactly_in_any_chunking(name: str) -> None:
    text, reasoning, usage, finish, n_replay = EXPECTED[name]
    data = (FIXTURES / name).read_bytes()
    for chunks in splits(data):
        events = list(PROTOCOL.parse_stream(chunks, TARGET))
        got = collect(events)
        assert got[:3] == (text, reasoning, [usage])
        assert len(got[3]) == n_replay
        assert events[-1] == Done(finish) and got[4] == [events[-1]]


def test_thinking_signature_is_kept_exactly_as_the_api_wants_it_back() -> None:
    events = list(PROTOCOL.parse_stream([(FIXTURES / "anthropic_stream_thinking_tooluse_turn1.sse").read_bytes()], TARGET))
    (state,) = [e for e in events if isinstance(e, ReplayState)]
    assert (state.protocol, state.model) == ("anthropic", "claude-haiku-4-5")
    meta = json.loads((FIXTURES / "meta/anthropic_stream_thinking_tooluse_turn2_thinking_passed_back.meta.json").read_text())
    recorded = meta["request"]["body"]["messages"][1]["content"][0]  # what the API accepted back
    assert json.loads(state.data) == recorded


def test_replay_state_comes_before_done_and_after_the_text() -> None:
    events = list(PROTOCOL.parse_stream([(FIXTURES / "anthropic_stream_adaptive_thinking_opus46.sse").read_bytes()], TARGET))
    kinds = [type(e).__name__ for e in events]
    assert kinds[-3:] == ["Usage", "ReplayState", "Done"]
    assert kinds.index("TextDelta") < kinds.index("ReasoningDelta")  # text block came first


def test_overloaded_error_event_raises_after_what_arrived() -> None:
    body = sse(START, TEXT0, delta("Hel"), ("ping", {"type": "ping"}),
               ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}))
    seen = []
    with pytest.raises(errors.OverloadedError, match="Overloaded"):
        for event in PROTOCOL.parse_stream([body], TARGET):
            seen.append(event)
    assert seen == [TextDelta("Hel")]


def test_refusal_notice_carries_the_stop_details_explanation() -> None:
    stop = {"stop_reason": "refusal", "stop_sequence": None,
            "stop_details": {"type": "refusal", "category": None, "explanation": "Not something\nI can help with."}}
    body = sse(START, ("message_delta", {"type": "message_delta", "delta": stop, "usage": {"output_tokens": 3}}),
               ("message_stop", {"type": "message_stop"}))
    events = list(PROTOCOL.parse_stream([body], TARGET))
    assert Notice("stopped: Claude declined to continue this answer (refusal): Not something I can help with.") in events
    assert events[-1] == Done("content_filter")


def test_other_error_event_is_a_stream_error() -> None:
    body = sse(START, ("error", {"type": "error", "error": {"type": "api_error", "message": "Internal server error"}}))
    with pytest.raises(errors.StreamError, match="api_error.*Internal server error"):
        list(PROTOCOL.parse_stream([body], TARGET))


def test_a_stream_cut_before_message_stop_is_an_error_not_an_answer() -> None:
    body = sse(START, TEXT0, delta("Half an"))
    with pytest.raises(errors.StreamError, match="message_stop"):
        list(PROTOCOL.parse_stream([body], TARGET))


def test_garbage_is_a_protocol_error() -> None:
    with pytest.raises(errors.ProtocolError):
        list(PROTOCOL.parse_stream([b"event: message_start\ndata: {not json\n\n"], TARGET))


def test_max_tokens_stop_is_told_in_words() -> None:
    body = sse(START, TEXT0, delta("cut"),
               ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 9}}),
               ("message_stop", {"type": "message_stop"}))
    events = list(PROTOCOL.parse_stream([body], TARGET))
    assert Notice("stopped: the answer hit max_tokens (8192)") in events
    assert events[-1] == Done("length")


def test_cache_reads_count_as_cached_input() -> None:
    start = ("message_start", {"type": "message_start", "message": {"usage": {
        "input_tokens": 5, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 10, "output_tokens": 1}}})
    body = sse(start, ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 7}}),
               ("message_stop", {"type": "message_stop"}))
    usage = [e for e in PROTOCOL.parse_stream([body], TARGET) if isinstance(e, Usage)]
    assert usage == [Usage(input_tokens=115, output_tokens=7, reasoning_tokens=0, cached_tokens=100,
                           cache_write_tokens=10)]  # no lifetime split: the default five minutes


def test_cache_writes_are_priced_by_their_lifetime() -> None:
    # The usage shape of the recorded message_start (cache_creation split by lifetime).
    start = ("message_start", {"type": "message_start", "message": {"usage": {
        "input_tokens": 100, "cache_creation_input_tokens": 3000, "cache_read_input_tokens": 5000,
        "cache_creation": {"ephemeral_5m_input_tokens": 2000, "ephemeral_1h_input_tokens": 1000},
        "output_tokens": 1, "service_tier": "standard"}}})
    body = sse(start, TEXT0, delta("x"), ("content_block_stop", {"type": "content_block_stop", "index": 0}),
               ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                                  "usage": {"input_tokens": 100, "cache_creation_input_tokens": 3000,
                                            "cache_read_input_tokens": 5000, "output_tokens": 400}}),
               ("message_stop", {"type": "message_stop"}))
    [usage] = [e for e in PROTOCOL.parse_stream([body], TARGET) if isinstance(e, Usage)]
    assert usage == Usage(8100, 400, 0, 5000, cache_write_tokens=2000, cache_write_1h_tokens=1000)
    # 100 x 3 + 5000 x 0.3 + 2000 x 3.75 + 1000 x 6 + 400 x 15 = 21300 per million
    assert cost_of(usage, Price(3.0, 15.0, "USD", cached_input=0.3)) == Cost(0.0213, "USD")


def test_a_stream_without_counts_has_unknown_usage_and_cost() -> None:
    start = ("message_start", {"type": "message_start", "message": {"id": "m", "type": "message", "content": []}})
    body = sse(start, TEXT0, delta("hi"), ("content_block_stop", {"type": "content_block_stop", "index": 0}),
               ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}}),
               ("message_stop", {"type": "message_stop"}))
    events = list(PROTOCOL.parse_stream([body], TARGET))
    assert not [e for e in events if isinstance(e, Usage)] and events[-1] == Done("stop")


# -- requests --------------------------------------------------------------------------------

CLAUDE = ModelRef("anthropic", "claude-haiku-4-5", "anthropic")
OTHER_CLAUDE = ModelRef("anthropic", "claude-sonnet-4-5", "anthropic")
THINKING = {"type": "thinking", "thinking": "mine", "signature": "SIG1"}


def answer(text: str, model: ModelRef, *replay: ReplayState, reasoning: str = "") -> Message:
    return Message("assistant", text, reasoning=reasoning, model=model, replay=replay)


def test_request_shape_system_top_level_and_max_tokens_always() -> None:
    conv = Conversation("Be terse.", (Message("user", "hi"),))
    req = PROTOCOL.build_request(TARGET, conv)
    assert req.method == "POST" and req.url == "https://api.anthropic.com/v1/messages"
    assert req.headers["x-api-key"] == "sk-ant-test" and req.headers["anthropic-version"] == "2023-06-01"
    assert req.body == {
        "model": "claude-haiku-4-5", "max_tokens": 8192, "stream": True, "system": "Be terse.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    }


def test_claude_3_gets_a_max_tokens_it_can_honour() -> None:
    assert max_tokens_for(Target("a", "u", "claude-3-haiku-20240307")) == 4096
    assert max_tokens_for(Target("a", "u", "claude-3-5-haiku-latest")) == 8192


@pytest.mark.parametrize(
    ("reasoning", "max_tokens", "budget", "sent_max"),
    [
        (True, None, 8192, 16384),
        ("low", None, 2048, 8192),
        ("high", None, 16384, 24576),
        (500, None, 1024, 8192),  # below the API's minimum: raised to it
        (20000, 8192, 4096, 8192),  # above the user's max_tokens: the budget shrinks, the cap stands
        (20000, None, 20000, 28192),  # no max_tokens set: it grows to hold the budget
        (4096, 1000, None, 1000),  # no room for the minimum budget: thinking off, the cap stands
        (4096, 1025, 1024, 1025),  # just room for the minimum budget
        (3000, 4000, 3000, 4000),  # already fits: the user's max_tokens stands
        (False, None, None, 8192),
        (None, None, None, 8192),
    ],
)
def test_reasoning_maps_to_a_valid_thinking_budget(reasoning: object, max_tokens: int | None, budget: int | None, sent_max: int) -> None:
    target = Target("a", "u", "claude-sonnet-4-5", max_tokens=max_tokens, reasoning=reasoning, temperature=0.3)  # type: ignore[arg-type]
    body = PROTOCOL.build_request(target, Conversation(None, (Message("user", "q"),))).body
    assert thinking_plan(target).budget == budget
    assert body["max_tokens"] == sent_max
    if budget is None:
        assert "thinking" not in body and body["temperature"] == 0.3
    else:
        assert body["thinking"] == {"type": "enabled", "budget_tokens": budget}
        assert "temperature" not in body  # only 1 is allowed with thinking


def test_a_budget_cut_to_fit_the_users_max_tokens_is_said_before_the_answer() -> None:
    cut = Target("a", "u", "claude-sonnet-4-5", max_tokens=3000, reasoning=4096)
    events = list(PROTOCOL.parse_stream([(FIXTURES / "anthropic_stream_thinking_sonnet45.sse").read_bytes()], cut))
    assert events[0] == Notice("thinking budget cut from 4096 to 1500 tokens to fit max_tokens 3000; "
                               "raise max_tokens to think longer")
    off = Target("a", "u", "claude-sonnet-4-5", max_tokens=1000, reasoning=4096)
    events = list(PROTOCOL.parse_stream([(FIXTURES / "anthropic_stream_text_haiku45.sse").read_bytes()], off))
    assert isinstance(events[0], Notice) and events[0].text.startswith("thinking off for this answer: max_tokens 1000")
    fits = Target("a", "u", "claude-sonnet-4-5", max_tokens=16000, reasoning=4096)
    events = list(PROTOCOL.parse_stream([(FIXTURES / "anthropic_stream_text_haiku45.sse").read_bytes()], fits))
    assert not [e for e in events if isinstance(e, Notice)]


def test_temperature_is_capped_at_claudes_maximum() -> None:
    body = PROTOCOL.build_request(Target("a", "u", "m", temperature=1.7), Conversation(None, (Message("user", "q"),))).body
    assert body["temperature"] == 1.0


def test_consecutive_user_turns_are_merged() -> None:
    conv = Conversation(None, (Message("user", "one"), Message("user", "two")))
    msgs = PROTOCOL.build_request(TARGET, conv).body["messages"]
    assert msgs == [{"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]}]


def test_a_failed_exchange_is_not_sent_again() -> None:
    failed = Message("assistant", "", model=CLAUDE, status="error")  # no answer: its question goes too
    conv = Conversation(None, (Message("user", "one"), failed, Message("user", "one")))
    msgs = PROTOCOL.build_request(TARGET, conv).body["messages"]
    assert msgs == [{"role": "user", "content": [{"type": "text", "text": "one"}]}]


def test_own_thinking_replayed_first_only_to_the_same_model() -> None:
    mine = ReplayState("anthropic", "claude-haiku-4-5", json.dumps(THINKING))
    redacted = ReplayState("anthropic", "claude-haiku-4-5", json.dumps({"type": "redacted_thinking", "data": "XYZ"}))
    conv = Conversation(None, (Message("user", "q"), answer("A", CLAUDE, mine, redacted, reasoning="mine"), Message("user", "q2")))
    same = PROTOCOL.build_request(TARGET, conv).body["messages"][1]
    assert same == {"role": "assistant", "content": [THINKING, {"type": "redacted_thinking", "data": "XYZ"}, {"type": "text", "text": "A"}]}
    other = PROTOCOL.build_request(Target("a", "u", "claude-sonnet-4-5"), conv).body["messages"][1]
    assert other == {"role": "assistant", "content": [{"type": "text", "text": "A"}]}


def test_foreign_state_and_reasoning_text_are_never_sent() -> None:
    foreign = (
        ReplayState("gemini", "claude-haiku-4-5", json.dumps(THINKING)),  # same id, other protocol
        ReplayState("anthropic", "claude-haiku-4-5", "{not json"),
        ReplayState("anthropic", "claude-haiku-4-5", json.dumps({"type": "thinking", "thinking": "x"})),  # unsigned
    )
    r1 = ModelRef("deepseek", "deepseek-reasoner", "openai")
    conv = Conversation(None, (Message("user", "q"), answer("A", r1, *foreign, reasoning="SECRET CHAIN"), Message("user", "q2")))
    body = PROTOCOL.build_request(TARGET, conv).body
    assert body["messages"][1]["content"] == [{"type": "text", "text": "A"}]
    assert "SECRET CHAIN" not in json.dumps(body) and "SIG1" not in json.dumps(body)


def test_whitespace_only_turns_are_left_out() -> None:
    conv = Conversation("  ", (Message("user", "q"), Message("user", " \n ")))
    body = PROTOCOL.build_request(TARGET, conv).body
    assert "system" not in body
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "q"}]}]


# -- errors ----------------------------------------------------------------------------------


def test_error_bodies_give_their_message() -> None:
    assert PROTOCOL.error_message(400, (FIXTURES / "anthropic_400_invalid_request_error.json").read_bytes()) == (
        "This model does not support effort level 'xhigh'. Supported levels: high, low, max, medium.")
    assert PROTOCOL.error_message(404, (FIXTURES / "anthropic_404_not_found_error.json").read_bytes()) == "model: claude-sonet-4-5"
    assert PROTOCOL.error_message(529, b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}') == "Overloaded"


@pytest.mark.parametrize("body", [b"", b"\xff\xfe", b"[]", b"null", b'{"error": 3}', b"<html>oops</html>", b"x" * 5000, b"[" * 100000])
def test_error_message_never_raises(body: bytes) -> None:
    assert isinstance(PROTOCOL.error_message(500, body), str)


# -- through HTTP ----------------------------------------------------------------------------


def test_recorded_stream_through_loopback(server: LoopbackServer) -> None:
    server.add(Reply.fixture("anthropic_stream_thinking_haiku45.sse", size=7))
    target = Target("anthropic", server.url, "claude-haiku-4-5", api_key="k", reasoning=True)
    events = drive(PROTOCOL, target, Conversation("sys", (Message("user", "Two names for a pet pelican"),)))
    text, reasoning, usage, replays, _ = collect(events)
    name = "anthropic_stream_thinking_haiku45.sse"
    assert (text, reasoning, usage) == EXPECTED[name][:2] + ([EXPECTED[name][2]],)
    sent = server.requests[0]
    assert sent.path == "/v1/messages" and sent.headers["x-api-key"] == "k"
    assert sent.json["thinking"] == {"type": "enabled", "budget_tokens": 8192}


def test_status_529_is_overloaded(server: LoopbackServer) -> None:
    server.add(Reply.json(529, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}))
    with pytest.raises(errors.OverloadedError) as info:
        drive(PROTOCOL, Target("anthropic", server.url, "claude-haiku-4-5"), Conversation(None, (Message("user", "q"),)))
    assert info.value.status == 529 and info.value.retryable


def test_validator_rejection_reaches_the_user_in_words(server: LoopbackServer) -> None:
    server.default = FakeAnthropic(key="k")
    target = Target("anthropic", server.url, "claude-haiku-4-5", api_key="wrong")
    with pytest.raises(errors.AuthError, match="invalid x-api-key"):
        drive(PROTOCOL, target, Conversation(None, (Message("user", "q"),)))


def test_own_signed_thinking_is_accepted_back_by_the_validating_api(server: LoopbackServer) -> None:
    api = FakeAnthropic(key="k", redacted=True)
    server.default = api
    target = Target("anthropic", server.url, "claude-haiku-4-5", api_key="k", reasoning="low")
    conv = Conversation("sys", (Message("user", "q1"),))
    events = drive(PROTOCOL, target, conv)
    text, reasoning, _, replays, _ = collect(events)
    assert len(replays) == 2  # thinking + redacted_thinking
    conv = conv.add(Message("assistant", text, reasoning=reasoning, model=CLAUDE, replay=tuple(replays))).add(Message("user", "q2"))
    drive(PROTOCOL, target, conv)
    assert api.rejected == [] and len(api.accepted) == 2
    kinds = [b["type"] for b in api.accepted[1]["messages"][1]["content"]]
    assert kinds == ["thinking", "redacted_thinking", "text"]


def test_merged_assistant_turns_keep_all_thinking_ahead_of_all_text() -> None:
    first = ReplayState("anthropic", "claude-haiku-4-5", json.dumps(THINKING))
    second = ReplayState("anthropic", "claude-haiku-4-5", json.dumps({**THINKING, "signature": "SIG2"}))
    conv = Conversation(None, (Message("user", "q"), answer("A", CLAUDE, first), answer("B", CLAUDE, second), Message("user", "q2")))
    content = PROTOCOL.build_request(TARGET, conv).body["messages"][1]["content"]
    assert [b["type"] for b in content] == ["thinking", "thinking", "text", "text"]
    assert [b.get("signature") or b.get("text") for b in content] == ["SIG1", "SIG2", "A", "B"]


# -- robustness: any JSON in any event shape fails only as one of our errors -----------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=8,
)
KEYS = st.sampled_from(["message", "usage", "index", "content_block", "delta", "error", "type", "text",
                        "thinking", "signature", "data", "stop_reason", "input_tokens", "output_tokens"])
SHAPED = st.recursive(JSON, lambda inner: st.dictionaries(KEYS, inner, max_size=4), max_leaves=12)
KINDS = st.sampled_from(["message_start", "content_block_start", "content_block_delta", "content_block_stop",
                         "message_delta", "message_stop", "ping", "error", "other"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(KINDS, st.dictionaries(KEYS, SHAPED, max_size=4)), max_size=6))
def test_any_event_shape_fails_only_as_our_error(events: list[tuple[str, dict]]) -> None:
    body = sse(*[(kind, {**data, "type": kind}) for kind, data in events])
    try:
        for event in PROTOCOL.parse_stream([body], TARGET):
            assert isinstance(event, (TextDelta, ReasoningDelta, Usage, ReplayState, Notice, Done))
    except errors.ModelSwitchError:
        pass


def test_an_unknown_content_block_type_is_told_once_per_kind() -> None:
    # Block shapes from Anthropic's docs (code execution, MCP connector) this client does not show.
    code = {"type": "code_execution_tool_result", "tool_use_id": "srvtoolu_01",
            "content": {"type": "code_execution_result", "stdout": "4\n", "stderr": "", "return_code": 0}}
    mcp = {"type": "mcp_tool_use", "id": "mcptoolu_01", "name": "echo", "server_name": "example", "input": {}}
    starts = [("content_block_start", {"type": "content_block_start", "index": i, "content_block": b})
              for i, b in enumerate((code, mcp, code), start=1)]
    stops = [("content_block_stop", {"type": "content_block_stop", "index": i}) for i in (1, 2, 3)]
    end = [("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 3}}),
           ("message_stop", {"type": "message_stop"})]
    body = sse(START, TEXT0, delta("2+2 is 4"), ("content_block_stop", {"type": "content_block_stop", "index": 0}),
               *starts, *stops, *end)
    events = list(PROTOCOL.parse_stream([body], TARGET))
    notices = [e.text for e in events if isinstance(e, Notice)]
    assert notices == [
        "claude-haiku-4-5 sent a content block of type 'code_execution_tool_result', which modelswitch does not"
        " show; it was left out",
        "claude-haiku-4-5 sent a content block of type 'mcp_tool_use', which modelswitch does not show; it was left out",
    ]
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["2+2 is 4"]
    assert events[-1] == Done("stop")
