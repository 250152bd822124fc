"""The REPL's /compare: parse the models, run them side by side, hold the answers for /keep."""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .. import errors
from ..config.load import ModelSpec
from ..conversation import Conversation
from ..engine.context import Fit
from ..engine.compare import run_models
from ..engine.session import Arena, blind
from ..events import ToolCall
from ..interrupts import Terminated, deferred
from ..ui.compare import CompareView
from .commands import prompt_after

if TYPE_CHECKING:
    from .commands import Repl


def parse_compare_args(repl: Repl, arg: str) -> tuple[list[ModelSpec], str]:
    """`/compare r1 hy [PROMPT]`: leading words that name models, then the prompt (if any).

    The prompt is the rest of the text exactly as typed (newlines, indentation, runs of spaces),
    as an ordinary message is sent; only the blanks separating it from the last model name go.
    """
    specs: list[ModelSpec] = []
    prompt = ""
    specs_end = 0
    for word in re.finditer(r"\S+", arg):
        try:
            specs.append(repl.session.resolve(word.group()))
        except errors.UsageError:
            if len(specs) < 2:
                raise
            prompt = prompt_after(arg[specs_end:])
            break
        specs_end = word.end()
    if len(specs) < 2:
        raise errors.UsageError("usage: /compare MODEL MODEL [MODEL...] [PROMPT]")
    return specs, prompt


def parse_arena_args(repl: Repl, arg: str) -> tuple[Arena, str]:
    """`/arena [--tag TAG] A B [C...] [PROMPT]`: the models in a random order, and the prompt."""
    tag = None
    head = arg.lstrip()
    if head.startswith("--tag"):
        _, value, rest = (head.split(None, 2) + ["", ""])[:3]
        if not value:
            raise errors.UsageError("usage: /arena [--tag TAG] MODEL MODEL [MODEL...] [PROMPT]")
        tag, arg = value, rest
    try:
        specs, prompt = parse_compare_args(repl, arg)
    except errors.UsageError as exc:
        raise errors.UsageError(exc.message.replace("/compare MODEL", "/arena [--tag TAG] MODEL")) from None
    return blind(specs, tag), prompt


def run_compare(repl: Repl, specs: Sequence[ModelSpec], text: str, arena: Arena | None = None) -> None:
    """The REPL's /compare: answers side by side; none joins history until /keep (or /vote)."""
    from .window import make_room

    session = repl.session
    user = session.user_message(text)
    for spec in specs:
        def check(conv: Conversation, spec: ModelSpec = spec) -> Fit:
            return session.fit(spec, user, conv)

        if not make_room(repl, spec, check, verb="compare"):
            repl.say("not sent: " + repr(" ".join(user.text.split())[:60]), "dim")
            return
    labels = [str(i) for i in range(1, len(specs) + 1)] if arena else [s.name for s in specs]
    view = CompareView(labels, terminal=sys.stdout.isatty(), color=repl.color, reasoning=session.think,
                       blind=arena is not None)
    # Each lane asks as a normal answer does, named by its column; the columns step aside while
    # it asks, and `a` (session.always) holds for every lane.
    asks = [repl.approver(view.pause, view.resume, who=label) for label in labels]

    def approve(i: int, call: ToolCall, server: str) -> bool | None:
        ok = asks[i](call, server)
        view.resume()  # also after a piped chat's "not run" line, which asks nothing
        return ok

    outcomes, interrupt = run_models(session.config, session.conversation.add(user), specs, view,
                                     settings=session.settings, debug=session.debug,
                                     toolbox=session.toolbox, approve=approve, told=session.told_no_tools)
    with deferred():
        session.hold_compare(user, [(o.message, o.cost) for o in outcomes], arena,
                             spent=tuple(m for o in outcomes for m in o.answer.losers))
    if any(o.error is not None for o in outcomes):
        repl.failed = True
    if interrupt is not None:
        if isinstance(interrupt, Terminated) or not repl.interactive:
            raise interrupt
        repl.say("\ninterrupted — compare stopped; the answers so far are kept", "yellow")
    if arena is not None:
        n = len(outcomes)
        repl.say(f"/vote 1-{n}, /vote tie or /vote none: the names, speed and cost are shown after your vote", "dim")
        return
    names = ", ".join(f"{i} ({o.spec.name})" for i, o in enumerate(outcomes, 1)
                      if o.message.text or o.message.rounds)
    if names:
        repl.say(f"/keep N puts one answer into the conversation: {names}", "dim")


def run_arena(repl: Repl, arena: Arena, text: str) -> None:
    """The REPL's /arena: a /compare in numbered lanes, in random order, until /vote."""
    run_compare(repl, arena.lanes, text, arena)
