"""Split a growing Markdown text into finished blocks and an open tail. Pure logic, no drawing.

A block is finished when no text that may still arrive can change how it renders: a paragraph at
its blank line, a fence at its closing fence, a list or indented code block at the first line after
a blank that cannot continue it. Splitting where CommonMark would not is the one thing to avoid
(a list cut at a blank line renders as two lists); keeping two blocks together is always safe, so
every rule here errs that way.

Cost is linear in the text: each chunk is scanned once for line ends and each complete line is
classified once; the open block's lines are kept as a list, never re-joined per chunk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

BlockKind = Literal["paragraph", "heading", "hr", "fence", "code", "list", "quote", "table"]

_FENCE = re.compile(r"^( *)(`{3,}|~{3,})(.*)$")
_ATX = re.compile(r"^ {0,3}#{1,6}(?:[ \t]|$)")
_HR = re.compile(r"^ {0,3}(?:(?:\*[ \t]*){3,}|(?:-[ \t]*){3,}|(?:_[ \t]*){3,})$")
_SETEXT = re.compile(r"^ {0,3}(?:=+|-+)[ \t]*$")
_ITEM = re.compile(r"^( *)(?:([-+*])|(\d{1,9})[.)])(?:( {1,4})(?=\S)|[ \t]*$)")
_QUOTE = re.compile(r"^ {0,3}>")
_QUOTE_PREFIX = re.compile(r"^ {0,3}> ?")
_TABLE_DELIM = re.compile(r"^ {0,3}\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$")


@dataclass(frozen=True, slots=True)
class Block:
    """A finished block: its Markdown source without the line break after it."""

    text: str
    kind: BlockKind


@dataclass(frozen=True, slots=True)
class _Fence:
    char: str
    length: int
    indent: int
    nested: bool  # inside a list or quote: closing indentation is not checked


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _open_fence(line: str, *, nested: bool) -> _Fence | None:
    m = _FENCE.match(line)
    if m is None:
        return None
    indent, marks, info = len(m.group(1)), m.group(2), m.group(3)
    if not nested and indent > 3:
        return None
    if marks[0] == "`" and "`" in info:  # ``` `x` ``` is inline code, not a fence
        return None
    return _Fence(marks[0], len(marks), indent, nested)


def _closes(fence: _Fence, line: str) -> bool:
    stripped = line.strip()
    if len(stripped) < fence.length or stripped.strip(fence.char):
        return False
    return fence.nested or _indent(line) <= 3


def _item(line: str) -> tuple[int, bool, bool] | None:
    """(content indent, is ordered starting at 1 or a bullet, has content) of a list item line."""
    m = _ITEM.match(line)
    if m is None:
        return None
    lead, bullet, number, gap = m.group(1), m.group(2), m.group(3), m.group(4)
    marker = len(bullet or "") + (len(number) + 1 if number else 0)
    content = len(lead) + marker + (len(gap) if gap else 1)
    starts = bool(bullet) or number in ("1", "01")
    return content, starts, gap is not None


def _interrupts(line: str) -> bool:
    """A line at column 0-3 that always starts a new block, even right after a paragraph line."""
    return bool(
        _ATX.match(line)
        or _open_fence(line, nested=False)
        or _QUOTE.match(line)
        or (_HR.match(line) and not _SETEXT.match(line))
    )


class MarkdownStream:
    """Feed text as it arrives; get back the blocks it finished. `tail` is what is still open."""

    def __init__(self) -> None:
        self._partial: list[str] = []  # pieces of the unfinished last line
        self._cr = False  # the last chunk ended in "\r": its "\n" may be in the next one
        self._lines: list[str] = []  # complete lines of the open block
        self._kind: BlockKind | None = None
        self._fence: _Fence | None = None
        self._blanks = 0  # blank lines after an open list or code block, not yet known to belong
        self._item_indent = 0  # content indent of a list's first item: continuation lines need it

    def feed(self, text: str) -> list[Block]:
        """Add text; return the blocks it finished, in order."""
        if self._cr:
            text = "\r" + text
            self._cr = False
        if "\r" in text:
            if text.endswith("\r"):
                text, self._cr = text[:-1], True
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        nl = text.find("\n")
        if nl < 0:
            if text:
                self._partial.append(text)
            return []
        out: list[Block] = []
        start = 0
        while nl >= 0:
            piece = text[start:nl]
            if self._partial:
                self._partial.append(piece)
                piece = "".join(self._partial)
                self._partial.clear()
            self._line(piece, out)
            start = nl + 1
            nl = text.find("\n", start)
        if start < len(text):
            self._partial.append(text[start:])
        return out

    def close(self) -> list[Block]:
        """The text is complete: finish whatever is open (an unclosed fence included)."""
        out: list[Block] = []
        self._cr = False
        if self._partial:
            line = "".join(self._partial)
            self._partial.clear()
            self._line(line, out)
        if self._kind is not None:
            out.append(self._finish())
        return out

    @property
    def tail(self) -> str:
        """The open text: the unfinished block and the unfinished line."""
        return "\n".join(self._tail_lines(None))

    @property
    def kind(self) -> BlockKind | None:
        """Kind of the open block, if one has begun."""
        return self._kind

    def preview(self, max_lines: int, max_chars: int) -> str:
        """The open tail cut to its last `max_lines` lines and `max_chars` of its last line.

        Enough to fill a screen; what a live view shows. A fence keeps its opening line and a table
        its header, so the cut still renders as code or a table.
        """
        return "\n".join(self._tail_lines(max_lines, max_chars))

    def _tail_lines(self, max_lines: int | None, max_chars: int | None = None) -> list[str]:
        lines = self._lines
        if max_lines is not None and len(lines) > max_lines:
            keep = 2 if self._kind == "table" else 1 if self._kind == "fence" else 0
            lines = lines[:keep] + lines[len(lines) - max_lines + keep :]
        else:
            lines = list(lines)
        if self._partial:
            last = "".join(self._partial)
            if max_chars is not None and len(last) > max_chars:
                cut = last.find(" ", len(last) - max_chars)
                last = last[cut + 1 if cut >= 0 else len(last) - max_chars :]
            lines.append(last)
        return lines

    def _finish(self) -> Block:
        block = Block("\n".join(self._lines), self._kind or "paragraph")
        self._lines = []
        self._kind = None
        self._fence = None
        self._blanks = 0
        return block

    def _line(self, line: str, out: list[Block]) -> None:
        """Classify one complete line; append any block it finishes to `out`."""
        if self._fence is not None and self._in_fence(line, out):
            return
        blank = not line.strip()
        kind = self._kind
        if blank:
            if kind == "list" or kind == "code":
                self._blanks += 1  # the next non-blank line says whether these belong
            elif kind is not None:
                out.append(self._finish())
            return
        if self._blanks:
            if self._continues_after_blank(line):
                self._lines.extend([""] * self._blanks)
                self._blanks = 0
                if self._kind == "list":
                    self._append(line)
                else:
                    self._lines.append(line)
                return
            out.append(self._finish())
            kind = None
        if kind is None:
            self._start(line, out)
        elif kind == "paragraph":
            self._in_paragraph(line, out)
        elif kind == "code":
            if _indent(line) >= 4:
                self._lines.append(line)
            else:
                out.append(self._finish())
                self._start(line, out)
        elif kind == "list":
            # Column 0 matters: indented lines belong to an item, and an unindented plain line is
            # a lazy continuation of the item's paragraph.
            if _indent(line) == 0 and _interrupts(line) and not _item(line):
                out.append(self._finish())
                self._start(line, out)
            else:
                self._append(line)
        elif kind == "quote":
            if not _QUOTE.match(line) and (_interrupts(line) or _item(line)):
                out.append(self._finish())
                self._start(line, out)
            else:
                self._append(line)
        else:  # table
            if _interrupts(line):
                out.append(self._finish())
                self._start(line, out)
            else:
                self._lines.append(line)

    def _in_fence(self, line: str, out: list[Block]) -> bool:
        """Handle a line while a fence is open; False if the line is not the fence's after all."""
        fence = self._fence
        assert fence is not None
        content = line
        if self._kind == "quote":
            if not _QUOTE.match(line):
                self._fence = None  # a fence in a quote ends with the quote
                return False
            content = _QUOTE_PREFIX.sub("", line, count=1)
        self._lines.append(line)
        if _closes(fence, content):
            self._fence = None
            if self._kind == "fence":
                out.append(self._finish())
        return True

    def _continues_after_blank(self, line: str) -> bool:
        if self._kind == "code":
            return _indent(line) >= 4
        return _item(line) is not None or _indent(line) >= self._item_indent

    def _append(self, line: str) -> None:
        """Add a line to an open list or quote, noticing a fence that opens inside it."""
        self._lines.append(line)
        content = _QUOTE_PREFIX.sub("", line, count=1) if self._kind == "quote" else line
        if self._kind == "list":
            item = _item(content)
            if item is not None and item[2]:
                content = " " * item[0] + content[item[0] :]
        self._fence = _open_fence(content.lstrip(" "), nested=True)

    def _start(self, line: str, out: list[Block]) -> None:
        """Begin a block with `line` (no block is open)."""
        fence = _open_fence(line, nested=False)
        if fence is not None:
            self._kind, self._lines, self._fence = "fence", [line], fence
        elif _ATX.match(line):
            out.append(Block(line, "heading"))
        elif _HR.match(line):
            out.append(Block(line, "hr"))
        elif _indent(line) >= 4:
            self._kind, self._lines = "code", [line]
        elif _QUOTE.match(line):
            self._kind, self._lines = "quote", []
            self._append(line)
        elif (item := _item(line)) is not None:
            self._kind, self._lines, self._item_indent = "list", [], item[0]
            self._append(line)
        else:
            self._kind, self._lines = "paragraph", [line]

    def _in_paragraph(self, line: str, out: list[Block]) -> None:
        if _SETEXT.match(line):  # "Title\n---" is a heading, not a paragraph and a rule
            self._lines.append(line)
            self._kind = "heading"
            out.append(self._finish())
            return
        if len(self._lines) == 1 and _TABLE_DELIM.match(line) and "|" in self._lines[0]:
            self._lines.append(line)
            self._kind = "table"
            return
        item = _item(line)
        if _interrupts(line) or (item is not None and item[1] and item[2] and _indent(line) <= 3):
            out.append(self._finish())
            self._start(line, out)
            return
        self._lines.append(line)
