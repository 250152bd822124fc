"""Head to head: the same history and prompt to several models at once, each in its own thread.

Threads are the simplest way to run several blocking httpx streams concurrently on the one sync
code path; the main thread owns the screen and takes events from a queue. Ctrl-C sets a stop
flag; each worker closes its own stream (a generator can only be closed by the thread running it).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from .. import errors
from .answer import Answer, Settings
from ..config.load import Config, ModelSpec
from ..conversation import Conversation, Message
from ..events import Event, Notice, ReasoningDelta, TextDelta
from ..interrupts import deferred
from ..config.pricing import Cost, message_cost


class CompareView(Protocol):
    """Where run_models sends each model's stream (ui.compare.CompareView draws it): the engine
    hands over events and outcomes and draws nothing itself."""

    def text(self, i: int, text: str) -> None: ...

    def reasoning(self, i: int, text: str) -> None: ...

    def notice(self, i: int, text: str) -> None: ...

    def finish(self, i: int, message: Message, cost: Cost | None, error: str | None) -> None: ...

    def abort(self) -> None: ...

    def close(self) -> None: ...


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
    debug: bool = False,
) -> tuple[list[Outcome], KeyboardInterrupt | None]:
    """Stream every model's answer to `conversation` concurrently into `view`.

    Ctrl-C (or SIGTERM, SIGHUP) stops all and is returned, not raised: answers that finished are
    complete, the others interrupted, and all of them were paid for, so the caller keeps them.
    """
    answers = [Answer(config, conversation, s, settings=settings, fallback=False, debug=debug) for s in specs]
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
