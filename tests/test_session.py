"""A live chat without the terminal: switching, retry, undo, settings, attachments, fallback."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from modelswitch.config import load as config_mod
from modelswitch import errors
from modelswitch.conversation import Message
from modelswitch.engine.session import ChatSession
from tests.loopback import LoopbackServer, Reply

say = Reply.say


@pytest.fixture
def chat(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> ChatSession:
    monkeypatch.setenv("K", "sk-k-0123456789")
    cfg = config_mod.build(tomllib.loads(f"""
[providers.a]
base_url = "{server.url}/a/v1"
api_key_env = "K"
retries = 0
[providers.a.models.x]
id = "model-x"
fallback = ["y"]
[providers.b]
base_url = "{server.url}/b/v1"
api_key_env = "K"
[providers.b.models.y]
id = "model-y"
[providers.c]
base_url = "{server.url}/c/v1"
api_key_env = "NOT_SET_ANYWHERE"
[providers.c.models.z]
id = "model-z"
"""), Path("t.toml"), presets={})
    return ChatSession(cfg, cfg.resolve("x"))


def exchange(chat: ChatSession, text: str, model: str | None = None) -> Message:
    user = chat.user_message(text)
    answer = chat.ask(user, chat.resolve(model) if model else None)
    try:
        for _ in answer:
            pass
    except errors.ProviderError:
        pass
    return chat.finish(user, answer)


def test_switch_keeps_history_and_refuses_keyless_models(chat: ChatSession, server: LoopbackServer) -> None:
    server.add(say("from x", path="/a/"))
    exchange(chat, "hello")
    assert chat.switch("y") == "switched to y (b/model-y); history kept (2 turns)"
    with pytest.raises(errors.ConfigError, match="set NOT_SET_ANYWHERE"):
        chat.switch("z")
    with pytest.raises(errors.UsageError, match="unknown model"):
        chat.switch("nope")
    assert chat.model.alias == "y"


def test_retry_on_another_model_replaces_the_last_answer(chat: ChatSession, server: LoopbackServer) -> None:
    server.add(say("first try", path="/a/"), say("second try", path="/b/"))
    exchange(chat, "question")
    user = chat.pop_last_exchange()
    answer = chat.ask(user, chat.resolve("y"))
    list(answer)
    chat.finish(user, answer)
    assert [m.text for m in chat.conversation.messages] == ["question", "second try"]
    assert chat.conversation.messages[-1].model.alias == "y"
    assert chat.model.alias == "x"  # a retry elsewhere does not switch


def test_fallback_answers_but_the_current_model_stays(chat: ChatSession, server: LoopbackServer) -> None:
    server.add(Reply.json(503, {"error": {"message": "busy"}}, path="/a/"), say("backup here", path="/b/"))
    m = exchange(chat, "hi")
    assert (m.text, m.model.alias, m.fallback_from) == ("backup here", "y", "x")
    assert chat.model.alias == "x"


def test_undo_and_failed_turns(chat: ChatSession, server: LoopbackServer) -> None:
    server.add(say("kept", path="/a/"))
    exchange(chat, "one")
    server.add(Reply.json(400, {"error": {"message": "bad"}}, path="/a/"))
    failed = exchange(chat, "two")
    assert failed.status == "error" and failed.error and "bad" in failed.error
    assert len(chat.conversation.messages) == 4  # the failed exchange is on record
    chat.pop_last_exchange()
    assert [m.text for m in chat.conversation.messages] == ["one", "kept"]
    chat.pop_last_exchange()
    with pytest.raises(errors.UsageError, match="nothing to undo"):
        chat.pop_last_exchange()


def test_settings_are_validated_and_sent(chat: ChatSession, server: LoopbackServer) -> None:
    chat.set("temperature", "0.2")
    chat.set("max_tokens", "64")
    for bad, msg in (("temperature 5", "between 0 and 2"), ("max_tokens -1", "greater than 0"),
                     ("reasoning maybe", "reasoning is on, off"), ("colour red", "unknown setting")):
        key, value = bad.split()
        with pytest.raises(errors.UsageError, match=msg):
            chat.set(key, value)
    server.add(say("ok", path="/a/"))
    exchange(chat, "hi")
    body = server.requests[0].json
    assert body["temperature"] == 0.2 and body["max_tokens"] == 64


def test_attachments_go_with_the_next_message_only(chat: ChatSession, server: LoopbackServer, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("remember the milk\n")
    assert "attached notes.txt" in chat.attach(str(notes))
    binary = tmp_path / "x.bin"
    binary.write_bytes(b"\x00\x01")
    with pytest.raises(errors.UsageError, match="looks binary"):
        chat.attach(str(binary))
    with pytest.raises(errors.UsageError, match="cannot read"):
        chat.attach(str(tmp_path / "missing.txt"))
    server.add(say("ok", path="/a/"), say("ok again", path="/a/"))
    exchange(chat, "what should I buy?")
    exchange(chat, "and then?")
    first, second = (r.json["messages"] for r in server.requests)
    assert "remember the milk" in first[-1]["content"] and first[-1]["content"].endswith("what should I buy?")
    assert second[-1]["content"] == "and then?"


def test_exchanges_without_an_answer_stay_in_history_but_are_not_sent() -> None:
    from modelswitch.conversation import Conversation

    def a(text: str, **kw: object) -> Message:
        return Message("assistant", text, **kw)  # type: ignore[arg-type]

    conv = Conversation(None, (
        Message("user", "u1"), a("answer"),
        Message("user", "u2"), a("", status="error", error="503"),
        Message("user", "u3"), a("partial", status="interrupted"),  # the user saw it: context
        Message("user", "u4"), a("", status="interrupted"),
        Message("user", "u5"), a("", finish_reason="content_filter"),  # refused or blocked
        Message("user", "u6"),  # the question being asked
    ))
    assert [m.text for m in conv.for_request()] == ["u1", "answer", "u3", "partial", "u6"]
    assert len(conv.messages) == 11


def test_keep_writes_the_exchange_when_the_comparison_could_not_be_saved(
    chat: ChatSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelswitch.store.chatlog import ChatLog
    from modelswitch.conversation import Conversation
    from modelswitch.store.db import Store

    st = Store.open(tmp_path / "s.db")
    chat.log = ChatLog(st, None, Conversation())
    real_append = Store.append

    def failing(self: Store, *a: object, **kw: object) -> tuple[int, ...]:
        monkeypatch.setattr(Store, "append", real_append)  # only this one write fails
        raise errors.StoreError("disk full")

    monkeypatch.setattr(Store, "append", failing)
    user = Message("user", "which?")
    chat.hold_compare(user, [(Message("assistant", "one"), None), (Message("assistant", "two"), None)])
    chat.keep("2")
    assert chat.log.session_id is not None
    _, saved = st.load(chat.log.session_id)
    assert [m.text for m in saved.messages] == [m.text for m in chat.conversation.messages] == ["which?", "two"]


@pytest.mark.parametrize("finish", ["length", "content_filter", "insufficient_system_resource"])
def test_retry_cut_short_keeps_the_complete_earlier_answer(
    chat: ChatSession, server: LoopbackServer, finish: str
) -> None:
    cut = Reply.sse(
        {"choices": [{"index": 0, "delta": {"content": "partial"}, "finish_reason": None}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": finish}],
         "usage": {"prompt_tokens": 5, "completion_tokens": 9}},
        path="/a/")
    server.add(say("GOOD", path="/a/"), cut)
    exchange(chat, "question")
    user, replacing = chat.retry_target()
    answer = chat.ask(user, replacing=replacing)
    list(answer)
    assert answer.message.text == "partial" and chat.keeps_earlier(answer.message)
    chat.finish(user, answer, replacing=replacing)
    assert [m.text for m in chat.conversation.messages] == ["question", "GOOD"]
    assert [t.message.text for t in chat.stats()] == ["GOOD", "partial"]  # the cut one was paid for


def test_the_toolbar_says_unknown_usage_honestly(chat: ChatSession, server: LoopbackServer) -> None:
    from modelswitch.repl.loop import Repl

    repl = Repl(chat, color=False, interactive=False)
    assert " · 0 tokens" in repl.toolbar()  # nothing answered yet: nothing spent
    # A server that reports no usage (many OpenAI-compatible ones without stream_options).
    server.add(Reply.sse({"choices": [{"index": 0, "delta": {"content": "no count"}, "finish_reason": None}]},
                         {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
               say("counted", usage=(10, 4)))
    exchange(chat, "first")
    assert " · tokens unknown" in repl.toolbar()  # /cost says "-" for it, never 0
    exchange(chat, "second")
    assert " · 14+ tokens" in repl.toolbar()  # what is known, and that there is more
