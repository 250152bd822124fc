"""The rendering layer's front: streamed answers (plain or terminal) and the CLI's other output.

Only render*.py modules draw. Plain mode (stdout is a pipe) writes each text chunk and flushes;
it never imports rich. Terminal mode lives in render_live.py (finished Markdown blocks printed
once above a Live region holding only the open tail). rich is imported inside functions only:
`modelswitch --help` must not load it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, TextIO

from ..conversation import sources_text
from ..events import Event, Notice, ReasoningDelta, SearchQuery, TextDelta, ToolActivity
from ..vocab import REASONING_VIEWS
from .base import Renderer, call_text, tool_line  # noqa: F401 - call_text: the REPL asks with it
from .mdstream import MarkdownStream
from ..safetext import visible

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from ..config.pricing import Cost
    from ..conversation import Message

_MODES = (*REASONING_VIEWS, "stderr")


def make_renderer(
    *,
    terminal: bool,
    reasoning: str = "collapse",
    color: bool = True,
    out: TextIO | None = None,
    err: TextIO | None = None,
    width: int | None = None,
) -> Renderer:
    """A renderer for one answer at a time: plain text for pipes, live Markdown for terminals."""
    if reasoning not in _MODES:
        raise ValueError(f"reasoning must be one of {', '.join(_MODES)}, not {reasoning!r}")
    if not terminal:
        return PlainRenderer(out or sys.stdout, err or sys.stderr, reasoning == "stderr")
    from .live import TerminalRenderer

    return TerminalRenderer(out or sys.stdout, reasoning, color, width)


class PlainRenderer(Renderer):
    """For pipes: the answer's text exactly as it arrives, flushed per chunk; nothing else.

    The answer on a pipe is data and stays byte for byte; what goes to stderr (reasoning,
    notices), or to stdout when it is a terminal after all, has its control characters shown.
    """

    def __init__(self, out: TextIO, err: TextIO, reasoning_to_err: bool) -> None:
        self._out = out
        self._err = err
        self._out_shown = _is_tty(out)
        self._reasoning_to_err = reasoning_to_err
        self._last = ""  # last chunk written to out: end() adds a final newline only if needed
        self._reasoning_open = False  # reasoning written to err without a closing newline yet

    def reasoning(self, text: str) -> None:
        if self._reasoning_to_err and text:
            self._err.write(visible(text))
            self._err.flush()
            self._reasoning_open = not text.endswith("\n")

    def text(self, text: str) -> None:
        if text:
            if self._reasoning_open:
                self._close_reasoning()
            self._out.write(visible(text) if self._out_shown else text)
            self._out.flush()
            self._last = text

    def notice(self, text: str) -> None:
        self._close_reasoning()
        self._err.write(visible(text) + "\n")
        self._err.flush()

    def end(self, message: Message, cost: Cost | None) -> None:
        self._finish_line()
        self._sources(message)

    def abort(self) -> None:
        self._finish_line()  # a partial answer ends its line too: an error goes below it

    def _sources(self, message: Message) -> None:
        """The numbered sources under the answer, plain: part of what was answered."""
        if message.citations:
            text = "\n" + sources_text(message.citations) + "\n"
            self._out.write(visible(text) if self._out_shown else text)
            self._out.flush()

    def _finish_line(self) -> None:
        self._close_reasoning()
        if self._last and not self._last.endswith("\n"):
            self._out.write("\n")  # a shell prompt must not land on the answer's last line
        self._out.flush()
        self._last = ""

    def _close_reasoning(self) -> None:
        if self._reasoning_open:
            self._err.write("\n")
            self._err.flush()
            self._reasoning_open = False


@contextmanager
def stopped_after(renderer: Renderer) -> Iterator[Renderer]:
    """The renderer's live region is stopped however the block ends: an error the caller does not
    handle (a fallback's config error, a bug) must not leave the region drawing on, the cursor
    hidden and the terminal's echo off (hold_terminal). abort() is idempotent, and does nothing
    once end() has run."""
    try:
        yield renderer
    finally:
        with suppress(OSError):  # SIGHUP: the terminal may be gone
            renderer.abort()


def draw(renderer: Renderer, events: Iterable[Event]) -> None:
    """Hand a stream's events to a renderer: content and notices (the rest is bookkeeping)."""
    for event in events:
        if isinstance(event, TextDelta):
            renderer.text(event.text)
        elif isinstance(event, ReasoningDelta):
            renderer.reasoning(event.text)
        elif isinstance(event, Notice):
            renderer.notice(event.text)
        elif isinstance(event, SearchQuery):
            renderer.search(event.query)
        elif isinstance(event, ToolActivity):
            renderer.tool(event)


# -- everything else the CLI and REPL print -------------------------------------------------


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _color_ok(stream: TextIO) -> bool:
    return _is_tty(stream) and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def _is_stderr(stream: TextIO) -> bool:
    if stream is sys.stderr or stream is sys.__stderr__:
        return True
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):
        return False


def _shown(stream: TextIO, text: str) -> str:
    """Text as it may go to `stream`: control characters made visible on a terminal or stderr;
    as is on a piped stdout, where it is data."""
    return visible(text) if _is_tty(stream) or _is_stderr(stream) else text


def _console(stream: TextIO) -> Console:
    from rich.console import Console

    return Console(file=stream, highlight=False, markup=False, emoji=False)


def print_error(message: str, *, err: TextIO | None = None) -> None:
    """"error: ..." on stderr, the prefix red in a colour terminal; the message (which may quote
    a provider) with its control characters made visible."""
    stream = err or sys.stderr
    prefix = "\x1b[1;31merror:\x1b[0m " if _color_ok(stream) else "error: "
    stream.write(prefix + visible(message) + "\n")
    stream.flush()


def print_info(message: str, *, style: str | None = None, out: TextIO | None = None) -> None:
    """One message on stdout, styled (rich style string) only in a terminal."""
    stream = out or sys.stdout
    message = _shown(stream, message)
    if style and _is_tty(stream):
        from rich.text import Text

        _console(stream).print(Text(message, style=style))
        return
    stream.write(message + "\n")
    stream.flush()


def print_table(headers: list[str], rows: list[list[str]], *, out: TextIO | None = None,
                min_widths: Sequence[int] = (), hide_blank: Sequence[int] = ()) -> None:
    """A table: rich in a terminal, plain columns separated by two spaces otherwise. `min_widths`:
    per column, the width it keeps in a narrow terminal (its text folds, nothing is cut or dropped);
    `hide_blank`: columns left out when every cell in them is blank."""
    stream = out or sys.stdout
    gone = {i for i in hide_blank if all(not row[i].strip() for row in rows if i < len(row))}
    if gone:
        keep = [i for i in range(len(headers)) if i not in gone]
        headers, rows = [headers[i] for i in keep], [[row[i] for i in keep if i < len(row)] for row in rows]
        min_widths = [min_widths[i] for i in keep if i < len(min_widths)]
    if _is_tty(stream) or _is_stderr(stream):  # model ids and session names may come from servers
        rows = [[visible(cell) for cell in row] for row in rows]
    if _is_tty(stream):
        from rich import box
        from rich.table import Table

        console = _console(stream)
        table = Table(box=box.SIMPLE_HEAD, header_style="bold", show_edge=False,
                      pad_edge=not min_widths, collapse_padding=bool(min_widths))
        fitted = _fit_widths(headers, rows, min_widths, console.width) if min_widths else [None] * len(headers)
        for header, width in zip(headers, fitted):
            table.add_column(header, width=width, overflow="fold" if width else "ellipsis")
        for row in rows:
            table.add_row(*row)
        console.print(table)
        return
    widths = [_cells(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row[: len(widths)]):
            widths[i] = max(widths[i], _cells(cell))
    for row in [headers, *rows]:
        cells = [c + " " * (widths[i] - _cells(c)) for i, c in enumerate(row[: len(widths)])]
        stream.write("  ".join(cells).rstrip() + "\n")
    stream.flush()


def _fit_widths(headers: list[str], rows: list[list[str]], mins: Sequence[int], total: int) -> list[int | None]:
    """Column widths for a terminal `total` wide: the widest column gives way first, none below its
    minimum (rich's own fitting drops whole columns or cuts model ids in a narrow terminal)."""
    widths = [max([_cells(h), *(_cells(r[i]) for r in rows if i < len(r))]) for i, h in enumerate(headers)]
    floor = [mins[i] if i < len(mins) else 1 for i in range(len(widths))]
    room = total - 2 * (len(widths) - 1)  # two blanks between columns, none at the edges
    while sum(widths) > room:
        shrinkable = [i for i in range(len(widths)) if widths[i] > floor[i]]
        if not shrinkable:
            break
        widths[max(shrinkable, key=lambda i: widths[i])] -= 1
    return list(widths)


def print_markdown(text: str, *, out: TextIO | None = None) -> None:
    """A whole Markdown text at once (history views): rendered in a terminal, as is otherwise."""
    stream = out or sys.stdout
    if _is_tty(stream):
        from rich.console import Group
        from rich.text import Text

        from .live import markdown

        # Block by block, as a streamed answer is drawn: history looks like it did live.
        md = MarkdownStream()
        items: list[RenderableType] = []
        for block in md.feed(text) + md.close():
            if items:
                items.append(Text(""))
            items.append(markdown(block.text))
        _console(stream).print(Group(*items))
        return
    stream.write(text if text.endswith("\n") else text + "\n")
    stream.flush()


def _cells(text: str) -> int:
    """Terminal columns of `text`: wide East Asian characters take two."""
    if text.isascii():
        return len(text)
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
