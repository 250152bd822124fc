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
