"""The contract every wire protocol fulfils. Providers never print, read config or import rich."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol as _TypingProtocol

from ..conversation import Conversation, ToolSpec
from ..events import (
    Citation, Done, Event, Notice, ReasoningDelta, ReplayState, SearchQuery, TextDelta, ToolCall, clean_text,
    is_high_surrogate,
)


@dataclass(frozen=True, slots=True)
class Target:
    """Everything a protocol needs to know about where a request goes and for which model."""

    provider: str
    base_url: str
    model_id: str
    api_key: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    temperature: float | None = None
    max_tokens: int | None = None
    # True/False, "low"/"medium"/"high", or a token budget; None means the provider's default.
    reasoning: bool | str | int | None = None
    # How the user supplies the key ("DEEPSEEK_API_KEY"), named when the key is rejected.
    key_hint: str = ""
    # Ask the provider to search the web itself, by this mechanism: the protocol's name, or an
    # OpenAI-compatible vendor of providers/search.py ("openrouter", "qwen", ...); "": no search.
    search: str = ""
    # The tools offered to the model for this request; () offers none.
    tools: tuple[ToolSpec, ...] = ()
    # Pass `reasoning_content` back inside tool-call spans (declared in config); None: undeclared,
    # the protocol decides by the host (see openai.passes_reasoning_back).
    reasoning_passback: bool | None = None
    # This answer's provider state so far, sent after the conversation when the provider paused
    # the answer to be resumed (Done(RESUME)): Kimi's $web_search round, echoed back.
    resume: tuple[ReplayState, ...] = ()
    # Send `reasoning` on/off as DeepSeek's `{"thinking": {"type": ...}}` (declared in config);
    # None: undeclared, the protocol decides by the host (see openai.toggles_thinking). Without it
    # False/True send nothing, as OpenAI and most others reject the unknown field.
    thinking_toggle: bool | None = None


# Done.finish_reason of a stream the provider paused after running its own tool (Kimi's
# $web_search): the engine sends the request again with the stream's ReplayStates in `resume`.
RESUME = "resume"


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A request ready to send. `body` is the JSON payload."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: dict | None = None


class Protocol(_TypingProtocol):
    """One wire protocol (openai, anthropic, gemini, ollama).

    Optional attributes, read with getattr where they exist:
      not_found_hint: str      said after a 404 ("run `ollama pull {model}`"); {model} is filled in
      unreachable_hint: str    said after connection refused ("is Ollama running? ...")
      max_image_bytes: int     the largest image (raw bytes) the API accepts; larger is refused before sending
      keepalive_lines: frozenset[bytes]  whole stream lines that only keep the connection alive
                               (Anthropic's pings): not progress for the read-timeout watchdog
      models_request(base_url) -> HttpRequest and parse_models(body: bytes) -> list[str]
                               what a (local) server has loaded, for `models` and first-run discovery
    """

    name: str

    def build_request(self, target: Target, conversation: Conversation) -> HttpRequest:
        """The streaming request for this conversation, well-formed for this API."""
        ...

    def parse_stream(self, chunks: Iterable[bytes], target: Target) -> Iterator[Event]:
        """Raw response bytes (any chunking) to events, ending in Done.

        Raises ProtocolError for bytes that are not the wire format, and a ProviderError subclass
        for an error the provider reports inside the stream (OverloadedError for "overloaded").
        """
        ...

    def error_message(self, status: int, body: bytes) -> str:
        """The human part of an error body ("Insufficient Balance"), or "" if there is none."""
        ...


def error_text(body: bytes) -> str:
    """The message in an error body shaped `{"error": {"message": ...}}` or `{"error": "..."}`
    (also wrapped in a JSON array, as Gemini's array framing does), or a short plain-text body;
    "" for anything else, HTML included. Never raises: an error body must not cause a second error.
    """
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        text = body.decode("utf-8", "replace").strip()
        return text if text and len(text) <= 300 and "<" not in text else ""
    if isinstance(data, list) and data:
        data = data[0]
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"]
    return error if isinstance(error, str) else ""


def valid_text(events: Iterable[Event]) -> Iterator[Event]:
    """Every protocol's events with their text made valid Unicode (see events.clean_text).

    A delta that ends on the first half of a surrogate pair keeps it back until the next delta of
    the same channel (answer or reasoning), which usually begins with the second half; a half
    still held at Done, at the end or at an error becomes U+FFFD.
    """
    held: dict[type, str] = {}
    try:
        for event in events:
            if type(event) is TextDelta and not held and event.text.isascii():
                yield event  # the bulk of every stream: nothing to rejoin or replace
                continue
            if isinstance(event, (TextDelta, ReasoningDelta)):
                kind = type(event)
                text = held.pop(kind, "") + event.text if held else event.text
                if text and is_high_surrogate(text[-1]):
                    held[kind], text = text[-1], text[:-1]
                if text:
                    fixed = clean_text(text)
                    yield event if fixed is event.text else kind(fixed)
                continue
            if isinstance(event, Done):
                yield from _flush(held)
            if isinstance(event, Notice):
                event = Notice(clean_text(event.text))
            elif isinstance(event, ReplayState):
                event = ReplayState(event.protocol, event.model, clean_text(event.data))
            elif isinstance(event, Citation):
                event = Citation(clean_text(event.title), clean_text(event.url), clean_text(event.cited_text))
            elif isinstance(event, SearchQuery):
                event = SearchQuery(clean_text(event.query))
            yield event
    except Exception:
        # The held half is part of the partial answer the caller keeps.
        yield from _flush(held)
        raise
    yield from _flush(held)


def _flush(held: dict[type, str]) -> Iterator[Event]:
    for kind in list(held):
        del held[kind]
        yield kind("\ufffd")


# A quoted passage longer than this is cut: it is shown under the answer and stored with it.
_CITED_TEXT_LIMIT = 500


class Sources:
    """The sources one answer cites, numbered from 1 by first appearance of their URL.

    The engine keeps citations in the same order (first of each URL), so a number a protocol
    writes into the answer as a "[n]" marker is the number the sources list shows.
    """

    def __init__(self) -> None:
        self._numbers: dict[str, int] = {}

    def add(self, title: object, url: object, cited_text: object = "") -> tuple[int, Citation | None]:
        """The source's number (0 for no usable URL) and its Citation when it is new, else None."""
        if not isinstance(url, str) or not url.strip():
            return 0, None
        url = url.strip()
        if url in self._numbers:
            return self._numbers[url], None
        self._numbers[url] = n = len(self._numbers) + 1
        quote = " ".join(cited_text.split()) if isinstance(cited_text, str) else ""
        if len(quote) > _CITED_TEXT_LIMIT:
            quote = quote[: _CITED_TEXT_LIMIT - 1] + "…"
        return n, Citation(" ".join(title.split()) if isinstance(title, str) else "", url, quote)

    def __len__(self) -> int:
        return len(self._numbers)
def call_arguments(call: ToolCall) -> dict:
    """A call's arguments as the JSON object every protocol's request wants. Text a model wrote
    that is not a JSON object (cut off, a bare string) goes back as {}: the call is still told."""
    try:
        value = json.loads(call.arguments or "{}")
    except (ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def tool_parameters(spec: ToolSpec) -> dict:
    """A tool's JSON Schema as an object (a schema that is not one offers no arguments)."""
    try:
        value = json.loads(spec.parameters)
    except (ValueError, RecursionError):
        value = None
    return value if isinstance(value, dict) else {"type": "object", "properties": {}}


def arguments_text(value: object) -> str:
    """Arguments a protocol sends as an object (Anthropic, Gemini, Ollama) as JSON text."""
    return json.dumps(value if isinstance(value, dict) else {}, ensure_ascii=False)


def openai_tools(tools: tuple[ToolSpec, ...]) -> list[dict]:
    """`tools` in the Chat Completions shape, which Ollama's /api/chat takes too."""
    return [
        {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": tool_parameters(t)}}
        for t in tools
    ]
