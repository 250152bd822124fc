"""Gemini API: `POST {base_url}/v1beta/models/{id}:streamGenerateContent?alt=sse`.

Request: roles are `user` and `model` (never `assistant` or `system`), the system prompt goes in
`systemInstruction`, consecutive same-role turns are merged, and the `reasoning` setting becomes
`generationConfig.thinkingConfig` (`includeThoughts`, `thinkingBudget`).

Response: SSE frames ending in CRLF CRLF and no terminator, each a GenerateContentResponse. Parts
with `thought: true` are reasoning; `thoughtSignature` on a part is the model's encrypted thinking
state, kept (as a ReplayState) and sent back in the same part only to the same model.
`usageMetadata` is cumulative and reports thoughts apart from the answer. Without alt=sse the
same objects arrive as one JSON array; both framings are accepted.
"""

from __future__ import annotations

import codecs
import itertools
import json
from collections.abc import Iterable, Iterator
from urllib.parse import quote

from ..conversation import Conversation, ToolRound
from ..errors import OverloadedError, ProtocolError, ProviderError, RateLimitError, StreamError
from ..events import Done, Event, Notice, ReasoningDelta, ReplayState, SearchQuery, TextDelta, ToolCall, Usage
from .sse import iter_sse, loads_event
from .base import HttpRequest, Sources, Target, arguments_text, call_arguments, error_text, tool_parameters

NAME = "gemini"
# Google's documented stand-in for a thoughtSignature on a functionCall part this model did not
# write (history from another model, or from before a switch): without one, Gemini 3 rejects
# the request with 400 "Function call is missing a thought_signature".
PLACEHOLDER_SIGNATURE = "skip_thought_signature_validator"
EFFORT_BUDGETS: dict[str, int] = {"low": 1024, "medium": 8192, "high": 24576}

_FINISH = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}
_BLOCK_WORDS = {
    "SAFETY": "Gemini's safety filter blocked the rest of the answer",
    "RECITATION": "Gemini blocked the answer for reciting existing text too closely (RECITATION)",
    "BLOCKLIST": "Gemini blocked the answer: it contained a blocklisted term",
    "PROHIBITED_CONTENT": "Gemini blocked the answer as prohibited content",
    "SPII": "Gemini blocked the answer: it contained sensitive personal information",
    "IMAGE_SAFETY": "Gemini's safety filter blocked the image",
}


def thinking_config(model_id: str, reasoning: bool | str | int | None) -> dict | None:
    """generationConfig.thinkingConfig for a `reasoning` setting; None leaves the model's default."""
    if reasoning is None:
        return None
    if reasoning is False or (type(reasoning) is int and reasoning == 0):
        # Pro models only work in thinking mode (budget 0 is a 400); not showing it is all we can do.
        return None if "pro" in model_id else {"thinkingBudget": 0}
    if reasoning is True:
        return {"includeThoughts": True}
    if isinstance(reasoning, str):
        return {"includeThoughts": True, "thinkingBudget": EFFORT_BUDGETS.get(reasoning, -1)}
    # A negative budget asks for dynamic thinking, which the API spells -1.
    return {"includeThoughts": True, "thinkingBudget": reasoning if reasoning > 0 else -1}


class GeminiProtocol:
    """The Gemini generateContent wire protocol."""

    name = NAME
    # Inline data counts against Gemini's 20 MB request limit, in base64: 15 MB of image bytes.
    max_image_bytes = 15_000_000

    def build_request(self, target: Target, conversation: Conversation) -> HttpRequest:
        """The streaming request for this conversation, well-formed for this API."""
        body: dict = {"contents": _contents(conversation, target.model_id)}
        if conversation.system and conversation.system.strip():
            body["systemInstruction"] = {"parts": [{"text": conversation.system}]}
        if target.tools:
            body["tools"] = [{"functionDeclarations": [
                {"name": t.name, "description": t.description, "parameters": tool_parameters(t)} for t in target.tools
            ]}]
        config: dict = {}
        if target.temperature is not None:
            config["temperature"] = target.temperature
        if target.max_tokens is not None:
            config["maxOutputTokens"] = target.max_tokens
        thinking = thinking_config(target.model_id, target.reasoning)
        if thinking is not None:
            config["thinkingConfig"] = thinking
        if config:
            body["generationConfig"] = config
        if target.search:
            # Grounding with Google Search: Google runs the searches; groundingMetadata says which.
            body["tools"] = [{"google_search": {}}]
        model = quote(target.model_id.removeprefix("models/"), safe="-._~")
        url = f"{target.base_url.rstrip('/')}/v1beta/models/{model}:streamGenerateContent?alt=sse"
        headers = {"content-type": "application/json"}
        if target.api_key:
            headers["x-goog-api-key"] = target.api_key
        headers.update(dict(target.headers))
        return HttpRequest("POST", url, headers, body)

    def parse_stream(self, chunks: Iterable[bytes], target: Target) -> Iterator[Event]:
        """Raw response bytes (any chunking, SSE or JSON array) to events, ending in Done."""
        answer_parts: list[dict] = []
        usage: dict = {}  # stays empty when no usageMetadata came: usage unknown, not 0
        finish: str | None = None
        blocked: str | None = None
        sources = Sources()
        queries: set[str] = set()
        calls: list[ToolCall] = []
        for obj in _objects(chunks):
            if "error" in obj:
                raise _stream_error(obj["error"])
            if isinstance(obj.get("usageMetadata"), dict):
                usage = obj["usageMetadata"]
            feedback = obj.get("promptFeedback")
            if isinstance(feedback, dict) and feedback.get("blockReason"):
                blocked = str(feedback["blockReason"])
            candidates = obj.get("candidates")
            if not isinstance(candidates, list) or not candidates:
                continue
            candidate = candidates[0] if isinstance(candidates[0], dict) else {}
            content = candidate.get("content")
            parts = content.get("parts") if isinstance(content, dict) else None
            for part in parts if isinstance(parts, list) else ():
                if isinstance(part, dict):
                    yield from _part(part, answer_parts, calls)
            grounding = candidate.get("groundingMetadata")
            if isinstance(grounding, dict):
                yield from _grounding(grounding, sources, queries)
            reason = candidate.get("finishReason")
            finish = reason if isinstance(reason, str) and reason else finish
        if finish is None and blocked is None:
            raise StreamError("the stream ended before a finishReason (answer incomplete)")
        if usage:
            yield _usage(usage)
        if any("thoughtSignature" in p or "functionCall" in p for p in answer_parts):
            data = json.dumps({"parts": answer_parts}, ensure_ascii=False)
            yield ReplayState(NAME, target.model_id, data)
        if blocked is not None:
            yield Notice(f"blocked: Gemini refused the prompt ({blocked})")
            yield Done("content_filter")
            return
        notice = _finish_notice(finish or "", target)
        if notice:
            yield Notice(notice)
        if calls and finish == "STOP":
            yield Done("tool_calls")  # Gemini ends a function call with STOP
            return
        yield Done(_FINISH.get(finish or "", (finish or "").lower() or None))

    def error_message(self, status: int, body: bytes) -> str:
        """`error.message` from `{"error": {"code", "message", "status"}}`, else ""."""
        return error_text(body)


PROTOCOL = GeminiProtocol()


# -- request ---------------------------------------------------------------------------------


def _contents(conversation: Conversation, model_id: str) -> list[dict]:
    out: list[dict] = []
    for message in conversation.for_request():
        role = "model" if message.role == "assistant" else "user"
        for rnd in message.rounds if role == "model" else ():
            step = _round_parts(rnd, model_id)
            _add(out, "model", step)
            # A call Gemini gave an id must be answered with that id; ours (made up) are not sent.
            ids = [p["functionCall"].get("id") for p in step if "functionCall" in p]
            answers = []
            for i, r in enumerate(rnd.results):
                response: dict = {"name": r.name, "response": {"error" if r.is_error else "result": r.content}}
                if i < len(ids) and isinstance(ids[i], str):
                    response = {"id": ids[i], **response}
                answers.append({"functionResponse": response})
            _add(out, "user", answers)
        parts = _replay_parts(message.replay_for(NAME, model_id), message.text, 0) if role == "model" else None
        if parts is None:
            text = message.prompt_text if role == "user" else message.text_with_sources()
            if not text.strip():
                continue  # an empty text part is a 400
            # Images as inline data before the text, the order Google's vision guide uses.
            parts = [{"inlineData": {"mimeType": a.media_type, "data": a.base64}} for a in message.images]
            parts.append({"text": text})
        _add(out, role, parts)
    return out


def _add(out: list[dict], role: str, parts: list[dict]) -> None:
    if not parts:
        return
    if out and out[-1]["role"] == role:
        out[-1]["parts"].extend(parts)
    else:
        out.append({"role": role, "parts": parts})


def _round_parts(rnd: ToolRound, model_id: str) -> list[dict]:
    """A tool round as this model sent it (signature on its functionCall part), or, for a round
    another model wrote, plain parts with the documented placeholder on the first call only (as
    Gemini itself signs only the first of parallel calls)."""
    own = _replay_parts(rnd.replay_for(NAME, model_id), rnd.text, len(rnd.calls))
    if own is not None:
        return own
    parts: list[dict] = [{"text": rnd.text}] if rnd.text.strip() else []
    for n, call in enumerate(rnd.calls):
        part: dict = {"functionCall": {"name": call.name, "args": call_arguments(call)}}
        if n == 0:
            part["thoughtSignature"] = PLACEHOLDER_SIGNATURE
        parts.append(part)
    return parts


def _replay_parts(states: tuple[ReplayState, ...], text: str, n_calls: int) -> list[dict] | None:
    """The turn's parts as this model sent them, signatures in place, if the text and the number
    of calls are unchanged."""
    for state in states:
        try:
            parts = json.loads(state.data).get("parts")
        except (ValueError, AttributeError):
            continue
        if not isinstance(parts, list) or not all(isinstance(p, dict) for p in parts):
            continue
        said = "".join(str(p.get("text", "")) for p in parts if not p.get("thought"))
        if said == text and sum("functionCall" in p for p in parts) == n_calls:
            return [dict(p) for p in parts]
    return None


# -- response --------------------------------------------------------------------------------


def _grounding(meta: dict, sources: Sources, queries: set[str]) -> Iterator[Event]:
    """groundingMetadata: the searches Google ran (webSearchQueries) and the pages the answer
    rests on (groundingChunks[].web: uri, title). It may come in several chunks, so each query
    and source is yielded once."""
    asked = meta.get("webSearchQueries")
    for query in asked if isinstance(asked, list) else ():
        if isinstance(query, str) and query.strip() and query not in queries:
            queries.add(query)
            yield SearchQuery(query)
    chunks = meta.get("groundingChunks")
    for chunk in chunks if isinstance(chunks, list) else ():
        web = chunk.get("web") if isinstance(chunk, dict) else None
        if isinstance(web, dict):
            citation = sources.add(web.get("title"), web.get("uri"))[1]
            if citation is not None:
                yield citation


def _objects(chunks: Iterable[bytes]) -> Iterator[dict]:
    """Response objects from either framing, told apart by the first byte that is not space."""
    it = iter(chunks)
    head = b""
    for chunk in it:
        head += chunk
        if head.strip():
            break
    rest = itertools.chain([head], it)
    if head.lstrip()[:1] == b"[":
        yield from _array_objects(rest)
    else:
        for sse in iter_sse(rest):
            yield loads_event(sse.data)


def _array_objects(chunks: Iterable[bytes]) -> Iterator[dict]:
    """Objects of one JSON array as each one completes, without waiting for the closing `]`."""
    decoder = json.JSONDecoder()
    utf8 = codecs.getincrementaldecoder("utf-8")("replace")
    buf = ""
    closed = False
    for chunk in chunks:
        text = utf8.decode(chunk)
        buf += text
        # An object can only have completed if its closing brace just arrived.
        if "}" not in text and "]" not in text:
            continue
        pos = 0
        while pos < len(buf):
            ch = buf[pos]
            if ch in " \t\r\n,[":
                pos += 1
                continue
            if ch == "]":
                closed = True
                pos = len(buf)
                break
            try:
                obj, pos = decoder.raw_decode(buf, pos)
            except json.JSONDecodeError:
                break  # incomplete: wait for more bytes
            if not isinstance(obj, dict):
                raise ProtocolError(f"unexpected JSON in stream: {str(obj)[:80]!r}")
            yield obj
        buf = buf[pos:]
    if not closed or buf.strip():
        raise ProtocolError(f"JSON array stream ended mid-object: {buf[:80]!r}")


def _part(part: dict, answer_parts: list[dict], calls: list[ToolCall]) -> Iterator[Event]:
    call = part.get("functionCall")
    if isinstance(call, dict):
        # Kept whole, signature and all: the same model must get this part back unchanged.
        answer_parts.append(dict(part))
        given = call.get("id")
        name = call["name"] if isinstance(call.get("name"), str) else ""
        event = ToolCall(given if isinstance(given, str) and given else f"call_{len(calls)}", name,
                         arguments_text(call.get("args")))
        calls.append(event)
        yield event
        return
    text = part.get("text")
    text = text if isinstance(text, str) else ""
    signature = part.get("thoughtSignature")
    signature = signature if isinstance(signature, str) else None
    if part.get("thought"):
        if text:
            yield ReasoningDelta(text)
        if signature:
            answer_parts.append({"text": text, "thought": True, "thoughtSignature": signature})
        return
    if not text and not signature:
        # functionCall and other kinds carry nothing a chat shows; nor does the empty text part
        # Gemini 3 ends a call with, and sent back it would be an empty text part (a 400).
        return
    if text:
        yield TextDelta(text)
    # A signature belongs to its own part: text after it goes into a new part, never into it.
    if signature or not answer_parts or "thoughtSignature" in answer_parts[-1] or "text" not in answer_parts[-1]:
        entry: dict = {"text": text}
        if signature:
            entry["thoughtSignature"] = signature
        answer_parts.append(entry)
    else:
        answer_parts[-1]["text"] += text


def _usage(meta: dict) -> Usage:
    def count(key: str) -> int:
        value = meta.get(key)
        return value if isinstance(value, int) else 0

    thoughts = count("thoughtsTokenCount")
    return Usage(
        # promptTokenCount includes cachedContentTokenCount. The search results Google Search
        # grounding puts before the model are counted apart (toolUsePromptTokenCount), and
        # totalTokenCount includes them: they are input too.
        input_tokens=count("promptTokenCount") + count("toolUsePromptTokenCount"),
        output_tokens=count("candidatesTokenCount") + thoughts,  # thoughts are billed as output
        reasoning_tokens=thoughts,
        cached_tokens=count("cachedContentTokenCount"),
    )


def _finish_notice(finish: str, target: Target) -> str:
    if finish in ("", "STOP"):
        return ""
    if finish == "MAX_TOKENS":
        limit = f" ({target.max_tokens})" if target.max_tokens else ""
        return f"stopped: the answer hit max_tokens{limit}"
    if finish in _BLOCK_WORDS:
        return f"stopped: {_BLOCK_WORDS[finish]}"
    return f"stopped: Gemini ended the answer early ({finish})"


def _stream_error(error: object) -> ProviderError:
    error = error if isinstance(error, dict) else {"message": str(error)}
    status = str(error.get("status") or "")
    code = error.get("code")
    message = str(error.get("message") or status or "error")
    if status == "RESOURCE_EXHAUSTED" or code == 429:
        return RateLimitError(f"rate limited: {message}")
    if status in ("UNAVAILABLE", "INTERNAL") or code in (500, 503):
        return OverloadedError(f"overloaded: {message}")
    return StreamError(f"error in stream ({status or code}): {message}")
