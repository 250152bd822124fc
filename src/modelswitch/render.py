"""The only module that draws: streamed answers (plain or terminal) and the CLI's other output.

Plain mode (stdout is a pipe) writes each text chunk and flushes; it never imports rich. Terminal
mode prints each finished Markdown block once, above a rich Live region that holds only the open
tail (cut to fit the screen) and is redrawn by a ticker thread at most ~12 times a second, so the
per-chunk cost is a string scan and drawing costs grow with the answer, not with its square.
rich is imported inside functions only: `modelswitch --help` must not load it.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING, Any, Literal, TextIO

from .mdstream import Block, MarkdownStream

if TYPE_CHECKING:
    import threading

    from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
    from rich.live import Live

    from .conversation import Message
    from .pricing import Cost

ReasoningMode = Literal["show", "collapse", "hide", "stderr"]
_MODES = ("show", "collapse", "hide", "stderr")
_REFRESH_S = 1 / 12
_CODE_THEME = "monokai"


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
    return TerminalRenderer(out or sys.stdout, reasoning, color, width)


class Renderer:
    """Receives one answer's stream: begin, reasoning/text/notice pieces, then end or abort."""

    def begin(self, model_name: str) -> None:
        """An answer from `model_name` is on its way."""

    def reasoning(self, text: str) -> None:
        """A piece of the model's chain of thought."""

    def text(self, text: str) -> None:
        """A piece of the answer."""

    def notice(self, text: str) -> None:
        """One line the user should see that is not part of the answer."""

    def end(self, message: Message, cost: Cost | None) -> None:
        """The answer is over; finish drawing it."""

    def abort(self) -> None:
        """Stop drawing now, keeping what is on screen (Ctrl-C or an error). Idempotent."""


class PlainRenderer(Renderer):
    """For pipes: the answer's text exactly as it arrives, flushed per chunk; nothing else."""

    def __init__(self, out: TextIO, err: TextIO, reasoning_to_err: bool) -> None:
        self._out = out
        self._err = err
        self._reasoning_to_err = reasoning_to_err
        self._last = ""  # last chunk written to out: end() adds a final newline only if needed
        self._reasoning_open = False  # reasoning written to err without a closing newline yet

    def reasoning(self, text: str) -> None:
        if self._reasoning_to_err and text:
            self._err.write(text)
            self._err.flush()
            self._reasoning_open = not text.endswith("\n")

    def text(self, text: str) -> None:
        if text:
            if self._reasoning_open:
                self._close_reasoning()
            self._out.write(text)
            self._out.flush()
            self._last = text

    def notice(self, text: str) -> None:
        self._close_reasoning()
        self._err.write(text + "\n")
        self._err.flush()

    def end(self, message: Message, cost: Cost | None) -> None:
        self._close_reasoning()
        if self._last and not self._last.endswith("\n"):
            self._out.write("\n")  # a shell prompt must not land on the answer's last line
        self._out.flush()
        self._last = ""

    def abort(self) -> None:
        self._close_reasoning()
        self._out.flush()

    def _close_reasoning(self) -> None:
        if self._reasoning_open:
            self._err.write("\n")
            self._err.flush()
            self._reasoning_open = False


def footer_text(message: Message, cost: Cost | None) -> str:
    """"hy · 0.4 s to first token · 61 tok/s · 230 tokens · ¥0.0012" and what went wrong."""
    name = message.model.name if message.model is not None else "answer"
    if message.fallback_from:
        name += f" (instead of {message.fallback_from})"
    parts = [name]
    if message.status == "interrupted":
        parts.append("interrupted")
    elif message.status == "error":
        parts.append("failed")
    timing = message.timing
    if timing is not None and timing.ttft_s is not None:
        parts.append(f"{timing.ttft_s:.1f} s to first token")
    if timing is not None and timing.tokens_per_s:
        parts.append(f"{timing.tokens_per_s:.0f} tok/s")
    usage = message.usage
    if usage is not None and usage.output_tokens:
        parts.append(f"{usage.output_tokens} tokens")
    if cost is not None:
        parts.append(str(cost))
    if message.finish_reason == "length":
        parts.append("cut off at max_tokens")
    return " · ".join(parts)


def thought_text(seconds: float, tokens: int) -> str:
    """The one line a collapsed chain of thought leaves behind."""
    return f"Thought for {seconds:.1f} s · {tokens} tokens"


class _Lines:
    """`body` (under `head`) drawn as whole lines, trimmed or cropped.

    trim: no blank lines above or below. rich puts one before a list, quote or table drawn alone
    (in a whole document it is the gap to the previous block); trimming, then adding one gap
    between every two blocks, spaces all kinds alike. Lines with a background (code padding) stay.
    Otherwise crop: keep the bottom lines that fit on the screen. A Live region taller than the
    screen cannot be redrawn (the cursor cannot move above the top row): that is where duplicated
    lines and "..." come from.
    """

    def __init__(
        self, body: RenderableType, *, head: RenderableType | None = None, trim: bool = False
    ) -> None:
        self.body, self.head, self.trim = body, head, trim

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from rich.segment import Segment

        lines = console.render_lines(self.body, options, pad=False)
        if self.trim:
            start, end = 0, len(lines)
            while start < end and _blank(lines[start]):
                start += 1
            while end > start and _blank(lines[end - 1]):
                end -= 1
            lines = lines[start:end]
        else:
            room = max(1, options.size.height - 1)
            head = console.render_lines(self.head, options, pad=False)[:room] if self.head else []
            lines = head + (lines[len(head) - room :] if room > len(head) else [])
        newline = Segment.line()
        for line in lines:
            yield from line
            yield newline


def _blank(line: list[Any]) -> bool:
    return all(not s.text.strip() and (s.style is None or s.style.bgcolor is None) for s in line)


class _Dynamic:
    """Renders whatever `view()` returns at the moment of drawing.

    rich's Live keeps the renderable of its last refresh and draws it again under every print;
    handing it this one object means a print never shows a stale frame.
    """

    def __init__(self, view: Any) -> None:
        self.view = view

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.view()


class TerminalRenderer(Renderer):
    """Finished blocks printed once above a Live region that holds the open tail only."""

    def __init__(self, out: TextIO, reasoning: str, color: bool, width: int | None) -> None:
        import threading

        from rich.console import Console

        self._console = Console(
            file=out,
            force_terminal=True,
            no_color=not color or bool(os.environ.get("NO_COLOR")),
            width=width,
            highlight=False,
            markup=False,
            emoji=False,
        )
        self._mode = "show" if reasoning == "stderr" else reasoning  # stderr is a pipe's option
        self._lock = threading.RLock()
        self._live: Live | None = None
        self._ticker: threading.Thread | None = None
        self._stop_ticking = threading.Event()
        self._reset("")

    def _reset(self, model_name: str) -> None:
        self._name = model_name
        self._phase: Literal["waiting", "reasoning", "answer", "done"] = "waiting"
        self._aborted = False
        self._md = MarkdownStream()
        self._queue: list[Block | RenderableType] = []  # to print above the Live, in order
        self._blocks = 0  # blocks of this answer printed or queued: the first needs no gap
        self._dirty = False  # text arrived since the last frame
        self._spinner: Any = None
        self._r_pieces: list[str] = []
        self._r_line: list[str] = []  # "show": the reasoning line not yet printed
        self._r_line_len = 0
        self._r_count = 0
        self._r_start = 0.0
        self._r_end = 0.0

    # -- the stream ---------------------------------------------------------------------------

    def begin(self, model_name: str) -> None:
        if self._live is not None:
            self.abort()  # a new answer (e.g. a fallback) while one is still drawn
        with self._lock:
            self._reset(model_name)
            self._start_live()

    def reasoning(self, text: str) -> None:
        with self._lock:
            if self._phase == "answer" or self._phase == "done" or self._aborted:
                return  # reasoning after the answer began has no place on screen
            if self._live is None:
                self._start_live()
            if self._phase != "reasoning":
                self._phase = "reasoning"
                self._r_start = time.monotonic()
                if self._mode == "show":
                    self._queue.append(self._dim("▸ Thinking…", italic=True))
            self._r_count += 1
            self._dirty = True
            self._r_pieces.append(text)
            if self._mode == "show":
                self._show_reasoning(text)

    def text(self, text: str) -> None:
        with self._lock:
            if self._phase == "done" or self._aborted:
                return
            if self._phase != "answer":
                if self._live is None:
                    self._start_live()
                if not text.strip():
                    self._md.feed(text)  # leading blank lines change nothing; wait for words
                    return
                self._finish_reasoning(None)
                self._phase = "answer"
            self._dirty = True
            for block in self._md.feed(text):
                self._queue_block(block)

    def notice(self, text: str) -> None:
        with self._lock:
            self._queue.append(self._dim(text))
            if self._live is not None:
                self._flush()
            else:
                self._print_queue()

    def end(self, message: Message, cost: Cost | None) -> None:
        self._stop_ticker()
        with self._lock:
            if not self._aborted and self._phase != "done":
                self._finish_reasoning(message)
                for block in self._md.close():
                    self._queue_block(block)
            self._phase = "done"
            self._stop_live(keep=False)
            self._queue.append(self._dim(footer_text(message, cost)))
            self._print_queue()
            self._reset(self._name)  # ready for the next answer, begin() or not

    def abort(self) -> None:
        self._stop_ticker()
        with self._lock:
            if self._aborted or self._live is None:
                return  # nothing is live: nothing to stop
            self._aborted = True
            # The partial answer is printed whole (its tail was live, maybe cut to the screen);
            # a collapsed chain of thought stays as drawn; a spinner is not worth keeping.
            keep = self._phase == "reasoning" and self._mode == "collapse"
            if self._phase == "answer":
                for block in self._md.close():
                    self._queue_block(block)
            elif self._phase == "reasoning" and self._mode == "show" and self._r_line:
                self._queue.append(self._dim("".join(self._r_line)))
            if keep:
                self._flush()
            else:
                self._phase = "done"
            self._stop_live(keep=keep)
            self._print_queue()

    # -- what is queued -----------------------------------------------------------------------

    def _queue_block(self, block: Block | RenderableType) -> None:
        if self._blocks:
            self._queue.append(self._blank())
        self._queue.append(block)
        self._blocks += 1

    def _show_reasoning(self, text: str) -> None:
        """`show` mode: print reasoning line by line, dimmed; keep the unfinished line live."""
        if "\n" in text:
            head, _, rest = text.rpartition("\n")
            self._r_line.append(head)
            self._queue.append(self._dim("".join(self._r_line)))
            self._r_line = [rest] if rest else []
            self._r_line_len = len(rest)
            return
        self._r_line.append(text)
        self._r_line_len += len(text)
        if self._r_line_len > 4 * self._console.width:
            # a line with no end would be re-wrapped on every redraw; print it up to a space
            line = "".join(self._r_line)
            cut = line.rfind(" ", 0, len(line) - self._console.width)
            if cut > 0:
                self._queue.append(self._dim(line[:cut]))
                line = line[cut + 1 :]
            self._r_line, self._r_line_len = [line], len(line)

    def _finish_reasoning(self, message: Message | None) -> None:
        """The answer starts (or ends): replace or close the chain of thought with one line."""
        if self._phase != "reasoning":
            return
        self._r_end = time.monotonic()
        if self._mode == "hide":
            return
        if self._mode == "show" and self._r_line:
            self._queue.append(self._dim("".join(self._r_line)))
            self._r_line = []
        tokens = self._r_count
        if message is not None and message.usage is not None and message.usage.reasoning_tokens:
            tokens = message.usage.reasoning_tokens  # known only at the end: exact when we can
        self._queue_block(self._dim(thought_text(self._r_end - self._r_start, tokens)))

    # -- drawing ------------------------------------------------------------------------------

    def _start_live(self) -> None:
        import threading

        from rich.live import Live

        dynamic = _Dynamic(self._view)
        self._live = Live(
            console=self._console,
            auto_refresh=False,  # our ticker refreshes: it also prints finished blocks
            redirect_stdout=False,
            redirect_stderr=False,
            vertical_overflow="visible",  # _Lines keeps the region within the screen
            get_renderable=lambda: dynamic,
        )
        self._live.start(refresh=True)
        self._stop_ticking = threading.Event()
        self._ticker = threading.Thread(target=self._tick, args=(self._stop_ticking,), daemon=True)
        self._ticker.start()

    def _tick(self, stop: threading.Event) -> None:
        while not stop.wait(_REFRESH_S):
            try:
                with self._lock:
                    if stop.is_set():
                        return
                    self._draw()
            except Exception:  # noqa: BLE001 - a traceback must never reach the screen
                return  # end() still prints everything the stream finished

    def _draw(self) -> None:
        """One frame: what the ticker does ~12 times a second (tests call it to be exact)."""
        with self._lock:
            if self._live is None:
                return
            animated = self._phase == "waiting" or (
                self._phase == "reasoning" and self._mode != "show"
            )
            if self._queue or self._dirty or animated:  # an unchanged tail is not redrawn
                self._flush()
                self._dirty = False

    def _stop_ticker(self) -> None:
        import threading

        self._stop_ticking.set()
        ticker = self._ticker
        if ticker is not None and ticker is not threading.current_thread():
            ticker.join(timeout=2)
        self._ticker = None

    def _flush(self) -> None:
        """Print what is queued above the Live region (which rich then redraws), or redraw it."""
        assert self._live is not None
        if self._queue:
            self._print_queue()
        else:
            self._live.refresh()

    def _print_queue(self) -> None:
        if not self._queue:
            return
        from rich.console import Group

        items, self._queue = self._queue, []
        self._console.print(Group(*(self._renderable(i) for i in items)))

    def _stop_live(self, *, keep: bool) -> None:
        """Stop the Live: keep its last frame on screen, or erase it (its content follows)."""
        live, self._live = self._live, None
        if live is None:
            return
        live.transient = not keep
        live.stop()

    def _view(self) -> RenderableType:
        """What the Live region shows now."""
        from rich.text import Text

        phase = self._phase
        if phase == "answer":
            return self._tail_view()
        if phase == "reasoning" and self._mode == "collapse":
            return self._reasoning_view()
        if phase == "reasoning" and self._mode == "show":
            return _Lines(self._dim("".join(self._r_line)))
        if phase == "done":
            return Text("")
        label = self._name + " …"
        if phase == "reasoning":  # hide: the spinner says the model is thinking
            label = f"{self._name} thinking… {time.monotonic() - self._r_start:.1f} s"
        if self._spinner is None:
            from rich.spinner import Spinner

            self._spinner = Spinner("dots", self._dim(label), style="dim")
        else:
            self._spinner.text = self._dim(label)
        return self._spinner

    def _tail_view(self) -> RenderableType:
        from rich.console import Group

        size = self._console.size
        # The tail is cut to about a screen of source before parsing: a long open block costs
        # the same to redraw as a short one, keeping the total linear.
        source = self._md.preview(size.height, size.height * size.width)
        if not source.strip():
            return self._blank()
        body = _markdown(source)
        if self._blocks:
            body = Group(self._blank(), body)
        return _Lines(body)

    def _reasoning_view(self) -> RenderableType:
        size = self._console.size
        limit = size.height * size.width
        pieces, total = [], 0
        for piece in reversed(self._r_pieces):  # only the end can be seen: join no more
            pieces.append(piece)
            total += len(piece)
            if total >= limit:
                break
        text = "".join(reversed(pieces)).strip("\n")
        head = self._dim(f"▸ Thinking… {time.monotonic() - self._r_start:.1f} s", italic=True)
        return _Lines(self._dim(text), head=head)

    def _renderable(self, item: Block | RenderableType) -> RenderableType:
        return _markdown(item.text) if isinstance(item, Block) else item

    @staticmethod
    def _dim(text: str, *, italic: bool = False) -> RenderableType:
        from rich.text import Text

        return Text(text, style="dim italic" if italic else "dim")

    @staticmethod
    def _blank() -> RenderableType:
        from rich.text import Text

        return Text("")


def _markdown(source: str) -> RenderableType:
    from rich.markdown import Markdown

    # Links as "text (url)": OSC 8 hyperlinks vanish when scrollback is copied or logged.
    return _Lines(Markdown(source, code_theme=_CODE_THEME, hyperlinks=False), trim=True)


# -- everything else the CLI and REPL print -------------------------------------------------


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _color_ok(stream: TextIO) -> bool:
    return _is_tty(stream) and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def _console(stream: TextIO) -> Console:
    from rich.console import Console

    return Console(file=stream, highlight=False, markup=False, emoji=False)


def print_error(message: str, *, err: TextIO | None = None) -> None:
    """"error: ..." on stderr, the prefix red in a colour terminal."""
    stream = err or sys.stderr
    prefix = "\x1b[1;31merror:\x1b[0m " if _color_ok(stream) else "error: "
    stream.write(prefix + message + "\n")
    stream.flush()


def print_info(message: str, *, style: str | None = None, out: TextIO | None = None) -> None:
    """One message on stdout, styled (rich style string) only in a terminal."""
    stream = out or sys.stdout
    if style and _is_tty(stream):
        from rich.text import Text

        _console(stream).print(Text(message, style=style))
        return
    stream.write(message + "\n")
    stream.flush()


def print_table(headers: list[str], rows: list[list[str]], *, out: TextIO | None = None) -> None:
    """A table: rich in a terminal, plain columns separated by two spaces otherwise."""
    stream = out or sys.stdout
    if _is_tty(stream):
        from rich import box
        from rich.table import Table

        table = Table(*headers, box=box.SIMPLE_HEAD, header_style="bold", show_edge=False)
        for row in rows:
            table.add_row(*row)
        _console(stream).print(table)
        return
    widths = [_cells(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row[: len(widths)]):
            widths[i] = max(widths[i], _cells(cell))
    for row in [headers, *rows]:
        cells = [c + " " * (widths[i] - _cells(c)) for i, c in enumerate(row[: len(widths)])]
        stream.write("  ".join(cells).rstrip() + "\n")
    stream.flush()


def print_markdown(text: str, *, out: TextIO | None = None) -> None:
    """A whole Markdown text at once (history views): rendered in a terminal, as is otherwise."""
    stream = out or sys.stdout
    if _is_tty(stream):
        from rich.console import Group
        from rich.text import Text

        # Block by block, as a streamed answer is drawn: history looks like it did live.
        md = MarkdownStream()
        items: list[RenderableType] = []
        for block in md.feed(text) + md.close():
            if items:
                items.append(Text(""))
            items.append(_markdown(block.text))
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
