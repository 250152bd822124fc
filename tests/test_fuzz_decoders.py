"""Property tests: the decoders (and the OpenAI parser above them) depend only on the bytes, never
on how the network cut them, and fail only with our own errors."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelswitch.errors import ModelSwitchError, ProtocolError
from modelswitch.events import Notice, ReasoningDelta, TextDelta
from modelswitch.providers.base import Target
from modelswitch.providers.openai import PROTOCOL
from modelswitch.providers.sse import NDJSONDecoder, SSEDecoder, SSEEvent, iter_ndjson, iter_sse

# Modest counts: the whole suite must stay fast on two cores.
FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

EOLS = st.sampled_from([b"\n", b"\r", b"\r\n"])
TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=20
)

# Raw bytes biased toward the ones that matter to framing, so odd structures actually occur.
WIRE_BYTES = st.lists(
    st.sampled_from([b"\r", b"\n", b"\r\n", b"data: ", b"data:", b":", b"event: e", b"\xf0\x9f\x8c", b"\x9f", b"{", b"}", b"1"])
    | st.binary(max_size=6),
    max_size=40,
).map(b"".join)


def split(body: bytes | str, cuts: list[int]) -> list:
    """`body` cut at the given offsets (sorted, duplicates make empty reads)."""
    points = sorted(min(c, len(body)) for c in cuts)
    pieces, start = [], 0
    for p in points:
        pieces.append(body[start:p])
        start = p
    pieces.append(body[start:])
    return pieces


def decode_sse(chunks: list[bytes]) -> list[SSEEvent]:
    d = SSEDecoder()
    out: list[SSEEvent] = []
    for c in chunks:
        out.extend(d.feed(c))
    return out + d.close()


def decode_ndjson(chunks: list[bytes]) -> list[object]:
    d = NDJSONDecoder()
    out: list[object] = []
    for c in chunks:
        out.extend(d.feed(c))
    return out + d.close()


@st.composite
def sse_streams(draw: st.DrawFn) -> tuple[bytes, list[SSEEvent]]:
    """A well-formed SSE body built from parts, and the events it must decode to."""
    body, events = b"", []
    for _ in range(draw(st.integers(0, 6))):
        eol = draw(EOLS)
        for _ in range(draw(st.integers(0, 2))):
            body += b":" + draw(TEXT).encode() + eol  # comment lines
        name = draw(st.none() | st.sampled_from(["ping", "message_delta", "error"]))
        if name:
            body += b"event: " + name.encode() + eol
        lines = draw(st.lists(TEXT, min_size=1, max_size=3))
        for line in lines:
            body += b"data: " + line.encode() + eol
        body += eol * draw(st.integers(1, 3))  # the blank line, plus blank keep-alives
        events.append(SSEEvent(name or "message", "\n".join(lines)))
    return body, events


@FAST
@given(sse_streams(), st.lists(st.integers(0, 400), max_size=12))
def test_sse_any_split_gives_the_same_events(stream: tuple[bytes, list[SSEEvent]], cuts: list[int]) -> None:
    body, expected = stream
    assert decode_sse([body]) == expected
    assert decode_sse(split(body, cuts)) == expected


@FAST
@given(WIRE_BYTES, st.lists(st.integers(0, 300), max_size=10))
def test_sse_arbitrary_bytes_split_anywhere_decode_the_same(body: bytes, cuts: list[int]) -> None:
    assert decode_sse(split(body, cuts)) == decode_sse([body])


@FAST
@given(WIRE_BYTES, st.lists(st.integers(0, 300), max_size=10))
def test_sse_arbitrary_bytes_never_raise(body: bytes, cuts: list[int]) -> None:
    # The SSE decoder has no failure mode at all: bad UTF-8 is replaced, unknown fields ignored.
    for event in decode_sse(split(body, cuts)):
        assert isinstance(event.data, str)


@FAST
@given(sse_streams(), st.integers(1, 5000), st.integers(1, 97), st.lists(st.integers(0, 6000), max_size=8),
       st.booleans())
def test_sse_long_lines_any_chunking_and_a_bom_give_the_same_events(
    stream: tuple[bytes, list[SSEEvent]], length: int, step: int, cuts: list[int], bom: bool
) -> None:
    # A line thousands of bytes long, read a few bytes at a time or cut anywhere, decodes exactly as
    # in one read; a UTF-8 BOM before it all (itself split or not) changes nothing.
    body, expected = stream
    long_line = ("é" * length).encode()
    body += b"data: " + long_line + b"\r\n\r\n"
    expected = [*expected, SSEEvent("message", long_line.decode())]
    if bom:
        body = b"\xef\xbb\xbf" + body
    assert list(iter_sse([body])) == expected
    assert list(iter_sse(split(body, cuts))) == expected
    assert list(iter_sse(body[i : i + step] for i in range(0, len(body), step))) == expected


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)


@st.composite
def ndjson_streams(draw: st.DrawFn) -> tuple[bytes, list[object]]:
    values = draw(st.lists(JSON_VALUES, max_size=5))
    body = b""
    for v in values:
        body += b"\n" * draw(st.integers(0, 2))  # blank lines between values
        body += json.dumps(v, ensure_ascii=draw(st.booleans())).encode() + draw(EOLS)
    return body, values


@FAST
@given(ndjson_streams(), st.lists(st.integers(0, 400), max_size=12))
def test_ndjson_any_split_gives_the_same_values(stream: tuple[bytes, list[object]], cuts: list[int]) -> None:
    body, expected = stream
    assert decode_ndjson([body]) == expected
    assert decode_ndjson(split(body, cuts)) == expected


def _ndjson_outcome(chunks: list[bytes]) -> object:
    try:
        return decode_ndjson(chunks)
    except ProtocolError:
        return ProtocolError


@FAST
@given(ndjson_streams(), st.lists(st.integers(0, 400), max_size=12))
def test_ndjson_after_a_bom_gives_the_same_values(stream: tuple[bytes, list[object]], cuts: list[int]) -> None:
    body, expected = stream
    assert list(iter_ndjson(split(b"\xef\xbb\xbf" + body, cuts))) == expected


@FAST
@given(WIRE_BYTES, st.lists(st.integers(0, 300), max_size=10))
def test_ndjson_arbitrary_bytes_raise_only_protocol_error_whatever_the_split(
    body: bytes, cuts: list[int]
) -> None:
    # Anything but ProtocolError escapes and fails the test; the outcome must not depend on cuts.
    assert _ndjson_outcome(split(body, cuts)) == _ndjson_outcome([body])


@FAST
@given(st.text(max_size=200))
def test_ndjson_arbitrary_text_lines_raise_only_protocol_error(text: str) -> None:
    _ndjson_outcome([text.encode("utf-8", "surrogatepass")])


# --- the OpenAI stream parser on top of the SSE decoder ---------------------------------------

PLAIN = Target("p", "http://h", "m")
THINKER = Target("p", "http://h", "m", reasoning=True)
_PIECES = st.lists(
    st.sampled_from(["<think>", "</think>", "<", "</", "<th", "ink>", "think", ">", "a", "b c", " ", "\n", "🌟"]),
    max_size=12,
).map("".join)
# Half the cases open with a think tag, as reasoning models do, so the inside of a block gets explored.
CONTENT = _PIECES | _PIECES.map(lambda s: "<think>" + s) | _PIECES.map(lambda s: " \n<think>\n" + s + " \n</think>")


def content_body(pieces: list[str]) -> bytes:
    events = [{"choices": [{"index": 0, "delta": {"content": p}}]} for p in pieces]
    events.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"


def summary(body_chunks: list[bytes], target: Target) -> tuple[str, str, int]:
    events = list(PROTOCOL.parse_stream(body_chunks, target))
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    reasoning = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
    return text, reasoning, sum(isinstance(e, Notice) for e in events)


@FAST
@given(CONTENT, st.lists(st.integers(0, 60), max_size=6), st.sampled_from([PLAIN, THINKER]))
def test_think_splitting_does_not_depend_on_how_content_is_chunked(
    content: str, cuts: list[int], target: Target
) -> None:
    whole = summary([content_body([content])], target)
    # Every single cut and one character per chunk, besides hypothesis's own cuts: tags and the
    # whitespace around them are where a chunk boundary can change the outcome.
    splits = [split(content, cuts), list(content)] + [[content[:i], content[i:]] for i in range(1, len(content))]
    for pieces in splits:
        assert summary([content_body(pieces)], target) == whole, pieces


@FAST
@given(CONTENT, st.lists(st.integers(0, 2000), max_size=12))
def test_openai_stream_events_do_not_depend_on_byte_splits(content: str, cuts: list[int]) -> None:
    body = content_body([content[:3], content[3:]])
    whole = list(PROTOCOL.parse_stream([body], PLAIN))
    assert list(PROTOCOL.parse_stream(split(body, cuts), PLAIN)) == whole


@FAST
@given(WIRE_BYTES | st.binary(max_size=200), st.lists(st.integers(0, 300), max_size=6))
def test_openai_parser_on_arbitrary_bytes_raises_only_our_errors(body: bytes, cuts: list[int]) -> None:
    try:
        list(PROTOCOL.parse_stream(split(body, cuts), PLAIN))
    except ModelSwitchError:
        pass


@FAST
@given(st.binary(max_size=200) | JSON_VALUES.map(lambda v: json.dumps({"error": v}).encode()))
def test_error_message_never_raises(body: bytes) -> None:
    assert isinstance(PROTOCOL.error_message(500, body), str)


KEYS = st.sampled_from(
    ["choices", "delta", "message", "content", "reasoning", "reasoning_content", "reasoning_details", "type",
     "text", "summary", "usage", "prompt_tokens", "completion_tokens", "prompt_tokens_details", "finish_reason",
     "error", "message", "code", "metadata", "raw", "x_groq", "refusal"]
)
SHAPES = st.recursive(
    JSON_VALUES, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=4), max_leaves=10
)


@settings(FAST, max_examples=60)
@given(st.lists(st.dictionaries(KEYS, SHAPES, max_size=4), max_size=4), st.sampled_from([PLAIN, THINKER]))
def test_openai_parser_on_wrongly_shaped_json_raises_only_our_errors(objs: list[dict], target: Target) -> None:
    body = b"".join(b"data: " + json.dumps(o).encode() + b"\n\n" for o in objs)
    try:
        list(PROTOCOL.parse_stream([body], target))
    except ModelSwitchError:
        pass
    try:
        list(PROTOCOL.parse_stream([json.dumps(objs[0] if objs else {}).encode()], target))
    except ModelSwitchError:
        pass
