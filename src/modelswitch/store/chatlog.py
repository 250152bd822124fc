"""The bridge from a live chat to the session database.

A chat becomes a saved session at its first exchange. If the database cannot be used (corrupt,
from a newer version, unwritable) the chat goes on unsaved and the user is told once, because
losing the ability to talk is worse than losing the ability to save.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import errors
from ..conversation import Conversation, Message
from ..config.pricing import Cost
from ..notify import warn

if TYPE_CHECKING:
    from collections.abc import Callable

    from .db import Store


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
                created = store.create_session(name=session, model=model, system=system)
                return cls(store, created.id, Conversation(system), name=session, model=model, system=system)
            return cls._resume(store, info.id)
        return cls(store, None, Conversation(system), model=model, system=system)

    @classmethod
    def _resume(cls, store: Store, session_id: int) -> ChatLog:
        info, conversation = store.load(session_id)
        return cls(store, info.id, conversation, name=info.name, model=info.model, system=info.system)

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
            info = self.store.create_session(name=self.name, model=self._model, system=self._system)
            self.session_id = info.id
        return self.session_id

    def _safely(self, what: str, fn: Callable[[], object]) -> None:
        try:
            fn()
        except errors.StoreError as exc:
            warn(f"warning: could not save {what}: {exc.message}")

    def record(self, user: Message, assistant: Message, cost: Cost | None) -> None:
        from .db import Turn

        self._safely("this exchange", lambda: self.store.append(self._ensure(), Turn(user), Turn(assistant, cost)))

    def record_compare(self, user: Message, answers: list[tuple[Message, Cost | None]]) -> None:
        """All compared answers are stored, as alternates, with the question; /keep picks one."""
        from .db import Turn

        turns = [Turn(user, alternate=True)] + [Turn(m, c, alternate=True) for m, c in answers]

        def write() -> None:
            self._held = self.store.append(self._ensure(), *turns)

        self._safely("the compared answers", write)

    def keep(self, index: int) -> None:
        if not self._held or self.session_id is None:
            return
        sid, user_idx, answer_idx = self.session_id, self._held[0], self._held[1 + index]
        self._held = ()

        def write() -> None:
            self.store.set_alternate(sid, user_idx, False)
            self.store.set_alternate(sid, answer_idx, False)

        self._safely("the kept answer", write)

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
        """Name this chat (`/save NAME`); an unsaved chat gets its row now."""
        self.store.set_name(self._ensure(), name)
        self.name = name

    def drop_last_exchange(self) -> None:
        """The last kept question and answer leave the context but stay on record (alternates)."""
        if self.session_id is not None:
            sid = self.session_id
            self._safely("the undo", lambda: self.store.hide_last_exchange(sid))

    def fresh(self, *, model: str | None, system: str | None) -> ChatLog:
        return ChatLog(self.store, None, Conversation(system), model=model, system=system)

    def load(self, ref: str) -> ChatLog:
        return self._resume(self.store, self.store.get(ref).id)

    def names(self) -> list[str]:
        try:
            return list(self.store.names())
        except errors.StoreError:
            return []
