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
    """Bytes in, complete lines (without their ends) out.

    A line still open is kept as a list of pieces and only the newest piece is searched for its
    end, so one huge line costs time linear in its length however finely it is read.
    """

    __slots__ = ("_parts", "_after_cr")

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._after_cr = False

    def feed(self, chunk: bytes) -> list[bytes]:
        if not chunk:
            # An empty read must not forget a pending CR, or its LF would become a blank line.
            return []
        if self._after_cr and chunk[:1] == b"\n":
            # The LF of a CRLF whose CR ended the previous read: not a second (blank) line.
            chunk = chunk[1:]
        self._after_cr = False
        if not chunk:
            return []
        out: list[bytes] = []
        if self._parts:
            end = _first_line_end(chunk)
            if end < 0:
                self._parts.append(chunk)
                return []
            self._parts.append(chunk[:end])
            out.append(b"".join(self._parts))
            self._parts = []
            if chunk[end] == 13 and end + 1 < len(chunk) and chunk[end + 1] == 10:
                end += 1
            elif chunk[end] == 13 and end + 1 == len(chunk):
                self._after_cr = True
            chunk = chunk[end + 1 :]
            if not chunk:
                return out
        lines = chunk.splitlines(keepends=True)
        last = lines[-1]
        if last[-1:] not in (b"\n", b"\r"):
            self._parts = [lines.pop()]
        elif last[-1:] == b"\r":
            self._after_cr = True
        out.extend(line.rstrip(b"\r\n") if line[-2:] == b"\r\n" else line[:-1] for line in lines)
        return out

    def close(self) -> list[bytes]:
        rest, self._parts = b"".join(self._parts), []
        return [rest] if rest else []

    @property
    def idle(self) -> bool:
        """No partial line is held and no CR awaits its LF."""
        return not self._parts and not self._after_cr


def _first_line_end(chunk: bytes) -> int:
    lf, cr = chunk.find(b"\n"), chunk.find(b"\r")
    return lf if cr < 0 else cr if lf < 0 else min(lf, cr)


_BOM = b"\xef\xbb\xbf"


def without_bom(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The byte stream without a UTF-8 byte order mark at its very start (split across reads or not).

    The SSE spec says to ignore one; left in, it glues onto the first field name ("\ufeffdata")
    and that event is lost, or it hides the first byte a protocol sniffs ("{" or "[").
    """
    it = iter(chunks)
    head = b""
    for chunk in it:
        head += chunk
        if len(head) >= len(_BOM) or not _BOM.startswith(head):
            break
    yield head[len(_BOM) :] if head.startswith(_BOM) else head
    yield from it


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
    for chunk in without_bom(chunks):
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
    for chunk in without_bom(chunks):
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
