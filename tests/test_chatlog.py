"""The bridge to the database with two terminals on one session, and exchanges that never began.

Each ChatLog opens its own connection to the one database file, as two processes would.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from modelswitch.config import load as config_mod
from modelswitch import errors
from modelswitch.store.chatlog import ChatLog
from modelswitch.conversation import Message
from modelswitch.engine.session import ChatSession
from modelswitch.store.db import Store
from tests.loopback import LoopbackServer, Reply
from tests.test_session import exchange

say = Reply.say
FAIL = {"error": {"message": "server error"}}


@pytest.fixture
def config(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> config_mod.Config:
    monkeypatch.setenv("K", "sk-k-0123456789")
    return config_mod.build(tomllib.loads(f"""
[providers.a]
base_url = "{server.url}/v1"
api_key_env = "K"
retries = 0
[providers.a.models.x]
id = "model-x"
"""), Path("t.toml"), presets={})


def terminal(config: config_mod.Config, *, cont: bool = False, session: str | None = None) -> ChatSession:
    """A chat as `modelswitch chat` (or `chat -c`, `--session`) would start it."""
    log = ChatLog.open_for(session, cont, model="x", system=None)
    assert log is not None
    return ChatSession(config, config.resolve("x"), conversation=log.conversation, log=log)


def kept_texts() -> list[str]:
    with Store.open() as st:
        info = st.latest()
        assert info is not None
        return [m.text for m in st.load(info.id)[1].messages]


def test_undo_hides_this_terminals_exchange_not_the_other_ones(config: config_mod.Config, server: LoopbackServer) -> None:
    server.add(say("A answers"), say("B answers"))
    a = terminal(config)
    exchange(a, "from A")
    b = terminal(config, cont=True)  # B joins the session A started
    exchange(b, "from B")
    assert kept_texts() == ["from A", "A answers", "from B", "B answers"]

    a.pop_last_exchange()  # /undo in A: A's own exchange goes, B's is the newer one in the table
    assert kept_texts() == ["from B", "B answers"]
    b.pop_last_exchange()
    assert kept_texts() == []


def test_undo_after_resume_hides_the_resumed_exchange_not_one_appended_since(
    config: config_mod.Config, server: LoopbackServer
) -> None:
    server.add(say("first"), say("B's"))
    exchange(terminal(config), "earlier run")
    a = terminal(config, cont=True)  # `chat -c`: A's last exchange is the one it loaded
    b = terminal(config, cont=True)
    exchange(b, "B asks")
    a.pop_last_exchange()
    assert kept_texts() == ["B asks", "B's"]
    assert [m.text for m in a.conversation.messages] == []


def test_retry_replaces_this_terminals_answer_only(config: config_mod.Config, server: LoopbackServer) -> None:
    server.add(say("A1"), say("B1"), say("A2"))
    a = terminal(config)
    exchange(a, "qa")
    b = terminal(config, cont=True)
    exchange(b, "qb")
    question = a.pop_last_exchange()  # /retry: drop A's exchange, ask its question again
    exchange(a, question.text)
    assert kept_texts() == ["qb", "B1", "qa", "A2"]
    with Store.open() as st:
        _, turns = st.transcript(st.latest().id)  # type: ignore[union-attr]
    assert [(t.message.text, t.alternate) for t in turns][:2] == [("qa", True), ("A1", True)]


def test_undo_of_a_kept_compare_answer_and_of_an_unsaved_exchange(config: config_mod.Config, server: LoopbackServer) -> None:
    server.add(say("one"))
    a = terminal(config)
    exchange(a, "q")
    a.hold_compare(Message("user", "cmp"), [(Message("assistant", "x1"), None), (Message("assistant", "x2"), None)])
    a.keep("2")
    assert kept_texts() == ["q", "one", "cmp", "x2"]
    a.pop_last_exchange()
    assert kept_texts() == ["q", "one"]


def test_a_request_that_failed_before_any_answer_makes_no_session(config: config_mod.Config, server: LoopbackServer) -> None:
    server.add(Reply.json(500, FAIL), say("hello"))
    a = terminal(config)
    failed = exchange(a, "lost")
    assert failed.status == "error" and not failed.text
    with Store.open() as st:
        assert st.list() == []
    a.pop_last_exchange()  # /undo of the unsaved exchange touches nothing stored
    exchange(a, "again")
    assert kept_texts() == ["again", "hello"]


def test_a_named_session_is_made_with_its_first_answer(config: config_mod.Config, server: LoopbackServer) -> None:
    server.add(Reply.json(500, FAIL), say("ok"))
    a = terminal(config, session="work")
    exchange(a, "lost")
    with Store.open() as st:
        assert st.find("work") is None
    exchange(a, "kept")
    with Store.open() as st:
        info = st.find("work")
        # The failed exchange is written with the first answer: the store holds what /history shows.
        assert info is not None and [m.text for m in st.load(info.id)[1].messages] == ["lost", "", "kept", "ok"]
        assert [m.status for m in st.load(info.id)[1].messages] == ["complete", "error", "complete", "complete"]
    with pytest.raises(errors.UsageError, match="looks like a session id"):
        ChatLog.open_for("#x", False, model="x", system=None)


def test_a_partial_answer_still_makes_a_session(config: config_mod.Config, server: LoopbackServer) -> None:
    parts = [{"choices": [{"index": 0, "delta": {"content": t}, "finish_reason": None}]} for t in ("half ", "way")]
    server.add(Reply.sse(*parts, drop_after=2))
    a = terminal(config)
    partial = exchange(a, "tell me")
    assert partial.status == "interrupted"
    assert kept_texts() == ["tell me", "half way"]


def test_two_terminals_starting_one_new_session_name_share_it(config: config_mod.Config, server: LoopbackServer) -> None:
    server.add(say("A answers"), say("B answers"))
    a = terminal(config, session="shared")
    b = terminal(config, session="shared")  # opened before A's first answer made the row
    exchange(a, "from A")
    exchange(b, "from B")
    with Store.open() as st:
        assert len(st.list()) == 1
        info = st.find("shared")
        assert info is not None
        assert [m.text for m in st.load(info.id)[1].messages] == ["from A", "A answers", "from B", "B answers"]


def test_a_compare_whose_answers_all_failed_makes_no_session(config: config_mod.Config) -> None:
    a = terminal(config)
    failed = Message("assistant", "", status="error", error="server error")
    a.hold_compare(Message("user", "cmp"), [(failed, None), (failed, None)])
    with Store.open() as st:
        assert st.list() == []


def test_save_before_any_answer_keeps_the_name_for_the_first_answer(
    config: config_mod.Config, server: LoopbackServer
) -> None:
    server.add(say("ok"))
    a = terminal(config)
    assert a.log is not None
    a.log.save_as("named-early")
    with Store.open() as st:
        assert st.list() == []
    exchange(a, "q")
    with Store.open() as st:
        info = st.find("named-early")
        assert info is not None and [m.text for m in st.load(info.id)[1].messages] == ["q", "ok"]


def _turns() -> list[tuple[str, bool]]:
    with Store.open() as st:
        info = st.latest()
        assert info is not None
        return [(t.message.text, t.alternate) for t in st.transcript(info.id)[1]]


def test_a_compare_not_kept_is_saved_before_clear_load_or_the_end(config: config_mod.Config) -> None:
    # Paid answers: /clear starts afresh, it does not erase them; nor does quitting without /keep.
    a = terminal(config)
    a.hold_compare(Message("user", "cmp"), [(Message("assistant", "x1"), None), (Message("assistant", "x2"), None)])
    a.clear()
    assert _turns() == [("cmp", True), ("x1", True), ("x2", True)]
    with Store.open() as st:
        (listed,) = st.list()
        assert (listed.turns, listed.alternates) == (0, 2)


def test_a_compare_in_a_new_chat_is_saved_with_its_kept_answer_or_the_next_exchange(
        config: config_mod.Config, server: LoopbackServer) -> None:
    a = terminal(config)
    a.hold_compare(Message("user", "cmp"), [(Message("assistant", "x1"), None), (Message("assistant", "x2"), None)])
    a.keep("2")
    assert _turns() == [("cmp", False), ("x1", True), ("x2", False)]
    assert kept_texts() == ["cmp", "x2"]

    server.add(say("one"))
    b = terminal(config)
    b.hold_compare(Message("user", "c2"), [(Message("assistant", "y1"), None), (Message("assistant", "y2"), None)])
    exchange(b, "q")  # not kept: the comparison stays on record (paid for), before the next turn
    assert _turns() == [("c2", True), ("y1", True), ("y2", True), ("q", False), ("one", False)]
    b.pop_last_exchange()  # /undo of that exchange after the deferred write still finds its rows
    assert kept_texts() == []
