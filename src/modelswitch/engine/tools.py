"""The tool loop: the model calls, the user approves, the tools run, the results go back, the model
goes on, up to `max_rounds` times. One user question still makes one assistant Message: the
rounds before its final text are in `Message.rounds`, provider-neutral, so any protocol can
replay them after a model switch.

The engine never prints or reads a key: approval is a callback handed in (the REPL asks y/n/a,
`ask` answers from `--yes` and `trust`), and tool activity is reported as `ToolActivity` events
beside the answer's own. `ToolAnswer` is iterated and closed like an `Answer`, so a front end
draws either the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Protocol

from .. import errors
from ..config.load import Config, ModelSpec
from ..conversation import (CALL_CANCELLED, CALL_DECLINED, CALL_NOT_STARTED, CALL_UNAPPROVED, Conversation, Message, ModelRef, Timing, ToolResult,
                            ToolRound, ToolSpec)
from ..events import Event, Notice, ToolActivity, ToolCall, Usage
from .answer import Answer, Settings, model_ref

DEFAULT_MAX_ROUNDS = 10
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_MAX_RESULT_CHARS = 20_000
CANCELLED = CALL_CANCELLED  # Ctrl-C while the call ran
NOT_STARTED = CALL_NOT_STARTED  # Ctrl-C before it ran: at its (or an earlier call's) approval question
DECLINED = CALL_DECLINED
UNAPPROVED = CALL_UNAPPROVED


class Toolbox(Protocol):
    """Where tools come from (the MCP servers): what is offered, who serves it, and running it."""

    def specs(self) -> tuple[ToolSpec, ...]:
        """The tools to offer now (enabled servers and tools only)."""
        ...

    def server_of(self, name: str) -> str | None:
        """The server that offers `name`, or None when nothing does (any more)."""
        ...

    def trusted(self, name: str) -> bool:
        """True when the configuration trusts this tool: it runs without asking."""
        ...

    def call(self, call: ToolCall, timeout: float) -> ToolResult:
        """Run one call. Failures, timeouts included, come back as an error result, never raised."""
        ...

    def cancel(self) -> None:
        """Stop every call in flight (Ctrl-C)."""
        ...


# (index in the round, call, server, approved: None when trusted without asking)
_Approved = tuple[int, ToolCall, str, "bool | None"]
# (call, server) -> True to run it, False when the user said no, None when no one could be asked.
# The REPL's callback asks the user; `ask`'s answers alone.
Approve = Callable[[ToolCall, str], "bool | None"]


@dataclass(frozen=True, slots=True)
class ToolLimits:
    max_rounds: int = DEFAULT_MAX_ROUNDS
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_result_chars: int = DEFAULT_MAX_RESULT_CHARS


def truncate(text: str, limit: int) -> str:
    """A result the model can take: past `limit` characters it is cut, and says so."""
    if limit <= 0 or len(text) <= limit:
        return text
    return text[:limit] + f"\n[truncated by modelswitch: {limit} of {len(text)} characters shown]"


class ToolAnswer:
    """An answer that may use tools. Iterate for events; afterwards `message` is the turn."""

    def __init__(
        self,
        config: Config,
        conversation: Conversation,
        spec: ModelSpec,
        toolbox: Toolbox,
        approve: Approve,
        *,
        limits: ToolLimits = ToolLimits(),
        settings: Settings = Settings(),
        fallback: bool = True,
        debug: bool = False,
        sleep: Callable[[float], None] = time.sleep,
        told: set[str] | None = None,
    ) -> None:
        self.config = config
        self.conversation = conversation
        self.spec = spec
        self.toolbox = toolbox
        self.told = told if told is not None else set()  # see Answer.told
        self.approve = approve
        self.limits = limits
        self.settings, self.fallback, self.debug, self.sleep = settings, fallback, debug, sleep
        self.rounds: list[ToolRound] = []
        self.error: errors.ModelSwitchError | None = None
        self._current: Answer | None = None
        self._losers: list[Message] = []  # hedged routes cancelled in any round: paid for too
        self._taken: Answer | None = None  # the last round whose usage and losers are counted
        self._usage: Usage | None = None
        self._generated = (0, 0.0)  # output tokens and seconds spent generating them, every round
        self._t0 = time.monotonic()
        self._iter: Generator[Event, None, None] | None = None

    def __iter__(self) -> Generator[Event, None, None]:
        self._iter = self._run()
        return self._iter

    def close(self) -> None:
        """Stop now (Ctrl-C): the model's stream or the running tools; what happened is kept."""
        self.toolbox.cancel()
        if self._current is not None:
            self._current.close()
        if self._iter is not None:
            self._iter.close()

    @property
    def model(self) -> ModelRef:
        """The model answering now (a fallback may have taken over)."""
        if self._current is not None:
            return self._current.model
        return model_ref(self.config, self.spec)

    def _run(self) -> Generator[Event, None, None]:
        for n in range(self.limits.max_rounds + 1):
            context = self.conversation
            if self.rounds:
                # The rounds so far ride on an assistant turn with no final text yet: every
                # protocol turns them into its own calls and results.
                context = context.add(Message("assistant", "", model=self.rounds[-1].model, rounds=tuple(self.rounds)))
            answer = Answer(self.config, context, self.spec, tools=self.toolbox.specs(), settings=self.settings,
                            fallback=self.fallback, debug=self.debug, sleep=self.sleep, told=self.told)
            self._current = answer
            try:
                yield from answer
            except errors.ModelSwitchError as exc:
                self.error = exc
                self._take_usage(answer)
                raise
            self._take_usage(answer)
            if not answer.calls:
                return
            message = answer.message
            if n == self.limits.max_rounds:
                # The model asked once more: its calls are answered, not run, so it can be told.
                results = tuple(
                    ToolResult(c.id, c.name, f"not run: the limit of {self.limits.max_rounds} tool rounds was reached",
                               is_error=True) for c in answer.calls
                )
                self._add_round(message, answer.calls, results)
                yield Notice(f"stopped: {self.limits.max_rounds} tool rounds reached (max_tool_rounds)")
                return
            results = yield from self._run_calls(message, answer.calls)
            self._add_round(message, answer.calls, results)

    def _add_round(self, message: Message, calls: list[ToolCall], results: tuple[ToolResult, ...]) -> None:
        self.rounds.append(ToolRound(message.text, message.reasoning, message.model, tuple(calls), results, message.replay))

    @property
    def losers(self) -> tuple[Message, ...]:
        """Every round's hedged routes that lost the race (see Answer.losers), the round cut
        short (Ctrl-C) included."""
        current = self._current
        return tuple(self._losers) + (current.losers if current is not None and current is not self._taken else ())

    def _take_usage(self, answer: Answer) -> None:
        self._taken = answer
        self._losers.extend(answer.losers)
        message = answer.message
        usage = message.usage
        if usage is not None:
            self._usage = usage if self._usage is None else self._usage + usage
        tps = message.timing.tokens_per_s if message.timing else None
        if usage is not None and usage.output_tokens and tps:
            # Each round's generation time from its own speed: the time tools ran is not in it.
            tokens, seconds = self._generated
            self._generated = (tokens + usage.output_tokens, seconds + usage.output_tokens / tps)

    def _run_calls(self, message: Message, calls: list[ToolCall]) -> Generator[Event, None, tuple[ToolResult, ...]]:
        """Ask about each call in order, run the approved ones at once, results in call order.
        Ctrl-C anywhere in here cancels what runs and keeps the round, every call answered."""
        decided: dict[int, ToolResult] = {}
        approved: list[_Approved] = []  # stays empty until every call was asked about: none ran before
        try:
            approved = yield from self._approve(calls, decided)
            if approved:
                pool = ThreadPoolExecutor(max_workers=len(approved), thread_name_prefix="tool")
                try:
                    yield from self._execute(pool, approved, decided)
                finally:
                    # Never wait here for a call that Ctrl-C abandoned: it is cancelled below.
                    pool.shutdown(wait=False, cancel_futures=True)
        except (KeyboardInterrupt, GeneratorExit):  # GeneratorExit: closed by its thread (a /compare lane)
            self.toolbox.cancel()
            self._cancelled(message, calls, decided, {a[0] for a in approved})
            raise
        return tuple(decided[i] for i in range(len(calls)))

    def _approve(self, calls: list[ToolCall], decided: dict[int, ToolResult]) -> Generator[Event, None, list[_Approved]]:
        approved: list[_Approved] = []
        for i, call in enumerate(calls):
            server = self.toolbox.server_of(call.name)
            if server is None:
                decided[i] = ToolResult(call.id, call.name, f"error: there is no tool named {call.name!r}", is_error=True)
                yield ToolActivity(call, "", "failed", "no such tool")
            elif self.toolbox.trusted(call.name):
                approved.append((i, call, server, None))
            elif (verdict := self.approve(call, server)):
                approved.append((i, call, server, True))
            else:
                decided[i] = ToolResult(call.id, call.name, DECLINED if verdict is False else UNAPPROVED,
                                        is_error=True, server=server, approved=False)
                yield ToolActivity(call, server, "refused" if verdict is False else "unapproved")
        return approved

    def _execute(self, pool: ThreadPoolExecutor, approved: list[_Approved],
                 decided: dict[int, ToolResult]) -> Generator[Event, None, None]:
        started = time.monotonic()
        futures = [(a, pool.submit(self.toolbox.call, a[1], self.limits.timeout_s)) for a in approved]
        for (_, call, server, _), _f in futures:
            yield ToolActivity(call, server, "running")
        for (i, call, server, ok), future in futures:
            result = future.result()
            took = time.monotonic() - started
            content = truncate(result.content, self.limits.max_result_chars)
            decided[i] = replace(result, content=content, server=server, approved=ok, duration_s=took)
            if result.content == CALL_CANCELLED:  # Ctrl-C: in the words /history and exports use
                yield ToolActivity(call, server, "cancelled", "while running")
                continue
            state = "failed" if result.is_error else "done"
            yield ToolActivity(call, server, state, f"{took:.1f} s · {len(result.content)} chars")

    def _cancelled(self, message: Message, calls: list[ToolCall], decided: dict[int, ToolResult],
                   started: set[int]) -> None:
        """Ctrl-C in the middle of a round: the round is kept with every call answered (those
        not run say so), so the conversation stays valid and the model sees what happened."""
        results = tuple(
            decided.get(i) or ToolResult(c.id, c.name, CANCELLED if i in started else NOT_STARTED, is_error=True,
                                         server=self.toolbox.server_of(c.name) or "")
            for i, c in enumerate(calls)
        )
        self._add_round(message, calls, results)
        self._current = None

    @property
    def message(self) -> Message:
        """The turn: the final answer's text and reasoning, the rounds before it, usage summed."""
        if self._current is not None:
            last = self._current.message
        elif self.rounds:
            last = Message("assistant", "", model=self.rounds[-1].model, status="interrupted")
        else:
            last = Message("assistant", "", status="error", error=self.error.message if self.error else None)
        if not self.rounds:
            return last
        status = last.status
        if status == "error":
            status = "interrupted"  # the tools ran: the turn must stay in the context
        if self._current is not None and self._current.calls and self.rounds[-1].calls == tuple(self._current.calls):
            # The last answer's calls are already a round (stopped at the limit): its text and
            # reasoning went there, they are not the final answer too.
            last = replace(last, text="", reasoning="", replay=())
        tokens, seconds = self._generated
        timing = Timing(ttft_s=last.timing.ttft_s if last.timing else None, total_s=time.monotonic() - self._t0,
                        tokens_per_s=tokens / seconds if seconds > 0 else None)
        return replace(last, status=status, rounds=tuple(self.rounds), usage=self._usage, timing=timing)
