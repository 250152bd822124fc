"""What every renderer shares: the Renderer interface and the footer and thought lines.

Below render.py (which picks a renderer) and live.py / compare.py (which draw in a terminal), so
neither has to import the other's module to reach them.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from ..notify import to_stderr
from ..redaction import redact
from ..safetext import visible

if TYPE_CHECKING:
    from rich.text import Text

    from ..config.pricing import Cost
    from ..conversation import Message, ToolResult
    from ..events import Citation, ToolActivity, ToolCall


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

    def search(self, query: str) -> None:
        """The provider is searching the web for `query` (its own search, for this answer)."""
        self.notice(search_text(query))

    def end(self, message: Message, cost: Cost | None) -> None:
        """The answer is over; finish drawing it."""

    def abort(self) -> None:
        """Stop drawing now, keeping what is on screen (Ctrl-C or an error). Idempotent."""

    def pause(self) -> None:
        """Tools run between two rounds of one answer: keep what is drawn, and take the next
        round's reasoning and text as if the answer began again."""

    def tool(self, event: ToolActivity) -> None:
        """A tool call between two rounds: running (only said by a live renderer), then what
        came of it, one line."""
        self.pause()  # the next round's reasoning is shown live again
        if event.state != "running":
            self.notice(tool_line(event))


def footer_text(message: Message, cost: Cost | None) -> str:
    """"hy · 0.4 s to first token · 61 tok/s · 230 tokens · ¥0.0012" and what went wrong."""
    name = message.model.name if message.model is not None else "answer"
    if message.route:
        name += f" via {message.route}"
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
    return " · ".join(parts)


def search_text(query: str) -> str:
    """"searching: QUERY", or "searching…" for a search whose query the provider does not say (Kimi)."""
    query = " ".join(redact(query).split())
    return f"searching: {query}" if query else "searching…"


def linkable(url: str) -> bool:
    """Only a web address becomes a clickable link; anything else is shown as text."""
    return url.lower().startswith(("https://", "http://")) and not any(c.isspace() for c in url)


def thought_text(seconds: float, tokens: int | None = None, estimated: bool = False) -> str:
    """The one line a collapsed chain of thought leaves behind; its size only when it is known
    (the provider's count, or the engine's estimate marked `~`), never a count of stream chunks."""
    took = f"{seconds:.1f} s" if seconds < 60 else duration_text(seconds)
    return f"Thought for {took}" + (f" · {'~' if estimated else ''}{tokens:,} tokens" if tokens else "")


def duration_text(seconds: float) -> str:
    """`45 s`, `27 min 12 s`, `1 h 3 min`: what a person reads at a glance."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s" if s % 60 else f"{s // 60} min"
    return f"{s // 3600} h {s % 3600 // 60} min"


def hold_terminal(out: IO[str], *, echo: bool = False) -> Callable[[], None]:
    """While a live region is drawn: the terminal echoes no key and Ctrl-C drops no output.

    rich redraws its region by moving the cursor up as many rows as it last drew. The terminal
    echoes "^C" (and any key typed ahead) at the cursor, which sits at the end of the region's
    last row, padded to the full width: the echo wrapped onto a new row, so the redraw on stop
    left the region's top row behind, above the reprinted answer. Keys typed meanwhile are not
    lost, only not echoed: the next prompt shows them. NOFLSH keeps Ctrl-C from discarding output
    not yet drawn, which would put rich's count off the same way, and keys typed ahead for the
    next prompt (`echo=True`: NOFLSH only, what the REPL holds for a whole answer).

    Returns what restores the terminal (idempotent); a no-op unless `out` is the terminal of the
    foreground process (changing a terminal's modes from the background would stop the process
    with SIGTTOU). A hold still in place when the interpreter exits is restored then, and the
    cursor a live region hid shown again: a path that missed its restore must not leave the
    user's shell with no echo and no cursor.
    """
    global _at_exit
    try:
        import termios
    except ImportError:  # Windows
        return nothing
    try:
        fd = out.fileno()
        if not os.isatty(fd) or os.tcgetpgrp(fd) != os.getpgrp():
            return nothing
        saved = termios.tcgetattr(fd)
        attrs = list(saved)
        attrs[3] |= termios.NOFLSH
        if not echo:
            attrs[3] &= ~termios.ECHO
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
    except (AttributeError, ValueError, OSError, termios.error):  # a StringIO, a closed file
        return nothing
    hold = _Hold(fd, saved, region=not echo)
    with _holds_lock:
        if not _at_exit:
            atexit.register(_release_all)
            _at_exit = True
        _holds.append(hold)

    def restore() -> None:
        with _holds_lock:
            if hold not in _holds:
                return
            _holds.remove(hold)
        hold.release()

    return restore


@dataclass(frozen=True, eq=False)  # each hold is its own: two holds of one terminal may save equal modes
class _Hold:
    fd: int
    saved: list[Any]
    region: bool  # a live region's: its cursor may still be hidden

    def release(self, show_cursor: bool = False) -> None:
        import termios

        with suppress(OSError, termios.error):  # SIGHUP: the terminal may be gone
            if show_cursor and self.region:
                os.write(self.fd, b"\x1b[?25h")
            termios.tcsetattr(self.fd, termios.TCSANOW, self.saved)


_holds: list[_Hold] = []  # not yet restored, oldest first
_holds_lock = threading.Lock()
_at_exit = False  # _release_all is registered


def _release_all() -> None:
    """At exit: undo the holds still in place, newest first, so the oldest's saved modes win."""
    with _holds_lock:
        holds, _holds[:] = _holds[::-1], []
    for hold in holds:
        hold.release(show_cursor=True)


def stderr_on(out: IO[str]) -> bool:
    """True when stderr writes to the same terminal as `out` (a live region there would be
    drawn over by it); a StringIO (a test) counts as that screen."""
    try:
        return os.isatty(2) and os.path.samestat(os.fstat(2), os.fstat(out.fileno()))
    except (AttributeError, ValueError, OSError):
        return True


def warn_above(text: str, out: IO[str], live: bool, above: Callable[[Text], None]) -> None:
    """A warning (notify.warn) while a live region may be drawn on `out`: handed to `above`, which
    prints it above the region (a line written into it would be wiped by the next redraw); straight
    to stderr when nothing is live or stderr is not that terminal."""
    if not live or not stderr_on(out):
        to_stderr(text)
        return
    from rich.text import Text

    above(Text(visible(text)))


def nothing() -> None:
    pass


_STATE_WORDS = {"done": "ran", "failed": "failed", "refused": "not run (declined)", "cancelled": "cancelled",
                # no one could approve (ask/compare -T without --yes, a piped chat): what happened
                # and how to allow it, in the one line
                "unapproved": "not run (no approval here: list {tool} in [mcp.{server}] trust, or pass --yes to ask or compare)"}


def call_text(call: ToolCall, server: str, width: int = 80) -> str:
    """`server.tool {"a": 2}`, the arguments cut to `width` characters: what a user approves.
    A configured key among them is shown masked (the tool itself gets it as the model wrote it)."""
    args = " ".join(redact(call.arguments).split())
    if len(args) > width:
        args = args[: width - 1] + "…"
    return visible(redact(f"{server + '.' if server else ''}{call.name}") + f" {args}")


def tool_line(event: ToolActivity) -> str:
    """One line per finished call, among the answer's notices."""
    detail = f" ({redact(event.detail)})" if event.detail else ""
    words = _STATE_WORDS.get(event.state, event.state)
    if event.state == "unapproved":  # only this one names the tool: an unknown state is shown as is
        words = words.format(tool=visible(redact(event.call.name)), server=event.server)
    return f"⚙ {call_text(event.call, event.server)}: {words}{detail}"


def result_line(call: ToolCall, result: ToolResult) -> str:
    """A call kept in history (/history), in the line it was shown with when it ended."""
    from ..conversation import CALL_CANCELLED, CALL_NOT_STARTED, CALL_UNAPPROVED
    from ..events import ToolActivity

    state, detail = {CALL_NOT_STARTED: ("cancelled", "before running"),
                     CALL_CANCELLED: ("cancelled", "while running"),
                     CALL_UNAPPROVED: ("unapproved", "")}.get(result.content, ("", ""))
    if not state:
        state = "refused" if result.approved is False else "failed" if result.is_error else "done"
    return tool_line(ToolActivity(call, result.server, state, detail))


def sources_block(citations: tuple[Citation, ...]) -> Text:
    """"Sources" and one "[n] title — url" line per source, both OSC 8 links to the page (rich
    writes the link only to a terminal); the URL stays in view for terminals without links.
    Under a streamed answer and under each /compare column alike."""
    from rich.style import Style
    from rich.text import Text

    text = Text("Sources", style="bold")
    for n, c in enumerate(citations, 1):
        url = visible(redact(c.url))
        title = visible(" ".join(redact(c.title).split()))
        link = Style(link=url) if linkable(url) else Style()
        text.append(f"\n[{n}] ", style="dim")
        if title and title != url:
            text.append(title, style=link + Style(underline=True))
            text.append(" — ", style="dim")
        text.append(url, style=link + Style(dim=True))
    return text
