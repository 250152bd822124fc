"""Incremental decoders for server-sent events and newline-delimited JSON. Knows no provider.

Both work on raw bytes in any chunking: a line (and so a UTF-8 character) split across network
reads is held until it is complete, and CR, LF and CRLF line ends are all accepted, including a
CRLF whose CR and LF arrive in different reads.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ..errors import ProtocolError


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event: its `event:` name ("message" when absent) and its joined data."""

    event: str
    data: str


class _LineSplitter:
    """Bytes in, complete lines (without their ends) out."""

    __slots__ = ("_buf", "_after_cr")

    def __init__(self) -> None:
        self._buf = b""
        self._after_cr = False

    def feed(self, chunk: bytes) -> list[bytes]:
        if not chunk:
            # An empty read must not forget a pending CR, or its LF would become a blank line.
            return []
        if self._after_cr and chunk[:1] == b"\n":
            # The LF of a CRLF whose CR ended the previous read: not a second (blank) line.
            chunk = chunk[1:]
        self._after_cr = False
        if self._buf:
            chunk = self._buf + chunk
            self._buf = b""
        if not chunk:
            return []
        lines = chunk.splitlines(keepends=True)
        last = lines[-1]
        if last[-1:] not in (b"\n", b"\r"):
            self._buf = lines.pop()
        elif last[-1:] == b"\r":
            self._after_cr = True
        return [line.rstrip(b"\r\n") if line[-2:] == b"\r\n" else line[:-1] for line in lines]

    def close(self) -> list[bytes]:
        rest, self._buf = self._buf, b""
        return [rest] if rest else []

    @property
    def idle(self) -> bool:
        """No partial line is held and no CR awaits its LF."""
        return not self._buf and not self._after_cr


class SSEDecoder:
    """Feed bytes, get SSEEvents. Comment lines (": keep-alive") and blank keep-alives are skipped."""

    __slots__ = ("_lines", "_data", "_event")

    def __init__(self) -> None:
        self._lines = _LineSplitter()
        self._data: list[str] = []
        self._event = ""

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        # Fast path for what servers send nearly always: one whole `data:` event per network read.
        # It skips line splitting entirely; anything else (CR, several lines, a split event, an
        # event name, state left from an earlier read) takes the general path below.
        if (
            chunk[:6] == b"data: "
            and chunk[-2:] == b"\n\n"
            and chunk.count(b"\n", 0, -2) == 0
            and b"\r" not in chunk
            and not self._data
            and not self._event
            and self._lines.idle
        ):
            return [SSEEvent("message", chunk[6:-2].decode("utf-8", "replace"))]
        return self._process(self._lines.feed(chunk))

    def close(self) -> list[SSEEvent]:
        """End of stream: a last event without its blank line is still dispatched."""
        events = self._process(self._lines.close())
        events.extend(self._process([b""]))
        return events

    def _process(self, lines: list[bytes]) -> list[SSEEvent]:
        out: list[SSEEvent] = []
        for raw in lines:
            if not raw:
                if self._data:
                    out.append(SSEEvent(self._event or "message", "\n".join(self._data)))
                    self._data = []
                self._event = ""
                continue
            if raw[0] == 58:  # b":" — a comment, e.g. ": OPENROUTER PROCESSING"
                continue
            line = raw.decode("utf-8", "replace")
            name, sep, value = line.partition(":")
            if sep and value[:1] == " ":
                value = value[1:]
            if name == "data":
                self._data.append(value)
            elif name == "event":
                self._event = value
            # "id", "retry" and unknown fields are ignored, as the SSE spec says.
        return out


def iter_sse(chunks: Iterable[bytes]) -> Iterator[SSEEvent]:
    """All events in a byte stream."""
    decoder = SSEDecoder()
    for chunk in chunks:
        yield from decoder.feed(chunk)
    yield from decoder.close()


class NDJSONDecoder:
    """Feed bytes, get one parsed JSON value per non-blank line."""

    __slots__ = ("_lines",)

    def __init__(self) -> None:
        self._lines = _LineSplitter()

    def feed(self, chunk: bytes) -> list[object]:
        return [_loads(line) for line in self._lines.feed(chunk) if line.strip()]

    def close(self) -> list[object]:
        return [_loads(line) for line in self._lines.close() if line.strip()]


def iter_ndjson(chunks: Iterable[bytes]) -> Iterator[object]:
    decoder = NDJSONDecoder()
    for chunk in chunks:
        yield from decoder.feed(chunk)
    yield from decoder.close()


def _loads(line: bytes) -> object:
    try:
        return json.loads(line)
    except (ValueError, RecursionError) as exc:
        preview = line[:80].decode("utf-8", "replace")
        raise ProtocolError(f"invalid JSON line in stream: {preview!r}") from exc


def loads_event(data: str) -> dict:
    """Parse one SSE data payload that must be a JSON object."""
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"invalid JSON in stream: {data[:80]!r}") from exc
    if not isinstance(value, dict):
        raise ProtocolError(f"unexpected JSON in stream: {data[:80]!r}")
    return value
