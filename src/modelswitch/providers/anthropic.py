"""Anthropic Messages API: `POST {base_url}/v1/messages` with `stream: true`.

Request: `system` is top-level; turns alternate user/assistant (consecutive same-role turns are
merged); `max_tokens` is always sent. Extended thinking is `thinking: {type: enabled,
budget_tokens: N}` with 1024 <= N < max_tokens, and then `temperature` must be left out. A
max_tokens the user set (config or `/set`) is sent as it is: the budget shrinks to fit, or thinking
is left off, and the user is told by a Notice that opens the answer's events. The Notice comes from
parse_stream, which gets the same Target: build_request only builds, and every caller (chat,
ask, compare) already shows a stream's Notices where it shows the answer.

Response: SSE events message_start, content_block_start/delta/stop (text, thinking,
redacted_thinking), ping anywhere, message_delta (stop_reason, cumulative usage), message_stop,
and `event: error` mid-stream. A thinking block's signature is what lets the same model see its
own thinking again: each finished block becomes a ReplayState and is sent back, unchanged and
ahead of the text, only to the same protocol and model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ..conversation import Conversation, ToolRound
from ..errors import OverloadedError, ProviderError, StreamError
from ..events import Done, Event, Notice, ReasoningDelta, ReplayState, SearchQuery, TextDelta, ToolCall, Usage
from .sse import iter_sse, loads_event
from .base import HttpRequest, Sources, Target, arguments_text, call_arguments, error_text, tool_parameters

NAME = "anthropic"
API_VERSION = "2023-06-01"
MIN_THINKING_BUDGET = 1024
# Budgets for effort words; True means "think" without saying how much.
EFFORT_BUDGETS: dict[str, int] = {"low": 2048, "medium": 8192, "high": 16384}
DEFAULT_THINKING_BUDGET = EFFORT_BUDGETS["medium"]
# The web search server tool (Anthropic runs the searches; we only read the blocks it streams).
WEB_SEARCH_TOOL = {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}
_SEARCH_BLOCKS = ("server_tool_use", "web_search_tool_result")
# The Claude 3 (not 3.5/3.7) family cannot emit more than 4096 tokens; asking for more is a 400.
_SMALL_OUTPUT = re.compile(r"claude-3-(haiku|sonnet|opus)")

_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def default_max_tokens(model_id: str) -> int:
    """Room for an answer when the model's config sets no max_tokens."""
    return 4096 if _SMALL_OUTPUT.search(model_id) else 8192


def thinking_budget(reasoning: bool | str | int | None) -> int | None:
    """budget_tokens for a `reasoning` setting, or None for no thinking."""
    if reasoning is None or reasoning is False:
        return None
    if reasoning is True:
        return DEFAULT_THINKING_BUDGET
    if isinstance(reasoning, str):
        return EFFORT_BUDGETS.get(reasoning, DEFAULT_THINKING_BUDGET)
    if reasoning <= 0:
        return None
    return max(MIN_THINKING_BUDGET, reasoning)


@dataclass(frozen=True, slots=True)
class ThinkingPlan:
    """What one request asks for: max_tokens, the thinking budget (None: no thinking), and why
    the budget differs from the one configured, if it does."""

    max_tokens: int
    budget: int | None
    note: str = ""


def thinking_plan(target: Target) -> ThinkingPlan:
    """max_tokens and budget_tokens that the API accepts (1024 <= budget < max_tokens).

    A max_tokens the user set is a cap, honoured as it is: the budget shrinks to fit inside it
    (half of it, leaving the answer the other half), or thinking is left off when even the
    API's minimum budget cannot fit. Without one, max_tokens grows to hold the budget.
    """
    wanted = thinking_budget(target.reasoning)
    cap = target.max_tokens
    if cap is None:
        base = default_max_tokens(target.model_id)
        if wanted is not None and base <= wanted:
            # The budget is carved out of max_tokens; leave the answer its usual room on top.
            return ThinkingPlan(wanted + base, wanted)
        return ThinkingPlan(base, wanted)
    if wanted is None or wanted < cap:
        return ThinkingPlan(cap, wanted)
    if cap <= MIN_THINKING_BUDGET:
        return ThinkingPlan(cap, None, (
            f"thinking off for this answer: max_tokens {cap} leaves no room for Claude's smallest "
            f"thinking budget ({MIN_THINKING_BUDGET}); raise max_tokens above {MIN_THINKING_BUDGET} to think"
        ))
    budget = max(MIN_THINKING_BUDGET, cap // 2)
    return ThinkingPlan(cap, budget, (
        f"thinking budget cut from {wanted} to {budget} tokens to fit max_tokens {cap}; "
        "raise max_tokens to think longer"
    ))


def max_tokens_for(target: Target) -> int:
    """max_tokens to send (see `thinking_plan`)."""
    return thinking_plan(target).max_tokens


class AnthropicProtocol:
    """The Messages API wire protocol."""

    name = NAME
    # Anthropic rejects an image whose base64 text is over 5 MB: 3.75 MB of image bytes.
    max_image_bytes = 5 * 1024 * 1024 * 3 // 4
    # A ping says the connection lives, not that the answer moves: a stream of nothing else
    # must still time out (the transport's keep-alive watchdog).
    keepalive_lines = frozenset({b"event: ping", b'data: {"type": "ping"}', b'data: {"type":"ping"}'})

    def build_request(self, target: Target, conversation: Conversation) -> HttpRequest:
        """The streaming request for this conversation, well-formed for this API."""
        plan = thinking_plan(target)
        body: dict = {
            "model": target.model_id,
            "max_tokens": plan.max_tokens,
            "messages": _messages(conversation, target.model_id, bool(target.search)),
            "stream": True,
        }
        if conversation.system and conversation.system.strip():
            body["system"] = conversation.system
        tools: list[dict] = [dict(WEB_SEARCH_TOOL)] if target.search else []
        tools += [
            {"name": t.name, "description": t.description, "input_schema": tool_parameters(t)} for t in target.tools
        ]
        # Every tool_use in the history must name a defined tool, also one turned off since
        # (a 400 otherwise, on every turn after): those are declared too, and said to be gone.
        # With none offered at all, tool_choice none forbids calling them.
        gone = [n for n in _tools_used(body["messages"]) if n not in {t["name"] for t in tools}]
        tools += [{"name": n, "description": "Not available any more: do not call it.",
                   "input_schema": {"type": "object"}} for n in gone]
        if gone and not target.tools:
            body["tool_choice"] = {"type": "none"}
        if tools:
            body["tools"] = tools
        if plan.budget is not None:
            body["thinking"] = {"type": "enabled", "budget_tokens": plan.budget}
        elif target.temperature is not None:
            # With thinking on, any temperature but 1 is rejected: leave it out then. Claude's
            # scale stops at 1 where others' go to 2, so a shared config value is capped.
            body["temperature"] = min(target.temperature, 1.0)
        headers = {"anthropic-version": API_VERSION, "content-type": "application/json"}
        if target.api_key:
            headers["x-api-key"] = target.api_key
        headers.update(dict(target.headers))
        return HttpRequest("POST", target.base_url.rstrip("/") + "/v1/messages", headers, body)

    def parse_stream(self, chunks: Iterable[bytes], target: Target) -> Iterator[Event]:
        """Raw response bytes (any chunking) to events, ending in Done."""
        open_blocks: dict[int, dict] = {}  # index -> thinking/redacted/search block being received
        finished: list[dict] = []
        sources = Sources()
        markers: dict[int, list[int]] = {}  # text block index -> the source numbers it cites
        usage: dict[str, int] = {}
        stop_reason: str | None = None
        explanation = ""  # stop_details.explanation: why Claude refused, when it says
        stopped = False
        note = thinking_plan(target).note
        if note:
            # build_request cannot speak; the answer to that request is the first place to say it.
            yield Notice(note)
        called = False
        noticed: set[str] = set()  # block types not understood, told about once each
        for sse in iter_sse(chunks):
            data = loads_event(sse.data)
            kind = data.get("type") or sse.event
            if kind == "message_start":
                _take_usage(usage, _obj(data.get("message")).get("usage"))
            elif kind == "content_block_start":
                yield from _block_start(data, open_blocks)
                yield from _unknown_block(data, noticed, target)
            elif kind == "content_block_delta":
                yield from _block_delta(data, open_blocks, sources, markers)
            elif kind == "content_block_stop":
                block = open_blocks.pop(_index(data), None)
                if block is not None and block["type"] == "tool_use":
                    called = True
                    yield _tool_call(block)
                elif block is not None:
                    yield from _block_done(block)
                    finished.append(block)
                cited = markers.pop(_index(data), None)
                if cited:
                    # The numbers of the sources this passage rests on, after it, as [n] markers.
                    yield TextDelta(" " + "".join(f"[{n}]" for n in cited))
            elif kind == "message_delta":
                delta = _obj(data.get("delta"))
                stop_reason = _str(delta.get("stop_reason")) or stop_reason
                explanation = _str(_obj(delta.get("stop_details")).get("explanation")) or explanation
                _take_usage(usage, data.get("usage"))
            elif kind == "message_stop":
                stopped = True
                break
            elif kind == "error":
                raise _stream_error(data)
            # "ping" and event types added later are ignored, as the API's versioning asks.
        if not stopped:
            raise StreamError("the stream ended before message_stop (answer incomplete)")
        counted = _usage(usage)
        if counted is not None:
            yield counted
        for block in finished:
            if _replayable(block):
                yield ReplayState(NAME, target.model_id, json.dumps(block, ensure_ascii=False))
        notice = "" if called and stop_reason == "tool_use" else _stop_notice(stop_reason, target, explanation)
        if notice:
            yield Notice(notice)
        yield Done(_FINISH.get(stop_reason or "", stop_reason))

    def error_message(self, status: int, body: bytes) -> str:
        """`error.message` from `{"type": "error", "error": {"type", "message"}}`, else ""."""
        return error_text(body)


PROTOCOL = AnthropicProtocol()


# -- request ---------------------------------------------------------------------------------


def _messages(conversation: Conversation, model_id: str, search: bool = False) -> list[dict]:
    out: list[dict] = []
    for message in conversation.for_request():
        if message.role == "assistant":
            for rnd in message.rounds:
                _add(out, "assistant", _round_blocks(rnd, model_id))
                _add(out, "user", [_result_block(r.call_id, r.content, r.is_error) for r in rnd.results])
        thinking = (_replay_blocks(message.replay_for(NAME, model_id), search)
                    if message.role == "assistant" else [])
        text = message.prompt_text if message.role == "user" else message.text_with_sources()
        texts: list[dict] = [{"type": "text", "text": text}] if text.strip() else []
        if not texts:
            # A whitespace-only text block is a 400, and thinking alone is not a turn.
            continue
        # Images go before the text: Anthropic's docs advise image-then-text for best results.
        texts = [{"type": "image", "source": {"type": "base64", "media_type": a.media_type, "data": a.base64}}
                 for a in message.images] + texts
        _add(out, message.role, thinking + texts)
    return out


def _tools_used(messages: list[dict]) -> list[str]:
    names: list[str] = []
    for m in messages:
        for block in m["content"]:
            if block.get("type") == "tool_use" and block["name"] not in names:
                names.append(block["name"])
    return names


# Where a block goes when two turns of one role merge: thinking first (the API wants it ahead of
# everything in an assistant turn), tool_result first in a user turn, tool_use after the text.
_BLOCK_ORDER = {"thinking": 0, "redacted_thinking": 0, "tool_result": 0, "text": 1, "tool_use": 2}


def _add(out: list[dict], role: str, blocks: list[dict]) -> None:
    if not blocks:
        return
    if out and out[-1]["role"] == role:
        merged = out[-1]["content"] + blocks
        out[-1]["content"] = sorted(merged, key=lambda b: _BLOCK_ORDER.get(b["type"], 1))
    else:
        out.append({"role": role, "content": blocks})


def _round_blocks(rnd: ToolRound, model_id: str) -> list[dict]:
    """One tool round as Claude wants it back: this model's thinking blocks exactly as it sent
    them (another model's reasoning is not sent), the text, then a tool_use per call."""
    blocks = _replay_blocks(rnd.replay_for(NAME, model_id))
    if rnd.text.strip():
        blocks.append({"type": "text", "text": rnd.text})
    for call in rnd.calls:
        blocks.append({"type": "tool_use", "id": tool_id(call.id), "name": call.name, "input": call_arguments(call)})
    return blocks


def _result_block(call_id: str, content: str, is_error: bool) -> dict:
    block: dict = {"type": "tool_result", "tool_use_id": tool_id(call_id), "content": content}
    if is_error:
        block["is_error"] = True
    return block


def tool_id(call_id: str) -> str:
    """Claude's ids must match ^[a-zA-Z0-9_-]+$; other vendors' ids (DeepSeek's, made-up ones)
    are mapped into that alphabet the same way for the call and for its result."""
    return re.sub(r"[^a-zA-Z0-9_-]", "_", call_id) or "call"


def _replay_blocks(states: tuple[ReplayState, ...], search: bool = False) -> list[dict]:
    """This model's own thinking blocks for the turn, exactly as it produced them, and its search
    blocks when the request offers the search tool again (they name it; its text keeps the sources)."""
    blocks = []
    for state in states:
        try:
            block = json.loads(state.data)
        except ValueError:
            continue
        if isinstance(block, dict) and _replayable(block) and (search or block.get("type") not in _SEARCH_BLOCKS):
            blocks.append(block)
    return blocks


def _replayable(block: dict) -> bool:
    if block.get("type") == "thinking":
        return isinstance(block.get("thinking"), str) and bool(block.get("signature"))
    if block.get("type") == "redacted_thinking":
        return isinstance(block.get("data"), str) and bool(block.get("data"))
    if block.get("type") == "server_tool_use":
        return bool(_str(block.get("id"))) and bool(_str(block.get("name"))) and isinstance(block.get("input"), dict)
    if block.get("type") == "web_search_tool_result":
        return bool(_str(block.get("tool_use_id"))) and "content" in block
    return False


# -- response --------------------------------------------------------------------------------


def _block_start(data: dict, open_blocks: dict[int, dict]) -> Iterator[Event]:
    index = _index(data)
    block = _obj(data.get("content_block"))
    kind = block.get("type")
    if kind == "thinking":
        text = _str(block.get("thinking"))
        open_blocks[index] = {"type": "thinking", "thinking": text, "signature": _str(block.get("signature"))}
        if text:
            yield ReasoningDelta(text)
    elif kind == "redacted_thinking":
        # Encrypted thinking: nothing to show, but it must go back to the model unchanged.
        open_blocks[index] = {"type": "redacted_thinking", "data": _str(block.get("data"))}
    elif kind == "server_tool_use":
        # The query arrives as input_json_delta pieces; it is complete at content_block_stop.
        open_blocks[index] = {"type": "server_tool_use", "id": _str(block.get("id")),
                              "name": _str(block.get("name")), "input": _obj(block.get("input")), "_json": ""}
    elif kind == "web_search_tool_result":
        open_blocks[index] = {"type": kind, "tool_use_id": _str(block.get("tool_use_id")),
                              "content": block.get("content")}
    elif kind == "text" and _str(block.get("text")):
        yield TextDelta(block["text"])
    elif kind == "tool_use":
        # The input arrives as input_json_delta fragments; the start's `input` is {} then.
        start = block.get("input")
        open_blocks[index] = {
            "type": "tool_use", "id": _str(block.get("id")), "name": _str(block.get("name")),
            "json": "", "input": start if isinstance(start, dict) else {},
        }
    # Any other type is told once by _unknown_block (a type handled here belongs in _KNOWN_BLOCKS).


# The block types _block_start understands; any other is said once, never dropped silently.
_KNOWN_BLOCKS = frozenset({"thinking", "redacted_thinking", "server_tool_use", "web_search_tool_result", "text",
                           "tool_use"})


def _unknown_block(data: dict, noticed: set[str], target: Target) -> Iterator[Event]:
    kind = _obj(data.get("content_block")).get("type")
    name = " ".join(kind.split())[:40] if isinstance(kind, str) else f"<{type(kind).__name__}>"
    if not (isinstance(kind, str) and kind in _KNOWN_BLOCKS) and name not in noticed:
        noticed.add(name)
        yield Notice(f"{target.model_id} sent a content block of type {name!r}, which modelswitch does not show;"
                     " it was left out")


def _block_done(block: dict) -> Iterator[Event]:
    """A search block is complete: say what was searched, or why the search failed."""
    if block["type"] == "server_tool_use":
        raw = block.pop("_json", "")
        if raw:
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                block["input"] = parsed
        query = _str(block["input"].get("query"))
        if block["name"] == "web_search" and query.strip():
            yield SearchQuery(query)
    elif block["type"] == "web_search_tool_result":
        content = block.get("content")
        if isinstance(content, dict) and content.get("type") == "web_search_tool_result_error":
            yield Notice(f"web search failed ({_str(content.get('error_code'))[:40] or 'error'})")


def _block_delta(data: dict, open_blocks: dict[int, dict], sources: Sources | None = None,
                 markers: dict[int, list[int]] | None = None) -> Iterator[Event]:
    delta = _obj(data.get("delta"))
    kind = delta.get("type")
    block = open_blocks.get(_index(data))
    if kind == "input_json_delta":
        if block is not None and block["type"] == "server_tool_use":
            block["_json"] += _str(delta.get("partial_json"))
        elif block is not None and block["type"] == "tool_use":
            block["json"] += _str(delta.get("partial_json"))
    elif kind == "citations_delta" and sources is not None and markers is not None:
        cite = _obj(delta.get("citation"))
        number, citation = sources.add(cite.get("title"), cite.get("url"), cite.get("cited_text"))
        if citation is not None:
            yield citation
        cited = markers.setdefault(_index(data), [])
        if number and number not in cited:
            cited.append(number)
    elif kind == "text_delta":
        if _str(delta.get("text")):
            yield TextDelta(delta["text"])
    elif kind == "thinking_delta":
        text = _str(delta.get("thinking"))
        if block is not None and block["type"] == "thinking":
            block["thinking"] += text
        if text:
            yield ReasoningDelta(text)
    elif kind == "signature_delta" and block is not None and block["type"] == "thinking":
        block["signature"] += _str(delta.get("signature"))


def _tool_call(block: dict) -> ToolCall:
    text = block["json"].strip() or arguments_text(block["input"])
    return ToolCall(block["id"] or f"call_{block['name']}", block["name"], text)


def _obj(value: object) -> dict:
    """A JSON object where one is expected; anything else reads as empty, never as a crash."""
    return value if isinstance(value, dict) else {}


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _index(data: dict) -> int:
    index = data.get("index")
    return index if isinstance(index, int) else -1


def _take_usage(usage: dict[str, int], raw: object) -> None:
    """message_start and message_delta both carry usage; later values are cumulative."""
    if not isinstance(raw, dict):
        return
    for key in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"):
        if isinstance(raw.get(key), int):
            usage[key] = raw[key]
    # The split of cache writes by lifetime, which prices them (message_start carries it).
    creation = raw.get("cache_creation")
    if isinstance(creation, dict) and isinstance(creation.get("ephemeral_1h_input_tokens"), int):
        usage["ephemeral_1h_input_tokens"] = creation["ephemeral_1h_input_tokens"]
    details = raw.get("output_tokens_details")
    if isinstance(details, dict) and isinstance(details.get("thinking_tokens"), int):
        usage["thinking_tokens"] = details["thinking_tokens"]


def _usage(usage: dict[str, int]) -> Usage | None:
    """None when the stream reported no counts at all: usage unknown, never 0."""
    if "input_tokens" not in usage and "output_tokens" not in usage:
        return None
    cached = usage.get("cache_read_input_tokens", 0)
    written = usage.get("cache_creation_input_tokens", 0)
    # Without the split, writes are five-minute ones: the default lifetime.
    written_1h = min(usage.get("ephemeral_1h_input_tokens", 0), written)
    # Anthropic's input_tokens leaves cache reads and writes out; ours counts every prompt
    # token, with cached_tokens the part of it read from the cache.
    return Usage(
        input_tokens=usage.get("input_tokens", 0) + cached + written,
        output_tokens=usage.get("output_tokens", 0),
        reasoning_tokens=usage.get("thinking_tokens", 0),
        cached_tokens=cached,
        cache_write_tokens=written - written_1h,
        cache_write_1h_tokens=written_1h,
    )


def _stop_notice(stop_reason: str | None, target: Target, explanation: str = "") -> str:
    if stop_reason == "max_tokens":
        return f"stopped: the answer hit max_tokens ({max_tokens_for(target)})"
    if stop_reason == "refusal":
        why = " ".join("".join(c for c in explanation if c.isprintable() or c.isspace()).split())
        return "stopped: Claude declined to continue this answer (refusal)" + (f": {why}" if why else "")
    if stop_reason == "model_context_window_exceeded":
        return "stopped: the conversation filled the model's context window"
    if stop_reason == "pause_turn":
        return "stopped: Claude paused its turn (pause_turn); the answer may be incomplete"
    if stop_reason == "tool_use":
        return "stopped: Claude asked to call a tool, but none was offered; the answer may be incomplete"
    if stop_reason and _FINISH.get(stop_reason) != "stop":
        return f"stopped: Claude ended the answer early ({stop_reason[:60]})"
    return ""


def _stream_error(data: dict) -> ProviderError:
    error = _obj(data.get("error"))
    kind = str(error.get("type") or "error")
    message = str(error.get("message") or kind)
    if kind == "overloaded_error":
        return OverloadedError(f"overloaded: {message}")
    return StreamError(f"error in stream ({kind}): {message}")
