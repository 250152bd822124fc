"""One answer from one model: retries before the first token, fallback, timing, and the turn it makes.

`Answer` is iterated for events (content, plus Notices about retries and fallback); whatever
happens — completion, a provider error, Ctrl-C — `Answer.message` afterwards is the assistant turn
to keep, with its partial text and an honest status.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, replace

from .. import errors
from ..config import keys as secrets
from ..config.load import Config, ModelSpec
from ..conversation import Conversation, Message, ModelRef, Status, Timing
from ..events import Done, Event, Notice, ReasoningDelta, ReplayState, TextDelta, Usage
from ..providers import get_protocol
from ..providers.base import Target

BACKOFF_BASE = 1.0
BACKOFF_CAP = 30.0


@dataclass(frozen=True, slots=True)
class Settings:
    """Per-chat overrides of a model's settings (`/set`); None keeps the model's own."""

    temperature: float | None = None
    max_tokens: int | None = None
    reasoning: bool | str | int | None = None


def model_ref(config: Config, spec: ModelSpec) -> ModelRef:
    return ModelRef(
        provider=spec.provider, id=spec.id, protocol=config.provider(spec.provider).type, alias=spec.alias
    )


def target_for(config: Config, spec: ModelSpec, settings: Settings = Settings(),
               announce: Callable[[str], None] | None = None) -> Target:
    """Resolve the key and merge settings: everything a protocol needs for one request. A managed
    local server that stopped since the model was chosen is started again, told to `announce`."""
    provider = config.provider(spec.provider)
    if provider.managed:
        from ..local import server as local

        # The config was read before the server (re)started: the live port is in local's state.
        provider = replace(provider, base_url=local.ensure_running(announce=announce).base_url)
    key = secrets.resolve_key(provider)
    pick = lambda mine, model: model if mine is None else mine  # noqa: E731
    return Target(
        provider=provider.name,
        base_url=provider.base_url,
        model_id=spec.id,
        api_key=key,
        headers=provider.headers,
        temperature=pick(settings.temperature, spec.temperature),
        max_tokens=pick(settings.max_tokens, spec.max_tokens),
        reasoning=pick(settings.reasoning, spec.reasoning),
        key_hint=secrets.key_source(provider) if provider.needs_key else "",
    )


class Answer:
    """Iterate for events; afterwards `message` is the turn, `error` what went wrong (if anything)."""

    def __init__(
        self,
        config: Config,
        conversation: Conversation,
        spec: ModelSpec,
        *,
        settings: Settings = Settings(),
        fallback: bool = True,
        sleep: Callable[[float], None] = time.sleep,
        debug: bool = False,
    ) -> None:
        self.config = config
        self.conversation = conversation
        self.spec = spec
        self.settings = settings
        self.use_fallback = fallback
        self.sleep = sleep
        self.debug = debug  # `--debug`: the transport logs each request
        self.error: errors.ModelSwitchError | None = None
        self._ref = model_ref(config, spec)
        self._fallback_from: str | None = None
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._replay: list[ReplayState] = []
        self._usage: Usage | None = None
        self._finish: str | None = None
        self._server_tps: float | None = None
        self._status: Status = "interrupted"
        self._t0 = time.monotonic()
        self._t_first: float | None = None
        self._t_end: float | None = None
        self._iter: Generator[Event, None, None] | None = None

    # -- iteration -------------------------------------------------------------------------
    def __iter__(self) -> Generator[Event, None, None]:
        self._iter = self._run()
        return self._iter

    def close(self) -> None:
        """Stop now (Ctrl-C): closes the HTTP stream and keeps what arrived as interrupted."""
        if self._iter is not None:
            self._iter.close()
        if self._t_end is None:
            self._t_end = time.monotonic()

    def _run(self) -> Generator[Event, None, None]:
        self._t0 = time.monotonic()  # from the first request, not from when the Answer was made
        chain = [self.spec]
        if self.use_fallback:
            for name in self.spec.fallback:
                try:
                    chain.append(self.config.resolve(name))
                except errors.UsageError:
                    continue  # validated at load time; a vanished alias is simply skipped
        last_error: errors.ModelSwitchError | None = None
        for i, spec in enumerate(chain):
            if i > 0:
                assert last_error is not None
                yield Notice(
                    f"{chain[i - 1].name} unavailable ({short_reason(last_error)}) — trying {spec.name}"
                )
                self._fallback_from = self._fallback_from or self.spec.name
                self._ref = model_ref(self.config, spec)
            try:
                yield from self._attempts(spec)
                return
            except errors.ConfigError as exc:
                last_error = exc  # e.g. the fallback's key is not set: try the next one
            except errors.ProviderError as exc:
                last_error = exc
                # A rejected request (400) is about what was sent, not about the model being
                # down: another model would hide the real cause, so it is reported as it is.
                # So is an empty answer: the model answered, with nothing.
                if self._started or isinstance(exc, (errors.BadRequestError, errors.NoAnswerError)):
                    break
        # An empty answer is an error even when reasoning streamed: there is nothing to resend.
        empty = isinstance(last_error, errors.NoAnswerError)
        self._status = "interrupted" if self._started and not empty else "error"
        self._t_end = self._t_end or time.monotonic()
        self.error = last_error
        assert last_error is not None
        raise last_error

    def _attempts(self, spec: ModelSpec) -> Iterator[Event]:
        from ..providers.transport import stream

        provider = self.config.provider(spec.provider)
        said: list[str] = []
        target = target_for(self.config, spec, self.settings, announce=said.append)
        for text in said:  # a server (re)start is news for the user: an event, not a print
            yield Notice(text)
        protocol = get_protocol(provider.type)
        retries = spec.retries if spec.retries is not None else provider.retries
        for attempt in range(retries + 1):
            # The clock is not reset per attempt: the user's wait includes the retries (and any
            # fallback), and so does `--json` timing.
            try:
                for event in stream(
                    protocol, target, self.conversation,
                    connect_timeout=provider.connect_timeout, read_timeout=provider.read_timeout,
                    debug=self.debug,
                ):
                    self._take(event)
                    yield event
                self._t_end = time.monotonic()
                if not "".join(self._text).strip():
                    raise errors.NoAnswerError(
                        f"{spec.name} returned no answer text", provider=spec.provider, model=spec.id
                    )
                self._status = "complete"
                return
            except errors.ProviderError as exc:
                # Never retry once tokens were shown: the user would see the answer twice.
                if self._started or not exc.retryable or attempt == retries:
                    raise
                wait = backoff(attempt, exc.retry_after)
                yield Notice(
                    f"{spec.provider} {short_reason(exc)}, retrying in {wait:.0f} s… {attempt + 1}/{retries}"
                )
                self.sleep(wait)

    def _take(self, event: Event) -> None:
        if isinstance(event, TextDelta):
            if self._t_first is None:
                self._t_first = time.monotonic()
            self._text.append(event.text)
        elif isinstance(event, ReasoningDelta):
            if self._t_first is None:
                self._t_first = time.monotonic()
            self._reasoning.append(event.text)
        elif isinstance(event, Usage):
            self._usage = event
        elif isinstance(event, ReplayState):
            self._replay.append(event)
        elif isinstance(event, Done):
            self._finish = event.finish_reason
            self._server_tps = event.tokens_per_s

    @property
    def _started(self) -> bool:
        return self._t_first is not None

    # -- the result ------------------------------------------------------------------------
    @property
    def model(self) -> ModelRef:
        """The model answering now (changes when a fallback takes over)."""
        return self._ref

    @property
    def message(self) -> Message:
        end = self._t_end or time.monotonic()
        ttft = (self._t_first - self._t0) if self._t_first is not None else None
        total = end - self._t0
        tps = self._server_tps  # the server's own measure beats ours (no network in it)
        if tps is None and self._usage and self._usage.output_tokens and ttft is not None and total - ttft > 0.01:
            tps = self._usage.output_tokens / (total - ttft)
        usage = self._usage
        if usage is not None and not usage.reasoning_tokens and any(r.strip() for r in self._reasoning):
            # Anthropic, Ollama and llama.cpp stream reasoning but do not count it apart: count its
            # chunks, as the footer's "Thought for … · N tokens" does, so /cost and --json agree.
            usage = replace(usage, reasoning_tokens=min(len(self._reasoning), usage.output_tokens or len(self._reasoning)))
        return Message(
            role="assistant",
            text="".join(self._text),
            reasoning="".join(self._reasoning),
            model=self._ref,
            status=self._status,
            replay=tuple(self._replay),
            usage=usage,
            timing=Timing(ttft_s=ttft, total_s=total, tokens_per_s=tps),
            finish_reason=self._finish,
            fallback_from=self._fallback_from,
            error=self.error.message if self.error else None,
        )


def backoff(attempt: int, retry_after: float | None) -> float:
    """Exponential backoff with jitter; the server's Retry-After wins when it gives one."""
    if retry_after is not None:
        return retry_after
    return min(BACKOFF_CAP, BACKOFF_BASE * (2**attempt)) * random.uniform(0.75, 1.25)


def short_reason(exc: errors.ModelSwitchError) -> str:
    """"503 server busy"-style words for notices."""
    from ..providers.transport import STATUS_WORDS

    status = getattr(exc, "status", None)
    if status:
        return f"{status} {STATUS_WORDS.get(status, 'error')}"
    if isinstance(exc, errors.ConfigError):
        return exc.message.split(": ", 1)[-1]
    text = exc.message.split(": ", 1)[-1]
    if len(text) < 60:
        return text
    return _SHORT.get(type(exc), "failed")


_SHORT: dict[type, str] = {
    errors.ConnectError: "unreachable",
    errors.ProviderTimeoutError: "timed out",
    errors.StreamError: "stream broke",
    errors.OverloadedError: "overloaded",
    errors.RateLimitError: "rate limited",
}
