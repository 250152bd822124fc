"""The OpenAI Chat Completions protocol: requests, recorded real streams, quirks and errors."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from modelswitch.conversation import Conversation, Message, ModelRef
from modelswitch.errors import (
    ModelSwitchError,
    OverloadedError,
    ProtocolError,
    ProviderError,
    RateLimitError,
    StreamError,
)
from modelswitch.events import Done, Event, Notice, ReasoningDelta, TextDelta, Usage
from modelswitch.providers import get_protocol
from modelswitch.providers.base import Target
from modelswitch.providers.openai import PROTOCOL
from tests.loopback import LoopbackServer, Reply

FIXTURES = Path(__file__).parent / "fixtures"
TARGET = Target(provider="deepseek", base_url="https://api.deepseek.com", model_id="deepseek-reasoner")


# --- helpers ----------------------------------------------------------------------------------


@dataclass
class Parsed:
    events: list[Event] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(e.text for e in self.events if isinstance(e, TextDelta))

    @property
    def reasoning(self) -> str:
        return "".join(e.text for e in self.events if isinstance(e, ReasoningDelta))

    @property
    def usage(self) -> list[Usage]:
        return [e for e in self.events if isinstance(e, Usage)]

    @property
    def done(self) -> list[Done]:
        return [e for e in self.events if isinstance(e, Done)]

    @property
    def notices(self) -> list[Notice]:
        return [e for e in self.events if isinstance(e, Notice)]


def parse(chunks: Iterable[bytes], target: Target = TARGET) -> Parsed:
    return Parsed(list(PROTOCOL.parse_stream(chunks, target)))


def parse_until_error(chunks: Iterable[bytes], target: Target = TARGET) -> tuple[Parsed, BaseException]:
    """Events that arrived before the stream raised, and what it raised."""
    got = Parsed()
    with pytest.raises(ModelSwitchError) as info:
        for event in PROTOCOL.parse_stream(chunks, target):
            got.events.append(event)
    return got, info.value


def chunk(
    content: str | None = None,
    *,
    finish: str | None = None,
    usage: dict | None = None,
    **delta: object,
) -> dict:
    """A chat.completion.chunk as OpenAI-compatible servers send it."""
    if content is not None:
        delta["content"] = content
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        "usage": usage,
    }


def sse(*payloads: dict | str, done: bool = True) -> list[bytes]:
    """One network read per event, as most servers flush them."""
    out = [f"data: {p if isinstance(p, str) else json.dumps(p)}\n\n".encode() for p in payloads]
    if done:
        out.append(b"data: [DONE]\n\n")
    return out


def content_stream(*pieces: str, finish: str = "stop") -> list[bytes]:
    return sse(*[chunk(p) for p in pieces], chunk(finish=finish))


def bytewise(body: bytes) -> list[bytes]:
    return [body[i : i + 1] for i in range(len(body))]


def random_split(body: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    out, i = [], 0
    while i < len(body):
        n = rng.choice([1, 2, 3, 5, 8, 64, 300, 4096])
        out.append(body[i : i + n])
        i += n
    return out


def splittings(body: bytes) -> Iterator[tuple[str, list[bytes]]]:
    yield "whole", [body]
    yield "bytewise", bytewise(body)
    for seed in range(3):
        yield f"random{seed}", random_split(body, seed)


# --- recorded streams -------------------------------------------------------------------------


def reference(name: str) -> tuple[str, str]:
    """(text, reasoning) by the plainest reading of the whole file, independent of the parser.

    Every JSON data line's delta fields are concatenated; inline tags are cut with one partition.
    OpenRouter repeats delta.reasoning inside reasoning_details, so only delta.reasoning is read.
    """
    content, reasoning = "", ""
    for line in (FIXTURES / name).read_text("utf-8").splitlines():
        if line.startswith("data: {"):
            for choice in json.loads(line[len("data: ") :])["choices"]:
                delta = choice["delta"]
                content += delta.get("content") or ""
                reasoning += delta.get("reasoning_content") or delta.get("reasoning") or ""
    if "</think>" in content:
        thought, _, content = content.partition("</think>")
        assert not reasoning, "no fixture mixes both styles"
        reasoning = thought.removeprefix("<think>").strip()
        content = content.lstrip()
    return content, reasoning


@dataclass(frozen=True)
class Recorded:
    """What a person reading the file sees in it: where the text starts and ends, and its usage."""

    text_starts: str
    text_ends: str
    reasoning_starts: str
    reasoning_ends: str
    usage: Usage
    finish: str
    notice: str = ""  # what a person is told about how the answer ended, if anything


RECORDED = {
    "openai_chat_stream_text_with_usage_chunk.sse": Recorded(
        "The capital of the UK is London.", "The capital of the UK is London.", "", "",
        Usage(78, 9, 0, 0), "stop",
    ),
    "openai_chat_stream_toolcall_with_usage_chunk.sse": Recorded(
        # The call itself: test_tools_wire.py checks it parses to the exact ToolCall.
        "", "", "", "", Usage(53, 15, 0, 0), "tool_calls",
    ),
    "deepseek_reasoner_stream_reasoning_content.sse": Recorded(
        "Hello there! 😊 How can I help you today?", "Hello there! 😊 How can I help you today?",
        'Hmm, the user just said "Hello".', "they might not reply further - and that's okay too.",
        Usage(6, 212, 198, 0), "stop",
    ),
    "openrouter_stream_reasoning_claude_sonnet45.sse": Recorded(
        "2 + 2 = 4", "2 + 2 = 4",
        "This is a simple arithmetic question. 2+2 equals 4.", "This is a simple arithmetic question. 2+2 equals 4.",
        Usage(43, 36, 13, 0), "stop",
    ),
    "openrouter_stream_o3_encrypted_reasoning_details.sse": Recorded(
        "I’m ChatGPT, a large-language-model assistant created by OpenAI.", "just let me know!", "", "",
        Usage(9, 104, 0, 0), "stop",
    ),
    "groq_r1_distill_inline_think_tags_escaped.sse": Recorded(
        "To make Uruguayan alfajores, follow these organized steps", "Enjoy your homemade Uruguayan alfajores!",
        "Okay, so I want to make Uruguayan alfajores.", "if something doesn't turn out right, I can adjust next time.",
        Usage(21, 988, 0, 0), "stop",
    ),
    "hf_router_together_deepseek_r1_inline_think_tags.sse": Recorded(
        "Crossing the street safely requires attention", "Practice these steps every time—it could save your life! 🌟",
        'Okay, the user asked "How do I cross the street?"', "Safety first, but don't sound like a paranoid robot.",
        Usage(10, 955, 0, 0), "stop",
    ),
}


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_recorded_stream_parses_to_its_text_reasoning_and_usage_in_any_chunking(name: str) -> None:
    body = (FIXTURES / name).read_bytes()
    expected_text, expected_reasoning = reference(name)
    want = RECORDED[name]
    assert expected_text.startswith(want.text_starts) and expected_text.endswith(want.text_ends)
    assert expected_reasoning.startswith(want.reasoning_starts)
    assert expected_reasoning.endswith(want.reasoning_ends)
    for how, chunks in splittings(body):
        got = parse(chunks)
        assert got.text == expected_text, how
        assert got.reasoning == expected_reasoning, how
        assert got.usage == [want.usage], how
        assert got.done == [Done(want.finish)], how
        assert [e for e in got.events if not isinstance(e, Notice)][-2:] == [want.usage, Done(want.finish)], how
        assert [want.notice in n.text for n in got.notices] == ([True] if want.notice else []), how


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_recorded_reasoning_all_comes_before_the_answer(name: str) -> None:
    events = parse([(FIXTURES / name).read_bytes()]).events
    kinds = [type(e) for e in events if isinstance(e, (TextDelta, ReasoningDelta))]
    assert kinds == sorted(kinds, key=lambda k: k is TextDelta)


def test_inline_tags_never_reach_the_events() -> None:
    for name in ("groq_r1_distill_inline_think_tags_escaped.sse", "hf_router_together_deepseek_r1_inline_think_tags.sse"):
        got = parse([(FIXTURES / name).read_bytes()])
        assert "<think>" not in got.text + got.reasoning
        assert "</think>" not in got.text + got.reasoning


def test_deepseek_streams_reasoning_live_not_at_the_end() -> None:
    events = parse([(FIXTURES / "deepseek_reasoner_stream_reasoning_content.sse").read_bytes()]).events
    pieces = [e for e in events if isinstance(e, ReasoningDelta)]
    assert len(pieces) > 100 and pieces[0] == ReasoningDelta("H")


def test_openrouter_reasoning_details_duplicates_are_not_doubled() -> None:
    got = parse([(FIXTURES / "openrouter_stream_reasoning_claude_sonnet45.sse").read_bytes()])
    assert got.reasoning.count("2+2 equals 4.") == 1


# --- inline <think> -------------------------------------------------------------------------


THOUGHT = "<think>\nLet me add: 2 and 2.\n</think>\n\nIt is 4 (not <4>)."


@pytest.mark.parametrize("cut", range(1, len(THOUGHT)))
def test_think_tags_split_at_any_point(cut: int) -> None:
    got = parse(content_stream(THOUGHT[:cut], THOUGHT[cut:]))
    assert (got.reasoning, got.text) == ("Let me add: 2 and 2.", "It is 4 (not <4>).")


def test_think_tags_one_character_per_chunk() -> None:
    got = parse(content_stream(*THOUGHT))
    assert (got.reasoning, got.text) == ("Let me add: 2 and 2.", "It is 4 (not <4>).")


def test_content_without_tags_is_streamed_as_it_comes() -> None:
    got = parse(content_stream("Hello", ", world", " <b>bold</b>", "!"))
    assert got.events[:3] == [TextDelta("Hello"), TextDelta(", world"), TextDelta(" <b>bold</b>")]
    assert got.text == "Hello, world <b>bold</b>!"


def test_a_think_tag_in_the_middle_of_an_answer_is_just_text() -> None:
    got = parse(content_stream("Wrap it in ", "<think>", " tags"))
    assert (got.text, got.reasoning) == ("Wrap it in <think> tags", "")


def test_text_that_merely_starts_like_a_tag_is_text() -> None:
    assert parse(content_stream("<thin", "king cap>")).text == "<thinking cap>"
    assert parse(content_stream("<")).text == "<"


def test_unterminated_think_is_all_reasoning() -> None:
    got = parse(content_stream("<think>I ran out of", " tokens</thi", finish="length"))
    assert (got.reasoning, got.text, got.done) == ("I ran out of tokens</thi", "", [Done("length")])


def test_lone_close_tag_for_a_declared_thinking_model_marks_everything_before_as_reasoning() -> None:
    target = Target("vllm", "http://h", "qwen3", reasoning=True)
    for pieces in (
        ("First, ", "think.\n</th", "ink>\n\nAnswer."),
        ("First, think.\n</think>\n\nAnswer.",),
        tuple("First, think.\n</think>\n\nAnswer."),
    ):
        got = parse(content_stream(*pieces), target)
        assert (got.reasoning, got.text, got.notices) == ("First, think.", "Answer.", [])


def test_lone_close_tag_with_a_token_budget_is_also_held() -> None:
    got = parse(content_stream("mull it over", "</think>", "ok"), Target("x", "http://h", "m", reasoning=2048))
    assert (got.reasoning, got.text) == ("mull it over", "ok")


def test_declared_thinking_model_with_no_tags_still_gets_its_whole_answer() -> None:
    got = parse(content_stream("Just ", "an answer."), Target("x", "http://h", "m", reasoning=True))
    assert (got.reasoning, got.text) == ("", "Just an answer.")


def test_reasoning_field_releases_held_content_for_a_declared_thinking_model() -> None:
    target = Target("deepseek", "http://h", "deepseek-reasoner", reasoning=True)
    got = parse(sse(chunk(None, reasoning_content=""), chunk(None, reasoning_content="hm"), chunk("Hi"), chunk(finish="stop")), target)
    assert got.events[:2] == [ReasoningDelta("hm"), TextDelta("Hi")]


def test_lone_close_tag_in_an_undeclared_model_keeps_streaming_and_says_how_to_fix_it() -> None:
    got = parse(content_stream("First, think.", "</think>", "\n\nAnswer."), Target("x", "http://h", "qwen3"))
    assert got.events[0] == TextDelta("First, think.")  # shown at once, not held back
    assert got.text == "First, think.\n\nAnswer."  # the gap after the tag is kept: no glued words
    assert len(got.notices) == 1 and "reasoning = true" in got.notices[0].text
    assert "qwen3" in got.notices[0].text
    # The advice comes after the whole answer, never between two pieces of its text.
    texts = [i for i, e in enumerate(got.events) if isinstance(e, TextDelta)]
    assert got.events.index(got.notices[0]) > max(texts)


@pytest.mark.parametrize("pieces", [("I used the</think>to indicate",), ("I used the", "</think>", "to indicate"),
                                    ("I used the </think>", " to indicate",), ("I used the</thi", "nk> ", "to indicate")])
def test_removing_a_lone_tag_never_glues_words(pieces: tuple[str, ...]) -> None:
    got = parse(content_stream(*pieces), Target("x", "http://h", "qwen3"))
    assert got.text.replace("  ", " ") == "I used the to indicate"
    assert "theto" not in got.text


def test_no_lone_tag_advice_when_reasoning_came_in_its_own_field() -> None:
    target = Target("local", "http://h", "smollm2", reasoning="low")
    got = parse(sse(chunk(None, reasoning_content="hmm"), chunk("Bamboo,</think>"), chunk(" and pine."),
                    chunk(finish="stop")), target)
    assert got.reasoning == "hmm" and got.text == "Bamboo, and pine."
    assert got.notices == []


def test_tags_are_found_only_after_json_decoding() -> None:
    escaped = b'data: {"choices":[{"index":0,"delta":{"content":"\\u003cthink\\u003eabc\\u003c/think\\u003eok"}}]}\n\n'
    got = parse([escaped, *sse(chunk(finish="stop"))])
    assert (got.reasoning, got.text) == ("abc", "ok")


# --- other delta shapes -----------------------------------------------------------------------


def test_null_content_and_empty_choices_are_fine() -> None:
    got = parse(sse(chunk(None), chunk(""), {"choices": []}, {"choices": [{"index": 0, "delta": None}]}, chunk("x"), chunk(finish="stop")))
    assert (got.text, got.reasoning, got.done) == ("x", "", [Done("stop")])


def test_ollama_and_openrouter_reasoning_field() -> None:
    got = parse(sse(chunk("", reasoning="Thinking"), chunk("", reasoning=" more"), chunk("Done."), chunk(finish="stop")))
    assert (got.reasoning, got.text) == ("Thinking more", "Done.")


def test_reasoning_details_alone_summary_and_encrypted() -> None:
    details = [
        {"type": "reasoning.summary", "summary": "Summary. "},
        {"type": "reasoning.encrypted", "data": "gAAAA"},
        {"type": "reasoning.text", "text": "Detail."},
    ]
    got = parse(sse(chunk("", reasoning=None, reasoning_details=details), chunk("A"), chunk(finish="stop")))
    assert (got.reasoning, got.text) == ("Summary. Detail.", "A")


def test_reasoning_details_that_repeat_delta_reasoning_count_once() -> None:
    d = [{"type": "reasoning.text", "text": "same"}]
    assert parse(sse(chunk("", reasoning="same", reasoning_details=d), chunk(finish="stop"))).reasoning == "same"


def test_refusal_is_a_notice_and_the_finish_not_glued_onto_the_answer() -> None:
    got = parse(sse(chunk("Sure: "), chunk(None, refusal="I can't help with that."), chunk(finish="stop")))
    assert got.text == "Sure: "
    assert [n.text for n in got.notices][0] == "deepseek-reasoner refused: I can't help with that."
    assert got.done == [Done("refusal")]


# --- usage ------------------------------------------------------------------------------------


def test_usage_on_the_finish_chunk_deepseek_style_with_cache_hits() -> None:
    usage = {"prompt_tokens": 100, "completion_tokens": 50, "prompt_cache_hit_tokens": 64,
             "completion_tokens_details": {"reasoning_tokens": 30}}
    got = parse(sse(chunk("a"), chunk("", finish="stop", usage=usage)))
    assert got.events[-2:] == [Usage(100, 50, 30, 64), Done("stop")]


def test_usage_in_a_separate_empty_choices_chunk_openai_style() -> None:
    usage = {"prompt_tokens": 10, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 8}}
    got = parse(sse(chunk("a"), chunk(finish="stop"), {"choices": [], "usage": usage}))
    assert got.events[-2:] == [Usage(10, 5, 0, 8), Done("stop")]


def test_only_the_last_usage_is_reported_once() -> None:
    got = parse(sse(chunk("a", usage={"prompt_tokens": 1, "completion_tokens": 1}),
                    chunk("b", usage={"prompt_tokens": 1, "completion_tokens": 2}),
                    chunk(finish="stop", usage={"prompt_tokens": 1, "completion_tokens": 3})))
    assert got.usage == [Usage(1, 3)]


def test_usage_inside_the_choice_moonshot_style() -> None:
    body = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop", "usage": {"prompt_tokens": 7, "completion_tokens": 3}}]}
    assert parse(sse(chunk("a"), body)).usage == [Usage(7, 3)]


def test_no_usage_means_no_usage_event() -> None:
    got = parse(content_stream("a"))
    assert got.usage == [] and got.events[-1] == Done("stop")


def test_malformed_usage_fields_count_as_zero() -> None:
    usage = {"prompt_tokens": "12", "completion_tokens": None, "prompt_tokens_details": [], "completion_tokens_details": 5}
    assert parse(sse(chunk("a", finish="stop", usage=usage))).usage == [Usage()]


# --- ends of streams --------------------------------------------------------------------------


def test_finish_reason_without_done_is_a_complete_answer() -> None:
    got = parse(sse(chunk("a"), chunk(finish="length"), done=False))
    assert (got.text, got.done) == ("a", [Done("length")])


def test_done_without_finish_reason_is_done_with_none() -> None:
    assert parse(sse(chunk("a"))).done == [Done(None)]


def test_stream_cut_off_before_the_end_raises_after_yielding_what_came() -> None:
    got, err = parse_until_error(sse(chunk("partial "), chunk("answer"), done=False))
    assert got.text == "partial answer"
    assert type(err) is StreamError and err.message == "stream ended before the answer finished"
    assert (err.provider, err.model) == ("deepseek", "deepseek-reasoner")


def test_cut_off_declared_thinking_stream_still_yields_held_text_before_raising() -> None:
    got, err = parse_until_error(sse(chunk("held back"), done=False), Target("x", "h", "m", reasoning=True))
    assert got.text == "held back" and isinstance(err, StreamError)


def test_connection_error_mid_stream_yields_held_text_then_propagates() -> None:
    def broken() -> Iterator[bytes]:
        yield from sse(chunk("<think>half a thou"), done=False)
        raise OSError("connection reset")

    got = Parsed()
    with pytest.raises(OSError):
        for event in PROTOCOL.parse_stream(broken(), TARGET):
            got.events.append(event)
    assert got.reasoning == "half a thou"


@pytest.mark.parametrize("body", [[], [b""], [b"", b"  \n\n"], [b": keep-alive\n\n", b": OPENROUTER PROCESSING\n\n"]])
def test_empty_response(body: list[bytes]) -> None:
    with pytest.raises(StreamError, match="^empty response$"):
        parse(body)


def test_invalid_json_in_a_data_line_is_a_protocol_error() -> None:
    got, err = parse_until_error([*sse(chunk("ok"), done=False), b"data: {\"choices\": [\n\n"])
    assert got.text == "ok" and type(err) is ProtocolError


def test_data_that_is_not_an_object_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        parse([b"data: [1, 2]\n\n"])


def test_html_in_a_200_is_a_clear_stream_error() -> None:
    with pytest.raises(StreamError, match="expected an event stream, got HTML"):
        parse([b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>"])


def test_stops_reading_at_done() -> None:
    def endless() -> Iterator[bytes]:
        yield from content_stream("a")
        raise AssertionError("read past [DONE]")

    assert parse(endless()).text == "a"


def test_twenty_thousand_chunks() -> None:
    # The hot path: one JSON decode per event. Correctness here; speed is visible in the run time.
    body = [f'data: {{"choices":[{{"index":0,"delta":{{"content":"t{i} "}}}}]}}\n\n'.encode() for i in range(20_000)]
    got = parse([*body, *sse(chunk(finish="stop"))])
    assert len(got.events) == 20_001 and got.text.endswith("t19999 ")


# --- a 200 that is not a stream ---------------------------------------------------------------


def test_plain_json_completion_is_parsed_into_the_same_events() -> None:
    body = (FIXTURES / "deepseek_v4flash_nonstream_turn2_reasoning_content_passed_back.json").read_bytes()
    for how, chunks in splittings(body):
        got = parse(chunks)
        assert got.text == "Let me get your name and roll the die!", how
        assert got.reasoning.startswith("Great, now I have access to the dice roll tool."), how
        assert got.events[-1:] == [Done("tool_calls")] and Usage(875, 79, 26, 0) in got.events, how
        # Both calls are parsed (test_tools_wire.py checks them), so nothing is left to warn about.
        assert got.notices == [], how


def test_plain_json_completion_with_a_lone_close_tag_is_split_exactly() -> None:
    body = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": "hmm\n</think>\n\nYes."}, "finish_reason": "stop"}]})
    got = parse([body.encode()])
    assert (got.reasoning, got.text, got.notices) == ("hmm", "Yes.", [])


def test_plain_json_error_in_a_200_raises() -> None:
    with pytest.raises(OverloadedError, match="Server is busy"):
        parse([b'{"error": {"message": "Server is busy, please try again later", "code": 503}}'])


@pytest.mark.parametrize("body", [b'{"id": "x"}', b"[1, 2]", b'{"choices": []}'])
def test_plain_json_that_is_not_a_completion_is_a_stream_error(body: bytes) -> None:
    with pytest.raises(StreamError, match="expected an event stream"):
        parse([body])


def test_truncated_plain_json_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        parse([b'{"choices": [{"message": '])


# --- errors inside a 200 stream ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "cls", "message"),
    [
        ({"message": "Server busy, please retry", "type": "server_error"}, OverloadedError, "Server busy, please retry"),
        ({"message": "Overloaded", "type": "overloaded_error"}, OverloadedError, "Overloaded"),
        ({"message": "upstream unavailable", "code": 529}, OverloadedError, "upstream unavailable"),
        ({"message": "Service Unavailable", "code": 503}, OverloadedError, "Service Unavailable"),
        ({"message": "Rate limit exceeded: free-models-per-min", "code": 429}, RateLimitError, "Rate limit exceeded: free-models-per-min"),
        ({"message": "slow down", "code": "rate_limit_exceeded"}, RateLimitError, "slow down"),
        ({"message": "Internal error in the model", "code": 500}, StreamError, "Internal error in the model"),
        ("context length exceeded", StreamError, "context length exceeded"),
        ({"code": 502, "message": "Provider returned error", "metadata": {"raw": "{\"error\":{\"message\":\"Backend crashed\"}}"}},
         StreamError, "Backend crashed"),
    ],
)
def test_error_object_in_a_200_stream(error: object, cls: type[ProviderError], message: str) -> None:
    got, err = parse_until_error(sse(chunk("Partial"), {"error": error}))
    assert got.text == "Partial"
    assert type(err) is cls and err.message == message
    assert (err.provider, err.model) == ("deepseek", "deepseek-reasoner")


def test_sse_error_event_raises() -> None:
    with pytest.raises(OverloadedError, match="^Overloaded$"):
        parse([b'event: error\ndata: {"error": {"type": "overloaded_error", "message": "Overloaded"}}\n\n'])
    with pytest.raises(StreamError, match="^something broke$"):
        parse([b"event: error\ndata: something broke\n\n"])


# --- build_request ----------------------------------------------------------------------------

R1 = ModelRef("deepseek", "deepseek-reasoner", "openai", "r1")
HY = ModelRef("hunyuan", "hunyuan-turbos-latest", "openai", "hy")


def conv(*messages: Message, system: str | None = None) -> Conversation:
    return Conversation(system=system, messages=tuple(messages))


def test_request_url_method_and_body_basics() -> None:
    req = PROTOCOL.build_request(Target("openai", "https://api.openai.com/v1/", "gpt-4o-mini"), conv(Message("user", "hi")))
    assert (req.method, req.url) == ("POST", "https://api.openai.com/v1/chat/completions")
    assert req.body == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    json.dumps(req.body)


def test_request_headers_with_and_without_a_key() -> None:
    with_key = PROTOCOL.build_request(Target("d", "https://x", "m", api_key="sk-test"), conv(Message("user", "q")))
    assert with_key.headers == {
        "Authorization": "Bearer sk-test",
        "Content-Type": "application/json",
        "Accept": "text/event-stream",
    }
    local = PROTOCOL.build_request(Target("ollama", "http://localhost:11434/v1", "qwen3"), conv(Message("user", "q")))
    assert "Authorization" not in local.headers


def test_target_headers_are_added_and_override_case_insensitively() -> None:
    target = Target("d", "https://x", "m", api_key="sk-test",
                    headers=(("HTTP-Referer", "https://example.org"), ("authorization", "Token other")))
    headers = PROTOCOL.build_request(target, conv(Message("user", "q"))).headers
    assert headers["HTTP-Referer"] == "https://example.org"
    assert [k for k in headers if k.lower() == "authorization"] == ["authorization"]
    assert headers["authorization"] == "Token other"


def test_temperature_and_max_tokens_only_when_set() -> None:
    body = PROTOCOL.build_request(Target("d", "https://x", "m", temperature=0.0, max_tokens=256), conv(Message("user", "q"))).body
    assert (body["temperature"], body["max_tokens"]) == (0.0, 256)
    bare = PROTOCOL.build_request(Target("d", "https://x", "m"), conv(Message("user", "q"))).body
    assert "temperature" not in bare and "max_tokens" not in bare


@pytest.mark.parametrize("effort", ["low", "medium", "high"])
def test_reasoning_effort_string_is_sent(effort: str) -> None:
    body = PROTOCOL.build_request(Target("o", "https://x", "o3", reasoning=effort), conv(Message("user", "q"))).body
    assert body["reasoning_effort"] == effort


@pytest.mark.parametrize("reasoning", [None, True, False, 0, 4096])
def test_reasoning_flags_and_budgets_send_nothing_openai_or_deepseek_would_reject(reasoning: object) -> None:
    body = PROTOCOL.build_request(Target("d", "https://x", "m", reasoning=reasoning), conv(Message("user", "q"))).body  # type: ignore[arg-type]
    assert set(body) == {"model", "messages", "stream", "stream_options"}


def test_system_prompt_goes_first() -> None:
    body = PROTOCOL.build_request(TARGET, conv(Message("user", "q"), system="Be brief.")).body
    assert body["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "q"}]


def test_assistant_turns_carry_only_their_answer() -> None:
    c = conv(
        Message("user", "why?"),
        Message("assistant", "Because.", reasoning="SECRET CHAIN OF THOUGHT", model=R1),
        Message("user", "and?"),
        Message("assistant", "<think>\nOLD INLINE THOUGHT\n</think>\n\nAnd so.", model=HY),
        Message("user", "ok"),
    )
    body = PROTOCOL.build_request(TARGET, c).body
    assert body["messages"] == [
        {"role": "user", "content": "why?"},
        {"role": "assistant", "content": "Because."},
        {"role": "user", "content": "and?"},
        {"role": "assistant", "content": "And so."},
        {"role": "user", "content": "ok"},
    ]
    raw = json.dumps(body)
    for leak in ("SECRET", "OLD INLINE", "reasoning", "<think>", "</think>"):
        assert leak not in raw


def test_consecutive_same_role_messages_are_merged_with_a_blank_line() -> None:
    c = conv(
        Message("user", "first"),
        Message("user", "second"),
        Message("assistant", "a1", model=R1),
        Message("assistant", "a2", model=HY),
        Message("user", "third"),
    )
    assert PROTOCOL.build_request(TARGET, c).body["messages"] == [
        {"role": "user", "content": "first\n\nsecond"},
        {"role": "assistant", "content": "a1\n\na2"},
        {"role": "user", "content": "third"},
    ]


def test_get_protocol_finds_this_module() -> None:
    assert get_protocol("openai") is PROTOCOL and PROTOCOL.name == "openai"


# --- error_message ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "name", "message"),
    [
        (400, "openai_400_unsupported_value.json",
         "Unsupported value: 'messages[0].role' does not support 'system' with this model."),
        (404, "openai_404_model_not_found.json",
         "The model `gpt-5.2-proo` does not exist or you do not have access to it."),
        (429, "openrouter_429_provider_rate_limited.json",
         ("google/gemini-2.0-flash-exp:free is temporarily rate-limited upstream. Please retry shortly, or add "
          "your own key to accumulate your rate limits: https://openrouter.ai/settings/integrations")),
    ],
)
def test_error_message_from_recorded_bodies(status: int, name: str, message: str) -> None:
    assert PROTOCOL.error_message(status, (FIXTURES / name).read_bytes()) == message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"error": "Insufficient Balance"}', "Insufficient Balance"),
        (b'{"message": "Authentication Fails (no such user)"}', "Authentication Fails (no such user)"),
        (b'{"object": "error", "message": "vLLM says no", "code": 400}', "vLLM says no"),
        (b'{"detail": "Not Found"}', "Not Found"),
        (b'{"error": {"message": "multi\\n  line\\tmessage"}}', "multi line message"),
        (b'{"error": {"message": "Provider returned error", "metadata": {"raw": "plain upstream text"}}}', "plain upstream text"),
        (b'{"error": {"message": "Specific", "metadata": {"raw": "less useful"}}}', "Specific"),
        (b'[{"error": {"code": 400, "message": "in a list"}}]', "in a list"),
        (b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>", ""),
        (b"<html>nginx</html>", ""),
        (b"", ""),
        (b"\xff\xfe\x00garbage", ""),
        (b"null", ""),
        (b"42", ""),
        (b'{"error": {"code": 500}}', ""),
        (b'{"error": null, "choices": []}', ""),
    ],
)
def test_error_message_shapes(body: bytes, message: str) -> None:
    assert PROTOCOL.error_message(500, body) == message


def test_error_message_is_one_bounded_line() -> None:
    text = PROTOCOL.error_message(400, json.dumps({"error": {"message": "x\n" * 5000}}).encode())
    assert "\n" not in text and len(text) <= 500


# --- over real HTTP ---------------------------------------------------------------------------


def over_http(server: LoopbackServer, target: Target, conversation: Conversation) -> Parsed:
    """Send build_request's request with httpx and parse the raw chunked body as it arrives."""
    req = PROTOCOL.build_request(target, conversation)
    with httpx.Client() as client, client.stream(req.method, req.url, headers=req.headers, json=req.body) as resp:
        assert resp.status_code == 200
        return Parsed(list(PROTOCOL.parse_stream(resp.iter_raw(), target)))


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("openrouter_stream_reasoning_claude_sonnet45.sse", 1),
        ("deepseek_reasoner_stream_reasoning_content.sse", 13),
        ("groq_r1_distill_inline_think_tags_escaped.sse", 997),
        ("openai_chat_stream_text_with_usage_chunk.sse", None),
    ],
)
def test_chunked_http_delivery_parses_the_same(server: LoopbackServer, name: str, size: int | None) -> None:
    server.add(Reply.fixture(name, size=size))
    target = Target("p", server.url + "/v1", "m", api_key="sk-loopback")
    got = over_http(server, target, conv(Message("user", "hello"), system="sys"))
    direct = parse([(FIXTURES / name).read_bytes()], target)
    assert got.events == direct.events
    assert (got.text, got.reasoning) == reference(name)
    sent = server.requests[0]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-loopback"
    assert sent.json["messages"][0] == {"role": "system", "content": "sys"}
    assert sent.json["stream_options"] == {"include_usage": True}


def test_in_stream_error_over_http(server: LoopbackServer) -> None:
    server.add(Reply.sse(chunk("Hal"), {"error": {"message": "Server busy", "code": 503}}, done=False))
    target = Target("p", server.url, "m")
    req = PROTOCOL.build_request(target, conv(Message("user", "q")))
    seen: list[Event] = []
    with httpx.Client() as client, client.stream(req.method, req.url, json=req.body) as resp:
        with pytest.raises(OverloadedError, match="Server busy"):
            for event in PROTOCOL.parse_stream(resp.iter_raw(), target):
                seen.append(event)
    assert seen == [TextDelta("Hal")]


# --- through transport.stream -----------------------------------------------------------------


def test_transport_stream_end_to_end(server: LoopbackServer) -> None:
    from modelswitch.providers import transport

    server.add(Reply.fixture("deepseek_reasoner_stream_reasoning_content.sse", size=512))
    target = Target("deepseek", server.url, "deepseek-reasoner", api_key="sk-loopback")
    got = Parsed(list(transport.stream(PROTOCOL, target, conv(Message("user", "Hello")), read_timeout=10.0)))
    assert (got.text, got.reasoning) == reference("deepseek_reasoner_stream_reasoning_content.sse")
    assert got.events[-2:] == [Usage(6, 212, 198, 0), Done("stop")]


def test_transport_in_stream_overload_is_named(server: LoopbackServer) -> None:
    from modelswitch.providers import transport

    server.add(Reply.sse({"error": {"message": "Server is busy", "code": 503}}, done=False))
    target = Target("deepseek", server.url, "deepseek-reasoner")
    with pytest.raises(OverloadedError) as info:
        list(transport.stream(PROTOCOL, target, conv(Message("user", "q")), read_timeout=10.0))
    assert "deepseek/deepseek-reasoner" in info.value.message and "Server is busy" in info.value.message


def test_transport_uses_error_message_for_error_statuses(server: LoopbackServer) -> None:
    from modelswitch import errors
    from modelswitch.providers import transport

    server.add(Reply.json(404, (FIXTURES / "openai_404_model_not_found.json").read_bytes()))
    with pytest.raises(errors.ModelNotFoundError) as info:
        list(transport.stream(PROTOCOL, Target("openai", server.url, "gpt-5.2-proo"), conv(Message("user", "q"))))
    assert "does not exist or you do not have access to it" in info.value.message


def test_transport_accepts_a_non_stream_json_answer(server: LoopbackServer) -> None:
    from modelswitch.providers import transport

    body = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Plain."}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1}}
    server.add(Reply.json(200, body))
    got = Parsed(list(transport.stream(PROTOCOL, Target("p", server.url, "m"), conv(Message("user", "q")))))
    assert got.events == [TextDelta("Plain."), Usage(3, 1), Done("stop")]


@pytest.mark.parametrize("reason, words", [("length", "hit max_tokens"), ("content_filter", "content filter")])
def test_abnormal_finish_is_told_in_words(reason: str, words: str) -> None:
    stream = (b'data: {"choices":[{"index":0,"delta":{"content":"cut"},"finish_reason":null}]}\n\n'
              b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"' + reason.encode() + b'"}]}\n\n'
              b"data: [DONE]\n\n")
    p = parse([stream])
    assert [n.text for n in p.notices] and words in p.notices[0].text
    assert p.done == [Done(reason)]
