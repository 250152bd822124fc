"""What every renderer shares: the Renderer interface and the footer and thought lines.

Below render.py (which picks a renderer) and live.py / compare.py (which draw in a terminal), so
neither has to import the other's module to reach them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config.pricing import Cost
    from ..conversation import Message


class Renderer:
    """Receives one answer's stream: begin, reasoning/text/notice pieces, then end or abort."""

    def begin(self, model_name: str) -> None:
        """An answer from `model_name` is on its way."""

    def reasoning(self, text: str) -> None:
        """A piece of the model's chain of thought."""

    def text(self, text: str) -> None:
        """A piece of the answer."""

    def notice(self, text: str) -> None:
        """One line the user should see that is not part of the answer."""

    def search(self, query: str) -> None:
        """The provider is searching the web for `query` (its own search, for this answer)."""
        self.notice(search_text(query))

    def end(self, message: Message, cost: Cost | None) -> None:
        """The answer is over; finish drawing it."""

    def abort(self) -> None:
        """Stop drawing now, keeping what is on screen (Ctrl-C or an error). Idempotent."""

    def pause(self) -> None:
        """Tools run between two rounds of one answer: keep what is drawn, and take the next
        round's reasoning and text as if the answer began again."""


def footer_text(message: Message, cost: Cost | None) -> str:
    """"hy · 0.4 s to first token · 61 tok/s · 230 tokens · ¥0.0012" and what went wrong."""
    name = message.model.name if message.model is not None else "answer"
    if message.route:
        name += f" via {message.route}"
    if message.fallback_from:
        name += f" (instead of {message.fallback_from})"
    parts = [name]
    if message.status == "interrupted":
        parts.append("interrupted")
    elif message.status == "error":
        parts.append("failed")
    timing = message.timing
    if timing is not None and timing.ttft_s is not None:
        parts.append(f"{timing.ttft_s:.1f} s to first token")
    if timing is not None and timing.tokens_per_s:
        parts.append(f"{timing.tokens_per_s:.0f} tok/s")
    usage = message.usage
    if usage is not None and usage.output_tokens:
        parts.append(f"{usage.output_tokens} tokens")
    if cost is not None:
        parts.append(str(cost))
    return " · ".join(parts)


def search_text(query: str) -> str:
    """"searching: QUERY", or "searching…" for a search whose query the provider does not say (Kimi)."""
    query = " ".join(query.split())
    return f"searching: {query}" if query else "searching…"


def linkable(url: str) -> bool:
    """Only a web address becomes a clickable link; anything else is shown as text."""
    return url.lower().startswith(("https://", "http://")) and not any(c.isspace() for c in url)


def thought_text(seconds: float, tokens: int) -> str:
    """The one line a collapsed chain of thought leaves behind."""
    took = f"{seconds:.1f} s" if seconds < 60 else duration_text(seconds)
    return f"Thought for {took} · {tokens} tokens"


def duration_text(seconds: float) -> str:
    """`45 s`, `27 min 12 s`, `1 h 3 min`: what a person reads at a glance."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s" if s % 60 else f"{s // 60} min"
    return f"{s // 3600} h {s % 3600 // 60} min"

