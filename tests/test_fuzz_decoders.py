"""Property tests: the decoders depend only on the bytes, never on how the network cut them."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelswitch.errors import ProtocolError
from modelswitch.sse import NDJSONDecoder, SSEDecoder, SSEEvent

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


def split(body: bytes, cuts: list[int]) -> list[bytes]:
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
