"""Head to head: the same history and prompt to several models at once, each in its own thread.

Threads are the simplest way to run several blocking httpx streams concurrently on the one sync
code path; the main thread owns the screen and takes events from a queue. Ctrl-C sets a stop
flag; each worker closes its own stream (a generator can only be closed by the thread running it),
and the answers so far are kept: they were paid for.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import commands, errors
from .answer import Answer, Settings
from .config import Config, ModelSpec
from .conversation import Conversation, Message
from .events import Event, Notice, ReasoningDelta, TextDelta
from .interrupts import Terminated, deferred
from .pricing import Cost, message_cost

if TYPE_CHECKING:
    from .render_compare import CompareView
    from .repl import Repl


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
) -> tuple[list[Outcome], KeyboardInterrupt | None]:
    """Stream every model's answer to `conversation` concurrently into `view`.

    Ctrl-C (or SIGTERM, SIGHUP) stops all and is returned, not raised: answers that finished are
    complete, the others interrupted, and all of them were paid for, so the caller keeps them.
    """
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
    interrupt: KeyboardInterrupt | None = None
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
    except KeyboardInterrupt as exc:
        interrupt = exc
        with deferred():  # a second Ctrl-C must not lose the answers that finished
            stop.set()
            for t in threads:
                t.join(timeout=0.5)
            view.abort()
    finally:
        view.close()
    outcomes = [
        Outcome(s, a, a.message, message_cost(config, a.message), failures.get(i))
        for i, (s, a) in enumerate(zip(specs, answers))
    ]
    return outcomes, interrupt


def _show(view: CompareView, i: int, event: Event) -> None:
    if isinstance(event, TextDelta):
        view.text(i, event.text)
    elif isinstance(event, ReasoningDelta):
        view.reasoning(i, event.text)
    elif isinstance(event, Notice):
        view.notice(i, event.text)


def parse_compare_args(repl: Repl, arg: str) -> tuple[list[ModelSpec], str]:
    """`/compare r1 hy [PROMPT]`: leading words that name models, then the prompt (if any).

    The prompt is the rest of the text exactly as typed (newlines, indentation, runs of spaces),
    as an ordinary message is sent; only the blanks separating it from the last model name go.
    """
    import re

    specs: list[ModelSpec] = []
    prompt = ""
    specs_end = 0
    for word in re.finditer(r"\S+", arg):
        try:
            specs.append(repl.session.resolve(word.group()))
        except errors.UsageError:
            if len(specs) < 2:
                raise
            prompt = commands.prompt_after(arg[specs_end:])
            break
        specs_end = word.end()
    if len(specs) < 2:
        raise errors.UsageError("usage: /compare MODEL MODEL [MODEL...] [PROMPT]")
    return specs, prompt


def run_compare(repl: Repl, specs: Sequence[ModelSpec], text: str) -> None:
    """The REPL's /compare: answers side by side; none joins history until /keep."""
    from .render_compare import CompareView

    session = repl.session
    user = session.user_message(text)
    view = CompareView([s.name for s in specs], terminal=sys.stdout.isatty(), color=repl.color,
                       reasoning=session.think)
    outcomes, interrupt = run_models(session.config, session.conversation.add(user), specs, view,
                                     settings=session.settings)
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


def run_compare_cli(config_path: str | None, models: list[str], prompt: str, *, system: str | None,
                    json_out: bool, color: bool) -> int:
    """`modelswitch compare -m A -m B PROMPT`: columns in a terminal, sections or JSON in a pipe."""
    from .oneshot import join_prompt, read_stdin, result_object
    from .render_compare import CompareView
    from .startup import ensure_usable, load_config

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
    outcomes, interrupt = run_models(config, conversation, specs, view)
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
