"""Head to head: the same history and prompt to several models at once, each in its own thread.

Threads are the simplest way to run several blocking httpx streams concurrently on the one sync
code path; the main thread owns the screen and takes events from a queue. Ctrl-C sets a stop
flag; each worker closes its own stream (a generator can only be closed by the thread running it).
"""

from __future__ import annotations

import json
import queue
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import errors
from .answer import Answer, Settings
from ..config.load import Config, ModelSpec
from ..conversation import Conversation, Message
from ..events import Event, Notice, ReasoningDelta, TextDelta
from ..config.pricing import Cost, message_cost

if TYPE_CHECKING:
    from ..ui.compare import CompareView
    from ..repl.commands import Repl


@dataclass(frozen=True, slots=True)
class Outcome:
    """One model's result in a comparison."""

    spec: ModelSpec
    answer: Answer
    message: Message
    cost: Cost | None
    error: str | None


_FINISHED = object()


def _work(i: int, answer: Answer, q: queue.Queue, stop: threading.Event) -> None:
    it = iter(answer)
    try:
        for event in it:
            q.put((i, event))
            if stop.is_set():
                break
    except errors.ModelSwitchError as exc:
        q.put((i, exc))
    except Exception as exc:  # a bug in one lane must not take the others down
        q.put((i, errors.StreamError(f"{answer.spec.name}: {type(exc).__name__}: {exc}")))
    finally:
        it.close()
        q.put((i, _FINISHED))


def run_models(
    config: Config,
    conversation: Conversation,
    specs: Sequence[ModelSpec],
    view: CompareView,
    *,
    settings: Settings = Settings(),
) -> list[Outcome]:
    """Stream every model's answer to `conversation` concurrently into `view`; Ctrl-C stops all."""
    answers = [Answer(config, conversation, s, settings=settings, fallback=False) for s in specs]
    q: queue.Queue = queue.Queue()
    stop = threading.Event()
    failures: dict[int, str] = {}
    threads = [
        threading.Thread(target=_work, args=(i, a, q, stop), daemon=True) for i, a in enumerate(answers)
    ]
    for t in threads:
        t.start()
    running = len(threads)
    try:
        while running:
            try:
                i, item = q.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is _FINISHED:
                running -= 1
                view.finish(i, answers[i].message, message_cost(config, answers[i].message), failures.get(i))
            elif isinstance(item, errors.ModelSwitchError):
                failures[i] = item.message
            else:
                _show(view, i, item)
    except KeyboardInterrupt:
        stop.set()
        for t in threads:
            t.join(timeout=0.5)
        view.abort()
        raise
    finally:
        view.close()
    return [
        Outcome(s, a, a.message, message_cost(config, a.message), failures.get(i))
        for i, (s, a) in enumerate(zip(specs, answers))
    ]


def _show(view: CompareView, i: int, event: Event) -> None:
    if isinstance(event, TextDelta):
        view.text(i, event.text)
    elif isinstance(event, ReasoningDelta):
        view.reasoning(i, event.text)
    elif isinstance(event, Notice):
        view.notice(i, event.text)


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
    from ..ui.compare import CompareView

    session = repl.session
    user = session.user_message(text)
    view = CompareView([s.name for s in specs], terminal=sys.stdout.isatty(), color=repl.color,
                       reasoning=session.think)
    try:
        outcomes = run_models(session.config, session.conversation.add(user), specs, view,
                              settings=session.settings)
    except KeyboardInterrupt:
        repl.say("\ninterrupted — compare stopped", "yellow")
        return
    session.hold_compare(user, [(o.message, o.cost) for o in outcomes])
    names = ", ".join(f"{i} ({o.spec.name})" for i, o in enumerate(outcomes, 1) if o.message.text)
    if names:
        repl.say(f"/keep N puts one answer into the conversation: {names}", "dim")


def run_compare_cli(config_path: str | None, models: list[str], prompt: str, *, system: str | None,
                    json_out: bool, color: bool) -> int:
    """`modelswitch compare -m A -m B PROMPT`: columns in a terminal, sections or JSON in a pipe."""
    from ..cli.ask import join_prompt, read_stdin, result_object
    from ..ui.compare import CompareView
    from .choice import ensure_usable, load_config

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
    outcomes = run_models(config, conversation, specs, view)
    if json_out:
        results = []
        for o in outcomes:
            obj = result_object(config, o.answer)
            obj["error"] = o.error
            results.append(obj)
        sys.stdout.write(json.dumps({"results": results}, ensure_ascii=False) + "\n")
    return 0 if any(o.error is None for o in outcomes) else 1
