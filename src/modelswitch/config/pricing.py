"""What an answer cost: usage x list price. Unknown price means unknown cost, never a guess."""

from __future__ import annotations

from dataclasses import dataclass

from typing import TYPE_CHECKING

from .load import Price
from ..events import Usage

if TYPE_CHECKING:
    from .load import Config
    from ..conversation import Message


@dataclass(frozen=True, slots=True)
class Cost:
    amount: float
    currency: str
    free: bool = False  # the model's price is 0 (a local model): "free", not "$0.0000"

    def __str__(self) -> str:
        if self.free and self.amount == 0:
            return "free"
        symbol = {"USD": "$", "CNY": "¥", "EUR": "€", "GBP": "£"}.get(self.currency)
        digits = 4 if self.amount < 1 else 2
        return f"{symbol}{self.amount:.{digits}f}" if symbol else f"{self.amount:.{digits}f} {self.currency}"


# Anthropic's cache writes, as multiples of the input price: five-minute and one-hour entries.
CACHE_WRITE_RATE = 1.25
CACHE_WRITE_1H_RATE = 2.0


def cost_of(usage: Usage | None, price: Price | None) -> Cost | None:
    """Cached input tokens at the cached price (when known), cache writes at their surcharge;
    reasoning is billed as output. Unknown usage or price is an unknown cost, never 0."""
    if usage is None or price is None:
        return None
    cached = min(usage.cached_tokens, usage.input_tokens)
    write_1h = min(usage.cache_write_1h_tokens, usage.input_tokens - cached)
    write_5m = min(usage.cache_write_tokens, usage.input_tokens - cached - write_1h)
    cached_rate = price.cached_input if price.cached_input is not None else price.input
    amount = (
        (usage.input_tokens - cached - write_5m - write_1h) * price.input
        + cached * cached_rate
        + (write_5m * CACHE_WRITE_RATE + write_1h * CACHE_WRITE_1H_RATE) * price.input
        + usage.output_tokens * price.output
    ) / 1_000_000
    free = price.input == 0 and price.output == 0 and not price.cached_input
    return Cost(round(amount, 8), price.currency, free=free)


def message_cost(config: Config, message: Message) -> Cost | None:
    """What an answer cost at the price of the model that really wrote it (fallbacks included)."""
    if message.model is None:
        return None
    from ..errors import UsageError

    try:
        spec = config.resolve(message.model.alias or message.model.full_id)
        if spec.full_id != message.model.full_id:
            # Another route of that model answered: its provider's price, not the alias's.
            spec = config.resolve(message.model.full_id)
    except UsageError:
        return None  # a model no longer in the config: its price is unknown, not guessed
    return cost_of(message.usage, spec.price)
