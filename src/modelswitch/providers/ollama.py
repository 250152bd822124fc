"""Ollama's native API: `POST {base_url}/api/chat`, answered as newline-delimited JSON.

Each line is `{"message": {"role", "content", "thinking"?}, "done": false}`; the last has
`"done": true` with `done_reason`, `prompt_eval_count`, `eval_count` and `eval_duration` (ns).
Older Ollama versions and some chat templates leave reasoning inline in `content` as
`<think>...</think>`; it is split out (thinktags.ThinkSplitter) as on the OpenAI-compatible path.
`think` (true/false, or an effort word for models that take one) turns reasoning on or off and
puts it in `message.thinking`. Errors are `{"error": "..."}`, as the body of a 4xx/5xx or as a
line mid-stream. `GET /api/tags` lists the models pulled locally.

Ollama measures its own generation speed; the final Done carries it as `tokens_per_s`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from ..conversation import Conversation
from ..errors import OverloadedError, ProtocolError, ProviderError, StreamError
from ..events import Done, Event, Notice, ReasoningDelta, TextDelta, ToolCall, Usage
from .sse import iter_ndjson
from .base import HttpRequest, Target, arguments_text, call_arguments, error_text, openai_tools
from .thinktags import ThinkSplitter

NAME = "ollama"
_FINISH = {"stop": "stop", "length": "length", "tool_calls": "tool_calls"}


def eval_rate(eval_count: object, eval_duration_ns: object) -> float | None:
    """Tokens per second from Ollama's counters; None when they are missing or zero."""
    if not isinstance(eval_count, int) or not isinstance(eval_duration_ns, int):
        return None
    if not 0 < eval_count <= 10**12 or not 0 < eval_duration_ns <= 10**18:
        return None  # absurd counters (10**400 cannot even become a float) are unknown
    return eval_count / (eval_duration_ns / 1e9)


def think_value(reasoning: bool | str | int | None) -> bool | str | None:
    """The request's `think` for a `reasoning` setting; None leaves the model's default."""
    if reasoning is None or isinstance(reasoning, (bool, str)):
        return reasoning
    # Ollama has no token budgets: a positive budget can only mean "think".
    return reasoning > 0


def tags_request(base_url: str) -> HttpRequest:
    """The request listing the models pulled into this Ollama (`modelswitch models`)."""
    return HttpRequest("GET", base_url.rstrip("/") + "/api/tags", {"accept": "application/json"}, None)


def parse_tags(body: bytes) -> list[str]:
    """Model names from an /api/tags body, in the order Ollama lists them."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"/api/tags did not answer JSON: {body[:80]!r}") from exc
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, list):
        raise ProtocolError("/api/tags answer has no `models` list")
    names: list[str] = []
    for entry in models:
        name = (entry.get("name") or entry.get("model")) if isinstance(entry, dict) else None
        if isinstance(name, str) and name and name not in names:
            names.append(name)
    return names


class OllamaProtocol:
    """Ollama's /api/chat wire protocol."""

    name = NAME
    # Ollama documents no image size limit; what modelswitch reads at most is the bound.
    max_image_bytes = 20_000_000
    # Read by the transport to finish its 404 and connection-refused messages.
    not_found_hint = "run `ollama pull {model}`"
    unreachable_hint = "is Ollama running? Start it with `ollama serve`"

    def build_request(self, target: Target, conversation: Conversation) -> HttpRequest:
        """The streaming request for this conversation, well-formed for this API."""
        messages: list[dict] = []
        if conversation.system and conversation.system.strip():
            messages.append({"role": "system", "content": conversation.system})
        for message in conversation.for_request():
            for rnd in message.rounds if message.role == "assistant" else ():
                # Ollama's calls have no ids: a result names its tool (`tool_name`), in call order.
                calls = [{"function": {"name": c.name, "arguments": call_arguments(c)}} for c in rnd.calls]
                messages.append({"role": "assistant", "content": rnd.text, "tool_calls": calls})
                messages.extend({"role": "tool", "content": r.content, "tool_name": r.name} for r in rnd.results)
            text = message.prompt_text if message.role == "user" else message.text_with_sources()
            if not text.strip():
                continue
            # /api/chat takes a message's images as a list of bare base64 strings beside content.
            images = [a.base64 for a in message.images]
            if messages and messages[-1]["role"] == message.role and "tool_calls" not in messages[-1]:
                # Many models' chat templates refuse two turns of one role in a row.
                messages[-1]["content"] += "\n\n" + text
                if images:
                    messages[-1].setdefault("images", []).extend(images)
            else:
                messages.append({"role": message.role, "content": text, **({"images": images} if images else {})})
        body: dict = {"model": target.model_id, "messages": messages, "stream": True}
        if target.tools:
            body["tools"] = openai_tools(target.tools)
        think = think_value(target.reasoning)
        if think is not None:
            body["think"] = think
        options: dict = {}
        if target.temperature is not None:
            options["temperature"] = target.temperature
        if target.max_tokens is not None:
            options["num_predict"] = target.max_tokens
        if options:
            body["options"] = options
        headers = {"content-type": "application/json"}
        if target.api_key:  # a remote Ollama behind a proxy, or ollama.com
            headers["authorization"] = f"Bearer {target.api_key}"
        headers.update(dict(target.headers))
        return HttpRequest("POST", target.base_url.rstrip("/") + "/api/chat", headers, body)

    def parse_stream(self, chunks: Iterable[bytes], target: Target) -> Iterator[Event]:
        """Raw NDJSON bytes (any chunking) to events, ending in a Done with the server-measured speed."""
        # Older Ollama and some templates leave the reasoning inline in content as <think>...</think>.
        think = ThinkSplitter(think_value(target.reasoning) is True, target.model_id)
        try:
            yield from _lines(chunks, target, think)
        except Exception:
            # Whatever was held back (a partial tag, untagged text) is part of the partial answer.
            yield from think.close()
            raise

    def models_request(self, base_url: str) -> HttpRequest:
        """The catalog's name for `tags_request`: GET /api/tags."""
        return tags_request(base_url)

    def parse_models(self, body: bytes) -> list[str]:
        """The catalog's name for `parse_tags`, quiet as the catalog wants: [] for a bad body."""
        try:
            return parse_tags(body)
        except ProtocolError:
            return []

    def error_message(self, status: int, body: bytes) -> str:
        """The `error` string of `{"error": "..."}`, else ""."""
        return error_text(body)


PROTOCOL = OllamaProtocol()


def _lines(chunks: Iterable[bytes], target: Target, think: ThinkSplitter) -> Iterator[Event]:
    reasoning_seen = False
    called = 0
    for line in iter_ndjson(chunks):
        if not isinstance(line, dict):
            raise ProtocolError(f"unexpected JSON line in stream: {str(line)[:80]!r}")
        if "error" in line:
            raise _stream_error(line["error"])
        message = line.get("message")
        if isinstance(message, dict):
            thinking = message.get("thinking")
            if isinstance(thinking, str) and thinking:
                if not reasoning_seen:
                    # Reasoning has its own field, so untagged content is the answer.
                    reasoning_seen = True
                    yield from think.release()
                yield ReasoningDelta(thinking)
            if isinstance(message.get("content"), str) and message["content"]:
                yield from think.feed(message["content"])
            for call in message.get("tool_calls") or () if isinstance(message.get("tool_calls"), list) else ():
                function = call.get("function") if isinstance(call, dict) else None
                if isinstance(function, dict) and isinstance(function.get("name"), str):
                    given = call.get("id")
                    call_id = given if isinstance(given, str) and given else f"call_{called}"
                    called += 1
                    yield ToolCall(call_id, function["name"], arguments_text(function.get("arguments")))
        if line.get("done") is True:
            yield from think.close()
            yield from _finish(line, target, called > 0)
            return
    raise StreamError("the stream ended before its done line (answer incomplete)")


def _finish(line: dict, target: Target, called: bool = False) -> Iterator[Event]:
    def count(key: str) -> int:
        value = line.get(key)
        return value if isinstance(value, int) else 0

    # Ollama counts thinking inside eval_count and does not report it apart. A done line with
    # neither counter says nothing about usage: unknown, never a count of 0.
    if any(isinstance(line.get(k), int) for k in ("prompt_eval_count", "eval_count")):
        yield Usage(input_tokens=count("prompt_eval_count"), output_tokens=count("eval_count"))
    reason = line.get("done_reason") if isinstance(line.get("done_reason"), str) else None
    if reason == "length":
        limit = f" ({target.max_tokens})" if target.max_tokens else ""
        yield Notice(f"stopped: the answer hit max_tokens{limit}")
    rate = eval_rate(line.get("eval_count"), line.get("eval_duration"))
    if called and reason in (None, "stop"):
        reason = "tool_calls"  # Ollama ends a tool call with done_reason "stop"
    yield Done(_FINISH.get(reason or "", reason), rate)


def _stream_error(error: object) -> ProviderError:
    text = error if isinstance(error, str) else json.dumps(error)
    if "busy" in text or "overloaded" in text:
        return OverloadedError(f"overloaded: {text}")
    return StreamError(f"error in stream: {text}")
