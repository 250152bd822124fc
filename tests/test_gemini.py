"""Gemini streamGenerateContent: recorded streams parse exactly; requests are what the API accepts."""

from __future__ import annotations

import json

import pytest

from modelswitch import errors
from modelswitch.conversation import Conversation, Message, ModelRef
from modelswitch.events import Done, Notice, ReasoningDelta, ReplayState, TextDelta, Usage
from modelswitch.providers import get_protocol
from modelswitch.providers.base import Target
from modelswitch.providers.gemini import PROTOCOL, thinking_config
from tests.loopback import FIXTURES, LoopbackServer, Reply
from tests.validators import FakeGemini, drive, splits

TARGET = Target("gemini", "https://generativelanguage.googleapis.com", "gemini-2.5-pro", api_key="gm-test")
PRO = ModelRef("gemini", "gemini-2.5-pro", "gemini")


def collect(events: list) -> tuple[str, str, list[Usage], list[ReplayState]]:
    return (
        "".join(e.text for e in events if isinstance(e, TextDelta)),
        "".join(e.text for e in events if isinstance(e, ReasoningDelta)),
        [e for e in events if isinstance(e, Usage)],
        [e for e in events if isinstance(e, ReplayState)],
    )


def frames(*objs: dict) -> bytes:
    return b"".join(f"data: {json.dumps(o)}\r\n\r\n".encode() for o in objs)


def chunk(text: str, finish: str | None = None, **extra: object) -> dict:
    cand: dict = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
    if finish:
        cand["finishReason"] = finish
    return {"candidates": [cand], **extra}


def test_registered_under_its_name() -> None:
    assert get_protocol("gemini") is PROTOCOL and PROTOCOL.name == "gemini"


def test_plain_crlf_stream() -> None:
    data = (FIXTURES / "gemini20flash_sse_stream_plain_CRLF.sse").read_bytes()
    for chunks in splits(data):
        events = list(PROTOCOL.parse_stream(chunks, TARGET))
        # Early frames report promptTokenCount 15; the last (authoritative) one says 13.
        assert collect(events) == ("The capital of France is Paris.\n", "", [Usage(13, 8, 0, 0)], [])
        assert events[-1] == Done("stop")


def test_thought_parts_stream() -> None:
    data = (FIXTURES / "gemini25pro_sse_stream_thought_parts_CRLF.sse").read_bytes()
    # An independent reading of the file: one JSON object per `data:` line, parts concatenated.
    want_text = want_thought = ""
    for line in data.split(b"\r\n"):
        if line.startswith(b"data: "):
            for part in json.loads(line[6:])["candidates"][0]["content"]["parts"]:
                if part.get("thought"):
                    want_thought += part["text"]
                else:
                    want_text += part["text"]
    assert (len(want_text), len(want_thought)) == (1938, 1575)
    assert want_thought.startswith("**Clarifying User Goals**\n\nI'm currently focused")
    assert want_text.endswith("**stay alert and be predictable**. Always assume a driver might not see you.")
    for chunks in splits(data):
        events = list(PROTOCOL.parse_stream(chunks, TARGET))
        text, thought, usage, replays = collect(events)
        assert (text, thought) == (want_text, want_thought)
        # 469 answer tokens + 787 thought tokens are all billed as output.
        assert usage == [Usage(input_tokens=34, output_tokens=1256, reasoning_tokens=787, cached_tokens=0)]
        assert len(replays) == 1 and events[-1] == Done("stop")
    parts = json.loads(replays[0].data)["parts"]
    assert parts[0]["text"] == ("This is a great question! Safely crossing the street is all about being aware "
                                "and predictable. Here is a step-by-step")
    assert parts[0]["thoughtSignature"].startswith("CiIB0e2Kb6Syj1a961Ef")
    assert "thoughtSignature" not in parts[1] and "".join(p["text"] for p in parts) == want_text


def test_json_array_framing_without_alt_sse() -> None:
    data = (FIXTURES / "gemini_streamGenerateContent_jsonarray_thoughts_gemini36flash.json").read_bytes()
    thought = ("**Considering the Constraint**\n\nI'm focusing intently on the \"just the name\" constraint. It "
               "demands a single, direct name; no fluff, no preliminaries. I'm actively suppressing any "
               "inclination to offer multiple options or explain my reasoning. This constraint is paramount.\n\n\n")
    target = Target("gemini", "u", "gemini-flash-latest")
    for chunks in splits(data):
        events = list(PROTOCOL.parse_stream(chunks, target))
        text, got_thought, usage, replays = collect(events)
        assert (text, got_thought) == ("Scoop", thought)
        assert usage == [Usage(input_tokens=11, output_tokens=293, reasoning_tokens=291, cached_tokens=0)]
        assert events[-1] == Done("stop")
    (state,) = replays
    assert state.model == "gemini-flash-latest"
    scoop, signed = json.loads(state.data)["parts"]
    assert scoop == {"text": "Scoop"} and signed["text"] == "" and signed["thoughtSignature"].endswith("3y21OrQg8vJ4")


def test_json_array_cut_short_is_a_protocol_error() -> None:
    data = (FIXTURES / "gemini_streamGenerateContent_jsonarray_thoughts_gemini36flash.json").read_bytes()
    with pytest.raises(errors.ProtocolError):
        list(PROTOCOL.parse_stream([data[: len(data) // 2]], TARGET))


@pytest.mark.parametrize(
    ("reason", "notice", "done"),
    [
        ("MAX_TOKENS", "stopped: the answer hit max_tokens (50)", "length"),
        ("SAFETY", "stopped: Gemini's safety filter blocked the rest of the answer", "content_filter"),
        ("RECITATION", "stopped: Gemini blocked the answer for reciting existing text too closely (RECITATION)", "content_filter"),
        ("OTHER", "stopped: Gemini ended the answer early (OTHER)", "other"),
    ],
)
def test_abnormal_finish_is_told_in_words(reason: str, notice: str, done: str) -> None:
    body = frames(chunk("Once upon"), chunk(" a time", reason, usageMetadata={"promptTokenCount": 3, "candidatesTokenCount": 50}))
    events = list(PROTOCOL.parse_stream([body], Target("g", "u", "gemini-2.0-flash", max_tokens=50)))
    assert events[-2:] == [Notice(notice), Done(done)]
    assert collect(events)[0] == "Once upon a time"


def test_blocked_prompt() -> None:
    body = frames({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 9}})
    events = list(PROTOCOL.parse_stream([body], TARGET))
    assert events == [Usage(9, 0, 0, 0), Notice("blocked: Gemini refused the prompt (SAFETY)"), Done("content_filter")]


def test_cached_content_counts_as_cached_input() -> None:
    body = frames(chunk("x", "STOP", usageMetadata={"promptTokenCount": 1000, "cachedContentTokenCount": 800, "candidatesTokenCount": 1}))
    assert Usage(1000, 1, 0, 800) in list(PROTOCOL.parse_stream([body], TARGET))


def test_error_mid_stream_keeps_what_arrived() -> None:
    body = frames(chunk("Par"), {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}})
    seen = []
    with pytest.raises(errors.OverloadedError, match="overloaded"):
        for event in PROTOCOL.parse_stream([body], TARGET):
            seen.append(event)
    assert seen == [TextDelta("Par")]
    with pytest.raises(errors.StreamError, match="INVALID_ARGUMENT"):
        list(PROTOCOL.parse_stream([frames({"error": {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"}})], TARGET))


def test_stream_without_finish_reason_is_incomplete() -> None:
    with pytest.raises(errors.StreamError, match="finishReason"):
        list(PROTOCOL.parse_stream([frames(chunk("half"))], TARGET))


# -- requests --------------------------------------------------------------------------------


def test_request_shape() -> None:
    conv = Conversation("Be terse.", (Message("user", "hi"), Message("assistant", "hello", model=PRO), Message("user", "again")))
    target = Target("gemini", "https://g.example/", "models/gemini-2.5-pro", api_key="K", temperature=0.2, max_tokens=99)
    req = PROTOCOL.build_request(target, conv)
    assert req.url == "https://g.example/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
    assert req.headers["x-goog-api-key"] == "K"
    assert req.body == {
        "contents": [
            {"role": "user", "parts": [{"text": "hi"}]},
            {"role": "model", "parts": [{"text": "hello"}]},
            {"role": "user", "parts": [{"text": "again"}]},
        ],
        "systemInstruction": {"parts": [{"text": "Be terse."}]},
        "generationConfig": {"temperature": 0.2, "maxOutputTokens": 99},
    }


@pytest.mark.parametrize(
    ("model", "reasoning", "config"),
    [
        ("gemini-2.5-flash", None, None),
        ("gemini-2.5-flash", True, {"includeThoughts": True}),
        ("gemini-2.5-flash", False, {"thinkingBudget": 0}),
        ("gemini-2.5-pro", False, None),  # pro cannot stop thinking: budget 0 would be a 400
        ("gemini-2.5-flash", "low", {"includeThoughts": True, "thinkingBudget": 1024}),
        ("gemini-2.5-flash", "high", {"includeThoughts": True, "thinkingBudget": 24576}),
        ("gemini-2.5-pro", 4000, {"includeThoughts": True, "thinkingBudget": 4000}),
        ("gemini-2.5-flash", -5, {"includeThoughts": True, "thinkingBudget": -1}),
    ],
)
def test_reasoning_to_thinking_config(model: str, reasoning: object, config: dict | None) -> None:
    assert thinking_config(model, reasoning) == config  # type: ignore[arg-type]
    body = PROTOCOL.build_request(Target("g", "u", model, reasoning=reasoning), Conversation(None, (Message("user", "q"),))).body  # type: ignore[arg-type]
    assert body.get("generationConfig", {}).get("thinkingConfig") == config


def test_consecutive_turns_merge_and_blank_ones_vanish() -> None:
    conv = Conversation(None, (Message("user", "a"), Message("user", "b"), Message("user", "  ")))
    assert PROTOCOL.build_request(TARGET, conv).body["contents"] == [{"role": "user", "parts": [{"text": "a"}, {"text": "b"}]}]


def test_signed_parts_go_back_only_to_the_same_model_and_only_if_unchanged() -> None:
    parts = [{"text": "Sco", "thoughtSignature": "S1"}, {"text": "op"}]
    state = ReplayState("gemini", "gemini-2.5-pro", json.dumps({"parts": parts}))
    conv = Conversation(None, (Message("user", "q"), Message("assistant", "Scoop", reasoning="hmm", model=PRO, replay=(state,)), Message("user", "q2")))
    assert PROTOCOL.build_request(TARGET, conv).body["contents"][1] == {"role": "model", "parts": parts}
    other = PROTOCOL.build_request(Target("g", "u", "gemini-2.5-flash"), conv).body
    assert other["contents"][1] == {"role": "model", "parts": [{"text": "Scoop"}]}
    edited = Conversation(None, (Message("user", "q"), Message("assistant", "Scoop!", model=PRO, replay=(state,)), Message("user", "q2")))
    assert PROTOCOL.build_request(TARGET, edited).body["contents"][1] == {"role": "model", "parts": [{"text": "Scoop!"}]}
    assert "hmm" not in json.dumps(PROTOCOL.build_request(TARGET, conv).body)


def test_foreign_state_is_never_sent() -> None:
    claude = ModelRef("anthropic", "claude-haiku-4-5", "anthropic")
    state = ReplayState("anthropic", "claude-haiku-4-5", json.dumps({"type": "thinking", "thinking": "t", "signature": "SIG"}))
    conv = Conversation(None, (Message("user", "q"), Message("assistant", "A", reasoning="CHAIN", model=claude, replay=(state,)), Message("user", "q2")))
    body = json.dumps(PROTOCOL.build_request(TARGET, conv).body)
    assert "SIG" not in body and "CHAIN" not in body and "assistant" not in body


# -- errors and HTTP -------------------------------------------------------------------------


def test_error_bodies() -> None:
    msg = PROTOCOL.error_message(404, (FIXTURES / "gemini_404_not_found.json").read_bytes())
    assert msg.startswith("models/gemini-3.6-flahs is not found for API version v1beta")
    wrapped = b'[{"error": {"code": 429, "message": "Resource has been exhausted", "status": "RESOURCE_EXHAUSTED"}}]'
    assert PROTOCOL.error_message(429, wrapped) == "Resource has been exhausted"
    for junk in (b"", b"\xff", b"[]", b"[1]", b'{"error": null}', b"<html/>"):
        assert isinstance(PROTOCOL.error_message(500, junk), str)


def test_recorded_stream_through_loopback(server: LoopbackServer) -> None:
    server.add(Reply.fixture("gemini25pro_sse_stream_thought_parts_CRLF.sse", size=13))
    target = Target("gemini", server.url, "gemini-2.5-pro", api_key="k", reasoning=True)
    events = drive(PROTOCOL, target, Conversation("You are a helpful assistant.", (Message("user", "How do I cross the street?"),)))
    assert collect(events)[2] == [Usage(34, 1256, 787, 0)]
    sent = server.requests[0]
    assert sent.path == "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
    assert sent.headers["x-goog-api-key"] == "k"
    assert sent.json["generationConfig"] == {"thinkingConfig": {"includeThoughts": True}}


def test_not_found_through_loopback(server: LoopbackServer) -> None:
    server.add(Reply.fixture("gemini_404_not_found.json", status=404, content_type="application/json", chunked=False))
    with pytest.raises(errors.ModelNotFoundError, match="is not found for API version v1beta"):
        drive(PROTOCOL, Target("gemini", server.url, "gemini-3.6-flahs", api_key="k"), Conversation(None, (Message("user", "q"),)))


def test_signature_round_trip_is_accepted_by_the_validating_api(server: LoopbackServer) -> None:
    api = FakeGemini(key="k")
    server.default = api
    target = Target("gemini", server.url, "gemini-2.5-flash", api_key="k", reasoning="low")
    flash = ModelRef("gemini", "gemini-2.5-flash", "gemini")
    conv = Conversation("sys", (Message("user", "q1"),))
    text, thought, usage, replays = collect(drive(PROTOCOL, target, conv))
    assert (text, thought) == ("gemini-2.5-flash answer 1", "gemini-2.5-flash muses, turn 1")
    assert usage == [Usage(input_tokens=31, output_tokens=47, reasoning_tokens=40, cached_tokens=5)]
    conv = conv.add(Message("assistant", text, reasoning=thought, model=flash, replay=tuple(replays))).add(Message("user", "q2"))
    drive(PROTOCOL, target, conv)
    assert api.rejected == []
    assert "thoughtSignature" in api.accepted[1]["contents"][1]["parts"][0]
    # The same history sent to another Gemini model must carry no signature (it would be corrupt there).
    drive(PROTOCOL, Target("gemini", server.url, "gemini-2.5-pro", api_key="k"), conv)
    assert api.rejected == [] and "thoughtSignature" not in json.dumps(api.accepted[2])


# -- robustness: any JSON in any response shape fails only as one of our errors --------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=8,
)
KEYS = st.sampled_from(["candidates", "content", "parts", "text", "thought", "thoughtSignature", "finishReason",
                        "usageMetadata", "promptTokenCount", "promptFeedback", "blockReason", "error", "code", "status"])
SHAPED = st.recursive(JSON, lambda inner: st.dictionaries(KEYS, inner, max_size=4) | st.lists(inner, max_size=2), max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.dictionaries(KEYS, SHAPED, max_size=4), max_size=5), st.booleans())
def test_any_response_shape_fails_only_as_our_error(objs: list[dict], as_array: bool) -> None:
    body = json.dumps(objs).encode() if as_array else frames(*objs)
    try:
        for event in PROTOCOL.parse_stream([body], TARGET):
            assert isinstance(event, (TextDelta, ReasoningDelta, Usage, ReplayState, Notice, Done))
    except errors.ModelSwitchError:
        pass


def test_a_stream_without_usage_metadata_has_unknown_usage() -> None:
    body = b"data: " + json.dumps({
        "candidates": [{"content": {"role": "model", "parts": [{"text": "Hi"}]}, "finishReason": "STOP"}],
        "modelVersion": "gemini-2.0-flash",
    }).encode() + b"\r\n\r\n"
    events = list(PROTOCOL.parse_stream([body], TARGET))
    assert [e for e in events if isinstance(e, TextDelta)] == [TextDelta("Hi")]
    assert not [e for e in events if isinstance(e, Usage)]  # unknown, not 0 tokens (and so not a cost of 0)
