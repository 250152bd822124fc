"""`modelswitch ask`: one prompt (plus piped stdin) in, one streamed answer out."""

from __future__ import annotations

import json
import sys
from contextlib import suppress
from dataclasses import dataclass
from typing import TextIO

from .. import errors
from ..config.load import Config
from ..config.pricing import message_cost
from ..conversation import Conversation, Message
from ..engine.answer import Answer
from ..engine.choice import choose_for_session, load_config, warn
from ..events import Notice, ReasoningDelta, TextDelta, finish_status
from ..vocab import ASK_REASONING_VIEWS

STDIN_WARN_BYTES = 1_000_000
REASONING_MODES = ASK_REASONING_VIEWS


@dataclass(frozen=True)
class AskOptions:
    prompt: str
    model: str | None = None
    system: str | None = None
    reasoning: str | None = None
    json: bool = False
    jsonl: bool = False
    fallback: bool = True
    cont: bool = False
    session: str | None = None
    config_path: str | None = None
    color: bool = True
    debug: bool = False


def read_stdin(stream: TextIO | None = None) -> str:
    """Piped stdin as text; nothing when stdin is a terminal. Binary input is refused, not sent."""
    stream = stream or sys.stdin
    if stream is None or stream.isatty():
        return ""
    raw = stream.buffer.read() if hasattr(stream, "buffer") else stream.read().encode("utf-8")
    if b"\x00" in raw:
        raise errors.UsageError("stdin looks binary (it contains NUL bytes); pipe text instead")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise errors.UsageError(
            f"stdin is not UTF-8 text (bad byte at offset {exc.start}); convert it first, e.g. with iconv"
        ) from None
    if len(raw) > STDIN_WARN_BYTES:
        warn(f"warning: stdin is {len(raw) / 1e6:.1f} MB (about {len(raw) // 4:,} tokens); "
             "the model may reject or truncate it")
    return text


def join_prompt(stdin_text: str, prompt: str) -> str:
    stdin_text = stdin_text.rstrip("\n")
    if stdin_text and prompt:
        return f"{stdin_text}\n\n{prompt}"
    return stdin_text or prompt


def run_ask(opts: AskOptions) -> int:
    if opts.json and opts.jsonl:
        raise errors.UsageError("choose one of --json and --jsonl")
    if opts.reasoning is not None and opts.reasoning not in REASONING_MODES:
        raise errors.UsageError(f"--reasoning must be one of {', '.join(REASONING_MODES)}, not '{opts.reasoning}'")
    config = load_config(opts.config_path)
    text = join_prompt(read_stdin(), opts.prompt.strip())
    if not text.strip():
        raise errors.UsageError('nothing to ask: give a prompt (modelswitch ask "…") or pipe text in')

    from ..store.chatlog import ChatLog

    log = ChatLog.open_for(opts.session, opts.cont, model=opts.model, system=opts.system)
    spec = choose_for_session(config, opts.model, log.resumed_model if log else None)
    if log:
        log.set_model(spec.name)
    conversation = log.conversation if log else Conversation(opts.system)
    if opts.system and log:
        conversation = conversation.with_system(opts.system)
        log.set_system(opts.system)
    user = Message(role="user", text=text)
    conversation = conversation.add(user)

    answer = Answer(config, conversation, spec, fallback=opts.fallback, debug=opts.debug)
    try:
        if opts.json:
            return _as_json(config, answer)
        if opts.jsonl:
            return _as_jsonl(config, answer)
        return _as_text(config, answer, opts)
    finally:
        # Also on Ctrl-C: the partial answer is kept, marked interrupted.
        if log:
            log.record(user, answer.message, message_cost(config, answer.message))
            if answer.losers:  # hedged routes cancelled: paid for, on record as alternates
                log.record_spent([(m, message_cost(config, m)) for m in answer.losers])


def _as_text(config: Config, answer: Answer, opts: AskOptions) -> int:
    from ..ui.render import draw, make_renderer, print_error

    terminal = sys.stdout.isatty()
    mode = opts.reasoning or ("collapse" if terminal else "hide")
    renderer = make_renderer(terminal=terminal, reasoning=mode, color=opts.color)
    try:
        renderer.begin(answer.model.name)  # inside: it hides the cursor, abort shows it again
        draw(renderer, answer)
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM, SIGHUP alike; run_ask saves the partial answer
        answer.close()
        with suppress(OSError):  # SIGHUP: the terminal may be gone, and saving comes first
            renderer.abort()
        raise
    except errors.ProviderError as exc:
        renderer.abort()  # the partial answer stays on screen; the error goes below it
        print_error(exc.message)
        return exc.exit_code
    message = answer.message
    renderer.end(message, message_cost(config, message))
    return 0


def result_object(config: Config, answer: Answer) -> dict:
    """The `--json` object of DESIGN.md for a finished (or failed) answer."""
    m = answer.message
    cost = message_cost(config, m)
    usage = m.usage
    return {
        "model": m.model.full_id if m.model else None,
        "alias": m.model.alias if m.model else None,
        "content": m.text,
        "reasoning": m.reasoning,
        "usage": None if usage is None else {
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "reasoning_tokens": usage.reasoning_tokens,
            "cached_tokens": usage.cached_tokens,
        },
        "cost": None if cost is None else {"amount": cost.amount, "currency": cost.currency},
        "timing": {
            "ttft_s": _round(m.timing.ttft_s if m.timing else None),
            "total_s": _round(m.timing.total_s if m.timing else None),
            "tokens_per_s": _round(m.timing.tokens_per_s if m.timing else None, 1),
        },
        "finish_reason": m.finish_reason,
        "fallback_from": m.fallback_from,
        # "complete", or which kind of incomplete: interrupted, error, or an abnormal finish
        # (length, content_filter, refusal, tool_calls, paused, cut) of an answer that did end.
        "status": finish_status(m.finish_reason) if m.status == "complete" else m.status,
        "error": m.error,
        # A model with routes: which provider/model-id answered, and the hedged ones cancelled.
        "route": m.route,
        "cancelled_routes": [
            {"route": x.model.full_id if x.model else None, "status": x.status, "error": x.error,
             "output_tokens": x.usage.output_tokens if x.usage else None}
            for x in answer.losers
        ],
    }


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _as_json(config: Config, answer: Answer) -> int:
    code = 0
    try:
        for event in answer:
            if isinstance(event, Notice):
                warn(event.text)
    except KeyboardInterrupt:
        answer.close()
        raise
    except errors.ProviderError as exc:
        warn(f"error: {exc.message}")
        code = exc.exit_code
    sys.stdout.write(json.dumps(result_object(config, answer), ensure_ascii=False) + "\n")
    return code


def _as_jsonl(config: Config, answer: Answer) -> int:
    out = sys.stdout
    emit = lambda obj: (out.write(json.dumps(obj, ensure_ascii=False) + "\n"), out.flush())  # noqa: E731
    try:
        for event in answer:
            if isinstance(event, TextDelta):
                emit({"type": "text", "text": event.text})
            elif isinstance(event, ReasoningDelta):
                emit({"type": "reasoning", "text": event.text})
            elif isinstance(event, Notice):
                emit({"type": "notice", "text": event.text})
    except KeyboardInterrupt:
        answer.close()
        raise
    except errors.ProviderError as exc:
        result = result_object(config, answer)
        if result["usage"]:
            emit({"type": "usage", **result["usage"]})
        emit({"type": "error", "message": exc.message})
        return exc.exit_code
    result = result_object(config, answer)
    if result["usage"]:
        emit({"type": "usage", **result["usage"]})
    emit({"type": "done", **{k: result[k] for k in ("model", "finish_reason", "status", "timing", "cost", "fallback_from")}})
    return 0
