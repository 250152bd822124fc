"""A live chat: the conversation, the current model, switching, retry, undo, attachments.

Drawing is not done here: the REPL iterates an Answer and hands events to render.py, then calls
`finish` so the turn lands in history (and in the session database) whatever its status.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from .. import errors
from .answer import Answer, Settings
from ..config.load import Config, ModelSpec
from ..conversation import Conversation, Message
from ..config.pricing import Cost, message_cost
from ..vocab import SETTINGS, TEMPERATURE_RANGE, parse_reasoning
from .choice import ensure_usable

if TYPE_CHECKING:
    from ..store.chatlog import ChatLog
    from ..store.records import Turn

MAX_ATTACHMENT_BYTES = 2_000_000


@dataclass(frozen=True, slots=True)
class Attachment:
    path: str
    text: str


class ChatSession:
    def __init__(
        self,
        config: Config,
        model: ModelSpec,
        *,
        conversation: Conversation | None = None,
        log: ChatLog | None = None,
        debug: bool = False,
    ) -> None:
        self.config = config
        self.debug = debug
        self.model = model
        self.conversation = conversation or Conversation()
        self.settings = Settings()
        self.think = "collapse"
        self.attachments: list[Attachment] = []
        self.log = log  # a chatlog.ChatLog, or None when sessions cannot be saved
        # Every answer this chat paid for, kept or not (compare alternates, retried answers):
        # what /cost and the toolbar total.
        self.answered: list[Message] = [m for m in self.conversation.messages if m.role == "assistant"]
        self.held: tuple[Message, tuple[Message, ...]] | None = None  # a compare awaiting /keep

    # -- models ----------------------------------------------------------------------------
    def resolve(self, name: str) -> ModelSpec:
        """A usable model or a UsageError/ConfigError saying why not (current model unchanged)."""
        spec = self.config.resolve(name)
        ensure_usable(self.config, spec)
        return spec

    def switch(self, name: str) -> str:
        spec = self.resolve(name)
        self.model = spec
        if self.log is not None:
            self.log.set_model(spec.name)
        n = len(self.conversation.for_request())
        kept = f"history kept ({n} turn{'s' if n != 1 else ''})" if n else "new conversation"
        return f"switched to {spec.name} ({spec.full_id}); {kept}"

    # -- turns -----------------------------------------------------------------------------
    def attach(self, path: str) -> str:
        p = Path(path).expanduser()
        try:
            raw = p.read_bytes()
        except OSError as exc:
            raise errors.UsageError(f"cannot read {path}: {exc.strerror}") from None
        if len(raw) > MAX_ATTACHMENT_BYTES:
            raise errors.UsageError(f"{path} is {len(raw) / 1e6:.1f} MB; attach at most {MAX_ATTACHMENT_BYTES // 1_000_000} MB")
        if b"\x00" in raw:
            raise errors.UsageError(f"{path} looks binary; only text files can be attached")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise errors.UsageError(f"{path} is not UTF-8 text") from None
        self.attachments.append(Attachment(str(p), text))
        return f"attached {p.name} ({len(raw):,} bytes) to your next message"

    def user_message(self, text: str) -> Message:
        """The user's text with pending attachments folded in (they are sent once, then cleared)."""
        parts = [f"File {a.path}:\n```\n{a.text.rstrip()}\n```" for a in self.attachments]
        self.attachments = []
        return Message(role="user", text="\n\n".join(parts + [text]) if parts else text)

    def ask(self, user: Message, model: ModelSpec | None = None, *, fallback: bool = True) -> Answer:
        """Start an answer to `user` on `model` (default: the current model); not yet in history."""
        spec = model or self.model
        return Answer(self.config, self.conversation.add(user), spec, settings=self.settings, fallback=fallback,
                      debug=self.debug)

    def finish(self, user: Message, answer: Answer) -> Message:
        """Put the exchange into history and the database, whatever its status."""
        message = answer.message
        self.held = None
        self.conversation = self.conversation.add(user).add(message)
        self.answered.append(message)
        if self.log is not None:
            self.log.record(user, message, self.cost_for(message))
        return message

    def stats(self) -> list[Turn]:
        """Every paid-for answer with its cost, for the per-model tables (sessions_format)."""
        from ..store.records import Turn

        return [Turn(m, self.cost_for(m)) for m in self.answered]

    def hold_compare(self, user: Message, answers: list[tuple[Message, Cost | None]]) -> None:
        """Compared answers wait outside the history (and are saved as alternates) until /keep."""
        self.answered.extend(m for m, _ in answers)
        self.held = (user, tuple(m for m, _ in answers))
        if self.log is not None:
            self.log.record_compare(user, answers)

    def keep(self, ref: str) -> Message:
        """`/keep N` or `/keep NAME`: that compared answer becomes the assistant turn."""
        if self.held is None:
            raise errors.UsageError("nothing to keep: /keep follows a /compare")
        user, answers = self.held
        index = None
        if ref.isdigit() and 1 <= int(ref) <= len(answers):
            index = int(ref) - 1
        else:
            for i, m in enumerate(answers):
                if m.model and ref in (m.model.alias, m.model.full_id, m.model.name):
                    index = i
                    break
        if index is None:
            raise errors.UsageError(f"no compared answer '{ref}' (1-{len(answers)} or a model name)")
        chosen = answers[index]
        if not chosen.text:
            raise errors.UsageError(f"answer {index + 1} is empty; keep another")
        self.held = None
        self.conversation = self.conversation.add(user).add(chosen)
        if self.log is not None:
            self.log.keep(index)
        return chosen

    def cost_for(self, message: Message) -> Cost | None:
        return message_cost(self.config, message)

    def last_exchange(self) -> tuple[Message, Message] | None:
        msgs = self.conversation.messages
        if len(msgs) >= 2 and msgs[-1].role == "assistant" and msgs[-2].role == "user":
            return msgs[-2], msgs[-1]
        return None

    def pop_last_exchange(self) -> Message:
        """For /retry and /undo: drop the last answer and the question it answered."""
        pair = self.last_exchange()
        if pair is None:
            raise errors.UsageError("nothing to undo yet")
        self.conversation = self.conversation.without_last_exchange()
        if self.log is not None:
            self.log.drop_last_exchange()
        return pair[0]

    def set_system(self, text: str | None) -> None:
        self.conversation = self.conversation.with_system(text)
        if self.log is not None:
            self.log.set_system(text)

    def clear(self) -> None:
        """A new conversation (and a new saved session); the model and settings stay."""
        system = self.conversation.system
        self.conversation = Conversation(system)
        self.answered = []
        if self.log is not None:
            self.log = self.log.fresh(model=self.model.name, system=system)

    def resume(self, log: ChatLog) -> None:
        """Continue a saved conversation (`/load`) in this chat."""
        self.log = log
        self.conversation = log.conversation
        self.answered = [m for m in log.conversation.messages if m.role == "assistant"]
        self.held = None

    def set(self, key: str, value: str) -> str:
        key = key.strip().lower()
        if key == "temperature":
            t = _number(value, key)
            low, high = TEMPERATURE_RANGE
            if not low <= t <= high:
                raise errors.UsageError(f"temperature must be between {low:g} and {high:g}")
            self.settings = replace(self.settings, temperature=t)
        elif key == "max_tokens":
            n = int(_number(value, key))
            if n <= 0:
                raise errors.UsageError("max_tokens must be greater than 0")
            self.settings = replace(self.settings, max_tokens=n)
        elif key == "reasoning":
            self.settings = replace(self.settings, reasoning=parse_reasoning(value))
        else:
            raise errors.UsageError(f"unknown setting '{key}' ({', '.join(SETTINGS)})")
        return f"{key} = {value}"


def _number(value: str, key: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise errors.UsageError(f"{key} needs a number, not '{value}'") from None
