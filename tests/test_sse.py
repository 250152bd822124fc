"""The SSE and NDJSON decoders on the framing quirks real servers produce."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from modelswitch.errors import ProtocolError
from modelswitch.providers.sse import NDJSONDecoder, SSEDecoder, SSEEvent, iter_ndjson, iter_sse, loads_event


def sse(chunks: Iterable[bytes]) -> list[SSEEvent]:
    return list(iter_sse(chunks))


def msg(data: str, event: str = "message") -> SSEEvent:
    return SSEEvent(event, data)


def bytewise(body: bytes) -> list[bytes]:
    return [body[i : i + 1] for i in range(len(body))]


# --- SSE: line ends ---------------------------------------------------------------------------


@pytest.mark.parametrize("eol", [b"\n", b"\r", b"\r\n"], ids=["LF", "CR", "CRLF"])
def test_every_line_end_style_frames_events(eol: bytes) -> None:
    body = b"data: one" + eol + eol + b"data: two" + eol + eol
    assert sse([body]) == [msg("one"), msg("two")]
    assert sse(bytewise(body)) == [msg("one"), msg("two")]


def test_crlf_split_between_reads_is_one_line_end_not_two() -> None:
    # Were the LF taken as a blank line, "a" and "b" would be dispatched as two events.
    assert sse([b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]) == [msg("a\nb")]


def test_empty_read_between_cr_and_lf_does_not_split_the_crlf() -> None:
    assert sse([b"data: a\r", b"", b"\ndata: b\r\n\r\n"]) == [msg("a\nb")]


def test_mixed_line_ends_in_one_stream() -> None:
    body = b"data: a\r\n\r\ndata: b\n\ndata: c\r\r"
    assert sse([body]) == [msg("a"), msg("b"), msg("c")]


# --- SSE: fields ------------------------------------------------------------------------------


def test_comment_lines_are_skipped() -> None:
    body = b": OPENROUTER PROCESSING\n\n: keep-alive\n\ndata: x\n: inside an event\n\n"
    assert sse([body]) == [msg("x")]


def test_multi_line_data_is_joined_with_newlines() -> None:
    assert sse([b"data: first\ndata: second\ndata:\ndata: fourth\n\n"]) == [
        msg("first\nsecond\n\nfourth")
    ]


def test_event_names_apply_to_their_event_only() -> None:
    body = b"event: ping\ndata: {}\n\nevent: content_block_delta\ndata: {\"a\":1}\n\ndata: plain\n\n"
    assert sse([body]) == [msg("{}", "ping"), msg('{"a":1}', "content_block_delta"), msg("plain")]


def test_event_name_without_data_dispatches_nothing_and_is_forgotten() -> None:
    assert sse([b"event: ping\n\ndata: x\n\n"]) == [msg("x")]


def test_only_one_space_after_the_colon_is_removed() -> None:
    assert sse([b"data:tight\n\ndata:  two spaces\n\n"]) == [msg("tight"), msg(" two spaces")]


def test_id_retry_and_unknown_fields_are_ignored() -> None:
    assert sse([b"id: 7\nretry: 1000\nfoo: bar\ndata: x\n\n"]) == [msg("x")]


def test_field_with_no_colon_is_an_empty_value() -> None:
    assert sse([b"data\n\n"]) == [msg("")]


# --- SSE: chunking and end of stream ----------------------------------------------------------


def test_utf8_character_split_across_reads() -> None:
    body = 'data: 天气 🌟 ok\n\n'.encode()
    star = body.index("🌟".encode())
    chunks = [body[: star + 1], body[star + 1 : star + 3], body[star + 3 :]]
    assert sse(chunks) == [msg("天气 🌟 ok")]
    assert sse(bytewise(body)) == [msg("天气 🌟 ok")]


def test_blank_keep_alive_lines_between_events() -> None:
    assert sse([b"\n\n\n", b"data: a\n\n", b"\r\n\r\n\n", b"data: b\n\n\n\n"]) == [msg("a"), msg("b")]


def test_last_event_without_its_blank_line_is_still_dispatched() -> None:
    assert sse([b"data: a\n\ndata: last"]) == [msg("a"), msg("last")]
    assert sse([b"data: a\n\ndata: last\n"]) == [msg("a"), msg("last")]


def test_feed_returns_events_as_soon_as_they_are_complete() -> None:
    d = SSEDecoder()
    assert d.feed(b"data: a") == []
    assert d.feed(b"\n") == []
    assert d.feed(b"\n") == [msg("a")]
    assert d.close() == []


def test_invalid_utf8_is_replaced_not_raised() -> None:
    assert sse([b"data: \xff\xfe ok\n\n"]) == [msg("\ufffd\ufffd ok")]


def test_empty_stream_has_no_events() -> None:
    assert sse([]) == []
    assert sse([b"", b""]) == []


# --- loads_event ------------------------------------------------------------------------------


def test_loads_event_parses_an_object() -> None:
    assert loads_event('{"a": [1, 2]}') == {"a": [1, 2]}


@pytest.mark.parametrize("data", ["{not json", "[1, 2]", '"text"', "", "[" * 100_000])
def test_loads_event_rejects_anything_but_a_json_object(data: str) -> None:
    with pytest.raises(ProtocolError):
        loads_event(data)


# --- NDJSON -----------------------------------------------------------------------------------


def nd(chunks: Iterable[bytes]) -> list[object]:
    return list(iter_ndjson(chunks))


@pytest.mark.parametrize("eol", [b"\n", b"\r", b"\r\n"], ids=["LF", "CR", "CRLF"])
def test_ndjson_every_line_end_style(eol: bytes) -> None:
    body = b'{"a":1}' + eol + b'{"b":2}' + eol
    assert nd([body]) == [{"a": 1}, {"b": 2}]
    assert nd(bytewise(body)) == [{"a": 1}, {"b": 2}]


def test_ndjson_crlf_split_between_reads() -> None:
    assert nd([b'{"a":1}\r', b'\n{"b":2}\r', b"", b"\n"]) == [{"a": 1}, {"b": 2}]


def test_ndjson_blank_lines_are_skipped() -> None:
    assert nd([b'\n\n{"a":1}\n  \n\r\n{"b":2}\n\n']) == [{"a": 1}, {"b": 2}]


def test_ndjson_last_line_without_newline() -> None:
    assert nd([b'{"a":1}\n{"done":true}']) == [{"a": 1}, {"done": True}]


def test_ndjson_utf8_split_across_reads() -> None:
    body = '{"t":"混元 🌟"}\n'.encode()
    assert nd(bytewise(body)) == [{"t": "混元 🌟"}]


def test_ndjson_values_need_not_be_objects() -> None:
    assert nd([b'1\n"s"\n[true]\nnull\n']) == [1, "s", [True], None]


@pytest.mark.parametrize("bad", [b"{not json}\n", b'{"a":\n', b"\xff\xfe\n", b"[" * 100_000 + b"\n"])
def test_ndjson_invalid_line_raises_protocol_error(bad: bytes) -> None:
    with pytest.raises(ProtocolError):
        nd([b'{"ok":1}\n', bad])


def test_ndjson_invalid_trailing_line_raises_at_close() -> None:
    d = NDJSONDecoder()
    assert d.feed(b'{"ok":1}\n{"trunc') == [{"ok": 1}]
    with pytest.raises(ProtocolError, match="invalid JSON"):
        d.close()
