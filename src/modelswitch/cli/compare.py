"""`modelswitch compare -m A -m B PROMPT`: the engine's run_models drawn as columns, sections or JSON."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

from .. import errors
from ..conversation import Conversation, Message
from ..engine.answer import Settings
from ..engine.catalog import can_search, no_search_line
from ..engine.choice import ensure_usable, load_config, warn
from ..engine.compare import run_models
from ..ui.compare import CompareView
from ..events import ToolCall
from .ask import cli_toolbox, join_prompt, read_stdin, result_object, unattended

if TYPE_CHECKING:
    from ..store.db import Vote


def run_compare_cli(config_path: str | None, models: list[str], prompt: str, *, system: str | None,
                    json_out: bool, color: bool, debug: bool = False, tools: bool = False,
                    yes: bool = False, search: bool | None = None) -> int:
    """`modelswitch compare -m A -m B PROMPT`: columns in a terminal, sections or JSON in a pipe.
    With `tools` each model may call the MCP servers' tools, run as under `ask -T` (--yes, trust);
    `search` (None: each model's own setting) as under `ask --search`."""
    if len(models) < 2:
        raise errors.UsageError("compare needs at least two models: -m A -m B")
    config = load_config(config_path)
    specs = [config.resolve(m) for m in models]
    for spec in specs:
        ensure_usable(config, spec)
    text = join_prompt(read_stdin(), prompt.strip())
    if not text.strip():
        raise errors.UsageError("nothing to compare: give a prompt or pipe text in")
    if search:
        for spec in specs:
            if not can_search(config, spec):
                warn(no_search_line(config, spec))  # that lane answers unsearched
    conversation = Conversation(system).add(Message(role="user", text=text))
    toolbox = cli_toolbox(config) if tools else None
    terminal = sys.stdout.isatty() and not json_out
    view = CompareView([s.name for s in specs], terminal=terminal, color=color, quiet=json_out)
    # Each lane's tool line says a call was not run and how to allow it; --json draws no lanes.
    asks = [unattended(yes, s.name, tell=json_out) for s in specs]

    def approve(i: int, call: ToolCall, server: str) -> bool | None:
        return asks[i](call, server)

    try:
        outcomes, interrupt = run_models(config, conversation, specs, view, settings=Settings(search=search),
                                         debug=debug, toolbox=toolbox, approve=approve)
    finally:
        if toolbox is not None:
            toolbox.close()
    if interrupt is not None:
        raise interrupt
    if json_out:
        results = []
        for o in outcomes:
            obj = result_object(config, o.answer)
            obj["error"] = o.error
            results.append(obj)
        sys.stdout.write(json.dumps({"results": results}, ensure_ascii=False) + "\n")
    return 0 if any(o.error is None for o in outcomes) else 1


def run_arena_cli(config_path: str | None, models: list[str], prompt: str, *, system: str | None,
                  tag: str | None, json_out: bool, color: bool, debug: bool = False) -> int:
    """`modelswitch arena -m A -m B PROMPT`: blind numbered answers, then a vote read from the
    terminal (none when stdin is not one), then the names, speed and cost revealed."""
    from ..engine.session import blind
    from ..store.db import Store, Vote
    from ..ui.base import footer_text
    from ..ui.render import print_info
    from .sessions import _stdin_is_tty

    config = load_config(config_path)
    specs = [config.resolve(m) for m in models]
    for spec in specs:
        ensure_usable(config, spec)
    arena = blind(specs, tag)
    asked_tty = _stdin_is_tty()
    text = join_prompt(read_stdin(), prompt.strip())
    if not text.strip():
        raise errors.UsageError("nothing to ask: give a prompt or pipe text in")
    conversation = Conversation(system).add(Message(role="user", text=text))
    terminal = sys.stdout.isatty() and not json_out
    labels = [str(i) for i in range(1, len(specs) + 1)]
    view = CompareView(labels, terminal=terminal, color=color, quiet=json_out, blind=True)
    outcomes, interrupt = run_models(config, conversation, arena.lanes, view, debug=debug)
    if interrupt is not None:
        raise interrupt
    names = [s.name for s in arena.lanes]
    vote = None
    if asked_tty and not json_out and any(o.message.text for o in outcomes):
        vote = _ask_vote(names, [o.message.text for o in outcomes], tag)
        if vote is not None:
            with Store.open() as store:
                store.add_vote(vote)
    if json_out:
        results = []
        for i, o in enumerate(outcomes, 1):
            obj = result_object(config, o.answer)
            obj.update(lane=i, error=o.error)
            results.append(obj)
        sys.stdout.write(json.dumps({"results": results}, ensure_ascii=False) + "\n")
    else:
        out = sys.stdout if terminal else sys.stderr
        for i, o in enumerate(outcomes, 1):
            mark = "★ " if vote is not None and vote.winner == o.spec.name else "  "
            print_info(f"{mark}{i} was {footer_text(o.message, o.cost)}", out=out)
        if vote is None and not asked_tty:
            print_info("no vote (stdin is not a terminal); /arena in a chat records one", style="dim", out=sys.stderr)
    return 0 if any(o.error is None for o in outcomes) else 1


def _ask_vote(names: list[str], texts: list[str], tag: str | None) -> Vote | None:
    """Ask until the answer is a lane with text, tie, none, or empty (no vote)."""
    from ..store.db import Vote

    while True:
        sys.stderr.write(f"your vote (1-{len(names)}, tie, none; Enter: no vote): ")
        sys.stderr.flush()
        try:
            word = input().strip().lower()
        except EOFError:
            return None
        if not word:
            return None
        if word in ("tie", "none"):
            return Vote(tuple(names), word, None, tag)
        if word.isdigit() and 1 <= int(word) <= len(names) and texts[int(word) - 1]:
            return Vote(tuple(names), "win", names[int(word) - 1], tag)
        sys.stderr.write(f"not a choice: {word!r}\n")
