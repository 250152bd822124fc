"""OpenAI Chat Completions, the wire protocol most providers speak (DeepSeek, Hunyuan, OpenRouter,
Groq, Qwen, vLLM, llama.cpp, Ollama /v1, ...).

Request: `stream: true` with `stream_options.include_usage`. `target.reasoning` as an effort string
becomes `reasoning_effort`; True, False and integer budgets send nothing, because no field for them
is accepted everywhere (OpenAI rejects unknown fields with 400) and the provider default is safe.
Where the config declares `thinking_toggle` (DeepSeek), any reasoning value but None (the
provider's default) also sends `thinking: {type: enabled|disabled}`, so off is really off.

Response: reasoning arrives as `delta.reasoning_content`, `delta.reasoning`,
`delta.reasoning_details`, or inline `<think>...</think>` inside content (split by `thinktags.ThinkSplitter`).
Some servers put `<think>` into the prompt, so the model emits only the closing tag. Content is
streamed as the answer as soon as it arrives, so when such a lone `</think>` turns up the text
before it has already been shown; a Notice then says how to fix it. When the model is declared a
thinking model (`reasoning = true` or a token budget) untagged leading content is held back
instead, until `</think>` shows it was reasoning, or a separate reasoning field or the end of the
stream shows it was the answer.

A 200 body that is one JSON chat.completion object rather than a stream (a server that ignored
`stream: true`) is parsed into the same events.
"""

from __future__ import annotations

import json
from dataclasses import replace
from urllib.parse import urlsplit
from collections.abc import Iterable, Iterator
from typing import Any

from ..conversation import Conversation, Message, ToolRound
from ..errors import (
    OverloadedError,
    ProtocolError,
    ProviderError,
    RateLimitError,
    StreamError,
)
from ..events import Done, Event, Notice, ReasoningDelta, ReplayState, ToolCall, Usage
from .sse import SSEDecoder, SSEEvent, loads_event
from . import search as _search
from .base import RESUME, HttpRequest, Sources, Target, openai_tools
from .thinktags import CLOSE as _CLOSE
from .thinktags import OPEN as _OPEN
from .thinktags import ThinkSplitter

_MAX_MESSAGE = 500
# Messages that only say "something upstream failed"; OpenRouter then has the real one in metadata.raw.
_GENERIC_MESSAGES = {"provider returned error", "internal server error", "upstream error", ""}


class OpenAIProtocol:
    """Chat Completions: Conversation -> request; SSE bytes -> events."""

    name = "openai"
    # OpenAI documents 20 MB per image; compatible servers that take less say so in their 400.
    max_image_bytes = 20_000_000

    def build_request(self, target: Target, conversation: Conversation) -> HttpRequest:
        """A streaming /chat/completions request for the conversation."""
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if target.api_key:
            headers["Authorization"] = f"Bearer {target.api_key}"
        for key, value in target.headers:
            # Case-insensitive override, so a user's "authorization" replaces ours instead of doubling it.
            for existing in [k for k in headers if k.lower() == key.lower()]:
                del headers[existing]
            headers[key] = value
        body: dict[str, Any] = {
            "model": target.model_id,
            "messages": _messages(conversation, target),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if target.tools:
            body["tools"] = openai_tools(target.tools)
        if target.temperature is not None:
            body["temperature"] = target.temperature
        if target.max_tokens is not None:
            body["max_tokens"] = target.max_tokens
        if isinstance(target.reasoning, str):
            body["reasoning_effort"] = target.reasoning
        if toggles_thinking(target) and target.reasoning is not None:
            body["thinking"] = {"type": "enabled" if _thinks(target.reasoning) else "disabled"}
        if target.search:
            fields = _search.request_fields(target.search)
            if "tools" in fields and "tools" in body:  # the vendor's search tool beside the user's
                fields["tools"] = body["tools"] + fields["tools"]
            body.update(fields)
        return HttpRequest("POST", f"{target.base_url.rstrip('/')}/chat/completions", headers, body)

    def parse_stream(self, chunks: Iterable[bytes], target: Target) -> Iterator[Event]:
        """Response bytes (SSE, or one JSON completion) to events ending in Usage and Done."""
        return _parse(iter(chunks), target)

    def error_message(self, status: int, body: bytes) -> str:
        """The provider's own words from an error body, on one line; "" when there are none."""
        try:
            return _one_line(_message_of(json.loads(body)))
        except Exception:  # noqa: BLE001 - an error body must never cause a second error
            return ""

    def models_request(self, base_url: str) -> HttpRequest:
        """GET /models: what a local server (llama.cpp, LM Studio, vLLM) has loaded."""
        return HttpRequest("GET", f"{base_url.rstrip('/')}/models", {"Accept": "application/json"}, None)

    def parse_models(self, body: bytes) -> list[str]:
        """Model ids from a /models answer; [] for anything else."""
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            return []
        items = data.get("data") if isinstance(data, dict) else None
        return [m["id"] for m in items or [] if isinstance(m, dict) and isinstance(m.get("id"), str)]


PROTOCOL = OpenAIProtocol()


# --- request ----------------------------------------------------------------------------------


def _messages(conversation: Conversation, target: Target) -> list[dict[str, Any]]:
    """System first, then turns with same-role neighbours merged; assistant turns carry answers
    only, except inside a tool span (see `_tool_span`).

    A user turn with images has a list of content parts: its text, then one `image_url` part per
    image holding a base64 data URL (the shape every OpenAI-compatible vision server accepts).
    """
    out: list[dict[str, Any]] = []
    if conversation.system:
        out.append({"role": "system", "content": conversation.system})
    for message in conversation.for_request():
        if message.role == "assistant" and message.rounds:
            out.extend(_tool_span(message, target))
            continue
        if message.role == "assistant":
            out.extend(_searched(message.replay, target))
            text = _answer_only(message)
            if message.citations:
                # The sources stay readable by whichever model comes next, as text.
                text = replace(message, text=text).text_with_sources()
        else:
            text = message.prompt_text
        images = [{"type": "image_url", "image_url": {"url": f"data:{a.media_type};base64,{a.base64}"}}
                  for a in message.images]
        if out and out[-1]["role"] == message.role and "tool_calls" not in out[-1]:
            prev = out[-1]
            if isinstance(prev["content"], str) and not images:
                prev["content"] = f"{prev['content']}\n\n{text}"
            else:
                parts = _parts(prev["content"])
                parts[0]["text"] = f"{parts[0]['text']}\n\n{text}"
                prev["content"] = parts + images
        elif images:
            out.append({"role": message.role, "content": [{"type": "text", "text": text}, *images]})
        else:
            out.append({"role": message.role, "content": text})
    out.extend(_searched(target.resume, target))  # the round this answer is resumed after
    return out


def _searched(states: tuple[ReplayState, ...], target: Target) -> list[dict[str, Any]]:
    """This model's own $web_search rounds (Kimi), only while it searches: the tool they name is
    declared only then, and no other model is sent them."""
    if target.search != "kimi":
        return []
    return _search.kimi_messages(tuple(r for r in states if r.model == target.model_id))


def _parts(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A message's content as parts with the text part first."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return content
# The one host whose rules are known without being declared: a user's own provider entry for
# DeepSeek (no `reasoning_passback` or `thinking_toggle` written) still gets what DeepSeek requires.
_PASSBACK_HOSTS = frozenset({"api.deepseek.com"})


def toggles_thinking(target: Target) -> bool:
    """Whether `reasoning` on/off goes as DeepSeek's `thinking` field: where the config declares
    `thinking_toggle`, or, undeclared, to DeepSeek's own API (a user's own provider entry for it
    must not think and bill reasoning when it said `reasoning = false`)."""
    if target.thinking_toggle is not None:
        return target.thinking_toggle
    return (urlsplit(target.base_url).hostname or "").lower() in _PASSBACK_HOSTS


def passes_reasoning_back(target: Target) -> bool:
    """DeepSeek's thinking mode rejects (400) an assistant message of a tool-call span that lacks
    `reasoning_content`; OpenAI rejects that unknown field. So it goes only where the config
    declares it (`reasoning_passback`), or, undeclared, to DeepSeek's own API."""
    if target.reasoning_passback is not None:
        return target.reasoning_passback
    return (urlsplit(target.base_url).hostname or "").lower() in _PASSBACK_HOSTS


def _tool_span(message: Message, target: Target) -> list[dict[str, Any]]:
    """An answer that used tools: per round the assistant's calls, then one `tool` message per
    result; then the final answer. For DeepSeek every assistant message here carries
    `reasoning_content`: the model's own reasoning, or "" for a turn another model wrote."""
    passback = passes_reasoning_back(target)

    def own_reasoning(reasoning: str, model_id: str | None) -> str:
        return reasoning if model_id == target.model_id else ""

    out: list[dict[str, Any]] = []
    for rnd in message.rounds:
        out.extend(_searched(rnd.replay, target))
        turn: dict[str, Any] = {"role": "assistant", "content": rnd.text or None, "tool_calls": _calls(rnd)}
        if passback:
            turn["reasoning_content"] = own_reasoning(rnd.reasoning, rnd.model.id if rnd.model else None)
        out.append(turn)
        for result in rnd.results:
            out.append({"role": "tool", "tool_call_id": result.call_id, "content": result.content})
    text = _answer_only(message)
    out.extend(_searched(message.replay, target))
    if text.strip():
        final: dict[str, Any] = {"role": "assistant", "content": text}
        if passback:
            final["reasoning_content"] = own_reasoning(message.reasoning, message.model.id if message.model else None)
        out.append(final)
    return out


def _calls(rnd: ToolRound) -> list[dict[str, Any]]:
    return [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}} for c in rnd.calls
    ]


def _answer_only(message: Message) -> str:
    """The text to send back. Reasoning never goes back: DeepSeek and Hunyuan reject it with 400."""
    text = message.text
    if message.role == "assistant" and text.lstrip().startswith(_OPEN):
        # A turn stored by something that kept inline tags: drop the thinking block.
        end = text.find(_CLOSE)
        text = text[end + len(_CLOSE) :].lstrip() if end >= 0 else ""
    return text


# --- response ---------------------------------------------------------------------------------


# Abnormal ends a user must be told about in words (the other protocols say the same). Any other
# finish_reason but a normal one gets a notice too, naming it.
_STOP_NOTICES = {
    "length": "stopped: the answer hit max_tokens",
    "content_filter": "stopped: the provider's content filter ended the answer",
    "tool_calls": "stopped: the model asked to call a tool, but none was offered; the answer may be incomplete",
    # DeepSeek: the answer was cut because the provider ran short of capacity.
    "insufficient_system_resource": "stopped: the provider cut the answer short (insufficient_system_resource)",
}
# What servers of this protocol call a normal end; reported as "stop".
_NORMAL_STOPS = frozenset(("stop", "eos", "end_turn", "stop_sequence"))


class _Stream:
    """What the parse has seen so far; Usage and Done are emitted once, at the end."""

    __slots__ = ("target", "think", "usage", "finish", "data_events", "reasoning_seen", "refusal", "noticed",
                 "sources", "calls")

    def __init__(self, target: Target, hold_untagged: bool) -> None:
        self.target = target
        self.think = ThinkSplitter(hold_untagged, target.model_id)
        self.usage: Usage | None = None
        self.finish: str | None = None
        self.data_events = 0
        self.reasoning_seen = False
        self.refusal: list[str] = []
        self.noticed: set[str] = set()  # kinds of unknown content already told about, once each
        self.sources = Sources()
        # Tool calls by their stream index: id, name, argument fragments joined as they arrive.
        self.calls: dict[int, list[str]] = {}

    def ending(self) -> list[Event]:
        events = self.think.close()
        calls = [self.calls[i] for i in sorted(self.calls)]
        searched = [c for c in calls if c[1] == _search.KIMI_CALL] if self.target.search == "kimi" else []
        if searched:  # Moonshot ran the search: its round is echoed back and the answer resumed
            calls = [c for c in calls if c not in searched]
            events.extend(_search.kimi_round([(i, n, a) for i, n, a in searched], self.target.model_id))
        for n, (call_id, name, args) in enumerate(calls):
            events.append(ToolCall(call_id or f"call_{n}", name, args or "{}"))
        if self.usage is not None:
            events.append(self.usage)
        finish = "stop" if self.finish in _NORMAL_STOPS else self.finish
        if self.target.search and not searched:
            events.extend(_search.ending_notices(self.target.search, self.sources, self.target.resume))
        if searched and not calls and finish in ("stop", "tool_calls", None):
            events.append(Done(RESUME))
            return events
        if calls and finish in ("stop", "tool_calls", None):
            finish = "tool_calls"  # some servers end a tool call with "stop"
            events.append(Done(finish))
            return events
        if self.refusal:
            # A refusal is the model's message about the answer, not part of it.
            events.append(Notice(f"{self.target.model_id} refused: {_one_line(''.join(self.refusal))}"))
            finish = "refusal"
        elif finish and finish != "stop":
            notice = _STOP_NOTICES.get(finish)
            events.append(Notice(notice or f"stopped: the provider ended the answer early ({_one_line(finish)[:60]})"))
        events.append(Done(finish))
        return events

    def unknown(self, what: str) -> list[Event]:
        """A notice, once per kind, for a shape the parser does not understand: never dropped silently."""
        if what in self.noticed:
            return []
        self.noticed.add(what)
        return [Notice(f"{self.target.model_id} sent {what}, which modelswitch does not show; it was left out")]

    def fail(self, cls: type[ProviderError], message: str, status: int | None = None) -> ProviderError:
        return _fail(self.target, cls, message, status)


def _fail(target: Target, cls: type[ProviderError], message: str, status: int | None = None) -> ProviderError:
    return cls(message, provider=target.provider, model=target.model_id, status=status)


def _thinks(reasoning: bool | str | int) -> bool:
    """On: True, an effort word or a token budget above 0; off: False or a budget of 0."""
    return reasoning is not False and reasoning != 0


def _declares_thinking(target: Target) -> bool:
    """True or a token budget: the user says this model thinks, so untagged leading text may be reasoning."""
    r = target.reasoning
    return r is True or (isinstance(r, int) and not isinstance(r, bool) and r > 0)


def _parse(chunks: Iterator[bytes], target: Target) -> Iterator[Event]:
    head = b""
    for chunk in chunks:
        head += chunk
        if head.strip():
            break
    start = head.lstrip()[:1]
    if not start:
        raise _fail(target, StreamError, "empty response")
    if start in (b"{", b"["):
        # The whole text is here at once, so untagged text before a lone </think> can be placed exactly.
        yield from _parse_json_body(head + b"".join(chunks), _Stream(target, hold_untagged=True))
        return
    if start == b"<":
        preview = _one_line(head.lstrip()[:60].decode("utf-8", "replace"))
        raise _fail(target, StreamError, f"expected an event stream, got HTML or XML: {preview}")
    st = _Stream(target, _declares_thinking(target))
    try:
        yield from _parse_sse(head, chunks, st)
    except Exception:
        # Whatever was held back (a partial tag, untagged text) is part of the partial answer.
        yield from st.think.close()
        raise


def _parse_sse(head: bytes, chunks: Iterator[bytes], st: _Stream) -> Iterator[Event]:
    for events in _sse_batches(head, chunks):
        for ev in events:
            if ev.data == "[DONE]":
                yield from st.ending()
                return
            st.data_events += 1
            if ev.event == "error":
                raise _error_event(ev.data, st)
            yield from _chunk_events(loads_event(ev.data), st)
    if st.data_events == 0:
        raise st.fail(StreamError, "empty response")
    if st.finish is None:
        raise st.fail(StreamError, "stream ended before the answer finished")
    # Some servers omit [DONE]; a finish_reason already says the answer is complete.
    yield from st.ending()


def _sse_batches(head: bytes, chunks: Iterator[bytes]) -> Iterator[list[SSEEvent]]:
    decoder = SSEDecoder()
    yield decoder.feed(head)
    for chunk in chunks:
        yield decoder.feed(chunk)
    yield decoder.close()


# A delta with only these keys carries nothing but answer text (the bulk of every stream).
_PLAIN_DELTA_KEYS = frozenset(("content", "role"))


def _chunk_events(obj: dict, st: _Stream) -> list[Event]:
    """Events from one chat.completion.chunk (or a completion's message)."""
    if obj.keys().isdisjoint(_search.TOP_LEVEL_KEYS):
        return _choice_events(obj, st)
    # Sources at the chunk's top level (Perplexity, Hunyuan, Zhipu): they open the events, so
    # a [n] marker in this chunk's text is never ahead of its source.
    return _search.chunk_citations(obj, st.sources) + _choice_events(obj, st)


def _choice_events(obj: dict, st: _Stream) -> list[Event]:
    choices = obj.get("choices")
    if type(choices) is list and len(choices) == 1 and obj.get("usage") is None and "error" not in obj:
        # Fast path for a plain content delta: same result as below, a fraction of the checks.
        choice = choices[0]
        if (
            type(choice) is dict and choice.get("finish_reason") is None and "usage" not in choice
            and not choice.get("index")
        ):
            delta = choice.get("delta")
            if type(delta) is dict and delta.keys() <= _PLAIN_DELTA_KEYS and "x_groq" not in obj:
                content = delta.get("content")
                if type(content) is str:
                    return st.think.feed(content) if content else []
                if content is None:
                    return []
    error = obj.get("error")
    if error:
        raise _error_from(error, st)
    usage = obj.get("usage") or _dict(obj.get("x_groq")).get("usage")  # Groq's own place
    if not choices or not isinstance(choices, list):
        if isinstance(usage, dict):
            st.usage = _usage(usage)
        return []
    choice, extra = _first_choice(choices, st)
    if choice is None:
        return extra
    # Moonshot puts usage inside the choice.
    usage = usage or choice.get("usage")
    if isinstance(usage, dict):
        st.usage = _usage(usage)
    if choice.get("finish_reason"):
        st.finish = str(choice["finish_reason"])
    delta = choice.get("delta") or choice.get("message")
    if not isinstance(delta, dict):
        return extra + (st.unknown(f"a delta of an unknown shape ({type(delta).__name__})") if delta else [])
    events: list[Event] = extra
    content = delta.get("content")
    if not st.reasoning_seen and (_separates_reasoning(delta) or _has_thinking_part(content)):
        st.reasoning_seen = True
        events.extend(st.think.release())
    reasoning = _reasoning_text(delta)
    if reasoning:
        events.append(ReasoningDelta(reasoning))
    if isinstance(content, str):
        if content:
            events.extend(st.think.feed(content))
    elif isinstance(content, list):
        events.extend(_content_parts(content, st))
    elif content is not None:
        events.extend(st.unknown(f"content of an unknown shape ({type(content).__name__})"))
    if delta.get("annotations"):
        events.extend(_search.annotation_citations(delta["annotations"], st.sources))
    refusal = delta.get("refusal")
    if isinstance(refusal, str) and refusal:
        st.refusal.append(refusal)
    tool_calls = delta.get("tool_calls")
    if isinstance(tool_calls, list):
        _take_calls(tool_calls, st)
    return events


def _take_calls(tool_calls: list, st: _Stream) -> None:
    """Streamed calls: the first fragment of each index has its id and name, the rest append to
    `function.arguments`. A non-streamed message has each call whole, index or not."""
    for position, call in enumerate(tool_calls):
        if not isinstance(call, dict):
            continue
        index = call.get("index")
        index = index if isinstance(index, int) and not isinstance(index, bool) else position
        function = _dict(call.get("function"))
        entry = st.calls.setdefault(index, ["", "", ""])
        if isinstance(call.get("id"), str) and call["id"]:
            entry[0] = call["id"]
        if isinstance(function.get("name"), str) and function["name"]:
            entry[1] = function["name"]
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            entry[2] += arguments
        elif isinstance(arguments, dict):  # a server that sends the object itself
            entry[2] = json.dumps(arguments, ensure_ascii=False)


def _first_choice(choices: list, st: _Stream) -> tuple[dict | None, list[Event]]:
    """The choice with index 0 (the only one asked for); another one is told about, not appended."""
    chosen: dict | None = None
    events: list[Event] = []
    for choice in choices:
        if not isinstance(choice, dict):
            events.extend(st.unknown("a choice that is not an object"))
        elif not choice.get("index") and chosen is None:
            chosen = choice
        else:
            events.extend(st.unknown("a second choice"))
    return chosen, events


def _has_thinking_part(content: object) -> bool:
    return isinstance(content, list) and any(isinstance(p, dict) and p.get("type") == "thinking" for p in content)


def _content_parts(parts: list, st: _Stream) -> list[Event]:
    """Typed content parts (Mistral's Magistral): {"type": "text", "text"} is answer text and
    {"type": "thinking", "thinking": [{"type": "text", "text"}]} is reasoning."""
    events: list[Event] = []
    for part in parts:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            if part["text"]:
                events.extend(st.think.feed(part["text"]))
        elif kind == "thinking" and isinstance(part.get("thinking"), (list, str)):
            inner = part["thinking"]
            texts = [inner] if isinstance(inner, str) else []
            for item in inner if isinstance(inner, list) else ():
                if isinstance(item, dict) and item.get("type") == "text" and isinstance(item.get("text"), str):
                    texts.append(item["text"])
                else:
                    events.extend(st.unknown("a thinking part of an unknown kind"))
            text = "".join(texts)
            if text:
                events.append(ReasoningDelta(text))
        else:
            name = kind if isinstance(kind, str) else type(part).__name__
            events.extend(st.unknown(f"a content part of type {_one_line(name)[:40]!r}"))
    return events


def _separates_reasoning(delta: dict) -> bool:
    """A reasoning field is present (even "" or encrypted): DeepSeek's first delta, OpenRouter's o3."""
    return (
        isinstance(delta.get("reasoning_content"), str)
        or isinstance(delta.get("reasoning"), str)
        or bool(delta.get("reasoning_details"))
    )


def _reasoning_text(delta: dict) -> str:
    """Reasoning from whichever fields carry it, without counting OpenRouter's duplicates twice."""
    parts: list[str] = []
    seen: set[str] = set()  # without whitespace: copies that differ only in it are one text

    def add(text: str) -> None:
        key = "".join(text.split())
        if text and key not in seen:
            seen.add(key)
            parts.append(text)

    for key in ("reasoning_content", "reasoning"):
        value = delta.get(key)
        if isinstance(value, str):
            add(value)
    details = delta.get("reasoning_details")
    if isinstance(details, list) and details:
        # OpenRouter repeats delta.reasoning here; encrypted entries carry nothing readable.
        add("".join(_detail_text(d) for d in details))
    return "".join(parts)


def _detail_text(detail: object) -> str:
    if not isinstance(detail, dict):
        return ""
    kind = detail.get("type")
    value = detail.get("text") if kind == "reasoning.text" else detail.get("summary") if kind == "reasoning.summary" else None
    return value if isinstance(value, str) else ""


def _usage(u: dict) -> Usage:
    cached = (
        _int(_dict(u.get("prompt_tokens_details")).get("cached_tokens"))
        or _int(u.get("prompt_cache_hit_tokens"))  # DeepSeek
        or _int(u.get("cached_tokens"))  # Together
    )
    reasoning = _int(_dict(u.get("completion_tokens_details")).get("reasoning_tokens"))
    return Usage(_int(u.get("prompt_tokens")), _int(u.get("completion_tokens")), reasoning, cached)


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _dict(value: object) -> dict:
    """Untrusted JSON: a field that should be an object but is not counts as empty."""
    return value if isinstance(value, dict) else {}


def _parse_json_body(body: bytes, st: _Stream) -> Iterator[Event]:
    """A 200 with one chat.completion object: the server ignored `stream: true`."""
    try:
        obj = json.loads(body)
    except (ValueError, RecursionError) as exc:
        preview = _one_line(body[:80].decode("utf-8", "replace"))
        raise ProtocolError(f"expected an event stream, got invalid JSON: {preview}") from exc
    if not isinstance(obj, dict):
        raise st.fail(StreamError, "expected an event stream, got a JSON value that is not a chat completion")
    if obj.get("error"):
        raise _error_from(obj["error"], st)
    if not obj.get("choices"):
        raise st.fail(StreamError, "expected an event stream, got JSON with no choices")
    yield from _chunk_events(obj, st)
    yield from st.ending()


# --- errors -----------------------------------------------------------------------------------


def _error_event(data: str, st: _Stream) -> ProviderError:
    """`event: error` with a JSON body or plain text."""
    try:
        value: object = json.loads(data)
    except (ValueError, RecursionError):
        value = data
    if isinstance(value, dict) and "error" in value:
        value = value["error"]
    return _error_from(value, st)


def _error_from(error: object, st: _Stream) -> ProviderError:
    """An error object inside a 200 stream, as the exception a retry policy can act on."""
    message = _one_line(_message_of({"error": error})) or "the provider reported an error"
    code = error.get("code") if isinstance(error, dict) else None
    kind = error.get("type") if isinstance(error, dict) else None
    status = code if isinstance(code, int) and not isinstance(code, bool) else None
    said = f"{message} {code or ''} {kind or ''}".lower()
    if status in (503, 529) or any(w in said for w in ("overloaded", "busy", "503", "529")):
        return st.fail(OverloadedError, message, status)
    if status == 429 or any(w in said for w in ("429", "rate limit", "rate_limit", "ratelimit", "too many requests")):
        return st.fail(RateLimitError, message, status)
    return st.fail(StreamError, message, status)


def _message_of(value: object, depth: int = 0) -> str:
    """The human message inside the shapes providers use for errors."""
    if depth > 3:
        return ""
    if isinstance(value, list) and value:
        return _message_of(value[0], depth + 1)
    if isinstance(value, str):
        return value
    if not isinstance(value, dict):
        return ""
    error = value.get("error")
    if isinstance(error, str) and error.strip():
        return error
    if isinstance(error, dict):
        message = error.get("message")
        message = message if isinstance(message, str) else ""
        raw = _raw_message(_dict(error.get("metadata")).get("raw"), depth)
        if raw and message.strip().lower() in _GENERIC_MESSAGES:
            return raw
        return message or raw
    for key in ("message", "detail", "msg"):
        if isinstance(value.get(key), str) and value[key].strip():
            return value[key]
    return ""


def _raw_message(raw: object, depth: int) -> str:
    """OpenRouter's metadata.raw: the upstream provider's error, often itself JSON text."""
    if isinstance(raw, str):
        try:
            return _message_of(json.loads(raw), depth + 1) or raw
        except (ValueError, RecursionError):
            return raw
    return _message_of(raw, depth + 1)


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"
