"""What a provider stream yields, provider-neutral. Frozen values, one per wire event."""

from __future__ import annotations

from dataclasses import dataclass


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

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
            self.cached_tokens + other.cached_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
            self.cache_write_1h_tokens + other.cache_write_1h_tokens,
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
class Notice:
    """Something the user should be told that is not an error (e.g. finish_reason=length)."""

    text: str


@dataclass(frozen=True, slots=True)
class Done:
    """The stream ended normally."""

    finish_reason: str | None = None
    # Speed the server measured itself (Ollama: eval_count / eval_duration), when it says.
    tokens_per_s: float | None = None


Event = TextDelta | ReasoningDelta | Usage | ReplayState | Notice | Done
