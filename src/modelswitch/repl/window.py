"""The context-window check the REPL makes before a switch or a send, and /compact's run.

A conversation that does not fit the target model's window is never sent as it is unless the
user says so: they choose to compact the older turns, trim to the last turns that fit, go on
anyway, or cancel. A piped chat cannot answer, so there the check cancels and says how to make room.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import suppress
from typing import TYPE_CHECKING

from .. import errors
from ..config.load import ModelSpec
from ..conversation import Conversation, Message
from ..engine.context import Fit, trim
from ..interrupts import Terminated, deferred

if TYPE_CHECKING:
    from .commands import Repl

# /compact keeps the last exchange word for word: the summary stands for the turns before it.
KEEP_VERBATIM = 1


def make_room(repl: Repl, spec: ModelSpec, check: Callable[[Conversation], Fit], *, verb: str,
              min_keep: int = 0) -> bool:
    """True when the conversation fits `spec` as `check` measures it, or the user chose to go on.

    `verb` names what going on means ("switch", "send"); `min_keep` exchanges always stay (a
    /retry replaces the last one, so it must survive a trim).
    """
    s = repl.session
    fit = check(s.conversation)
    if fit.ok:
        return True
    repl.say(fit.refusal(), "yellow")
    if not repl.interactive:
        repl.say(f"not done: /compact or /trim N make room first ({verb} was cancelled)", "yellow")
        repl.failed = True
        return False
    while True:
        choice = repl.choose(f"[c]ompact older turns, [t]rim to the last turns that fit, {verb} [a]nyway, "
                             "or [n]o? ")
        if choice in (None, "n"):
            repl.say(f"cancelled: nothing changed, no {verb}", "dim")
            return False
        if choice == "a":
            return True
        if choice == "t":
            return _trim_until(repl, check, min_keep)
        if choice == "c":
            if not compact(repl, s.summariser(), keep=max(KEEP_VERBATIM, min_keep)):
                return False
            fit = check(s.conversation)
            if fit.ok:
                return True
            repl.say(f"still too long after compacting: {fit.refusal()}", "yellow")
            continue
        repl.say("answer c, t, a or n", "dim")


def _trim_until(repl: Repl, check: Callable[[Conversation], Fit], min_keep: int) -> bool:
    s = repl.session
    exchanges = sum(1 for m in s.conversation.messages if m.role == "user")
    for keep in range(exchanges, min_keep - 1, -1):
        if check(trim(s.conversation, keep)).ok:
            dropped = s.trim_to(keep)
            repl.say(f"dropped the {dropped} oldest turns; kept the system prompt and the last {keep} "
                     f"exchange{'s' if keep != 1 else ''} (/undo brings them back)", "dim")
            return True
    repl.say("even the last exchange alone does not fit; nothing was trimmed", "yellow")
    return False


def before_send(repl: Repl, spec: ModelSpec, user: Message, *, replacing: bool = False) -> bool:
    """The check before each send: compact_at first (automatic), then the window itself."""
    s = repl.session

    def check(conv: Conversation) -> Fit:
        return s.fit(spec, user, conv.without_last_exchange() if replacing else conv)

    at = s.config.compact_at
    fit = check(s.conversation)
    if at is not None and fit.window and fit.fraction >= at:
        repl.say(f"the conversation fills {fit.fraction:.0%} of {spec.name}'s window (compact_at = {at:g}); "
                 "compacting the older turns", "dim")
        try:
            compact(repl, s.summariser(), keep=KEEP_VERBATIM)
        except errors.UsageError as exc:  # e.g. the summariser's own window is too small
            repl.say(f"not compacted: {exc.message}", "yellow")
    return make_room(repl, spec, check, verb="send", min_keep=1 if replacing else 0)


def compact(repl: Repl, spec: ModelSpec, *, keep: int = KEEP_VERBATIM) -> bool:
    """Summarise the older turns on `spec` (shown as it streams) and put the marked summary in
    their place. False, with the conversation unchanged, if there was nothing to do or it failed."""
    from ..ui.render import draw, make_renderer

    s = repl.session
    job = s.compaction(spec, keep)
    if job is None:
        repl.say("nothing to compact: no older answered turns", "dim")
        return False
    answer, count = job
    repl.say(f"summarising {count} older turns with {spec.name}…", "dim")
    renderer = make_renderer(terminal=sys.stdout.isatty(), reasoning="hide", color=repl.color)
    try:
        renderer.begin(answer.model.name)
        draw(renderer, answer)
    except KeyboardInterrupt as exc:
        with deferred():
            answer.close()
            with suppress(OSError):
                renderer.abort()
        if isinstance(exc, Terminated) or not repl.interactive:
            raise
        repl.say("\ncompaction interrupted; nothing changed", "yellow")
        return False
    except errors.ModelSwitchError as exc:
        renderer.abort()
        repl.say(f"compaction failed: {exc.message}; nothing changed", "yellow")
        return False
    except Exception:  # a bug: the live region stops before the chat tells it (Repl.handle)
        renderer.abort()
        raise
    with deferred():
        renderer.end(answer.message, s.cost_for(answer.message))
        try:
            s.apply_compaction(answer, keep)
        except errors.UsageError as exc:
            repl.say(f"{exc.message}", "yellow")
            return False
    repl.say(f"compacted: {count} turns replaced by a [summary] (/undo brings them back); now {s.fit().meter()}",
             "green")
    return True
