"""One vocabulary: the words for reasoning and chat settings, and how a typed word becomes a value.

Defined once, read by config validation (`reasoning = "on"` in TOML means what `/set reasoning on`
means), `/set`, `/think`, Tab completion and `ask --reasoning`.
"""

from __future__ import annotations

from .errors import UsageError

# How hard a model reasons: a switch, an effort, or a token budget. None: the provider's default.
Reasoning = bool | str | int | None
REASONING_EFFORTS = ("low", "medium", "high")
_ON, _OFF, _DEFAULT = ("on", "true", "yes"), ("off", "false", "no"), ("default", "auto")
REASONING_HELP = "on, off, low, medium, high, default or a token budget"

# How reasoning is shown: kept, never, or folded to one line (/think); `ask --reasoning` offers
# its own set (a pipe can also send reasoning to stderr; collapsing needs a terminal).
REASONING_VIEWS = ("show", "hide", "collapse")
ASK_REASONING_VIEWS = ("show", "hide", "stderr")

# What `/set KEY VALUE` changes for the rest of a chat.
SETTINGS = ("temperature", "max_tokens", "reasoning")
TEMPERATURE_RANGE = (0.0, 2.0)


def parse_reasoning(value: str) -> Reasoning:
    """A reasoning word as typed (`/set reasoning on`, `reasoning = "high"`), as a value."""
    v = value.strip().lower()
    if v in _ON:
        return True
    if v in _OFF:
        return False
    if v in _DEFAULT:
        return None
    if v in REASONING_EFFORTS:
        return v
    if v.isdigit():
        return int(v)
    raise UsageError(f"reasoning is {REASONING_HELP}")
