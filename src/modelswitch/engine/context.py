"""How big a conversation is, in a given model's tokens, and whether it fits that model's window.

No tokenizer is downloaded: an answer's reported usage counts where the provider gave it, and
everything else is a script-aware estimate (CJK text is about a token per character, Latin text
about four characters per token) scaled per model by the last input_tokens it reported, so the
estimate drifts toward that model's real tokenizer as the chat goes on.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

from ..config.load import ModelSpec
from ..conversation import Conversation, Message

# What a request costs beyond its text: role markers and separators, per message (a guess on the
# safe side: the real figure is 3-7 depending on the chat template).
PER_MESSAGE = 4
# The reply's room when neither the chat nor the model sets max_tokens, capped at an eighth of a
# small window so a 4k local model is not refused for every history.
DEFAULT_RESERVE = 4096
# A calibration factor outside this band means the usage was not for this text (a cached prompt,
# a provider that adds a large hidden system prompt): ignored rather than trusted.
CALIBRATION_BAND = (0.25, 4.0)
SUMMARY_MARK = "[summary]"


def _is_wide(ch: str) -> bool:
    """A character that is about one token on its own: CJK ideographs, kana, Hangul, fullwidth."""
    o = ord(ch)
    return (
        0x2E80 <= o <= 0x9FFF  # CJK radicals .. unified ideographs, kana, bopomofo
        or 0xAC00 <= o <= 0xD7AF  # Hangul syllables
        or 0xF900 <= o <= 0xFAFF  # CJK compatibility ideographs
        or 0xFF00 <= o <= 0xFFEF  # fullwidth forms
        or 0x20000 <= o <= 0x3FFFF  # CJK extensions B..
    )


@lru_cache(maxsize=4096)  # the toolbar re-counts the whole chat at every keystroke
def estimate_text(text: str) -> int:
    """Tokens in `text` by script: one per CJK character, one per four other characters."""
    if not text:
        return 0
    if text.isascii():
        return (len(text) + 3) // 4
    wide = sum(1 for ch in text if _is_wide(ch))
    return wide + (len(text) - wide + 3) // 4


def estimate_message(m: Message) -> int:
    """A message's raw estimate (uncalibrated): its text plus the per-message overhead."""
    return estimate_text(m.text) + PER_MESSAGE


def estimate_request(conversation: Conversation) -> int:
    """The raw estimate of a whole request: the system prompt and every message sent."""
    system = estimate_text(conversation.system or "") + (PER_MESSAGE if conversation.system else 0)
    return system + sum(estimate_message(m) for m in conversation.for_request())


@dataclass(frozen=True, slots=True)
class Fit:
    """A conversation's size against a model's window; `window` None: the window is unknown."""

    used: int
    reserve: int
    window: int | None
    model: str

    @property
    def ok(self) -> bool:
        return self.window is None or self.used + self.reserve <= self.window

    @property
    def fraction(self) -> float:
        return 0.0 if not self.window else self.used / self.window

    def meter(self) -> str:
        """What the toolbar shows: "12.3k/64k", or "12.3k tokens" when the window is unknown."""
        return f"{short(self.used)}/{short(self.window)}" if self.window else f"{short(self.used)} tokens"

    def refusal(self) -> str:
        """One line naming the sizes, for a check that stops a send or a switch."""
        return (f"the conversation is about {short(self.used)} tokens; with {short(self.reserve)} kept for the"
                f" reply it does not fit {self.model}'s {short(self.window or 0)}-token window")


def short(n: int | None) -> str:
    """1234 -> "1.2k", 64000 -> "64k", 1048576 -> "1M"."""
    if n is None:
        return "?"
    if n < 1000:
        return str(n)
    if n < 1_000_000:
        k = n / 1000
        return f"{k:.1f}k".replace(".0k", "k") if k < 100 else f"{k:.0f}k"
    m = n / 1_000_000
    return f"{m:.1f}M".replace(".0M", "M")


class Meter:
    """Counts a conversation for a model, calibrated by what each model last reported."""

    def __init__(self) -> None:
        self.factors: dict[str, float] = {}  # ModelSpec.full_id -> reported / estimated

    def calibrate(self, spec_id: str, sent: Conversation, answer: Message) -> None:
        """Learn from an answer's reported input_tokens how this model counts text like ours."""
        usage = answer.usage
        if usage is None or usage.input_tokens <= 0:
            return
        raw = estimate_request(sent)
        if raw <= 0:
            return
        factor = usage.input_tokens / raw
        low, high = CALIBRATION_BAND
        if low <= factor <= high:
            self.factors[spec_id] = factor

    def learn(self, conversation: Conversation) -> Meter:
        """Calibrate from a stored conversation: each model's last answer with reported usage
        (a resumed chat, `ask --session`), against the turns that were sent before it."""
        msgs = conversation.messages
        seen: set[str] = set()
        for i in range(len(msgs) - 1, -1, -1):
            m = msgs[i]
            if m.role == "assistant" and m.model is not None and m.usage is not None and m.model.full_id not in seen:
                seen.add(m.model.full_id)
                self.calibrate(m.model.full_id, replace(conversation, messages=msgs[:i]), m)
        return self

    def factor(self, spec: ModelSpec) -> float:
        return self.factors.get(spec.full_id, 1.0)

    def counted(self, m: Message, spec: ModelSpec) -> tuple[int, bool]:
        """A message's tokens for `spec`, and whether the provider reported them: an answer's own
        output tokens (reasoning left out: it is not sent back) when `spec` wrote it, else the
        calibrated estimate."""
        if m.role == "assistant" and m.usage is not None:
            own = m.usage.output_tokens - m.usage.reasoning_tokens
            if own > 0 and m.model is not None and m.model.full_id == spec.full_id:
                return own + PER_MESSAGE, True
        return round(estimate_message(m) * self.factor(spec)), False

    def message_tokens(self, m: Message, spec: ModelSpec) -> int:
        return self.counted(m, spec)[0]

    def size(self, conversation: Conversation, spec: ModelSpec) -> int:
        system = conversation.system or ""
        total = round((estimate_text(system) + (PER_MESSAGE if system else 0)) * self.factor(spec))
        return total + sum(self.message_tokens(m, spec) for m in conversation.for_request())

    def fit(self, conversation: Conversation, spec: ModelSpec, max_tokens: int | None = None) -> Fit:
        return Fit(self.size(conversation, spec), reserve_for(spec, max_tokens), spec.context_window, spec.name)


def reserve_for(spec: ModelSpec, max_tokens: int | None = None) -> int:
    """Room kept for the reply: the chat's max_tokens, else the model's, else a default."""
    if max_tokens:
        return max_tokens
    if spec.max_tokens:
        return spec.max_tokens
    window = spec.context_window
    return min(DEFAULT_RESERVE, window // 8) if window else DEFAULT_RESERVE


def trim(conversation: Conversation, keep: int) -> Conversation:
    """The system prompt and the last `keep` exchanges (user question and its answer)."""
    msgs = conversation.messages
    starts = [i for i, m in enumerate(msgs) if m.role == "user"]
    if keep <= 0:
        return replace(conversation, messages=())
    if len(starts) <= keep:
        return conversation
    return replace(conversation, messages=msgs[starts[-keep]:])


def trim_to_fit(meter: Meter, conversation: Conversation, spec: ModelSpec,
                max_tokens: int | None = None, pending: Message | None = None) -> Conversation | None:
    """The longest tail of exchanges that fits `spec` (with `pending` still to be sent), or None."""
    exchanges = sum(1 for m in conversation.messages if m.role == "user")
    for keep in range(exchanges, -1, -1):
        candidate = trim(conversation, keep)
        probe = candidate.add(pending) if pending is not None else candidate
        if meter.fit(probe, spec, max_tokens).ok:
            return candidate
    return None


def split_for_summary(conversation: Conversation, keep: int) -> tuple[tuple[Message, ...], tuple[Message, ...]]:
    """(older turns to summarise, the last `keep` exchanges kept as they are)."""
    kept = trim(conversation, keep).messages
    return conversation.messages[: len(conversation.messages) - len(kept)], kept


def summary_request(older: tuple[Message, ...]) -> str:
    """The instruction a summariser gets, with the turns to summarise quoted in it."""
    lines = []
    for m in older:
        who = "User" if m.role == "user" else f"Assistant ({m.model.name if m.model else 'model'})"
        if m.role == "assistant" and not m.has_answer:
            continue
        lines.append(f"{who}: {m.text.strip()}")
    transcript = "\n\n".join(lines)
    return (
        "Summarise the conversation below so that it can replace it as context for continuing the chat. "
        "Keep every fact, decision, name, number, code identifier and open question; drop pleasantries. "
        "Write it as a compact list of points, in the conversation's language.\n\n"
        f"<conversation>\n{transcript}\n</conversation>"
    )


def summary_pair(older_count: int, summary: Message, by: str) -> tuple[Message, Message]:
    """The marked turns that stand for `older_count` summarised turns (visible in /history,
    saved, exported; /undo brings the turns back)."""
    note = Message(role="user", text=f"{SUMMARY_MARK} The {older_count} earlier turns of this conversation, "
                                     f"summarised by {by}. Go on from this summary.")
    return note, summary


def is_summary(m: Message) -> bool:
    return m.role == "user" and m.text.startswith(SUMMARY_MARK)
