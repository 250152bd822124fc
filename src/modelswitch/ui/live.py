"""Terminal mode: finished Markdown blocks printed once, above a Live region for the open tail.

The answer's text is only scanned as it arrives (mdstream); a ticker thread draws at most ~12 times
a second: it prints blocks that finished and redraws the tail, cut to fit the screen, so the cost
grows with the answer and not with its square, and nothing is duplicated or cropped to "...".
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal, TextIO

from .. import notify
from ..interrupts import deferred
from .mdstream import Block, MarkdownStream
from ..safetext import visible
from .base import (Renderer, footer_text, hold_terminal, nothing, sources_block, thought_text, tool_line,
                   warn_above)

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
    from rich.live import Live
    from rich.text import Text

    from ..conversation import Message
    from ..config.pricing import Cost
    from ..events import ToolActivity

_REFRESH_S = 1 / 12
_CODE_THEME = "monokai"


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
        self._restore_terminal: Callable[[], None] = nothing
        self._warn_route: notify.Warn | None = None
        # Calls running now (by call id): their lines are live until each one's outcome arrives.
        self._tools: dict[str, tuple[ToolActivity, float]] = {}
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
        self._tool_spinner: Any = None
        self._r_pieces: list[str] = []
        self._r_line: list[str] = []  # "show": the reasoning line not yet printed
        self._r_line_len = 0
        self._r_start = 0.0
        self._r_end = 0.0

    # -- the stream ---------------------------------------------------------------------------

    def begin(self, model_name: str) -> None:
        if self._live is not None:
            self.abort()  # a new answer (e.g. a fallback) while one is still drawn
        with self._lock:
            self._reset(model_name)
            self._start_live()
        # The wait for the first token is idle time: load the Markdown and highlighting machinery
        # now, so the first words are not held back by ~0.1 s of imports when they arrive.
        threading.Thread(target=_warm_up, daemon=True).start()

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

    def tool(self, event: ToolActivity) -> None:
        if not self._tools:
            self.pause()  # the round that called is over: its reasoning folds, its text stays
        with self._lock:
            if event.state == "running":
                self._tools[event.call.id] = (event, time.monotonic())
                if self._live is None:
                    self._start_live()
                self._flush()
                return
            self._tools.pop(event.call.id, None)
            self._queue.append(self._dim(tool_line(event)))
            if self._live is not None:
                self._flush()  # the spinner of the next round's wait, or the calls still running
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
            if message.citations:
                self._queue.append(sources_block(message.citations))
            self._queue.append(self._dim(footer_text(message, cost)))
            self._print_queue()
            self._reset(self._name)  # ready for the next answer, begin() or not

    def pause(self) -> None:
        with self._lock:
            if self._phase == "reasoning" and not self._aborted:
                self._finish_reasoning(None)  # "Thought for …", as when the answer starts
                self._phase = "answer"
        self.abort()
        with self._lock:
            self._reset(self._name)

    def abort(self) -> None:
        self._stop_ticker()
        with self._lock:
            if self._aborted or self._live is None:
                return  # nothing is live: nothing to stop
            self._aborted = True
            for event, _ in self._tools.values():  # Ctrl-C stopped them: say so, not "running"
                self._queue.append(self._dim(tool_line(replace(event, state="cancelled", detail=""))))
            self._tools.clear()
            # The partial answer is printed whole (its tail was live, maybe cut to the screen);
            # a chain of thought folds to "Thought for …" as at a normal end, not frozen mid-count;
            # a spinner is not worth keeping.
            self._finish_reasoning(None)
            if self._phase == "answer":
                for block in self._md.close():
                    self._queue_block(block)
            self._phase = "done"
            self._stop_live(keep=False)
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
        usage = message.usage if message is not None else None  # when the answer starts: not known yet
        tokens, estimated = (usage.reasoning_tokens, usage.reasoning_estimated) if usage else (None, False)
        self._queue_block(self._dim(thought_text(self._r_end - self._r_start, tokens, estimated)))

    # -- drawing ------------------------------------------------------------------------------

    def _start_live(self) -> None:
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
        with deferred():  # Live.start cut in half by Ctrl-C cannot be stopped: the cursor stays hidden
            self._restore_terminal = hold_terminal(self._console.file)
            self._live.start(refresh=True)
            self._warn_route = notify.route_warnings(self._warning)
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
            animated = bool(self._tools) or self._phase == "waiting" or (
                self._phase == "reasoning" and self._mode != "show"
            )
            if self._queue or self._dirty or animated:  # an unchanged tail is not redrawn
                self._flush()
                self._dirty = False

    def _stop_ticker(self) -> None:
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
        with deferred():  # a stop cut in half by a signal would leave the cursor hidden
            live.stop()
            self._restore_terminal()
            self._restore_terminal = nothing
            notify.route_warnings(self._warn_route)
            self._warn_route = None

    def _warning(self, text: str) -> None:
        """A warning (notify.warn) while the region is live: queued above it (see warn_above)."""
        def above(line: Text) -> None:
            self._queue.append(line)
            self._flush()

        with self._lock:
            warn_above(text, self._console.file, self._live is not None, above)

    def _view(self) -> RenderableType:
        """What the Live region shows now."""
        from rich.text import Text

        phase = self._phase
        if self._tools:
            return self._tools_view()
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

    def _tools_view(self) -> RenderableType:
        """One line per call still running, with how long it has run so far."""
        from rich.text import Text

        now = time.monotonic()
        lines = Text("\n").join(
            Text(visible(f"{tool_line(replace(event, detail=''))}… {now - since:.0f} s (Ctrl-C cancels)"), style="dim")
            for event, since in self._tools.values()
        )
        if self._tool_spinner is None:
            from rich.spinner import Spinner

            self._tool_spinner = Spinner("dots", style="dim")
        self._tool_spinner.text = lines
        return self._tool_spinner

    def _tail_view(self) -> RenderableType:
        from rich.console import Group

        size = self._console.size
        # The tail is cut to about a screen of source before parsing: a long open block costs
        # the same to redraw as a short one, keeping the total linear.
        source = self._md.preview(size.height, size.height * size.width)
        if not source.strip():
            return self._blank()
        body = markdown(source)
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
        return markdown(item.text) if isinstance(item, Block) else item

    @staticmethod
    def _dim(text: str, *, italic: bool = False) -> RenderableType:
        from rich.text import Text

        # Reasoning, notices, the footer and model names all pass here: remote text, drawn safe.
        return Text(visible(text), style="dim italic" if italic else "dim")

    @staticmethod
    def _blank() -> RenderableType:
        from rich.text import Text

        return Text("")


def _warm_up() -> None:
    try:
        import rich.markdown  # noqa: F401
        import rich.syntax  # noqa: F401
    except Exception:  # noqa: BLE001 - only an optimisation; the real import reports any problem
        pass


def markdown(source: str) -> RenderableType:
    """An answer's Markdown as drawn: every block, the live tail and history views pass here.

    rich passes escape sequences in the source through to the terminal: they are made visible
    first (safetext), so an answer cannot set the title, write the clipboard or clear the screen.
    """
    from rich.markdown import Markdown

    # Links as "text (url)": OSC 8 hyperlinks vanish when scrollback is copied or logged.
    return _Lines(Markdown(visible(source), code_theme=_CODE_THEME, hyperlinks=False), trim=True)
