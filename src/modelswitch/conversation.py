"""Provider-neutral conversation: who said what, with which model, and how it went."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from .events import ReplayState, Usage

Role = Literal["user", "assistant"]
Status = Literal["complete", "interrupted", "error"]


@dataclass(frozen=True, slots=True)
class ModelRef:
    """The model that wrote a turn: its alias (if any), provider profile, id and protocol."""

    provider: str
    id: str
    protocol: str
    alias: str | None = None

    @property
    def name(self) -> str:
        """What a user calls it: the alias, else provider/id."""
        return self.alias or f"{self.provider}/{self.id}"

    @property
    def full_id(self) -> str:
        return f"{self.provider}/{self.id}"


@dataclass(frozen=True, slots=True)
class Timing:
    ttft_s: float | None = None
    total_s: float | None = None
    tokens_per_s: float | None = None


@dataclass(frozen=True, slots=True)
class Message:
    """One turn. Assistant turns carry the model that wrote them and their reasoning apart."""

    role: Role
    text: str
    reasoning: str = ""
    model: ModelRef | None = None
    status: Status = "complete"
    replay: tuple[ReplayState, ...] = ()
    usage: Usage | None = None
    timing: Timing | None = None
    finish_reason: str | None = None
    fallback_from: str | None = None
    error: str | None = None
    # For a model with routes: the provider/model-id that answered (not stored: `model` holds it).
    route: str | None = None

    @property
    def has_answer(self) -> bool:
        """An assistant turn that gave an answer worth sending as context: some text, not a failure.

        A refusal or a blocked prompt arrives as a complete turn with no text, so it is covered.
        An interrupted answer with partial text counts: the user saw it.
        """
        return self.role == "assistant" and self.status != "error" and bool(self.text.strip())

    def replay_for(self, protocol: str, model_id: str) -> tuple[ReplayState, ...]:
        """Provider state this turn may hand back to exactly that protocol and model."""
        return tuple(r for r in self.replay if r.protocol == protocol and r.model == model_id)


@dataclass(frozen=True, slots=True)
class Conversation:
    """A system prompt and the turns so far. Immutable: every change returns a new value."""

    system: str | None = None
    messages: tuple[Message, ...] = field(default_factory=tuple)

    def add(self, message: Message) -> Conversation:
        return replace(self, messages=self.messages + (message,))

    def with_system(self, system: str | None) -> Conversation:
        return replace(self, system=system or None)

    def without_last_exchange(self) -> Conversation:
        """Drop the last assistant answer and the user message it answered."""
        msgs = list(self.messages)
        if msgs and msgs[-1].role == "assistant":
            msgs.pop()
        if msgs and msgs[-1].role == "user":
            msgs.pop()
        return replace(self, messages=tuple(msgs))

    def for_request(self) -> tuple[Message, ...]:
        """Messages worth sending: an exchange that produced no answer is history, not context.

        A failed, refused or blocked turn drops out with the question it answered: sending that
        question again would repeat it beside the user's retyped one (`q\n\nq`), and a prompt a
        provider refused would keep every later turn refused. Both stay in `messages` (history,
        the store); only requests leave them out.
        """
        msgs = self.messages
        out: list[Message] = []
        for i, m in enumerate(msgs):
            if m.role == "assistant":
                if m.has_answer:
                    out.append(m)
            elif not (i + 1 < len(msgs) and msgs[i + 1].role == "assistant" and not msgs[i + 1].has_answer):
                out.append(m)
        return tuple(out)
