"""Drawing for /compare: live columns (or stacked sections) while the answers stream, then the
final answers printed once as Markdown. Part of the rendering layer: nothing else draws.

Pipes get each answer in turn under an `== alias ==` header, plain text, once all have finished.
A lane that searched shows its numbered sources under its answer, as a normal answer does.
"""

from __future__ import annotations

from collections.abc import Callable
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from .. import notify
from ..conversation import sources_text
from ..interrupts import deferred
from ..safetext import visible
from .base import footer_text, hold_terminal, nothing, search_text, sources_block, thought_text, tool_line, warn_above

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderResult

    from ..conversation import Message
    from ..config.pricing import Cost
    from ..events import Citation, ToolActivity

MIN_COLUMN = 38


@dataclass
class _Lane:
    name: str
    text: list[str] = field(default_factory=list)
    reasoning_tokens: int | None = None  # known once the answer is finished
    reasoning_estimated: bool = False
    r_start: float | None = None
    r_end: float | None = None
    notice: str = ""
    notices: list[str] = field(default_factory=list)  # all of them, for the final view ("hit max_tokens")
    footer: str = ""
    error: str | None = None
    done: bool = False
    # The answer's sources, by URL in first-cited order (the [n] numbers), as the answer keeps them.
    citations: dict[str, Citation] = field(default_factory=dict)
    # The answer's text and its notices in the order they came (a tool's line between the rounds'
    # text), for the final view: ("text", its chunks) or ("notice", [the line]).
    pieces: list[tuple[str, list[str]]] = field(default_factory=list)

    def add(self, kind: str, text: str) -> None:
        if kind == "text" and self.pieces and self.pieces[-1][0] == "text":
            self.pieces[-1][1].append(text)  # chunks joined once, at the end: linear in the answer
        else:
            self.pieces.append((kind, [text]))

    def thought(self) -> str:
        if self.r_start is None:
            return ""
        end = self.r_end or time.monotonic()
        if self.r_end is None:
            return f"▸ Thinking… {end - self.r_start:.1f} s"
        return thought_text(end - self.r_start, self.reasoning_tokens, self.reasoning_estimated)


class CompareView:
    def __init__(self, names: list[str], *, terminal: bool, color: bool = True, reasoning: str = "collapse",
                 quiet: bool = False, out: TextIO | None = None, width: int | None = None,
                 blind: bool = False) -> None:
        self.lanes = [_Lane(n) for n in names]
        # A blind arena: footers (model, speed, cost), notices and error texts name or betray the
        # model, so they wait for the vote; the engine still records all of them.
        self.blind = blind
        self.terminal = terminal
        self.quiet = quiet
        self.show_reasoning = reasoning != "hide"
        self.out = out or sys.stdout
        self._lock = threading.Lock()
        self._live: Any = None
        self._console: Any = None
        self._closed = False
        self._paused_at: float | None = None
        self._restore_terminal: Callable[[], None] = nothing
        self._warn_route: notify.Warn | None = None
        if terminal:
            from rich.console import Console

            self._console = Console(file=self.out, force_terminal=True, width=width, highlight=False,
                                    no_color=not color or bool(os.environ.get("NO_COLOR")))

    def start(self) -> None:
        """Draw the live columns: not when made, since whatever runs between the two (MCP servers
        starting) could end the program with the terminal held and nothing to close the view."""
        self.resume()

    @property
    def side_by_side(self) -> bool:
        width = self._console.width if self._console else 80
        n = len(self.lanes)
        return width >= n * MIN_COLUMN + (n - 1) * 3

    # -- a question from a lane (a tool call to approve) -----------------------------------
    def pause(self) -> None:
        """Clear the live columns so a question can be asked below the prompt's line; the lanes
        keep everything, and `resume` draws them again."""
        with self._lock:
            if self._live is not None:
                self._stop()
                self._paused_at = time.monotonic()

    def resume(self) -> None:
        """Draw the live columns again (idempotent; nothing once closed, or in a pipe)."""
        with self._lock:
            if self._console is None or self._live is not None or self._closed:
                return
            if self._paused_at is not None:
                # The time a question waited for the user is nobody's thinking time.
                gap, self._paused_at = time.monotonic() - self._paused_at, None
                for lane in self.lanes:
                    if lane.r_start is not None and lane.r_end is None:
                        lane.r_start += gap
            from rich.live import Live

            self._live = Live(console=self._console, get_renderable=lambda: _Frame(self), refresh_per_second=8,
                              transient=True, vertical_overflow="crop", redirect_stdout=False,
                              redirect_stderr=False)
            with deferred():  # a start cut in half by Ctrl-C could not be stopped: no cursor, no echo
                self._restore_terminal = hold_terminal(self.out)
                self._live.start()
            self._warn_route = notify.route_warnings(self._warning)

    def _stop(self) -> None:
        with deferred():  # a stop cut in half by a second Ctrl-C would leave the cursor hidden
            self._live.stop()
            self._restore_terminal()  # a question below needs the keys echoed
        self._live = None
        notify.route_warnings(self._warn_route)
        self._warn_route = None

    def _warning(self, text: str) -> None:
        """A warning (notify.warn) while the columns are live: printed above them (rich's Live
        prints above its region; see warn_above)."""
        with self._lock:
            warn_above(text, self.out, self._live is not None, lambda line: self._console.print(line))

    # -- events from the lanes --------------------------------------------------------------
    def text(self, i: int, text: str) -> None:
        lane = self.lanes[i]
        if lane.r_start is not None and lane.r_end is None:
            lane.r_end = time.monotonic()
        lane.text.append(text)
        lane.add("text", text)

    def reasoning(self, i: int, text: str) -> None:
        lane = self.lanes[i]
        if lane.r_start is None:
            lane.r_start = time.monotonic()

    def notice(self, i: int, text: str) -> None:
        if self.blind:
            return
        self.lanes[i].notice = text
        self.lanes[i].notices.append(text)
        self.lanes[i].add("notice", text)

    def search(self, i: int, query: str) -> None:
        """The provider searches for this lane ("searching: …", as under a normal answer)."""
        self.notice(i, search_text(query))

    def tool(self, i: int, event: ToolActivity) -> None:
        """A tool call of this lane: running while it runs, then what came of it, with the notices
        (about the tools, not the model: shown in a blind arena too)."""
        lane = self.lanes[i]
        if lane.r_start is not None and lane.r_end is None:
            lane.r_end = time.monotonic()  # the model stopped thinking to call: tools' time is not thought
        lane.notice = tool_line(event)
        if event.state != "running":
            lane.notices.append(lane.notice)
            lane.add("notice", lane.notice)

    def citation(self, i: int, citation: Citation) -> None:
        self.lanes[i].citations.setdefault(citation.url, citation)

    def finish(self, i: int, message: Message, cost: Cost | None, error: str | None) -> None:
        lane = self.lanes[i]
        # The answer's own list wins: a retried request's sources do not count (engine.answer).
        lane.citations = {c.url: c for c in message.citations}
        if lane.r_start is not None and lane.r_end is None:
            lane.r_end = time.monotonic()
        if message.usage is not None and message.usage.reasoning_tokens:
            lane.reasoning_tokens = message.usage.reasoning_tokens
            lane.reasoning_estimated = message.usage.reasoning_estimated
        lane.footer = "" if self.blind else footer_text(message, cost)
        lane.error = "this answer failed (details after the vote)" if self.blind and error else error
        lane.done = True

    def abort(self) -> None:
        for lane in self.lanes:
            if not lane.done:  # cut by the user before anything arrived: not an error
                if lane.r_start is not None and lane.r_end is None:
                    lane.r_end = time.monotonic()
                lane.footer = lane.footer or "interrupted"
                lane.done = True

    # -- the end ----------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the live view and print every answer once, in full."""
        with self._lock:
            self._closed = True
            if self._live is not None:
                self._stop()
            if self._console is not None:
                if self._paused_at is not None:
                    # Still paused: the question was cut short (Ctrl-C), its line not ended.
                    self._console.print()
                self._console.print(self._final())
            elif not self.quiet:
                self._plain()

    def _plain(self) -> None:
        # Sections for reading, not data (`--json` is that): remote text is shown safe here too.
        for lane in self.lanes:
            self.out.write(f"== {visible(lane.name)} ==\n")
            text = visible("".join(lane.text))
            if text:
                self.out.write(text.rstrip("\n") + "\n")
            if lane.citations:
                self.out.write("\n" + visible(sources_text(tuple(lane.citations.values()))) + "\n")
            for notice in lane.notices:
                sys.stderr.write(f"{visible(lane.name)}: {visible(notice)}\n")
            if lane.error:
                sys.stderr.write(f"error: {visible(lane.error)}\n")
            self.out.write("\n")
        self.out.flush()

    def _section(self, lane: _Lane, *, live: bool, height: int | None = None) -> Any:
        from rich.console import Group
        from rich.markdown import Markdown
        from rich.text import Text

        # Every piece of a lane may come from a server (answer, error body, notice, model id).
        parts: list[Any] = [Text(visible(lane.name), style="bold")]
        if self.show_reasoning and lane.thought():
            parts.append(Text(lane.thought(), style="dim italic"))
        if lane.notice and live and not lane.done:
            parts.append(Text(visible(lane.notice), style="dim"))
        text = visible("".join(lane.text))
        if live:
            # While streaming: the plain tail that fits (Markdown is drawn once, at the end).
            lines = text.splitlines() or [""]
            parts.append(Text("\n".join(lines[-(height or 10):])))
            if not lane.done and not text and lane.r_start is None:
                parts.append(Text("…", style="dim"))
            if lane.citations:
                parts.append(sources_block(tuple(lane.citations.values())))
        else:
            for kind, chunks in lane.pieces:
                piece = "".join(chunks)
                if kind == "notice":
                    parts.append(Text(visible(piece), style="dim"))
                elif piece.strip():
                    parts.append(Markdown(visible(piece), code_theme="monokai"))
            if lane.citations:
                parts.append(sources_block(tuple(lane.citations.values())))
        if lane.error:
            parts.append(Text(f"error: {visible(lane.error)}", style="red"))
        if lane.footer:
            parts.append(Text(visible(lane.footer), style="dim"))
        return Group(*parts)

    def _layout(self, *, live: bool, height: int | None = None) -> Any:
        from rich.console import Group
        from rich.rule import Rule
        from rich.table import Table

        if self.side_by_side:
            grid = Table.grid(expand=True, padding=(0, 2))
            for _ in self.lanes:
                grid.add_column(ratio=1)
            grid.add_row(*[self._section(lane, live=live, height=height) for lane in self.lanes])
            return grid
        per = max(3, (height or 30) // max(1, len(self.lanes)) - 3) if live else None
        items: list[Any] = []
        for lane in self.lanes:
            items += [Rule(style="dim"), self._section(lane, live=live, height=per)]
        return Group(*items)

    def _final(self) -> Any:
        return self._layout(live=False)


class _Frame:
    """The live frame, rebuilt from the lanes at each refresh and cut to the screen's height."""

    def __init__(self, view: CompareView) -> None:
        self.view = view

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        height = max(5, options.size.height - 6)
        yield self.view._layout(live=True, height=height)
