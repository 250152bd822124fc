"""One answer from one model: retries before the first token, fallback, timing, and the turn it makes.

`Answer` is iterated for events (content, plus Notices about retries and fallback); whatever
happens — completion, a provider error, Ctrl-C — `Answer.message` afterwards is the assistant turn
to keep, with its partial text and an honest status.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, replace

from .. import errors
from .context import Meter, estimate_text
from ..config import keys as secrets
from ..config.load import Config, ModelSpec
from ..conversation import Conversation, Message, ModelRef, Status, Timing, ToolSpec
from ..events import Citation, Done, Event, Notice, ReasoningDelta, ReplayState, TextDelta, ToolCall, Usage
from ..providers import get_protocol
from ..providers.base import RESUME, Target
from ..redaction import StreamMask
from .catalog import no_tools_line, offered_tools, search_vendor, takes_tools

BACKOFF_BASE = 1.0
BACKOFF_CAP = 30.0
# After a hedge is decided, how long the cancelled routes get to notice and close their streams,
# so what each had received (text, a usage count) is on record before the answer is saved.
HEDGE_LINGER_S = 1.0
RECENT_DAYS = 7  # "fastest": time to first token over the saved answers of the last week
# How many times one answer is resumed after the provider ran its own tool (Kimi's searches).
MAX_RESUMES = 5


@dataclass(frozen=True, slots=True)
class Settings:
    """Per-chat overrides of a model's settings (`/set`); None keeps the model's own."""

    temperature: float | None = None
    max_tokens: int | None = None
    reasoning: bool | str | int | None = None
    search: bool | None = None  # `/search on|off`, `ask --search`; None keeps the model's `search`


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
        key_hint=secrets.auth_hint(provider),
        # Only where a mechanism is known: elsewhere the request is sent as it always was.
        search=search_vendor(config, spec) if pick(settings.search, spec.search) else "",
        reasoning_passback=pick(spec.reasoning_passback, provider.reasoning_passback),
        thinking_toggle=pick(spec.thinking_toggle, provider.thinking_toggle),
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
        tools: tuple[ToolSpec, ...] = (),
        told: set[str] | None = None,
    ) -> None:
        self.config = config
        self.tools = tools  # offered to the model; its calls are in `calls` afterwards
        # Models already told (by name) to take no tools: a chat says that line once per model.
        self.told = told if told is not None else set()
        self.calls: list[ToolCall] = []
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
        # A key the model echoes is masked here, so every screen, pipe and file gets it masked alike.
        self._text_mask = StreamMask()
        self._reasoning_mask = StreamMask()
        self._replay: list[ReplayState] = []
        self._citations: dict[str, Citation] = {}  # by URL, in first-cited order (the [n] numbers)
        self._usage: Usage | None = None
        self._banked: Usage | None = None  # the usage of the requests before a resume
        self._usage_bad = False
        self._finish: str | None = None
        self._server_tps: float | None = None
        self._status: Status = "interrupted"
        self._t0 = time.monotonic()
        self._t_first: float | None = None
        self._t_end: float | None = None
        self._iter: Generator[Event, None, None] | None = None
        self._winner: Answer | None = None  # hedge: the route whose answer this is
        # Hedge: the routes that lost the race, cancelled; each was paid for whatever it used.
        self._losers: tuple[Message, ...] = ()
        # A model given up after its provider ran a search round (Kimi's, then a 503): billed apart.
        self._abandoned: list[Message] = []

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
        routes = self._routes()
        if self.spec.strategy == "hedge" and len(routes) > 1:
            yield from self._hedge(routes)
            return
        chain = list(routes)
        if self.use_fallback:
            for name in self.spec.fallback:
                try:
                    chain.append(self.config.resolve(name))
                except errors.UsageError:
                    continue  # validated at load time; a vanished alias is simply skipped
        last_error: errors.ModelSwitchError | None = None
        tried = self.spec  # the last model actually asked (a fallback over its window is not)
        for i, spec in enumerate(chain):
            if i > 0:
                # The caller checked the first model's window; a fallback's may be smaller, and a
                # request over it would only come back as the provider's 400.
                fit = Meter().learn(self.conversation).fit(self.conversation, spec, self.settings.max_tokens)
                if not fit.ok:
                    yield Notice(f"fallback {spec.name} skipped: {fit.refusal()}")
                    continue
                assert last_error is not None
                yield Notice(
                    f"{self._label(tried)} unavailable ({short_reason(last_error)}) — trying {self._label(spec)}"
                )
                tried = spec
                if i >= len(routes):  # another model; another route is the same model
                    self._fallback_from = self._fallback_from or self.spec.name
            self._ref = model_ref(self.config, spec)  # "fastest" may put another route first
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
                if i + 1 < len(chain):
                    self._abandon(spec, exc)
        # An empty answer is an error even when reasoning streamed: there is nothing to resend.
        empty = isinstance(last_error, errors.NoAnswerError)
        self._status = "interrupted" if self._started and not empty else "error"
        self._t_end = self._t_end or time.monotonic()
        self.error = last_error
        assert last_error is not None
        raise last_error

    def _label(self, spec: ModelSpec) -> str:
        """A route of this model is told apart by where it runs; another model by its name."""
        return spec.full_id if self.spec.routes and spec.alias == self.spec.alias else spec.name

    def _routes(self) -> list[ModelSpec]:
        """The model itself, then each of its routes: the same model at other providers, with this
        model's alias and settings and the route's own price and retries. "fastest" orders them by
        recent time to first token; routes never measured keep their place after those that were."""
        spec = self.spec
        if not spec.routes:
            return [spec]
        chain = [spec]
        for name in spec.routes:
            try:
                r = self.config.resolve(name)
            except errors.UsageError:
                continue  # validated at load time
            # A route whose key is not set is left out, not tried: its "no key" would otherwise
            # be the error shown instead of the real one (DeepSeek busy) when all else fails.
            usable = secrets.key_available(self.config.provider(r.provider))
            if usable and r.full_id not in (c.full_id for c in chain):
                # What the wire demands or takes (reasoning_passback, thinking_toggle) is the serving
                # provider's, not the model's.
                chain.append(replace(spec, provider=r.provider, id=r.id, price=r.price, retries=r.retries,
                                     fallback=(), routes=(), reasoning_passback=r.reasoning_passback,
                                     thinking_toggle=r.thinking_toggle))
        if spec.strategy == "fastest":
            ttft = recent_ttft()
            known = sorted((c for c in chain if c.full_id in ttft), key=lambda c: ttft[c.full_id])
            chain = known + [c for c in chain if c.full_id not in ttft]
        return chain

    def _hedge(self, routes: list[ModelSpec]) -> Generator[Event, None, None]:
        """Ask the first route; each time hedge_after seconds pass without a first token (or a
        route fails), ask the next one too. The first route to send a token answers; the others
        are cancelled at once and kept in `losers` with whatever usage they reported."""
        q: queue.Queue = queue.Queue()
        lanes: list[tuple[Answer, threading.Event, threading.Thread]] = []
        early: dict[int, list[Event]] = {}  # events before a lane's first token (usage, notices)
        failures: dict[int, errors.ModelSwitchError] = {}
        finished: set[int] = set()
        winner: int | None = None

        def launch() -> float:
            i = len(lanes)
            lane = Answer(self.config, self.conversation, replace(routes[i], routes=(), fallback=()),
                          settings=self.settings, fallback=False,
                          sleep=self.sleep, debug=self.debug, tools=self.tools)
            stop = threading.Event()
            thread = threading.Thread(target=_race, args=(i, lane, q, stop), daemon=True)
            lanes.append((lane, stop, thread))
            early[i] = []
            thread.start()
            return time.monotonic() + self.spec.hedge_after

        next_at = launch()
        try:
            while winner is None or winner not in finished:
                spare = winner is None and len(lanes) < len(routes)
                if not spare and len(finished) == len(lanes):
                    break  # every route failed
                try:
                    i, item = q.get(timeout=max(0.0, next_at - time.monotonic()) if spare else 0.1)
                except queue.Empty:
                    if spare and time.monotonic() >= next_at:
                        yield Notice(f"no first token from {self._label(routes[len(lanes) - 1])} in "
                                     f"{self.spec.hedge_after:g} s — also asking {self._label(routes[len(lanes)])}")
                        next_at = launch()
                    continue
                if item is _DONE:
                    finished.add(i)
                    if winner is None and i in failures and len(lanes) < len(routes):
                        # A failed route hedges at once: waiting out hedge_after gains nothing.
                        yield Notice(f"{self._label(routes[i])} unavailable ({short_reason(failures[i])})"
                                     f" — asking {self._label(routes[len(lanes)])}")
                        next_at = launch()
                elif isinstance(item, errors.ModelSwitchError):
                    failures[i] = item
                elif i == winner:
                    yield item
                elif winner is None and isinstance(item, (TextDelta, ReasoningDelta)):
                    winner = i
                    for j, (_, stop, _) in enumerate(lanes):
                        if j != i:
                            stop.set()
                    self._winner = lanes[i][0]
                    self._ref = model_ref(self.config, routes[i])
                    yield from early.pop(i)
                    yield item
                elif winner is None:
                    early[i].append(item)
        finally:
            for _, stop, _ in lanes:
                stop.set()
            deadline = time.monotonic() + HEDGE_LINGER_S
            for j, (_, _, thread) in enumerate(lanes):
                if j != winner:
                    thread.join(timeout=max(0.0, deadline - time.monotonic()))
            # The last failure is this answer's own when none won; a lane's own paid-for rounds stay.
            own = len(lanes) - 1 if winner is None else winner
            self._losers = tuple(m for j, (lane, _, _) in enumerate(lanes) if j != winner
                                 for m in ((lane.message,) if j != own else ()) + lane.losers)
            self._t_end = self._t_end or time.monotonic()
        if winner is None:
            last = failures[max(failures)] if failures else errors.StreamError(f"{self.spec.name}: no route answered")
            self._status = "error"
            self.error = last
            raise last
        if winner in failures:  # the stream broke after its first token: as any answer's would
            self.error = failures[winner]
            raise failures[winner]

    def _attempts(self, spec: ModelSpec) -> Iterator[Event]:
        from ..providers.transport import stream

        provider = self.config.provider(spec.provider)
        said: list[str] = []
        # Decided per model, so a fallback or route to a model without tools drops them too.
        tools = offered_tools(spec, self.tools)
        target = replace(target_for(self.config, spec, self.settings, announce=said.append), tools=tools)
        for text in said:  # a server (re)start is news for the user: an event, not a print
            yield Notice(text)
        if self.tools and not tools and spec.name not in self.told:
            self.told.add(spec.name)
            yield Notice(no_tools_line(spec))
        protocol = get_protocol(provider.type)
        conversation = self.conversation
        if not takes_tools(spec):  # earlier tool rounds as text: its API takes no tool messages
            conversation = conversation.without_tool_rounds()
        if conversation.has_images:
            # An image part a model cannot take (no vision, or over its API's size limit, as after
            # a switch or a fallback) would be a 400: a placeholder naming it goes instead, said.
            limit = None if not spec.vision else getattr(protocol, "max_image_bytes", None)
            before = sum(len(m.images) for m in conversation.for_request())
            conversation = conversation.without_images(spec.id, limit) if not spec.vision or limit else conversation
            n = before - sum(len(m.images) for m in conversation.for_request())
            if n:
                why = "does not take images" if not spec.vision else "takes smaller images"
                yield Notice(f"{spec.name} {why}: {n} image{'s' if n != 1 else ''} sent as a placeholder")
        retries = spec.retries if spec.retries is not None else provider.retries
        gaps: set[type] = set()  # the channels whose next text starts a paragraph (after a search)
        for resumes in range(MAX_RESUMES + 1):
            for attempt in range(retries + 1):
                # The clock is not reset per attempt: the user's wait includes the retries (and any
                # fallback), and so does `--json` timing.
                self._citations.clear()  # no text was shown yet: sources of a failed attempt do not count
                try:
                    for event in stream(
                        protocol, target, conversation,
                        connect_timeout=provider.connect_timeout, read_timeout=provider.read_timeout,
                        debug=self.debug,
                    ):
                        event = self._masked(event)
                        if type(event) in gaps and isinstance(event, (TextDelta, ReasoningDelta)) and event.text:
                            gaps.discard(type(event))
                            yield from self._paragraph(event)
                        self._take(event)
                        if not isinstance(event, (TextDelta, ReasoningDelta)) or event.text:
                            yield event
                    yield from self._release()
                    self._t_end = time.monotonic()
                    if self._finish == RESUME and resumes < MAX_RESUMES:
                        break  # the provider ran its own tool: the same request again, with its round
                    if self._finish == RESUME:
                        yield Notice(f"stopped: {spec.name} was still searching after {MAX_RESUMES} rounds")
                    if not "".join(self._text).strip() and not self.calls:
                        raise errors.NoAnswerError(
                            f"{spec.name} returned no answer text", provider=spec.provider, model=spec.id
                        )
                    self._status = "complete"
                    return
                except errors.ProviderError as exc:
                    # Never retry once tokens were shown: the user would see the answer twice.
                    if self._started or not exc.retryable or attempt == retries:
                        yield from self._release()  # the partial answer, to its last character
                        raise
                    wait = backoff(attempt, exc.retry_after)
                    yield Notice(
                        f"{spec.provider} {short_reason(exc)}, retrying in {wait:.0f} s… {attempt + 1}/{retries}"
                    )
                    self.sleep(wait)
            # Each request is billed: the next one's usage is added to what this one used.
            self._usage_bad = self._usage_bad or self._usage is None
            self._banked = None if self._usage_bad or self._usage is None else (
                self._usage if self._banked is None else self._banked + self._usage)
            self._usage = None
            gaps = {TextDelta, ReasoningDelta}
            target = replace(target, resume=tuple(r for r in self._replay if r.model == spec.id))

    def _abandon(self, spec: ModelSpec, exc: errors.ModelSwitchError) -> None:
        """The next model takes over: the requests this one was billed for before a resume (its
        search round) are on record apart, at its own price, and nothing of its round goes on."""
        if self._banked is not None or self._usage_bad:
            self._abandoned.append(self._rounds_record("error", timing=Timing(total_s=time.monotonic() - self._t0),
                                                       error=exc.message))
        self._banked, self._usage, self._usage_bad = None, None, False
        self._replay = [r for r in self._replay if r.model != spec.id]

    @property
    def losers(self) -> tuple[Message, ...]:
        """Paid for but not this answer: hedged routes cancelled, a model given up after its
        search round, and the finished rounds of a resumed answer whose last request reported no
        usage (Ctrl-C): those are known, the rest is not, so the answer's own usage stays unknown
        and every total counts these rounds as a lower bound (`N+ tokens`)."""
        won = self._winner.losers if self._winner is not None else ()
        return self._losers + tuple(self._abandoned) + won + self._unfinished()

    def _unfinished(self) -> tuple[Message, ...]:
        if self._winner is not None or self._banked is None or self._usage is not None:
            return ()
        return (self._rounds_record(self._status, finish_reason=RESUME),)

    def _rounds_record(self, status: Status, *, timing: Timing | None = None, error: str | None = None,
                       finish_reason: str | None = None) -> Message:
        """The requests billed before a resume (`_banked`), as a paid-for record of their own."""
        return Message(role="assistant", text="", model=self._ref, status=status, usage=self._banked,
                       timing=timing, error=error, finish_reason=finish_reason, route=self._route)

    @property
    def _route(self) -> str | None:
        """Which route served it, for a model with routes (stats group by it); None otherwise."""
        return self._ref.full_id if self.spec.routes else None

    def _paragraph(self, event: TextDelta | ReasoningDelta) -> Iterator[Event]:
        """A blank line before the first text (or reasoning) of a resumed request when its
        channel has some already: two requests' texts never glue into one word ("search.Pelicans"),
        as the tool loop's rounds are paragraphs of their own."""
        kind = type(event)
        so_far = "".join(self._text if kind is TextDelta else self._reasoning)
        if so_far.strip() and not so_far.endswith("\n\n") and not event.text.startswith("\n"):
            gap = kind("\n" if so_far.endswith("\n") else "\n\n")
            self._take(gap)
            yield gap

    def _masked(self, event: Event) -> Event:
        if isinstance(event, TextDelta):
            return TextDelta(self._text_mask.feed(event.text))
        if isinstance(event, ReasoningDelta):
            return ReasoningDelta(self._reasoning_mask.feed(event.text))
        return event

    def _release(self) -> Iterator[Event]:
        """The tails held back in case a key began there: the stream ended, so they are what they are."""
        for event in (ReasoningDelta(self._reasoning_mask.flush()), TextDelta(self._text_mask.flush())):
            if event.text:
                self._take(event)
                yield event

    def _take(self, event: Event) -> None:
        if isinstance(event, TextDelta):
            if self._t_first is None:
                self._t_first = time.monotonic()
            if event.text:
                self._text.append(event.text)
        elif isinstance(event, ReasoningDelta):
            if self._t_first is None:
                self._t_first = time.monotonic()
            if event.text:
                self._reasoning.append(event.text)
        elif isinstance(event, Usage):
            # One absurd count makes the stream's usage unknown, not a wrong definite cost;
            # a later report in the same stream cannot make it trustworthy again.
            self._usage_bad = self._usage_bad or event.unknown
            self._usage = None if self._usage_bad else event
        elif isinstance(event, ReplayState):
            self._replay.append(event)
        elif isinstance(event, Citation):
            self._citations.setdefault(event.url, event)
        elif isinstance(event, ToolCall):
            if self._t_first is None:
                self._t_first = time.monotonic()
            self.calls.append(event)
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
        if self._winner is not None:
            # The winning route's answer, timed from when this answer was asked (hedge delay in).
            won = self._winner.message
            first = self._winner._t_first
            timing = replace(won.timing or Timing(), ttft_s=None if first is None else first - self._t0,
                             total_s=(self._t_end or time.monotonic()) - self._t0)
            return replace(won, model=self._ref, timing=timing, route=self._ref.full_id)
        end = self._t_end or time.monotonic()
        ttft = (self._t_first - self._t0) if self._t_first is not None else None
        total = end - self._t0
        tps = self._server_tps  # the server's own measure beats ours (no network in it)
        if tps is None and self._usage and self._usage.output_tokens and ttft is not None and total - ttft > 0.01:
            tps = self._usage.output_tokens / (total - ttft)
        usage = self._usage
        if self._banked is not None:  # else: the earlier rounds are in `losers` (see there)
            usage = None if usage is None else self._banked + usage
        if usage is not None and not usage.reasoning_tokens and any(r.strip() for r in self._reasoning):
            # Anthropic, Ollama and llama.cpp stream reasoning but do not count it apart: estimate
            # it from its text (chunks are not tokens), marked so a screen can say `~`.
            guess = estimate_text("".join(self._reasoning))
            usage = replace(usage, reasoning_tokens=min(guess, usage.output_tokens or guess), reasoning_estimated=True)
        return Message(
            role="assistant",
            text="".join(self._text) + self._text_mask.pending(),  # pending: cut off (Ctrl-C) mid-hold
            reasoning="".join(self._reasoning) + self._reasoning_mask.pending(),
            model=self._ref,
            status=self._status,
            replay=tuple(self._replay),
            usage=usage,
            timing=Timing(ttft_s=ttft, total_s=total, tokens_per_s=tps),
            finish_reason=self._finish,
            fallback_from=self._fallback_from,
            error=self.error.message if self.error else None,
            citations=tuple(self._citations.values()),
            route=self._route,
        )


_DONE = object()


def _race(i: int, lane: Answer, q: queue.Queue, stop: threading.Event) -> None:
    """One hedged route, in its own thread: its events to `q` until it ends or is cancelled."""
    it = iter(lane)
    try:
        for event in it:
            if stop.is_set():
                break
            q.put((i, event))
    except errors.ModelSwitchError as exc:
        q.put((i, exc))
    except Exception as exc:  # a bug in one route must not take the answer down
        q.put((i, errors.StreamError(f"{lane.spec.full_id}: {type(exc).__name__}: {exc}")))
    finally:
        it.close()  # closes the HTTP stream: a cancelled route stops generating (and billing)
        q.put((i, _DONE))


def recent_ttft(days: int = RECENT_DAYS) -> dict[str, float]:
    """Median time to first token per provider/model-id over the saved answers of the last days;
    empty when the session database cannot be read (then the listed order stands)."""
    from ..store.db import Store

    return {h.model: h.ttft_median for h in Store.recent_health(days) if h.ttft_median is not None}


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
