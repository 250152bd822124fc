"""`modelswitch ask`: one prompt (plus piped stdin) in, one streamed answer out."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from .. import errors
from ..config.load import Config, ModelSpec
from ..config.pricing import message_cost
from ..conversation import Attachment, Conversation, Message
from ..engine.answer import Answer, Settings
from ..engine.attach import check_images, load
from ..engine.catalog import can_search, mcp_search_tool, no_search_line
from ..engine.choice import choose_for_session, load_config, warn
from ..engine.context import Meter
from ..engine.tools import ToolAnswer
from ..events import (
    Citation, Notice, ReasoningDelta, SearchQuery, TextDelta, ToolActivity, ToolCall, finish_status,
)
from ..redaction import redact, redact_json
from ..store.records import citation_dict
from ..vocab import ASK_REASONING_VIEWS

if TYPE_CHECKING:
    from ..engine.mcpclient import McpToolbox

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
    search: bool | None = None  # --search / --no-search; None: the model's own `search` setting
    files: tuple[str, ...] = ()  # -f/--file: paths, directories, URLs, `!command`s
    run_commands: bool = False  # --run: a `!command` in --file may run (there is no one to ask)
    tools: bool = False  # -T/--tools: offer the configured MCP servers' tools
    yes: bool = False  # --yes: run every call; otherwise only the tools listed in `trust`


def read_stdin(stream: TextIO | None = None) -> str:
    """Piped stdin as text; nothing when stdin is a terminal. Binary input is refused, not sent."""
    stream = stream or sys.stdin
    if stream is None or stream.isatty():
        return ""
    raw = stream.buffer.read() if hasattr(stream, "buffer") else stream.read().encode("utf-8")
    if b"\x00" in raw:
        raise errors.UsageError("stdin looks binary (it contains NUL bytes); pipe text instead")
    try:
        text = raw.decode("utf-8-sig")  # a BOM is encoding, not text for the model
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


def load_files(sources: tuple[str, ...], run_commands: bool) -> tuple[Attachment, ...]:
    """`-f` sources as attachments; a `!command` runs only with --run (a pipe cannot be asked)."""

    def allowed(command: str) -> bool:
        if not run_commands:
            raise errors.UsageError(f"-f '!{command}' runs a command: add --run to allow it")
        return True

    out = []
    for source in sources:
        a = load(source, confirm=allowed)
        if a.kind == "directory":
            warn(f"attached {a.summary}")
        out.append(a)
    return tuple(out)


def run_ask(opts: AskOptions) -> int:
    if opts.json and opts.jsonl:
        raise errors.UsageError("choose one of --json and --jsonl")
    if opts.reasoning is not None and opts.reasoning not in REASONING_MODES:
        raise errors.UsageError(f"--reasoning must be one of {', '.join(REASONING_MODES)}, not '{opts.reasoning}'")
    if opts.yes and not opts.tools:
        warn("--yes only matters with -T/--tools")  # said, not refused: the answer still comes
    config = load_config(opts.config_path)
    text = join_prompt(read_stdin(), opts.prompt.strip())
    attachments = load_files(opts.files, opts.run_commands)
    if not text.strip() and attachments:
        text = "(see the attachments)"
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
    user = Message(role="user", text=text, attachments=attachments)
    check_images(config, user.images, spec)
    conversation = conversation.add(user)
    fit = Meter().learn(conversation).fit(conversation, spec)
    if not fit.ok:
        raise errors.ContextWindowError(
            f"{fit.refusal()}; nothing was sent (use a model with a larger window, -m NAME, or /compact the"
            " session in chat)")

    if opts.search and not can_search(config, spec):
        warn(no_search_line(config, spec))  # one line; the question is still answered, unsearched
        found = mcp_search_tool(config)
        if found is not None and not opts.tools:
            server, tool = found
            warn(f"the MCP tool {server}.{tool} can search instead: ask --search -T --yes, or list "
                 f"\"{tool}\" in [mcp.{server}] trust and pass -T")
    toolbox = None
    answer: Answer | ToolAnswer
    if opts.tools:
        toolbox, answer = _tool_answer(config, conversation, spec, opts)
    else:
        answer = Answer(config, conversation, spec, settings=Settings(search=opts.search),
                        fallback=opts.fallback, debug=opts.debug)
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
            losers = answer.losers  # hedged routes cancelled: paid for, on record
            if losers:
                log.record_spent([(m, message_cost(config, m)) for m in losers])
        if toolbox is not None:
            toolbox.close()


def _tool_answer(config: Config, conversation: Conversation, spec: ModelSpec,
                 opts: AskOptions) -> tuple[McpToolbox, ToolAnswer]:
    """`ask --tools`: nobody is there to ask, so a call runs only with --yes or when its tool is
    in its server's `trust` list; a call that does not is told to the model as not approved (and
    to the user on stderr). Piped input is the prompt, never an approval."""
    from ..engine.tools import ToolLimits

    toolbox = cli_toolbox(config)
    limits = ToolLimits(config.tools.max_rounds, config.tools.timeout, config.tools.max_result_chars)
    approve = unattended(opts.yes, tell=opts.json or opts.jsonl)
    answer = ToolAnswer(config, conversation, spec, toolbox, approve, limits=limits,
                        settings=Settings(search=opts.search), fallback=opts.fallback, debug=opts.debug)
    return toolbox, answer


def cli_toolbox(config: Config) -> McpToolbox:
    """`--tools`: the configured MCP servers (started when first needed), or why there are none."""
    if not config.mcp:
        raise errors.UsageError("--tools: no MCP servers are configured; add an [mcp.NAME] table to the config")
    from ..engine.mcpclient import McpToolbox

    return McpToolbox(config.mcp, config.tools, warn=warn, config_path=str(config.path))


def unattended(yes: bool, who: str = "", tell: bool = False) -> Callable[[ToolCall, str], bool | None]:
    """The approval of a command line: `--yes` runs a call; without it nobody can approve one
    (None). The call's tool line says so and how to allow it; only when no tool line is drawn
    (`tell`: --json) is that line said on stderr here (`who` names the model of a compare)."""
    from ..ui.base import tool_line

    tag = f"[{who}] " if who else ""

    def approve(call: ToolCall, server: str) -> bool | None:
        if not yes and tell:
            warn(tag + tool_line(ToolActivity(call, server, "unapproved")))
        return True if yes else None

    return approve


def _as_text(config: Config, answer: Answer | ToolAnswer, opts: AskOptions) -> int:
    from ..ui.render import draw, make_renderer, print_error, stopped_after

    terminal = sys.stdout.isatty()
    mode = opts.reasoning or ("collapse" if terminal else "hide")
    if mode == "show" and not terminal:
        # Asked for, but a piped stdout carries the answer only: stderr is where it can be shown.
        mode = "stderr"
    # Any other error (a fallback's failing api_key_cmd, a bug) is told by the caller: the live
    # region is stopped and the terminal given back before that.
    with stopped_after(make_renderer(terminal=terminal, reasoning=mode, color=opts.color)) as renderer:
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


def result_object(config: Config, answer: Answer | ToolAnswer) -> dict:
    """The `--json` object of DESIGN.md for a finished (or failed) answer."""
    m = answer.message
    cost = message_cost(config, m)
    usage = m.usage
    return {
        "model": m.model.full_id if m.model else None,
        "alias": m.model.alias if m.model else None,
        "content": m.text,
        # Every round's reasoning, not only the last: the thinking that led to each tool call too.
        "reasoning": "\n\n".join(r for r in (*(rnd.reasoning for rnd in m.rounds), m.reasoning) if r),
        "usage": None if usage is None else {
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "reasoning_tokens": usage.reasoning_tokens,
            "cached_tokens": usage.cached_tokens,
            # reasoning_tokens is modelswitch's estimate from the reasoning text (the provider gave none)
            "reasoning_tokens_estimated": usage.reasoning_estimated,
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
        # The answer's sources, in the order of its [n] markers; [] when it did not search.
        "citations": [citation_dict(c) for c in m.citations],
        "tool_calls": tool_calls(m),
        # A model with routes: which provider/model-id answered, and the hedged ones cancelled.
        "route": m.route,
        "cancelled_routes": [
            {"route": x.model.full_id if x.model else None, "status": x.status, "error": x.error,
             "output_tokens": x.usage.output_tokens if x.usage else None}
            for x in answer.losers
        ],
    }


def tool_calls(m: Message) -> list[dict]:
    """Every call of the answer with what came of it, in order: for `--json` and scripts."""
    out: list[dict] = []
    for rnd in m.rounds:
        for call, result in zip(rnd.calls, rnd.results):
            # A key the model wrote into a call or a tool printed is masked here as in the answer
            # (the tool and the model had it as it was).
            try:
                arguments: object = redact_json(json.loads(call.arguments))
            except ValueError:
                arguments = redact(call.arguments)
            out.append({
                "id": call.id, "name": redact(call.name), "server": redact(result.server) or None,
                "arguments": arguments, "result": redact(result.content), "is_error": result.is_error,
                "approved": result.approved,
                "duration_s": _round(result.duration_s),
            })
    return out


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _as_json(config: Config, answer: Answer | ToolAnswer) -> int:
    code = 0
    try:
        for event in answer:
            if isinstance(event, Notice):
                warn(event.text)
    except KeyboardInterrupt:
        # A script still gets its one object (status "interrupted", the partial text kept)
        # before the 130/143 exit; with nothing on stdout it could not tell what arrived.
        answer.close()
        _write_line(json.dumps(result_object(config, answer), ensure_ascii=False))
        raise
    except errors.ProviderError as exc:
        warn(f"error: {exc.message}")
        code = exc.exit_code
    sys.stdout.write(json.dumps(result_object(config, answer), ensure_ascii=False) + "\n")
    return code


def _write_line(line: str) -> None:
    with suppress(OSError):  # the reader may be gone (SIGPIPE/SIGHUP); saving comes first
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def _as_jsonl(config: Config, answer: Answer | ToolAnswer) -> int:
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
            elif isinstance(event, SearchQuery):
                emit({"type": "search", "query": redact(event.query)})
            elif isinstance(event, Citation):
                emit({"type": "citation", **citation_dict(event)})
            elif isinstance(event, ToolActivity):
                emit({"type": "tool", "id": event.call.id, "name": redact(event.call.name),
                      "server": redact(event.server), "state": event.state, "detail": redact(event.detail)})
    except KeyboardInterrupt:
        # The stream ends with an error event like any other cut, so a reader never waits for
        # a `done` that will not come; then the 130/143 exit.
        answer.close()
        result = result_object(config, answer)
        with suppress(OSError):  # the reader may be gone too (SIGPIPE/SIGHUP); saving comes first
            if result["usage"]:
                emit({"type": "usage", **result["usage"]})
            emit({"type": "error", "status": "interrupted", "message": "interrupted"})
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
