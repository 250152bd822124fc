"""Inline `<think>...</think>` reasoning inside content text, split into events at the edge.

Reasoning models served raw (DeepSeek-R1 on Together, Groq's reasoning_format=raw, many local
servers) put their chain of thought into the answer text between tags, split across chunks at any
point. This turns that text back into ReasoningDelta/TextDelta events, so nothing downstream ever
sees a tag.
"""

from __future__ import annotations

from ..events import Event, Notice, ReasoningDelta, TextDelta

OPEN = "<think>"
CLOSE = "</think>"

_START, _THINK, _UNTAGGED, _ANSWER = range(4)


class ThinkSplitter:
    """Content text in, Reasoning/Text deltas out, with tags split at any point across chunks.

    START: nothing shown yet; leading whitespace and a possible partial "<think>" are held.
    THINK: inside <think>; a possible partial "</think>" and trailing whitespace are held.
    UNTAGGED: text began without a tag and is streamed; a lone "</think>" is still watched for.
    ANSWER: after "</think>" (or once reasoning came in its own field): everything is answer text.
    """

    __slots__ = ("_state", "_buf", "_hold", "_skip_ws", "_model", "_released", "_pending", "_last", "_gap")

    def __init__(self, hold_untagged: bool, model: str) -> None:
        self._state = _START
        self._buf = ""
        self._hold = hold_untagged
        self._skip_ws = False
        self._model = model
        self._released = False  # reasoning came in its own field
        self._pending: list[Event] = []  # the lone-</think> advice, said once the answer is whole
        self._last = ""  # the last character shown as answer text, before a removed tag
        self._gap = ""  # whitespace after a removed tag, kept when it separates words

    def feed(self, text: str) -> list[Event]:
        if self._state == _ANSWER:
            return self._answer(text)
        if self._state == _UNTAGGED and not self._buf and "<" not in text:
            if text:
                self._last = text[-1]
            return [TextDelta(text)]  # no tag can start here: the common case, kept cheap
        self._buf += text
        if self._state == _START:
            return self._start()
        if self._state == _THINK:
            return self._think()
        return self._untagged()

    def release(self) -> list[Event]:
        """Reasoning arrives in its own field, so untagged content is the answer: stop holding it."""
        self._hold = False
        self._released = True
        return self._start() if self._state == _START else []

    def close(self) -> list[Event]:
        """End of stream: flush whatever is held, as what it most likely is."""
        text, self._buf = self._buf, ""
        pending, self._pending = self._pending, []
        if not text:
            return pending
        if self._state == _THINK:
            text = text.rstrip()
            return ([ReasoningDelta(text)] if text else []) + pending
        self._state = _ANSWER
        return [TextDelta(text)] + pending

    def _answer(self, text: str) -> list[Event]:
        if self._skip_ws:
            body = text.lstrip()
            if not body:
                self._gap += text
                return []
            self._skip_ws = False
            gap = self._gap + text[: len(text) - len(body)]
            self._gap = ""
            if self._last and not self._last.isspace():
                # A tag removed between two words must not glue them: "the</think>to" -> "the to".
                body = (gap or " ") + body
            self._last = ""
            text = body
        return [TextDelta(text)]

    def _start(self) -> list[Event]:
        s = self._buf.lstrip()
        self._buf = s
        if not s or (OPEN.startswith(s) and len(s) < len(OPEN)):
            return []
        if s.startswith(OPEN):
            self._state, self._buf, self._skip_ws = _THINK, s[len(OPEN) :].lstrip(), True
            return self._think()
        if self._hold:
            return self._held()
        self._state = _UNTAGGED
        return self._untagged()

    def _held(self) -> list[Event]:
        end = self._buf.find(CLOSE)
        if end < 0:
            return []
        reasoning, rest = self._buf[:end].rstrip(), self._buf[end + len(CLOSE) :]
        self._buf, self._state, self._skip_ws = "", _ANSWER, True
        return ([ReasoningDelta(reasoning)] if reasoning else []) + self._answer(rest)

    def _think(self) -> list[Event]:
        buf = self._buf
        if self._skip_ws:
            buf = buf.lstrip()
            self._skip_ws = not buf
        end = buf.find(CLOSE)
        if end >= 0:
            reasoning, rest = buf[:end].rstrip(), buf[end + len(CLOSE) :]
            self._buf, self._state, self._skip_ws = "", _ANSWER, True
            return ([ReasoningDelta(reasoning)] if reasoning else []) + self._answer(rest)
        cut = len(buf) - _partial_tag(buf, CLOSE)
        shown = buf[:cut].rstrip()  # trailing whitespace may be the gap before </think>
        self._buf = buf[len(shown) :]
        return [ReasoningDelta(shown)] if shown else []

    def _untagged(self) -> list[Event]:
        buf = self._buf
        end = buf.find(CLOSE)
        if end >= 0:
            self._buf, self._state, self._skip_ws = "", _ANSWER, True
            before = [TextDelta(buf[:end])] if buf[:end] else []
            if buf[:end]:
                self._last = buf[end - 1]
            if not self._released:
                # Said at the end, never in the middle of the answer's text; not for a model whose
                # reasoning already came in its own field (the tag is then the model's noise).
                self._pending = [Notice(
                    f"{self._model} ended its reasoning with a lone </think>, so the reasoning was shown "
                    "as answer text; set `reasoning = true` for this model to separate them"
                )]
            return before + self._answer(buf[end + len(CLOSE) :])
        cut = len(buf) - _partial_tag(buf, CLOSE)
        self._buf = buf[cut:]
        if cut:
            self._last = buf[cut - 1]
        return [TextDelta(buf[:cut])] if cut else []


def _partial_tag(text: str, tag: str) -> int:
    """Length of the longest end of `text` that could be the start of `tag` (tags hold one "<")."""
    lt = text.rfind("<", max(0, len(text) - len(tag) + 1))
    return len(text) - lt if lt >= 0 and tag.startswith(text[lt:]) else 0
