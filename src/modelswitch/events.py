"""What a provider stream yields, provider-neutral. Frozen values, one per wire event."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

# More tokens than any model has ever produced or read in one answer, and well inside 2**53.
_TOKEN_LIMIT = 10**12


_SURROGATE = re.compile("[\ud800-\udfff]")


def is_high_surrogate(char: str) -> bool:
    """The first half of a UTF-16 pair: a stream may end a delta on it and send the rest next."""
    return "\ud800" <= char <= "\udbff"


def clean_text(text: str) -> str:
    """`text` as valid Unicode: UTF-16 surrogate pairs joined into their character, lone halves
    replaced by U+FFFD. JSON's "\\ud83d" escapes (JavaScript proxies split emoji so) decode to
    such halves, and one left in makes every later UTF-8 encode (SQLite, the next request) fail.
    """
    if text.isascii() or not _SURROGATE.search(text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the answer."""

    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """A piece of the model's chain of thought; never part of the answer."""

    text: str


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts. output_tokens includes reasoning_tokens (everything billed as output)."""

    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    # Prompt tokens written to a cache (Anthropic), part of input_tokens and billed above it:
    # for five minutes (1.25x input) or for an hour (2x input).
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    # Set here, never by a caller: a count was one no real answer can have, so the whole Usage
    # is unknown. The engine drops such a Usage (usage and cost null, "-"), because a 0 in its
    # place would price the answer definitely and wrongly.
    unknown: bool = False
    # reasoning_tokens is the engine's estimate from the text: the provider streamed reasoning
    # without counting it apart (Anthropic, Ollama, llama.cpp). Shown with a `~`.
    reasoning_estimated: bool = False

    def __post_init__(self) -> None:
        # Counts come from untrusted JSON: one no real answer can have (10**30, -5, a float) is
        # 0 here at the edge, so it never reaches SQLite (64-bit) or a printout, and marks the
        # Usage unknown.
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("unknown", "reasoning_estimated"):
                continue
            if type(value) is not int or not 0 <= value <= _TOKEN_LIMIT:
                object.__setattr__(self, f.name, 0)
                object.__setattr__(self, "unknown", True)

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
            self.cached_tokens + other.cached_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
            self.cache_write_1h_tokens + other.cache_write_1h_tokens,
            self.unknown or other.unknown,
            self.reasoning_estimated or other.reasoning_estimated,
        )


@dataclass(frozen=True, slots=True)
class ReplayState:
    """Opaque provider state (e.g. Anthropic thinking signatures) needed to replay a turn.

    `protocol` and `model` say who may receive it back; `data` is JSON text owned by that protocol.
    """

    protocol: str
    model: str
    data: str


@dataclass(frozen=True, slots=True)
class ToolCall:
    """The model asks to call a tool. Provider-neutral: every protocol's call becomes one of these,
    and every protocol turns one back into its own shape (ids, names, argument JSON).

    `arguments` is JSON object text as the model wrote it (the exact bytes go back to the model);
    `id` is the provider's call id, or one made up when the protocol has none (Ollama, old Gemini).
    """

    id: str
    name: str
    arguments: str = "{}"


@dataclass(frozen=True, slots=True)
class ToolActivity:
    """The tool loop's news for the screen: a call about to run, or how it ended.

    `state` is "running", "done", "failed", "refused" (the user said no), "unapproved" (no one
    could be asked) or "cancelled"; `detail` a few words
    ("0.4 s · 120 chars", the error).
    """

    call: ToolCall
    server: str
    state: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the user should be told that is not an error (e.g. finish_reason=length)."""

    text: str


# The finish reasons (as protocols normalise them in Done) that say what the answer lacks, and the
# word `ask --json` reports as its status for each. Anything else but "stop" is "cut".
_FINISH_STATUS = {
    "stop": "complete",
    "length": "length",
    "content_filter": "content_filter",
    "refusal": "refusal",
    "tool_calls": "tool_calls",
    "pause_turn": "paused",
}


def finish_status(finish_reason: str | None) -> str:
    """"complete" for a normal end (or none reported), else which kind of incomplete answer it is."""
    if not finish_reason:
        return "complete"
    return _FINISH_STATUS.get(finish_reason, "cut")


@dataclass(frozen=True, slots=True)
class Done:
    """The stream ended normally."""

    finish_reason: str | None = None
    # Speed the server measured itself (Ollama: eval_count / eval_duration), when it says.
    tokens_per_s: float | None = None


@dataclass(frozen=True, slots=True)
class Citation:
    """A source the answer rests on, from the provider's own web search: the page's title, its
    URL, and the passage quoted from it when the provider gives one. Untrusted text, like the answer."""

    title: str
    url: str
    cited_text: str = ""


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """A web search the provider ran (or is running) for this answer: shown as it happens."""

    query: str


Event = (TextDelta | ReasoningDelta | Usage | ReplayState | ToolCall | ToolActivity | Notice | Done
         | Citation | SearchQuery)
