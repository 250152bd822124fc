"""A live chat: the conversation, the current model, switching, retry, undo, attachments.

Drawing is not done here: the REPL iterates an Answer and hands events to render.py, then calls
`finish` so the turn lands in history (and in the session database) whatever its status.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
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
    from ..store.records import Turn, Vote

MAX_ATTACHMENT_BYTES = 2_000_000


@dataclass(frozen=True, slots=True)
class Attachment:
    path: str
    text: str


@dataclass(frozen=True, slots=True)
class Arena:
    """A blind comparison: lane "1" is lanes[0], and so on. Which model wrote which answer, and
    what each cost and how fast it was, stay hidden until the user votes."""

    lanes: tuple[ModelSpec, ...]
    tag: str | None = None


def blind(specs: Sequence[ModelSpec], tag: str | None = None, rng: random.Random | None = None) -> Arena:
    """The models in random order, so the lane number says nothing about who is in it."""
    names = [s.name for s in specs]
    if len(specs) < 2 or len(set(names)) != len(names):
        raise errors.UsageError("an arena needs two or more different models")
    lanes = list(specs)
    (rng or random.SystemRandom()).shuffle(lanes)
    return Arena(tuple(lanes), tag)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What /vote did: the vote, each lane's answer and cost (revealed now), the answer kept."""

    vote: Vote
    lanes: tuple[tuple[ModelSpec, Message, Cost | None], ...]
    kept: Message | None
    saved: bool


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
        # Every answer this chat paid for, kept or not (compare alternates, retried and undone
        # answers), each with the cost recorded for it: what /cost and the toolbar total, and
        # for a resumed chat the same turns `sessions show --stats` counts.
        self.answered: list[Turn] = self._paid_for(log)
        self.held: tuple[Message, tuple[Message, ...]] | None = None  # a compare awaiting /keep
        self.arena: Arena | None = None  # set while the held comparison is a blind one awaiting /vote

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
        raw = _read_attachment(p, path)
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

    def ask(self, user: Message, model: ModelSpec | None = None, *, fallback: bool = True,
            replacing: bool = False) -> Answer:
        """Start an answer to `user` on `model` (default: the current model); not yet in history.

        `replacing` (a /retry): the answer is to the last exchange's question, so the context is
        the history before it — the old answer stays in history until `finish` replaces it.
        """
        spec = model or self.model
        base = self.conversation.without_last_exchange() if replacing else self.conversation
        return Answer(self.config, base.add(user), spec, settings=self.settings, fallback=fallback,
                      debug=self.debug)

    def finish(self, user: Message, answer: Answer, *, replacing: bool = False) -> Message:
        """Put the exchange into history and the database, whatever its status.

        With `replacing`, a new answer that did not succeed replaces nothing: the earlier exchange
        stays, and the attempt is saved (paid for) as an alternate (see `keeps_earlier`).
        """
        from ..store.records import Turn

        message = answer.message
        cost = self.cost_for(message)
        keep_earlier = replacing and self.keeps_earlier(message)
        self.held = None
        self.arena = None
        self.answered.append(Turn(message, cost))
        # Hedged routes that lost the race were paid for too: counted, kept out of the history.
        spent = [(m, self.cost_for(m)) for m in answer.losers]
        self.answered.extend(Turn(m, c) for m, c in spent)
        if keep_earlier:
            if self.log is not None:
                self.log.record_alternate(user, message, cost)
        else:
            if replacing:
                self.conversation = self.conversation.without_last_exchange()
                if self.log is not None:
                    self.log.drop_last_exchange()
            self.conversation = self.conversation.add(user).add(message)
            if self.log is not None:
                self.log.record(user, message, cost)
        if spent and self.log is not None:
            self.log.record_spent(spent)
        return message

    def keeps_earlier(self, retried: Message) -> bool:
        """Whether a retry's answer leaves the last exchange in place: only a complete answer
        replaces one that had an answer (a failure may replace a failure)."""
        pair = self.last_exchange()
        return pair is not None and pair[1].has_answer and not _replaces(retried)

    def retry_target(self) -> tuple[Message, bool]:
        """The question /retry asks again, and whether its answer replaces the last exchange.

        A comparison awaiting /keep is the latest question asked: it is the one retried (its
        answers stay saved as alternates); otherwise the last exchange in history.
        """
        if self.held is not None:
            return self.held[0], False
        pair = self.last_exchange()
        if pair is None:
            raise errors.UsageError("nothing to retry yet")
        return pair[0], True

    def stats(self) -> list[Turn]:
        """Every paid-for answer with its cost, for the per-model tables (sessions_format)."""
        return list(self.answered)

    def _paid_for(self, log: ChatLog | None) -> list[Turn]:
        """A resumed chat's stored answers, alternates included, at their recorded cost."""
        from ..store.records import Turn

        if log is not None:
            return list(log.answers)
        return [Turn(m, self.cost_for(m)) for m in self.conversation.messages if m.role == "assistant"]

    def hold_compare(self, user: Message, answers: list[tuple[Message, Cost | None]],
                     arena: Arena | None = None) -> None:
        """Compared answers wait outside the history (and are saved as alternates) until /keep
        (or, for a blind arena, /vote)."""
        from ..store.records import Turn

        self.answered.extend(Turn(m, c) for m, c in answers)
        self.held = (user, tuple(m for m, _ in answers))
        self.arena = arena
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
        self.arena = None  # kept without a vote: the arena ends unrated
        self.conversation = self.conversation.add(user).add(chosen)
        if self.log is not None:
            self.log.keep(index, user, chosen, self.cost_for(chosen))
        return chosen

    def vote(self, verdict: str) -> Verdict:
        """`/vote N|tie|none` after an /arena: record the vote, reveal the lanes, keep the winner."""
        from ..store.records import Vote

        arena, held = self.arena, self.held
        if arena is None or held is None:
            raise errors.UsageError("nothing to vote on: /vote follows an /arena")
        names = tuple(s.name for s in arena.lanes)
        word = verdict.strip().lower()
        if word in ("tie", "none"):
            vote = Vote(names, word, None, arena.tag)
        elif word.isdigit() and 1 <= int(word) <= len(names):
            if not held[1][int(word) - 1].text:
                raise errors.UsageError(f"answer {word} is empty; vote for another, or tie or none")
            vote = Vote(names, "win", names[int(word) - 1], arena.tag)
        else:
            raise errors.UsageError(f"usage: /vote 1-{len(names)}|tie|none")
        lanes = tuple((s, m, self.cost_for(m)) for s, m in zip(arena.lanes, held[1]))
        saved = self.log is not None and self.log.record_vote(vote)
        kept = self.keep(word) if vote.winner is not None else None
        self.arena = None
        return Verdict(vote, lanes, kept, saved)

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
        self.held = None  # a comparison awaiting /keep belongs to the old conversation
        self.arena = None
        if self.log is not None:
            self.log = self.log.fresh(model=self.model.name, system=system)

    def resume(self, log: ChatLog) -> None:
        """Continue a saved conversation (`/load`) in this chat."""
        self.log = log
        self.conversation = log.conversation
        self.answered = self._paid_for(log)
        self.held = None
        self.arena = None

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


def _read_attachment(p: Path, shown: str) -> bytes:
    """At most MAX_ATTACHMENT_BYTES of a regular file, refused before reading if larger.

    /dev/zero never ends, a FIFO blocks until a writer comes, a 1 GB file would be read whole
    before its size was checked: the type and the size are known from stat without reading.
    """
    import stat

    def refuse(mode: int, size: int) -> None:
        if not stat.S_ISREG(mode):
            kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
                    else "a socket" if stat.S_ISSOCK(mode) else "a device" if stat.S_ISCHR(mode)
                    or stat.S_ISBLK(mode) else "not a regular file")
            raise errors.UsageError(f"{shown} is {kind}; only regular text files can be attached")
        if size > MAX_ATTACHMENT_BYTES:
            raise errors.UsageError(
                f"{shown} is {size / 1e6:.1f} MB; attach at most {MAX_ATTACHMENT_BYTES // 1_000_000} MB"
            )

    try:
        st = os.stat(p)
        refuse(st.st_mode, st.st_size)
        # O_NONBLOCK: if the path was swapped for a FIFO since the stat, open must not hang.
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as exc:
        raise errors.UsageError(f"cannot read {shown}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as f:
        try:
            st = os.fstat(fd)
            refuse(st.st_mode, st.st_size)
            raw = f.read(MAX_ATTACHMENT_BYTES + 1)  # a file growing meanwhile is still bounded
        except OSError as exc:
            raise errors.UsageError(f"cannot read {shown}: {exc.strerror or exc}") from None
    if len(raw) > MAX_ATTACHMENT_BYTES:
        refuse(stat.S_IFREG, len(raw))
    return raw


def _replaces(message: Message) -> bool:
    """Whether a retried answer may replace the earlier one: complete, with an answer in it."""
    return message.status == "complete" and message.has_answer


def _number(value: str, key: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise errors.UsageError(f"{key} needs a number, not '{value}'") from None
