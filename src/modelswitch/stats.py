"""Per-model totals of tokens, cost and speed, for /cost and `sessions show --stats`."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .conversation import Message
from .pricing import Cost


@dataclass
class _Acc:
    turns: int = 0
    input: int = 0
    output: int = 0
    reasoning: int = 0
    costs: dict[str, float] = field(default_factory=dict)
    ttfts: list[float] = field(default_factory=list)
    speeds: list[float] = field(default_factory=list)

    def add(self, m: Message, cost: Cost | None) -> None:
        self.turns += 1
        if m.usage:
            self.input += m.usage.input_tokens
            self.output += m.usage.output_tokens
            self.reasoning += m.usage.reasoning_tokens
        if cost:
            self.costs[cost.currency] = self.costs.get(cost.currency, 0.0) + cost.amount
        if m.timing and m.timing.ttft_s is not None:
            self.ttfts.append(m.timing.ttft_s)
        if m.timing and m.timing.tokens_per_s:
            self.speeds.append(m.timing.tokens_per_s)

    def row(self, name: str) -> list[str]:
        cost = " + ".join(str(Cost(a, c)) for c, a in self.costs.items()) or "—"
        ttft = f"{sum(self.ttfts) / len(self.ttfts):.2f} s" if self.ttfts else "—"
        tps = f"{sum(self.speeds) / len(self.speeds):.0f}" if self.speeds else "—"
        return [name, str(self.turns), f"{self.input:,}", f"{self.output:,}", f"{self.reasoning:,}", cost, ttft, tps]


def per_model(messages: Iterable[Message], cost_of: Callable[[Message], Cost | None]) -> list[list[str]]:
    """One row per model that answered, then a total row (costs summed per currency, never mixed)."""
    by_model: dict[str, _Acc] = {}
    total = _Acc()
    for m in messages:
        if m.role != "assistant":
            continue
        name = m.model.name if m.model else "?"
        cost = cost_of(m)
        by_model.setdefault(name, _Acc()).add(m, cost)
        total.add(m, cost)
    if not by_model:
        return []
    return [acc.row(name) for name, acc in by_model.items()] + [total.row("total")]
