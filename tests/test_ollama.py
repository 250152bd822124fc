"""Ollama /api/chat NDJSON: streams parse exactly; requests are what Ollama accepts."""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from modelswitch import errors
from modelswitch.conversation import Conversation, Message, ModelRef
from modelswitch.events import Done, Notice, ReasoningDelta, ReplayState, TextDelta, Usage
from modelswitch.providers import get_protocol
from modelswitch.providers.base import HttpRequest, Target
from modelswitch.providers.ollama import (
    PROTOCOL,
    eval_rate,
    parse_tags,
    tags_request,
    think_value,
)
from tests.loopback import LoopbackServer, Reply
from tests.validators import FakeOllama, drive, splits

TARGET = Target("ollama", "http://localhost:11434", "qwen3:8b")


def ndjson(*lines: dict) -> bytes:
    return b"".join(json.dumps({"model": "qwen3:8b", "created_at": "2025-06-01T10:00:00Z", **ln}).encode() + b"\n" for ln in lines)


def msg(content: str = "", thinking: str | None = None) -> dict:
    m = {"role": "assistant", "content": content}
    if thinking is not None:
        m["thinking"] = thinking
    return {"message": m, "done": False}


# Counters are the ones a real gemma2:2b run reported (ollama-python stream, 2024-08-07).
FINAL = {"message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "stop",
         "total_duration": 4353619900, "load_duration": 63915300, "prompt_eval_count": 10,
         "prompt_eval_duration": 246847000, "eval_count": 17, "eval_duration": 4032296000}
THINKING_STREAM = ndjson(
    msg("", "Okay, the user"), msg("", " says hi. 🙂"), msg("", "\n"),
    msg("Hello"), msg("! 👋"), msg("\n\nWhat can I do for you today?"), FINAL,
)


def collect(events: list) -> tuple[str, str, list[Usage]]:
    return (
        "".join(e.text for e in events if isinstance(e, TextDelta)),
        "".join(e.text for e in events if isinstance(e, ReasoningDelta)),
        [e for e in events if isinstance(e, Usage)],
    )


def test_registered_under_its_name() -> None:
    assert get_protocol("ollama") is PROTOCOL and PROTOCOL.name == "ollama"


def test_thinking_stream_in_any_chunking() -> None:
    for chunks in splits(THINKING_STREAM):
        events = list(PROTOCOL.parse_stream(chunks, TARGET))
        assert collect(events) == (
            "Hello! 👋\n\nWhat can I do for you today?",
            "Okay, the user says hi. 🙂\n",
            [Usage(input_tokens=10, output_tokens=17, reasoning_tokens=0, cached_tokens=0)],
        )
        last = events[-1]
        assert isinstance(last, Done) and last.finish_reason == "stop"
        assert last.tokens_per_s == pytest.approx(17 / 4.032296)


def test_speed_helpers() -> None:
    assert eval_rate(100, 2_000_000_000) == 50.0
    assert eval_rate(0, 5) is None and eval_rate(5, 0) is None and eval_rate(None, 3) is None
    assert Done("stop").tokens_per_s is None


def test_content_on_the_done_line_is_kept_and_missing_counters_are_unknown_usage() -> None:
    body = ndjson(msg("Hello"), {"message": {"role": "assistant", "content": " world!"}, "done": True, "done_reason": "stop"})
    events = list(PROTOCOL.parse_stream([body], TARGET))
    assert collect(events) == ("Hello world!", "", [])  # no Usage event: unknown, not 0 tokens
    assert events[-1].tokens_per_s is None


# Older Ollama (before `think`) and templates without a thinking section stream a reasoning
# model's output as it is: the tags are tokens of `content`, one or a few characters at a time.
INLINE_THINK = ndjson(
    msg("<th"), msg("ink>"), msg("\nThe user greets me."), msg(" Be brief.\n"), msg("</"), msg("think>"),
    msg("\n\n"), msg("Hello"), msg("!"), FINAL,
)


def test_inline_think_tags_become_reasoning_in_any_chunking() -> None:
    for chunks in splits(INLINE_THINK):
        events = list(PROTOCOL.parse_stream(chunks, TARGET))
        assert collect(events) == ("Hello!", "The user greets me. Be brief.", [Usage(10, 17)])
        assert "<think>" not in "".join(e.text for e in events if isinstance(e, (TextDelta, ReasoningDelta)))


def test_lone_closing_tag_with_thinking_declared_is_held_as_reasoning() -> None:
    body = ndjson(msg("weighing it up"), msg("</think>"), msg("Answer."), FINAL)
    events = list(PROTOCOL.parse_stream([body], Target("o", "u", "qwen3:8b", reasoning=True)))
    assert collect(events)[:2] == ("Answer.", "weighing it up")


def test_thinking_field_releases_untagged_content_at_once() -> None:
    body = ndjson(msg("", "hmm"), msg("Plain answer"), FINAL)
    events = list(PROTOCOL.parse_stream([body], Target("o", "u", "qwen3:8b", reasoning=True)))
    assert collect(events)[:2] == ("Plain answer", "hmm")


def test_text_held_back_is_kept_when_the_stream_breaks() -> None:
    seen = []
    with pytest.raises(errors.StreamError):
        for event in PROTOCOL.parse_stream([ndjson(msg("<think>deep"), msg(" thought</thi")) + b'{"error":"boom"}\n'], TARGET):
            seen.append(event)
    assert "".join(e.text for e in seen if isinstance(e, ReasoningDelta)).startswith("deep thought")


def test_length_stop_is_told_in_words() -> None:
    body = ndjson(msg("cut"), {**FINAL, "done_reason": "length"})
    events = list(PROTOCOL.parse_stream([body], Target("o", "u", "qwen3:8b", max_tokens=17)))
    assert events[-2] == Notice("stopped: the answer hit max_tokens (17)")
    assert events[-1].finish_reason == "length"


def test_error_line_mid_stream_keeps_what_arrived() -> None:
    seen = []
    with pytest.raises(errors.StreamError, match="llama runner process has terminated"):
        for event in PROTOCOL.parse_stream([ndjson(msg("Par")) + b'{"error":"llama runner process has terminated: exit status 2"}\n'], TARGET):
            seen.append(event)
    assert seen == [TextDelta("Par")]
    with pytest.raises(errors.OverloadedError):
        list(PROTOCOL.parse_stream([b'{"error":"server busy, please try again.  maximum pending requests exceeded"}\n'], TARGET))


def test_a_stream_without_its_done_line_is_incomplete() -> None:
    with pytest.raises(errors.StreamError, match="done line"):
        list(PROTOCOL.parse_stream([ndjson(msg("half"))], TARGET))


def test_garbage_is_a_protocol_error() -> None:
    with pytest.raises(errors.ProtocolError):
        list(PROTOCOL.parse_stream([b"{nope\n"], TARGET))
    with pytest.raises(errors.ProtocolError):
        list(PROTOCOL.parse_stream([b"[1, 2]\n"], TARGET))


# -- requests --------------------------------------------------------------------------------


def test_request_shape() -> None:
    r1 = ModelRef("deepseek", "deepseek-reasoner", "openai")
    claude_state = ReplayState("anthropic", "claude-x", json.dumps({"type": "thinking", "thinking": "t", "signature": "SIG"}))
    conv = Conversation("Be terse.", (
        Message("user", "a"), Message("assistant", "", model=r1, status="error"), Message("user", "b"),
        Message("assistant", "B", reasoning="CHAIN", model=r1, replay=(claude_state,)), Message("user", "c"),
    ))
    target = Target("ollama", "http://h:11434/", "qwen3:8b", temperature=0.5, max_tokens=64, reasoning="high")
    req = PROTOCOL.build_request(target, conv)
    assert (req.method, req.url) == ("POST", "http://h:11434/api/chat")
    assert "authorization" not in req.headers
    assert req.body == {
        "model": "qwen3:8b", "stream": True, "think": "high",
        "options": {"temperature": 0.5, "num_predict": 64},
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "b"},  # the failed exchange is not sent again
            {"role": "assistant", "content": "B"},
            {"role": "user", "content": "c"},
        ],
    }


@pytest.mark.parametrize(("reasoning", "think"), [(None, None), (True, True), (False, False), ("low", "low"), (2048, True), (0, False)])
def test_think_mapping(reasoning: object, think: object) -> None:
    assert think_value(reasoning) == think  # type: ignore[arg-type]
    body = PROTOCOL.build_request(Target("o", "u", "m", reasoning=reasoning), Conversation(None, (Message("user", "q"),))).body  # type: ignore[arg-type]
    assert body.get("think") == think and ("think" in body) == (think is not None)


def test_api_key_becomes_a_bearer_token() -> None:
    req = PROTOCOL.build_request(Target("o", "https://ollama.com", "m", api_key="K"), Conversation(None, (Message("user", "q"),)))
    assert req.headers["authorization"] == "Bearer K"


# -- /api/tags -------------------------------------------------------------------------------

# The example answer in Ollama's API reference (docs.ollama.com/api/tags), plus a second entry.
TAGS = json.dumps({"models": [
    {"name": "gemma3", "model": "gemma3", "modified_at": "2025-10-03T23:34:03.409490317-07:00", "size": 3338801804,
     "digest": "a2af6cc3eb7fa8be8504abaf9b04e88f17a119ec3f04a3addf55f92841195f5a",
     "details": {"format": "gguf", "family": "gemma", "families": ["gemma"], "parameter_size": "4.3B", "quantization_level": "Q4_K_M"}},
    {"model": "qwen3:8b"}, {"name": "gemma3"}, "junk",
]}).encode()


def test_tags() -> None:
    assert tags_request("http://localhost:11434/") == HttpRequest("GET", "http://localhost:11434/api/tags", {"accept": "application/json"}, None)
    assert parse_tags(TAGS) == ["gemma3", "qwen3:8b"]
    assert parse_tags(b'{"models": []}') == []
    for bad in (b"", b"<html>", b"[]", b'{"models": 3}'):
        with pytest.raises(errors.ProtocolError):
            parse_tags(bad)


def test_tags_from_a_running_ollama(server: LoopbackServer) -> None:
    server.default = FakeOllama()
    req = tags_request(server.url)
    raw = httpx.request(req.method, req.url, headers=req.headers).content
    assert parse_tags(raw) == ["qwen3:8b", "llama3.2"]


# -- errors and HTTP -------------------------------------------------------------------------


def test_error_message() -> None:
    assert PROTOCOL.error_message(404, b'{"error":"model \'llama9\' not found"}') == "model 'llama9' not found"
    for junk in (b"", b"\xff", b"[]", b'{"error": 5}', b"<html/>"):
        assert isinstance(PROTOCOL.error_message(500, junk), str)


def test_unknown_model_says_how_to_pull_it(server: LoopbackServer) -> None:
    server.default = FakeOllama()
    with pytest.raises(errors.ModelNotFoundError) as info:
        drive(PROTOCOL, Target("ollama", server.url, "llama9"), Conversation(None, (Message("user", "q"),)))
    assert "model 'llama9' not found" in info.value.message
    assert info.value.message.count("ollama pull llama9") == 1


def test_connection_refused_says_ollama_is_not_running() -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(errors.ConnectError, match="ollama serve"):
        drive(PROTOCOL, Target("ollama", f"http://127.0.0.1:{port}", "qwen3:8b"), Conversation(None, (Message("user", "q"),)))


def test_thinking_round_trip_against_the_validating_server(server: LoopbackServer) -> None:
    api = FakeOllama()
    server.default = api
    events = drive(PROTOCOL, Target("ollama", server.url, "qwen3:8b", reasoning=True), Conversation("s", (Message("user", "q"),)))
    assert collect(events) == ("qwen3:8b answer 1", "qwen3:8b ponders 1", [Usage(51, 12, 0, 0)])
    assert events[-1].tokens_per_s == pytest.approx(30.0)
    with pytest.raises(errors.BadRequestError, match="does not support thinking"):
        drive(PROTOCOL, Target("ollama", server.url, "llama3.2", reasoning=True), Conversation(None, (Message("user", "q"),)))
    assert api.rejected == [(400, '"llama3.2" does not support thinking')]


def test_recorded_shape_through_loopback(server: LoopbackServer) -> None:
    server.add(Reply(chunks=[THINKING_STREAM[i : i + 9] for i in range(0, len(THINKING_STREAM), 9)], content_type="application/x-ndjson"))
    events = drive(PROTOCOL, Target("ollama", server.url, "qwen3:8b"), Conversation(None, (Message("user", "hi"),)))
    assert collect(events)[0] == "Hello! 👋\n\nWhat can I do for you today?"
    assert server.requests[0].path == "/api/chat"


# -- robustness: any JSON line fails only as one of our errors -------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=8,
)
KEYS = st.sampled_from(["message", "content", "thinking", "role", "done", "done_reason", "eval_count",
                        "eval_duration", "prompt_eval_count", "error"])
SHAPED = st.recursive(JSON | st.just(True), lambda inner: st.dictionaries(KEYS, inner, max_size=4), max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(st.lists(SHAPED, max_size=5))
def test_any_line_fails_only_as_our_error(lines: list[object]) -> None:
    body = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
    try:
        for event in PROTOCOL.parse_stream([body], TARGET):
            assert isinstance(event, (TextDelta, ReasoningDelta, Usage, Notice, Done))
    except errors.ModelSwitchError:
        pass


def test_catalog_names_for_the_tags_helpers(server: LoopbackServer) -> None:
    """catalog.local_models() probes any protocol through models_request/parse_models."""
    from modelswitch.providers import transport

    server.default = FakeOllama()
    body = transport.fetch(PROTOCOL.models_request(server.url), timeout=2.0)
    assert PROTOCOL.parse_models(body) == ["qwen3:8b", "llama3.2"]
    assert PROTOCOL.parse_models(b"<html>not ollama</html>") == []


def test_models_listing_shows_what_ollama_has_pulled(server: LoopbackServer) -> None:
    from pathlib import Path

    from modelswitch.engine import catalog
    from modelswitch.config import load as config

    server.default = FakeOllama()
    cfg = config.build({"providers": {"ollama": {"base_url": server.url}}}, Path("config.toml"), presets=config.load_presets())
    ids = [m.id for m in catalog.local_models(cfg.providers["ollama"])]
    assert ids == ["qwen3:8b", "llama3.2"]
