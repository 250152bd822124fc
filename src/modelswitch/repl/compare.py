"""The REPL's /compare: parse the models, run them side by side, hold the answers for /keep."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .. import errors
from ..config.load import ModelSpec
from ..engine.compare import run_models
from ..ui.compare import CompareView

if TYPE_CHECKING:
    from .commands import Repl


def parse_compare_args(repl: Repl, arg: str) -> tuple[list[ModelSpec], str]:
    """`/compare r1 hy [PROMPT]`: leading words that name models, then the prompt (if any)."""
    words = arg.split()
    specs: list[ModelSpec] = []
    rest = 0
    for rest, word in enumerate(words):  # noqa: B007
        try:
            specs.append(repl.session.resolve(word))
        except errors.UsageError:
            if len(specs) < 2:
                raise
            break
    else:
        rest = len(words)
    if len(specs) < 2:
        raise errors.UsageError("usage: /compare MODEL MODEL [MODEL...] [PROMPT]")
    return specs, " ".join(words[rest:])


def run_compare(repl: Repl, specs: Sequence[ModelSpec], text: str) -> None:
    """The REPL's /compare: answers side by side; none joins history until /keep."""
    session = repl.session
    user = session.user_message(text)
    view = CompareView([s.name for s in specs], terminal=sys.stdout.isatty(), color=repl.color,
                       reasoning=session.think)
    try:
        outcomes = run_models(session.config, session.conversation.add(user), specs, view,
                              settings=session.settings, debug=session.debug)
    except KeyboardInterrupt:
        repl.say("\ninterrupted — compare stopped", "yellow")
        return
    session.hold_compare(user, [(o.message, o.cost) for o in outcomes])
    names = ", ".join(f"{i} ({o.spec.name})" for i, o in enumerate(outcomes, 1) if o.message.text)
    if names:
        repl.say(f"/keep N puts one answer into the conversation: {names}", "dim")
