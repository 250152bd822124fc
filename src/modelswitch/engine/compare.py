"""Head to head: the same history and prompt to several models at once, each in its own thread.

Threads are the simplest way to run several blocking httpx streams concurrently on the one sync
code path; the main thread owns the screen and takes events from a queue. Ctrl-C sets a stop
flag; each worker closes its own stream (a generator can only be closed by the thread running it).

With tools, every lane runs the same tool loop as a normal answer (tools.ToolAnswer). A lane's
call waits for the main thread to approve it: the main thread owns the terminal, so questions
come one at a time, and Ctrl-C while one is asked stops the comparison like any other Ctrl-C.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from .. import errors
from .answer import Answer, Settings
from ..config.load import Config, ModelSpec
from ..conversation import Conversation, Message
from ..events import Citation, Event, Notice, ReasoningDelta, SearchQuery, TextDelta, ToolActivity, ToolCall
from ..interrupts import deferred
from ..config.pricing import Cost, message_cost
from .tools import ToolAnswer, Toolbox, ToolLimits


class CompareView(Protocol):
    """Where run_models sends each model's stream (ui.compare.CompareView draws it): the engine
    hands over events and outcomes and draws nothing itself."""

    def start(self) -> None:
        """Begin drawing; close() always follows."""

    def text(self, i: int, text: str) -> None: ...

    def reasoning(self, i: int, text: str) -> None: ...

    def notice(self, i: int, text: str) -> None: ...

    def tool(self, i: int, event: ToolActivity) -> None: ...

    def citation(self, i: int, citation: Citation) -> None: ...

    def search(self, i: int, query: str) -> None: ...

    def finish(self, i: int, message: Message, cost: Cost | None, error: str | None) -> None: ...

    def abort(self) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """One model's result in a comparison."""

    spec: ModelSpec
    answer: Answer | ToolAnswer
    message: Message
    cost: Cost | None
    error: str | None


# (lane, call, server) -> True to run it, False: the user said no, None: no one could be asked.
# Called on the main thread, one call at a time.
LaneApprove = Callable[[int, ToolCall, str], "bool | None"]


def _decline(i: int, call: ToolCall, server: str) -> bool | None:
    return None


@dataclass(frozen=True, slots=True)
class _Ask:
    """A lane's tool call waiting for the main thread's verdict."""

    call: ToolCall
    server: str
    reply: queue.Queue


_FINISHED = object()


class _Stopped(KeyboardInterrupt):
    """Raised in a lane whose approval the comparison's Ctrl-C cut short: the tool loop keeps the
    round with its calls answered as cancelled (the user interrupted, not declined)."""


def _ask(q: queue.Queue, stop: threading.Event, i: int, call: ToolCall, server: str) -> bool | None:
    """In a lane's thread: hand the question to the main thread and wait; a stopped comparison
    runs nothing more."""
    reply: queue.Queue = queue.Queue(maxsize=1)
    q.put((i, _Ask(call, server, reply)))
    while not stop.is_set():
        try:
            verdict: bool | None = reply.get(timeout=0.1)  # None: no one could be asked
            return verdict
        except queue.Empty:
            continue
    raise _Stopped


def _work(i: int, answer: Answer | ToolAnswer, q: queue.Queue, stop: threading.Event) -> None:
    it = iter(answer)
    try:
        for event in it:
            q.put((i, event))
            if stop.is_set():
                break
    except errors.ModelSwitchError as exc:
        q.put((i, exc))
    except _Stopped:
        pass  # the answer kept its cancelled round; the comparison's Ctrl-C is the main thread's
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
    toolbox: Toolbox | None = None,
    approve: LaneApprove = _decline,
    told: set[str] | None = None,
) -> tuple[list[Outcome], KeyboardInterrupt | None]:
    """Stream every model's answer to `conversation` concurrently into `view`.

    Ctrl-C (or SIGTERM, SIGHUP) stops all and is returned, not raised: answers that finished are
    complete, the others interrupted, and all of them were paid for, so the caller keeps them.
    With a `toolbox`, each lane runs the tool loop of a normal answer; `approve` decides each call
    the toolbox does not trust, on this thread, one at a time. `told`: see Answer.told.
    """
    q: queue.Queue = queue.Queue()
    stop = threading.Event()
    limits = ToolLimits(config.tools.max_rounds, config.tools.timeout, config.tools.max_result_chars)
    if toolbox is not None:
        # Servers start when first asked for their tools: here, before the view is drawn, so a
        # server that fails to start is told above the live columns, not across them, and Ctrl-C
        # while one starts (it may take seconds) leaves no live view behind.
        toolbox.specs()
    answers: list[Answer | ToolAnswer] = [
        Answer(config, conversation, s, settings=settings, fallback=False, debug=debug) if toolbox is None else
        ToolAnswer(config, conversation, s, toolbox, partial(_ask, q, stop, i), limits=limits,
                   settings=settings, fallback=False, debug=debug, told=told)
        for i, s in enumerate(specs)
    ]
    failures: dict[int, str] = {}
    threads = [
        threading.Thread(target=_work, args=(i, a, q, stop), daemon=True) for i, a in enumerate(answers)
    ]
    running = len(threads)
    shown: set[int] = set()  # lanes the view has shown finished
    interrupt: KeyboardInterrupt | None = None
    try:
        view.start()
        for t in threads:
            t.start()
        while running:
            try:
                i, item = q.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is _FINISHED:
                running -= 1
                shown.add(i)
                view.finish(i, answers[i].message, message_cost(config, answers[i].message), failures.get(i))
            elif isinstance(item, errors.ModelSwitchError):
                failures[i] = item.message
            elif isinstance(item, _Ask):
                item.reply.put(approve(i, item.call, item.server))
            else:
                _show(view, i, item)
    except KeyboardInterrupt as exc:
        interrupt = exc
        with deferred():  # a second Ctrl-C must not lose the answers that finished
            stop.set()
            if toolbox is not None:
                toolbox.cancel()  # a lane's running call ends now, answered as cancelled
            for t in threads:
                if t.ident is not None:  # started
                    t.join(timeout=0.5)
            _drain(q, view, failures)
            for i, a in enumerate(answers):
                # A lane whose answer ended (its last event not yet shown) is shown finished; one
                # the Ctrl-C cut with text kept shows "interrupted" in its footer, as /keep and the
                # store have it, not as an error.
                if i not in shown and (a.message.status != "error" or i in failures):
                    view.finish(i, a.message, message_cost(config, a.message), failures.get(i))
            view.abort()
    finally:
        stop.set()  # whatever ended the loop, no lane waits for an approval any more
        view.close()
    outcomes = [
        Outcome(s, a, a.message, message_cost(config, a.message), failures.get(i))
        for i, (s, a) in enumerate(zip(specs, answers))
    ]
    return outcomes, interrupt


def _drain(q: queue.Queue, view: CompareView, failures: dict[int, str]) -> None:
    """After Ctrl-C, what the lanes sent that the main thread had not shown (it was asking a
    question, say), and their failures; the caller then shows every lane's end as it is."""
    while True:
        try:
            i, item = q.get_nowait()
        except queue.Empty:
            return
        if isinstance(item, errors.ModelSwitchError):
            failures[i] = item.message
        elif item is not _FINISHED and not isinstance(item, _Ask):  # no lane waits for an answer now
            _show(view, i, item)


def _show(view: CompareView, i: int, event: Event) -> None:
    if isinstance(event, TextDelta):
        view.text(i, event.text)
    elif isinstance(event, ReasoningDelta):
        view.reasoning(i, event.text)
    elif isinstance(event, Notice):
        view.notice(i, event.text)
    elif isinstance(event, ToolActivity):
        view.tool(i, event)
    elif isinstance(event, Citation):
        view.citation(i, event)
    elif isinstance(event, SearchQuery):
        view.search(i, event.query)
