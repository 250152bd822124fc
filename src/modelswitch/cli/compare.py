"""`modelswitch compare -m A -m B PROMPT`: the engine's run_models drawn as columns, sections or JSON."""

from __future__ import annotations

import json
import sys

from .. import errors
from ..conversation import Conversation, Message
from ..engine.choice import ensure_usable, load_config
from ..engine.compare import run_models
from ..ui.compare import CompareView
from .ask import join_prompt, read_stdin, result_object


def run_compare_cli(config_path: str | None, models: list[str], prompt: str, *, system: str | None,
                    json_out: bool, color: bool, debug: bool = False) -> int:
    """`modelswitch compare -m A -m B PROMPT`: columns in a terminal, sections or JSON in a pipe."""
    if len(models) < 2:
        raise errors.UsageError("compare needs at least two models: -m A -m B")
    config = load_config(config_path)
    specs = [config.resolve(m) for m in models]
    for spec in specs:
        ensure_usable(config, spec)
    text = join_prompt(read_stdin(), prompt.strip())
    if not text.strip():
        raise errors.UsageError("nothing to compare: give a prompt or pipe text in")
    conversation = Conversation(system).add(Message(role="user", text=text))
    terminal = sys.stdout.isatty() and not json_out
    view = CompareView([s.name for s in specs], terminal=terminal, color=color, quiet=json_out)
    outcomes, interrupt = run_models(config, conversation, specs, view, debug=debug)
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
