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


def run_compare(repl: Repl, specs: Sequence[ModelSpec], text: str) -> None:
    """The REPL's /compare: answers side by side; none joins history until /keep."""
    from .window import make_room

    session = repl.session
    user = session.user_message(text)
    for spec in specs:
        def check(conv: Conversation, spec: ModelSpec = spec) -> Fit:
            return session.fit(spec, user, conv)

        if not make_room(repl, spec, check, verb="compare"):
            repl.say("not sent: " + repr(" ".join(user.text.split())[:60]), "dim")
            return
    view = CompareView([s.name for s in specs], terminal=sys.stdout.isatty(), color=repl.color,
                       reasoning=session.think)
    outcomes, interrupt = run_models(session.config, session.conversation.add(user), specs, view,
                                     settings=session.settings, debug=session.debug)
    with deferred():
        session.hold_compare(user, [(o.message, o.cost) for o in outcomes])
    if any(o.error is not None for o in outcomes):
        repl.failed = True
    if interrupt is not None:
        if isinstance(interrupt, Terminated) or not repl.interactive:
            raise interrupt
        repl.say("\ninterrupted — compare stopped; the answers so far are kept", "yellow")
    names = ", ".join(f"{i} ({o.spec.name})" for i, o in enumerate(outcomes, 1) if o.message.text)
    if names:
        repl.say(f"/keep N puts one answer into the conversation: {names}", "dim")
