"""The bridge from a live chat to the session database.

A chat becomes a saved session at its first exchange that got an answer started: a request
that failed outright leaves no empty session behind for `chat -c` to resume. If the database
cannot be used (corrupt, from a newer version, unwritable) the chat goes on unsaved and the user
is told once, because losing the ability to talk is worse than losing the ability to save.

Two terminals may share one session. Each log remembers which stored turns make up its own
conversation, so `/undo` and `/retry` hide this process's last exchange, never the other's.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from .. import errors
from ..config.pricing import Cost
from ..conversation import Conversation, Message, Role
from ..interrupts import deferred
from ..notify import warn
from .records import check_name

if TYPE_CHECKING:
    from collections.abc import Callable

    from .db import Store, Turn, Vote


class ChatLog:
    def __init__(self, store: Store, session_id: int | None, conversation: Conversation,
                 *, name: str | None = None, model: str | None = None, system: str | None = None) -> None:
        self.store = store
        self.session_id = session_id
        self.conversation = conversation
        self.name = name
        self._model = model
        self._system = system
        self._held: tuple[int, ...] = ()  # store indices of a compare awaiting /keep: user, answers
        # Every stored answer, alternates included, with its recorded cost (a resumed chat's /cost).
        self.answers: tuple[Turn, ...] = ()
        # The role and store index (None: not saved) of each turn of this process's conversation,
        # in step with it: what /undo hides, whatever another terminal appended meanwhile.
        self._mine: list[tuple[Role, int | None]] = []
        # Exchanges that failed before any answer while no session existed yet: not worth a
        # session of their own, but written first once one is made, so the store and /history
        # hold the same turns. Each with the position of its question in `_mine`, or None once
        # /undo or /retry took it out of the conversation (it is then written as an alternate).
        # A compare whose answers all failed before any began waits here too (position None,
        # flagged), as a failed request does: nothing was paid for, so no session for it alone.
        self._pending: list[tuple[int | None, tuple[Turn, ...], bool]] = []
        # Opened with a new `--session NAME`: another process may make that session first, and
        # this one then joins it rather than failing on the name.
        self._attach = False

    @classmethod
    def open_for(
        cls, session: str | None, cont: bool, *, model: str | None, system: str | None
    ) -> ChatLog | None:
        """The log for `--session NAME` (created if new), `-c` (most recent), or a new chat."""
        from .db import Store

        if cont and session:
            raise errors.UsageError("choose one of -c/--continue and --session")
        try:
            store = Store.open()
            return cls._open(store, session, cont, model=model, system=system)
        except errors.StoreError as exc:
            # open() reads only the header: damage further in shows at the first query, here too.
            warn(f"warning: {exc.message} — this chat will not be saved")
            return None

    @classmethod
    def _open(
        cls, store: Store, session: str | None, cont: bool, *, model: str | None, system: str | None
    ) -> ChatLog:
        if cont:
            info = store.latest()
            if info is None:
                warn("no earlier session to continue; starting a new one")
                return cls(store, None, Conversation(system), model=model, system=system)
            return cls._resume(store, info.id)
        if session:
            # "12" and "#12" name a session by id, as `sessions list` shows it.
            info = store.get(session) if session.lstrip("#").isdigit() else store.find(session)
            if info is None:
                # The row comes with the first answer (see record); the name is checked now.
                log = cls(store, None, Conversation(system), name=check_name(session), model=model,
                          system=system)
                log._attach = True
                return log
            return cls._resume(store, info.id)
        return cls(store, None, Conversation(system), model=model, system=system)

    @classmethod
    def _resume(cls, store: Store, session_id: int) -> ChatLog:
        from .db import conversation_of

        # One read: the kept turns make the conversation; every answer (alternates too) the costs.
        info, turns = store.transcript(session_id)
        kept = [t for t in turns if not t.alternate]
        log = cls(store, info.id, conversation_of(info, kept), name=info.name, model=info.model,
                  system=info.system)
        log.answers = tuple(t for t in turns if t.message.role == "assistant")
        log._mine = [(t.message.role, t.idx) for t in kept]
        return log

    @property
    def model(self) -> str | None:
        """The model the session last used (so `chat -c` resumes on it)."""
        return self._model

    @property
    def resumed_model(self) -> str | None:
        """The model an earlier run of this session used; None for a new chat."""
        return self._model if self.session_id is not None else None

    def _ensure(self) -> int:
        if self.session_id is None:
            if self._attach and self.name is not None:
                info = self.store.find_or_create(self.name, model=self._model, system=self._system)
            else:
                info = self.store.create_session(name=self.name, model=self._model, system=self._system)
            self.session_id = info.id
            pending, self._pending = self._pending, []
            for pos, turns, compare in pending:
                written = self.store.append(info.id, *turns)
                if compare:
                    self._held = written
                elif pos is not None:
                    self._mine[pos : pos + 2] = [("user", written[0]), ("assistant", written[1])]
        return self.session_id

    def _safely(self, what: str, fn: Callable[[], object]) -> None:
        try:
            with deferred():  # Ctrl-C or SIGTERM mid-write would roll the exchange back: after it
                fn()
        except (errors.StoreError, errors.UsageError) as exc:
            # UsageError: the session was deleted, or its name taken, by another process.
            warn(f"warning: could not save {what}: {exc.message}")

    def _save_exchange(self, what: str, write: Callable[[], tuple[int, ...]]) -> None:
        """Write an exchange (user, answer) and remember its indices; None for each if unsaved."""
        saved: tuple[int | None, ...] = (None, None)

        def run() -> None:
            nonlocal saved
            saved = write()

        self._safely(what, run)
        self._mine += [("user", saved[0]), ("assistant", saved[1])]

    def record(self, user: Message, assistant: Message, cost: Cost | None) -> None:
        from .db import Turn

        if self.session_id is None and not _started(assistant):
            # A request that failed before any answer: no session is made for it (yet).
            self._pending.append((len(self._mine), (Turn(user), Turn(assistant, cost)), False))
            self._mine += [("user", None), ("assistant", None)]
            return
        self._save_exchange(
            "this exchange", lambda: self.store.append(self._ensure(), Turn(user), Turn(assistant, cost))
        )

    def record_alternate(self, user: Message, assistant: Message, cost: Cost | None) -> None:
        """An exchange kept on record (and in the costs) but out of the conversation: a failed retry."""
        from .db import Turn

        self._safely("the failed attempt",
                     lambda: self.store.append(self._ensure(), Turn(user, alternate=True), Turn(assistant, cost, alternate=True)))

    def record_compare(self, user: Message, answers: list[tuple[Message, Cost | None]]) -> None:
        """All compared answers are stored at once, as alternates, with the question; /keep picks
        one. Written now, not at /keep: they were paid for, and a chat that ends (exit, EOF, a
        signal, even a kill) or moves on (/clear, /load) without a /keep must not lose them."""
        from .db import Turn

        turns = [Turn(user, alternate=True)] + [Turn(m, c, alternate=True) for m, c in answers]
        if self.session_id is None and not any(_worth_saving(m) for m, _ in answers):
            self._pending.append((None, tuple(turns), True))  # saved with the chat's first kept turn
            return

        def write() -> None:
            self._held = self.store.append(self._ensure(), *turns)

        self._safely("the compared answers", write)

    def keep(self, index: int, user: Message, answer: Message, cost: Cost | None) -> None:
        """The kept answer and its question join the saved conversation.

        If the comparison never reached the store (it could not be written then), they are
        written now: what /keep puts into the conversation is always what `chat -c` resumes.
        """
        if self.session_id is None and any(compare for *_, compare in self._pending):
            self._safely("the compared answers", self._ensure)  # the comparison is saved with its pick
        held, self._held = self._held, ()
        if not held or self.session_id is None:
            self.record(user, answer, cost)
            return
        sid, user_idx, answer_idx = self.session_id, held[0], held[1 + index]

        def write() -> tuple[int, ...]:
            self.store.set_alternate(sid, user_idx, False)
            self.store.set_alternate(sid, answer_idx, False)
            return user_idx, answer_idx

        self._save_exchange("the kept answer", write)

    def record_spent(self, answers: list[tuple[Message, Cost | None]]) -> None:
        """Answers paid for but never part of the chat (hedged routes cancelled, a search round
        of a model given up): on record as alternates, so costs and stats count them. One that was
        paid for makes the session if there is none yet (the chat's first answer failed): money
        spent is never off the record."""
        from .db import Turn

        if self.session_id is None and not any(_worth_saving(m) for m, _ in answers):
            return
        self._safely("the cancelled routes",
                     lambda: self.store.append(self._ensure(), *(Turn(m, c, alternate=True) for m, c in answers)))

    def record_vote(self, vote: Vote) -> bool:
        """Store an arena vote, linked to this session; False (after a warning) if it could not be."""
        done = False

        def write() -> None:
            nonlocal done
            self.store.add_vote(replace(vote, session=self._ensure()))
            done = True

        self._safely("the vote", write)
        return done

    def set_model(self, name: str) -> None:
        self._model = name
        sid = self.session_id
        if sid is not None:
            self._safely("the model", lambda: self.store.set_model(sid, name))

    def set_system(self, text: str | None) -> None:
        self._system = text
        sid = self.session_id
        if sid is not None:
            self._safely("the system prompt", lambda: self.store.set_system(sid, text))

    def save_as(self, name: str) -> None:
        """Name this chat (`/save NAME`). A chat not saved yet keeps the name for the row its
        first answer makes: naming alone leaves no empty session behind."""
        if self.session_id is None:
            name = check_name(name)
            if self.store.find(name) is not None:
                raise errors.UsageError(f"a session named '{name}' already exists")
            self.name, self._attach = name, False
            return
        self.store.set_name(self.session_id, name)
        self.name = name

    def drop_last_exchange(self) -> None:
        """This chat's last question and answer leave the context but stay on record (alternates).

        Mirrors Conversation.without_last_exchange on this process's own turns.
        """
        dropped: list[int | None] = []
        for role in ("assistant", "user"):
            if self._mine and self._mine[-1][0] == role:
                dropped.append(self._mine.pop()[1])
        indices = [i for i in dropped if i is not None]
        self._pending = [
            p if p[0] is None or p[0] < len(self._mine)
            else (None, tuple(replace(t, alternate=True) for t in p[1]), False)
            for p in self._pending
        ]
        sid = self.session_id
        if sid is not None and indices:
            self._safely("the undo", lambda: self.store.hide_turns(sid, indices))

    def replace_turns(self, messages: tuple[Message, ...]) -> tuple[list[tuple[Role, int | None]], list[int]]:
        """`/compact`, `/trim`: this chat's kept turns become alternates (on record, out of the
        context) and `messages` are written as its conversation. Returns what `restore` needs."""
        from .db import Turn

        before = list(self._mine)
        old = [i for _, i in before if i is not None]
        written: list[int] = []

        def write() -> None:
            sid = self._ensure()
            self.store.hide_turns(sid, old)
            written.extend(self.store.append(sid, *(Turn(m) for m in messages)))

        self._safely("the compacted conversation", write)
        self._mine = ([(m.role, i) for m, i in zip(messages, written, strict=True)] if written
                      else [(m.role, None) for m in messages])
        return before, written

    def restore(self, before: list[tuple[Role, int | None]], written: list[int]) -> None:
        """Undo `replace_turns`: the replacement turns are hidden, the earlier ones kept again."""
        sid = self.session_id

        def write() -> None:
            if sid is None:
                return
            self.store.hide_turns(sid, written)
            for _, idx in before:
                if idx is not None:
                    self.store.set_alternate(sid, idx, False)

        self._safely("the undo", write)
        self._mine = list(before)

    def fork(self, at: int, name: str | None) -> ChatLog:
        """A branch of this session with its first `at` turns; the log of the branch."""
        info = self.store.fork(self._ensure(), at, name)
        return self._resume(self.store, info.id)

    def fresh(self, *, model: str | None, system: str | None) -> ChatLog:
        return ChatLog(self.store, None, Conversation(system), model=model, system=system)

    def load(self, ref: str) -> ChatLog:
        return self._resume(self.store, self.store.get(ref).id)

    def names(self) -> list[str]:
        try:
            return list(self.store.names())
        except errors.StoreError:
            return []


def _worth_saving(answer: Message) -> bool:
    """A compared answer that began, or was paid for (a lane stopped in its tool round)."""
    return _started(answer) or bool(answer.rounds) or answer.usage is not None


def _started(answer: Message) -> bool:
    """Did any of the answer arrive (or did it end cleanly, if empty)? Only then is it worth a session."""
    return answer.status == "complete" or bool(answer.text or answer.reasoning)
