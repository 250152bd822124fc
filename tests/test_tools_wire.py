"""Tool calls on the wire: recorded streams parse to the exact calls, and each protocol sends
calls and results back in its own shape, byte-compatible with the recorded follow-up requests."""

from __future__ import annotations

import json

from modelswitch.conversation import Conversation, Message, ModelRef, ToolResult, ToolRound, ToolSpec
from modelswitch.events import Done, Notice, ReasoningDelta, ReplayState, TextDelta, ToolCall
from modelswitch.providers import get_protocol
from modelswitch.providers.base import Target
from tests.loopback import FIXTURES
from tests.validators import splits

META = FIXTURES / "meta"


def events_of(protocol: str, name: str, target: Target) -> list:
    body = (FIXTURES / name).read_bytes()
    runs = [list(get_protocol(protocol).parse_stream(iter(chunks), target)) for chunks in splits(body, range(3))]
    assert all(r == runs[0] for r in runs), "the same events in any chunking"
    return runs[0]


def calls(events: list) -> list[ToolCall]:
    return [e for e in events if isinstance(e, ToolCall)]


def recorded_request(name: str) -> dict:
    return json.loads((META / f"{name}.meta.json").read_text())["request"]["body"]


def test_openai_streamed_argument_fragments_join_into_one_call() -> None:
    target = Target("openai", "http://x", "gpt-4o-mini")
    events = events_of("openai", "openai_chat_stream_toolcall_with_usage_chunk.sse", target)
    assert calls(events) == [ToolCall("call_ZR5UUuTt3pf61kjwAJIYdVMj", "get_capital", '{"country":"UK"}')]
    assert events[-1] == Done("tool_calls")
    assert not [e for e in events if isinstance(e, Notice)]


def test_deepseek_parallel_calls_and_reasoning_parse_exactly() -> None:
    target = Target("deepseek", "https://api.deepseek.com", "deepseek-v4-flash")
    one = events_of("openai", "deepseek_v4flash_nonstream_toolcall_with_reasoning_turn1.json", target)
    assert calls(one) == [ToolCall("call_00_sXqYgMESDht75NCLLZtt9804", "load_capability", '{"id": "DICE_ROLL"}')]
    two = events_of("openai", "deepseek_v4flash_nonstream_turn2_reasoning_content_passed_back.json", target)
    assert calls(two) == [
        ToolCall("call_00_6edlnw3Z1MgeMfey687g8451", "get_player_name", "{}"),
        ToolCall("call_01_km02sac7sHxNDPATKLZy7705", "roll_dice", "{}"),
    ]
    assert two[-1] == Done("tool_calls")


def test_deepseek_tool_span_is_sent_back_as_recorded_with_reasoning_content() -> None:
    """The recorded turn-2 request: each assistant message of the span has reasoning_content
    ("" where there was none), content null without text, and a `tool` message per result."""
    recorded = recorded_request("deepseek_v4flash_nonstream_turn2_reasoning_content_passed_back")
    target = Target("deepseek", "https://api.deepseek.com", "deepseek-reasoner")
    ref = ModelRef("deepseek", "deepseek-reasoner", "openai")
    msgs = recorded["messages"]
    r1 = ToolRound(msgs[3]["content"], msgs[3]["reasoning_content"], ref,
                   (ToolCall("call_00_sXqYgMESDht75NCLLZtt9804", "load_capability", '{"id": "DICE_ROLL"}'),),
                   (ToolResult("call_00_sXqYgMESDht75NCLLZtt9804", "load_capability", "{}"),))
    # A round another model wrote: DeepSeek still needs the field, as "".
    other = ModelRef("anthropic", "claude-haiku-4-5", "anthropic")
    r2 = ToolRound("", "Claude's own thinking, not DeepSeek's", other,
                   (ToolCall("auto_load_eb5fc31bb581b4e7", "search_tools", '{"queries":["DICE_ROLL"]}'),),
                   (ToolResult("auto_load_eb5fc31bb581b4e7", "search_tools", msgs[6]["content"]),))
    conv = Conversation(msgs[0]["content"] + "\n\n" + msgs[1]["content"]).add(Message("user", msgs[2]["content"]))
    conv = conv.add(Message("assistant", "", model=ref, rounds=(r1, r2)))
    body = get_protocol("openai").build_request(target, conv).body
    assert body is not None
    want = [{k: v for k, v in m.items()} for m in msgs[2:]]
    for m in want:
        for c in m.get("tool_calls", ()):
            c.pop("index", None)
    assert body["messages"][1:] == want


def test_reasoning_content_goes_only_to_deepseek() -> None:
    ref = ModelRef("openai", "gpt-4o-mini", "openai")
    rnd = ToolRound("", "thought", ref, (ToolCall("c1", "t", "{}"),), (ToolResult("c1", "t", "ok"),))
    conv = Conversation().add(Message("user", "q")).add(Message("assistant", "done", reasoning="r", model=ref, rounds=(rnd,)))
    body = get_protocol("openai").build_request(Target("openai", "https://api.openai.com/v1", "gpt-4o-mini"), conv).body
    assert body is not None
    assert all("reasoning_content" not in m for m in body["messages"])
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "tool", "assistant"]


def test_anthropic_tool_use_parses_and_replays_thinking_exactly() -> None:
    """Turn 1's thinking block (with its signature) and tool_use come back in the recorded
    turn-2 request exactly, followed by the tool_result."""
    target = Target("anthropic", "https://api.anthropic.com", "claude-haiku-4-5-20251001", reasoning=1024)
    one = events_of("anthropic", "anthropic_stream_thinking_tooluse_turn1.sse", target)
    assert calls(one) == [ToolCall("toolu_01825dXWLSoJwCst1qTsiWdb", "fixed_version", "{}")]
    assert one[-1] == Done("tool_calls")
    assert not [e for e in one if isinstance(e, Notice)]
    recorded = recorded_request("anthropic_stream_thinking_tooluse_turn2_thinking_passed_back")
    ref = ModelRef("anthropic", target.model_id, "anthropic")
    rnd = ToolRound(
        "".join(e.text for e in one if isinstance(e, TextDelta)),
        "".join(e.text for e in one if isinstance(e, ReasoningDelta)),
        ref, tuple(calls(one)), (ToolResult("toolu_01825dXWLSoJwCst1qTsiWdb", "fixed_version", "0.32a0"),),
        tuple(e for e in one if isinstance(e, ReplayState)),
    )
    question = recorded["messages"][0]["content"][0]["text"]
    conv = Conversation().add(Message("user", question)).add(Message("assistant", "", model=ref, rounds=(rnd,)))
    tools = (ToolSpec("fixed_version", "Return a fixed test version string", json.dumps(recorded["tools"][0]["input_schema"])),)
    from dataclasses import replace

    body = get_protocol("anthropic").build_request(replace(target, tools=tools), conv).body
    assert body is not None
    assert body["messages"][1:] == recorded["messages"][1:]
    assert body["tools"] == recorded["tools"]
    two = events_of("anthropic", "anthropic_stream_thinking_tooluse_turn2_thinking_passed_back.sse", target)
    assert not calls(two) and "".join(e.text for e in two if isinstance(e, TextDelta))


def test_anthropic_thinking_from_another_model_is_not_replayed() -> None:
    target = Target("anthropic", "https://api.anthropic.com", "claude-sonnet-4-5")
    theirs = ReplayState("anthropic", "claude-haiku-4-5", json.dumps({"type": "thinking", "thinking": "x", "signature": "s"}))
    rnd = ToolRound("", "x", ModelRef("anthropic", "claude-haiku-4-5", "anthropic"),
                    (ToolCall("call.1", "t", '{"a": 1}'),), (ToolResult("call.1", "t", "ok", is_error=True),), (theirs,))
    conv = Conversation().add(Message("user", "q")).add(Message("assistant", "fine", rounds=(rnd,)))
    body = get_protocol("anthropic").build_request(target, conv).body
    assert body is not None
    assert body["messages"][1] == {"role": "assistant", "content": [
        {"type": "tool_use", "id": "call_1", "name": "t", "input": {"a": 1}}]}
    assert body["messages"][2] == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "ok", "is_error": True}]}
    assert body["messages"][3] == {"role": "assistant", "content": [{"type": "text", "text": "fine"}]}


GEMINI_CALLS = (
    'data: {"candidates": [{"content": {"parts": [{"functionCall": {"name": "check_flight", "args": {"flight": "AA100"}},'
    ' "thoughtSignature": "SIG_A"}, {"functionCall": {"name": "check_flight", "args": {"flight": "BA200"}}}],'
    ' "role": "model"}, "finishReason": "STOP", "index": 0}], "usageMetadata": {"promptTokenCount": 10,'
    ' "candidatesTokenCount": 5, "totalTokenCount": 15}}\r\n\r\n'
).encode()


def test_gemini_function_calls_keep_their_signature_on_the_part() -> None:
    """Parallel calls as the thought-signatures guide shows them: only the first carries one.
    The same model gets the parts back exactly; another model gets the placeholder instead."""
    target = Target("gemini", "https://g", "gemini-3-flash-preview")
    events = list(get_protocol("gemini").parse_stream([GEMINI_CALLS], target))
    got = calls(events)
    assert got == [ToolCall("call_0", "check_flight", '{"flight": "AA100"}'),
                   ToolCall("call_1", "check_flight", '{"flight": "BA200"}')]
    assert events[-1] == Done("tool_calls")
    replay = tuple(e for e in events if isinstance(e, ReplayState))
    ref = ModelRef("gemini", target.model_id, "gemini")
    results = (ToolResult("call_0", "check_flight", "on time"), ToolResult("call_1", "check_flight", "delayed"))
    rnd = ToolRound("", "", ref, tuple(got), results, replay)
    conv = Conversation().add(Message("user", "q")).add(Message("assistant", "", model=ref, rounds=(rnd,)))
    same = get_protocol("gemini").build_request(target, conv).body
    assert same is not None
    assert same["contents"][1] == {"role": "model", "parts": [
        {"functionCall": {"name": "check_flight", "args": {"flight": "AA100"}}, "thoughtSignature": "SIG_A"},
        {"functionCall": {"name": "check_flight", "args": {"flight": "BA200"}}}]}
    assert same["contents"][2] == {"role": "user", "parts": [
        {"functionResponse": {"name": "check_flight", "response": {"result": "on time"}}},
        {"functionResponse": {"name": "check_flight", "response": {"result": "delayed"}}}]}
    other = get_protocol("gemini").build_request(Target("gemini", "https://g", "gemini-2.5-pro"), conv).body
    assert other is not None
    assert [p.get("thoughtSignature") for p in other["contents"][1]["parts"]] == ["skip_thought_signature_validator", None]


def test_ollama_tool_calls_parse_and_go_back_by_name() -> None:
    lines = [
        {"model": "qwen3:8b", "message": {"role": "assistant", "content": "", "tool_calls": [
            {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]}, "done": False},
        {"model": "qwen3:8b", "message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "stop",
         "prompt_eval_count": 5, "eval_count": 3},
    ]
    body = "".join(json.dumps(line) + "\n" for line in lines).encode()
    target = Target("ollama", "http://o", "qwen3:8b")
    events = list(get_protocol("ollama").parse_stream([body], target))
    got = calls(events)
    assert got == [ToolCall("call_0", "get_weather", '{"city": "Paris"}')]
    assert events[-1].finish_reason == "tool_calls"
    rnd = ToolRound("", "", None, tuple(got), (ToolResult("call_0", "get_weather", "sunny"),))
    conv = Conversation().add(Message("user", "q")).add(Message("assistant", "It is sunny.", rounds=(rnd,)))
    req = get_protocol("ollama").build_request(
        Target("ollama", "http://o", "qwen3:8b", tools=(ToolSpec("get_weather", "weather"),)), conv).body
    assert req is not None
    assert req["messages"][1:] == [
        {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
        {"role": "tool", "content": "sunny", "tool_name": "get_weather"},
        {"role": "assistant", "content": "It is sunny."},
    ]
    assert req["tools"][0]["function"]["name"] == "get_weather"


def test_gemini_call_ids_it_gave_are_answered_with_the_same_id() -> None:
    stream = (
        'data: {"candidates": [{"content": {"parts": [{"functionCall": {"id": "fc_9", "name": "t", "args": {}},'
        ' "thoughtSignature": "S"}], "role": "model"}, "finishReason": "STOP"}]}\r\n\r\n'
    ).encode()
    target = Target("gemini", "https://g", "gemini-3-pro-preview")
    events = list(get_protocol("gemini").parse_stream([stream], target))
    assert calls(events) == [ToolCall("fc_9", "t", "{}")]
    ref = ModelRef("gemini", target.model_id, "gemini")
    rnd = ToolRound("", "", ref, tuple(calls(events)), (ToolResult("fc_9", "t", "ok"),),
                    tuple(e for e in events if isinstance(e, ReplayState)))
    conv = Conversation().add(Message("user", "q")).add(Message("assistant", "", model=ref, rounds=(rnd,)))
    body = get_protocol("gemini").build_request(target, conv).body
    assert body is not None
    assert body["contents"][2]["parts"] == [{"functionResponse": {"id": "fc_9", "name": "t", "response": {"result": "ok"}}}]
