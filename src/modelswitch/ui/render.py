"""The rendering layer's front: streamed answers (plain or terminal) and the CLI's other output.

Only render*.py modules draw. Plain mode (stdout is a pipe) writes each text chunk and flushes;
it never imports rich. Terminal mode lives in render_live.py (finished Markdown blocks printed
once above a Live region holding only the open tail). rich is imported inside functions only:
`modelswitch --help` must not load it.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Literal, TextIO

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
    text = _wrapped(stream, "error: " + visible(message))
    if _color_ok(stream):
        text = "\x1b[1;31merror:\x1b[0m" + text[len("error:"):]
    stream.write(text + "\n")
    stream.flush()


def print_info(message: str, *, style: str | None = None, out: TextIO | None = None) -> None:
    """One message on stdout, styled (rich style string) only in a terminal."""
    stream = out or sys.stdout
    message = _shown(stream, message)
    if style and _is_tty(stream):
        from rich.text import Text

        _console(stream).print(Text(message, style=style))
        return
    stream.write(_wrapped(stream, message) + "\n")
    stream.flush()


def _wrapped(stream: TextIO, text: str) -> str:
    """`text` word-wrapped to the terminal's width when `stream` is a terminal (its own line
    breaks and a line's indent kept, no word or id broken); as is on a pipe, one line a message."""
    if not _is_tty(stream):
        return text
    import shutil
    import textwrap

    try:
        width = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        width = shutil.get_terminal_size().columns
    out = []
    for line in text.split("\n"):
        indent = line[: len(line) - len(line.lstrip())]
        out.append(textwrap.fill(line, width, subsequent_indent=indent, break_long_words=False,
                                 break_on_hyphens=False, drop_whitespace=True) if _cells(line) > width else line)
    return "\n".join(out)


def print_table(headers: list[str], rows: list[list[str]], *, out: TextIO | None = None,
                fold: Sequence[int] = (), slash: Sequence[int] = (), optional: Sequence[int] = (),
                hide_blank: Sequence[int] = (),
                terse: Mapping[int, Callable[[str], str]] | None = None, terse_note: str = "") -> None:
    """A table: rich in a terminal, plain columns separated by two spaces otherwise (a pipe gets
    every cell whole on one line).

    In a terminal no word is ever broken: `fold` columns may wrap between words (`slash` ones
    after a `/` too: a model id's parts), giving way in the order listed (free text first, a model id last); every other column keeps
    its full width. When that is not enough: the `optional` columns move to a second table under
    the first, then the `terse` columns are shortened (and `terse_note` said). `hide_blank`:
    columns left out when every cell in them is blank.
    """
    stream = out or sys.stdout
    gone = {i for i in hide_blank if all(not row[i].strip() for row in rows if i < len(row))}
    keep = [i for i in range(len(headers)) if i not in gone]
    if _is_tty(stream) or _is_stderr(stream):  # model ids and session names may come from servers
        rows = [[visible(cell) for cell in row] for row in rows]
    if not _is_tty(stream):
        _plain_table([headers[i] for i in keep], [[row[i] for i in keep if i < len(row)] for row in rows], stream)
        return
    console = _console(stream)
    side = [i for i in keep if i in optional]
    plan = _fit(headers, rows, keep, fold, slash, console.width)
    if plan is None and side:
        keep = [i for i in keep if i not in side]
        plan = _fit(headers, rows, keep, fold, slash, console.width)
    else:
        side = []
    shortened = False
    if plan is None and terse:
        rows = [[terse[i](cell) if i in terse else cell for i, cell in enumerate(row)] for row in rows]
        shortened = True
        plan = _fit(headers, rows, keep, fold, slash, console.width)
    at_slash = [i in slash for i in keep]
    if not fold:  # a table with nothing to fold: rich's own fitting, as it always was
        plan = None
    _rich_table(console, [headers[i] for i in keep], [[row[i] for i in keep] for row in rows], plan, at_slash,
                "fold" if fold else "ellipsis")
    if side:  # the figures the narrow terminal had no room for, for the rows that have any
        label = [row[0].strip() or row[1] for row in rows]
        extra = [[label[r], *(rows[r][i] for i in side)] for r in range(len(rows))
                 if any(rows[r][i].strip() for i in side)]
        console.print()
        _rich_table(console, [headers[0], *(headers[i] for i in side)], extra, None, [], "fold")
    if shortened and terse_note:
        print_info(terse_note, style="dim", out=stream)


def _plain_table(headers: list[str], rows: list[list[str]], stream: TextIO) -> None:
    widths = [_cells(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row[: len(widths)]):
            widths[i] = max(widths[i], _cells(cell))
    for row in [headers, *rows]:
        cells = [c + " " * (widths[i] - _cells(c)) for i, c in enumerate(row[: len(widths)])]
        stream.write("  ".join(cells).rstrip() + "\n")
    stream.flush()


def _rich_table(console: Console, headers: list[str], rows: list[list[str]], widths: list[int] | None,
                at_slash: list[bool], overflow: Literal["fold", "ellipsis"]) -> None:
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, header_style="bold", show_edge=False, pad_edge=widths is None,
                  collapse_padding=widths is not None)
    if widths is None:  # no plan (or not even the folded table fits): rich's own fitting
        for header in headers:
            table.add_column(header, overflow=overflow)
        rows_shown = rows
    else:
        for header, width, cut in zip(headers, widths, at_slash):
            table.add_column(_wrap(header, width, cut), width=width, no_wrap=True, overflow="fold")
        rows_shown = [[_wrap(cell, w, cut) for cell, w, cut in zip(row, widths, at_slash)] for row in rows]
    for row in rows_shown:
        table.add_row(*row)
    console.print(table)


def _pieces(text: str, at_slash: bool) -> list[tuple[str, str]]:
    """(separator before, piece): the places a folded cell may break, between words (and after `/`)."""
    out = []
    for word in text.split():
        for j, part in enumerate(re.findall(r"[^/]*/|[^/]+", word) if at_slash else [word]):
            out.append((" " if j == 0 else "", part))
    return out


def _wrap(text: str, width: int, at_slash: bool) -> str:
    """`text` in lines at most `width` wide, broken only where _pieces allows (as is if it fits)."""
    if _cells(text) <= width:
        return text
    lines: list[str] = []
    line = ""
    for sep, part in _pieces(text, at_slash):
        if line and _cells(line + sep + part) > width:
            lines.append(line)
            line = part
        else:
            line = line + sep + part if line else part
    return "\n".join([*lines, line])


def _fit(headers: list[str], rows: list[list[str]], keep: list[int], fold: Sequence[int],
         slash: Sequence[int], total: int) -> list[int] | None:
    """Widths for the `keep` columns in a terminal `total` wide, or None when they cannot fit
    without breaking a word: each column its full width, then the `fold` columns give way in
    order, none below its longest unbreakable piece (its header's included)."""
    def natural(i: int) -> int:
        return max([_cells(headers[i]), *(_cells(r[i]) for r in rows)])

    def floor(i: int) -> int:
        cells = [headers[i], *(r[i] for r in rows)]
        return max([1, *(_cells(p) for c in cells for _, p in _pieces(c, i in slash))])

    widths = {i: natural(i) for i in keep}
    over = sum(widths.values()) + 2 * (len(keep) - 1) - total  # two blanks between columns
    for i in fold:
        if over <= 0:
            break
        if i in widths:
            give = min(over, widths[i] - floor(i))
            widths[i] -= max(give, 0)
            over -= max(give, 0)
    return [widths[i] for i in keep] if over <= 0 else None


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
