"""Kimi's `$web_search` (a round the client echoes back, then the model answers) on the wire against a
validating Moonshot fake, in the answer and in history; and the plain line for DeepSeek."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelswitch import errors
from modelswitch.cli.main import app
from modelswitch.config import load as config
from modelswitch.conversation import Conversation, Message, ToolSpec
from modelswitch.engine.answer import Answer, Settings
from modelswitch.engine.catalog import no_search_line, search_vendor
from modelswitch.events import Notice, ReplayState, SearchQuery, TextDelta, Usage
from modelswitch.providers import get_protocol
from modelswitch.providers.base import Target
from modelswitch.providers.search import KIMI_NO_SOURCES
from tests.loopback import LoopbackServer, Received, Reply
from tests.search_fakes import KIMI_SEARCH_TOKENS, KIMI_TOOL, FakeChatSearch, FakeKimiSearch

ASK = Conversation().add(Message(role="user", text="tell me about pelicans"))
ANSWER = "Pelicans are large water birds; the brown pelican lives on coasts."


def kimi_config(url: str) -> str:
    """Kimi (searching by default) at /kimi/ and Qwen's relay at /relay/, on one loopback server."""
    return f"""
default = "kimi"
[providers.moonshot]
base_url = "{url}/kimi/v1"
api_key_env = "KIMI_KEY"
search = "kimi"
retries = 0
[providers.moonshot.models.kimi]
id = "kimi-k2-0905-preview"
search = true
[providers.relay]
base_url = "{url}/relay/v1"
api_key_env = "RELAY_KEY"
search = "qwen"
retries = 0
[providers.relay.models.qwen]
id = "qwen-plus"
"""


@pytest.fixture
def kimi(server: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[FakeKimiSearch, FakeChatSearch]:
    """A Moonshot fake at /kimi/ and another vendor (Qwen's fake, which takes no tool messages)."""
    monkeypatch.setenv("KIMI_KEY", "sk-kimi")
    monkeypatch.setenv("RELAY_KEY", "sk-test")
    fake, other = FakeKimiSearch(), FakeChatSearch(vendor="qwen")
    server.default = lambda rec: fake(rec) if rec.path.startswith("/kimi/") else other(rec)
    p = tmp_path / "kimi.toml"
    p.write_text(kimi_config(server.url), "utf-8")
    monkeypatch.setenv("MODELSWITCH_CONFIG", str(p))
    return fake, other


def run(conversation: Conversation, model: str, search: bool | None = None) -> tuple[list, Message]:
    cfg = config.load(Path(os.environ["MODELSWITCH_CONFIG"]))
    answer = Answer(cfg, conversation, cfg.resolve(model), settings=Settings(search=search))
    events = list(answer)
    return events, answer.message


def test_kimi_search_round_is_echoed_back_unchanged_then_answered(kimi: tuple[FakeKimiSearch, FakeChatSearch]) -> None:
    fake, _ = kimi
    events, message = run(ASK, "kimi")
    assert fake.rejected == []
    first, second = fake.accepted
    assert first["tools"] == [KIMI_TOOL]
    (call_id, arguments), = fake.issued.items()
    # The model's call goes back as it came, then the tool message with id, name and arguments.
    assert second["messages"][-2:] == [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": call_id, "type": "builtin_function", "function": {"name": "$web_search", "arguments": arguments}}]},
        {"role": "tool", "tool_call_id": call_id, "name": "$web_search", "content": arguments},
    ]
    assert message.text == ANSWER and message.status == "complete" and message.finish_reason == "stop"
    # Shown as a search, said once that no sources come back, the search's tokens named.
    assert [e for e in events if isinstance(e, SearchQuery)] == [SearchQuery("")]
    notices = [e.text for e in events if isinstance(e, Notice)]
    assert notices == [KIMI_NO_SOURCES.format(tokens=f"; its results took {KIMI_SEARCH_TOKENS:,} input tokens")]
    kinds = [type(e) for e in events]
    assert kinds.index(SearchQuery) < kinds.index(TextDelta)
    # Both requests were billed: the usage is their sum (the results counted as input).
    assert message.usage == Usage(12 + 12 + KIMI_SEARCH_TOKENS, 8 + 30)
    assert message.citations == ()


def test_kimi_round_goes_back_only_to_kimi_while_it_searches(kimi: tuple[FakeKimiSearch, FakeChatSearch]) -> None:
    fake, other = kimi
    _, first = run(ASK, "kimi")
    history = ASK.add(first).add(Message(role="user", text="and their wingspan?"))
    # To Kimi searching again: the earlier round goes back (the fake accepts only what it issued).
    _, again = run(history, "kimi")
    assert fake.rejected == [] and again.text == ANSWER
    sent = fake.accepted[2]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "assistant", "user"]
    # To Kimi with search off: no $web_search tool is declared, so its round is not sent either.
    _, plain = run(history, "kimi", search=False)
    assert fake.rejected == [] and "tools" not in fake.accepted[-1]
    assert [m["role"] for m in fake.accepted[-1]["messages"]] == ["user", "assistant", "user"]
    # After /model to another vendor: only the text, a valid request there.
    _, switched = run(history, "qwen")
    assert other.rejected == [] and switched.status == "complete"
    assert [m["role"] for m in other.accepted[-1]["messages"]] == ["user", "assistant", "user"]
    assert other.accepted[-1]["messages"][1]["content"] == ANSWER


def test_a_missing_or_altered_echo_is_rejected_by_the_fake(kimi: tuple[FakeKimiSearch, FakeChatSearch],
                                                           server: LoopbackServer) -> None:
    fake, _ = kimi
    _, first = run(ASK, "kimi")
    state, = first.replay
    data = json.loads(state.data)
    data["messages"][1]["content"] = data["messages"][1]["content"].replace(str(KIMI_SEARCH_TOKENS), "1")
    altered = Message(role="assistant", text=first.text, model=first.model,
                      replay=(ReplayState(state.protocol, state.model, json.dumps(data)),))
    with pytest.raises(errors.BadRequestError, match="arguments as they were"):
        run(ASK.add(altered).add(Message(role="user", text="more")), "kimi")
    missing = dict(fake.accepted[1])
    missing["messages"] = missing["messages"][:-1]
    reply = fake(Received("POST", "/kimi/v1/chat/completions", {"authorization": "Bearer sk-kimi"},
                          json.dumps(missing).encode()))
    assert reply.status == 400 and b"has no tool message" in reply.chunks[0]


def test_kimi_search_tool_sits_beside_the_users_tools() -> None:
    target = Target("moonshot", "https://api.moonshot.cn/v1", "kimi-k2-0905-preview", api_key="k",
                    search="kimi", tools=(ToolSpec("read_file", "read a file"),))
    body = get_protocol("openai").build_request(target, ASK).body
    assert body is not None
    assert [t["type"] for t in body["tools"]] == ["function", "builtin_function"]
    assert body["tools"][1] == KIMI_TOOL


def test_kimi_preset_searches_and_ask_json_answers(kimi: tuple[FakeKimiSearch, FakeChatSearch],
                                                                    tmp_path: Path) -> None:
    presets = config.load(tmp_path / "none.toml")
    assert search_vendor(presets, presets.resolve("kimi")) == "kimi"
    assert presets.provider("moonshot").search == "kimi"
    result = CliRunner().invoke(app, ["ask", "--json", "pelicans?"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["content"] == ANSWER and out["citations"] == []


def test_kimi_search_to_jsonl_shows_the_search(kimi: tuple[FakeKimiSearch, FakeChatSearch]) -> None:
    result = CliRunner().invoke(app, ["ask", "--jsonl", "pelicans?"], catch_exceptions=False)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = [e["type"] for e in lines]
    assert kinds.index("search") < kinds.index("text") and kinds[-1] == "done"
    plain = CliRunner().invoke(app, ["ask", "pelicans?"], catch_exceptions=False)
    assert plain.stdout == ANSWER + "\n"
    assert "does not return the sources" in plain.stderr


# -- DeepSeek: its search is not spoken here ------------------------------------------------------


def test_deepseek_says_plainly_why_it_cannot_search(tmp_path: Path, server: LoopbackServer,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    presets = config.load(tmp_path / "none.toml")
    line = no_search_line(presets, presets.resolve("v3"))
    assert line.startswith("v3 cannot search the web: DeepSeek's own search (its deepseek_web_search server "
                           "tool) is not supported here yet;")
    assert "models that can:" in line
    monkeypatch.setenv("DEEPSEEK_API_KEY", "sk-ds")
    p = tmp_path / "ds.toml"
    p.write_text(f'[providers.deepseek]\nbase_url = "{server.url}/v1"\nretries = 0\n', "utf-8")
    server.add(Reply.say("plain answer"))
    # Search asked for on a model that cannot: the one line, and the question is still answered.
    result = CliRunner().invoke(app, ["--config", str(p), "ask", "--search", "-m", "v3", "hi"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "plain answer\n"
    assert "cannot search the web" in result.stderr


# -- a search round that is paid for, then given up or cut short ------------------------------


def kimi_fallback_config(url: str) -> str:
    """Kimi (searching, cheap) falling back to an expensive DeepSeek-shaped model at /ds/."""
    return f"""
default = "kimi"
[providers.moonshot]
base_url = "{url}/kimi/v1"
api_key_env = "KIMI_KEY"
search = "kimi"
retries = 0
[providers.moonshot.models.kimi]
id = "kimi-k2-0905-preview"
search = true
fallback = ["expensive"]
price = {{ input = 1.0, output = 1.0, currency = "USD" }}
[providers.other]
base_url = "{url}/ds/v1"
api_key_env = "DS_KEY"
retries = 0
[providers.other.models.expensive]
id = "deepseek-chat"
price = {{ input = 100.0, output = 100.0, currency = "USD" }}
"""


@pytest.fixture
def costly(server: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """Kimi's search round reports 100,000 prompt tokens; what comes next is up to the test."""
    from tests.validators import FakeDeepSeek

    monkeypatch.setenv("KIMI_KEY", "sk-kimi")
    monkeypatch.setenv("DS_KEY", "sk-ds-test")
    fake = FakeKimiSearch(search_usage={"prompt_tokens": 100000, "completion_tokens": 8, "total_tokens": 100008})
    ds = FakeDeepSeek(prefix="/ds/")
    resumed: list[Reply] = []  # the reply to the resumed request, when set

    def handle(rec: Received) -> Reply:
        if rec.path.startswith("/ds/"):
            return ds(rec)
        if fake.accepted and resumed:
            return resumed[0]
        return fake(rec)

    server.default = handle
    p = tmp_path / "kimi.toml"
    p.write_text(kimi_fallback_config(server.url), "utf-8")
    monkeypatch.setenv("MODELSWITCH_CONFIG", str(p))
    return fake, ds, resumed


# A resumed answer still streaming (its usage would come last): what Ctrl-C cuts short.
UNFINISHED = Reply.sse(*[{"id": "c1", "object": "chat.completion.chunk", "model": "kimi-k2-0905-preview",
                          "choices": [{"index": 0, "delta": {"content": w}, "finish_reason": None}]}
                         for w in ("Pelicans ", "are ", "large ", "water ", "birds.")], done=False, delay=0.05)
BUSY = Reply.json(503, {"error": {"message": "The engine is currently overloaded", "type": "engine_overloaded_error"}})


def test_a_search_round_then_a_fallback_bills_each_model_at_its_own_price(costly) -> None:
    from modelswitch.config.pricing import message_cost

    fake, ds, resumed = costly
    resumed.append(BUSY)
    cfg = config.load(Path(os.environ["MODELSWITCH_CONFIG"]))
    answer = Answer(cfg, ASK, cfg.resolve("kimi"))
    list(answer)
    message = answer.message
    assert message.status == "complete" and message.model is not None and message.model.id == "deepseek-chat"
    assert len(fake.accepted) == 1 and len(ds.accepted) == 1 and not ds.rejected
    # The fallback's own request only, at its price: Kimi's 100,000 tokens are not in it...
    assert message.usage is not None and message.usage.input_tokens == 41
    assert message.replay == ()  # ...and neither is Kimi's round, which no other model may be sent
    cost = message_cost(cfg, message)
    assert cost is not None and cost.amount == pytest.approx((41 + 30) * 100 / 1e6)
    # Kimi's round was billed by Moonshot: on record apart, at Kimi's price.
    (spent,) = answer.losers
    assert spent.model is not None and spent.model.id == "kimi-k2-0905-preview"
    assert spent.usage == Usage(100000, 8) and spent.status == "error" and "503" in (spent.error or "")
    kimi_cost = message_cost(cfg, spent)
    assert kimi_cost is not None and kimi_cost.amount == pytest.approx(100008 / 1e6)


def test_ctrl_c_in_the_resumed_request_keeps_the_search_rounds_usage_as_a_lower_bound(costly, tmp_path: Path) -> None:
    """The resumed request reported nothing (cut off): the answer's usage is unknown, not the
    round's alone passed off as the whole; the round, known, is on record and counted."""
    from modelswitch.engine.session import ChatSession
    from modelswitch.store.export import model_stats, tokens_text

    fake, _, resumed = costly
    resumed.append(UNFINISHED)
    cfg = config.load(Path(os.environ["MODELSWITCH_CONFIG"]))
    session = ChatSession(cfg, cfg.resolve("kimi"))
    user = Message(role="user", text="tell me about pelicans")
    answer = session.ask(user)
    for event in answer:
        if isinstance(event, TextDelta):
            break
    answer.close()
    message = session.finish(user, answer)
    assert message.status == "interrupted" and message.text.startswith("Pelicans") and message.usage is None
    (spent,) = answer.losers
    assert spent.usage == Usage(100000, 8) and spent.model is not None and spent.model.id == "kimi-k2-0905-preview"
    turns = session.stats()
    assert [t.message.usage for t in turns] == [None, Usage(100000, 8)]
    assert turns[1].cost is not None and turns[1].cost.amount == pytest.approx(100008 / 1e6)
    (row,), _ = model_stats(turns)
    assert tokens_text(row) == "100,008+ tokens"


def test_text_before_and_after_a_search_round_never_glues_into_one_word(server: LoopbackServer, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIMI_KEY", "sk-kimi")
    monkeypatch.setenv("RELAY_KEY", "sk-test")
    fake = FakeKimiSearch(preamble="Let me search.")
    server.default = fake
    p = tmp_path / "kimi.toml"
    p.write_text(kimi_config(server.url), "utf-8")
    monkeypatch.setenv("MODELSWITCH_CONFIG", str(p))
    events, message = run(ASK, "kimi")
    assert not fake.rejected
    assert message.text == "Let me search.\n\n" + ANSWER
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == message.text  # the screen shows it too


def test_ctrl_c_in_a_resumed_request_inside_the_tool_loop_keeps_the_rounds_usage(costly) -> None:
    from modelswitch.engine.tools import ToolAnswer
    from tests.test_tool_loop import Box

    fake, _, resumed = costly
    resumed.append(UNFINISHED)
    cfg = config.load(Path(os.environ["MODELSWITCH_CONFIG"]))
    answer = ToolAnswer(cfg, ASK, cfg.resolve("kimi"), Box(), lambda call, server: True)
    for event in answer:
        if isinstance(event, TextDelta):
            break
    answer.close()
    assert not fake.rejected and fake.accepted[0]["tools"][-1] == KIMI_TOOL
    (spent,) = answer.losers
    assert spent.usage == Usage(100000, 8) and answer.message.status == "interrupted"


def test_a_chats_first_answer_failing_after_a_paid_search_round_keeps_the_round_on_record(
    costly, tmp_path: Path
) -> None:
    """Kimi searched (100,008 tokens billed), then the resumed request failed and nothing else
    answered: the chat's first exchange failed, yet the paid round must be in the store."""
    from modelswitch import errors
    from modelswitch.conversation import Conversation
    from modelswitch.engine.session import ChatSession
    from modelswitch.store.chatlog import ChatLog
    from modelswitch.store.db import Store

    _, _, resumed = costly
    resumed.append(BUSY)
    cfg = config.load(Path(os.environ["MODELSWITCH_CONFIG"]))
    store = Store.open(tmp_path / "sessions.db")
    log = ChatLog(store, None, Conversation())
    session = ChatSession(cfg, cfg.resolve("kimi"), log=log)
    user = Message(role="user", text="tell me about pelicans")
    answer = session.ask(user, fallback=False)
    with pytest.raises(errors.ProviderError):
        list(answer)
    session.finish(user, answer)
    assert log.session_id is not None  # the money spent made the session
    _, turns = store.transcript(log.session_id)
    paid = [t for t in turns if t.message.usage == Usage(100000, 8)]
    assert len(paid) == 1 and paid[0].alternate and paid[0].cost is not None
    store.close()


def test_a_compare_lanes_paid_search_round_is_counted_and_stored(costly, tmp_path: Path) -> None:
    """In /compare a lane gives up after Kimi's search round (the resumed request fails, compare
    lanes take no fallback): the round is paid for, so /cost and the store count it."""
    from modelswitch.conversation import Conversation
    from modelswitch.engine.session import ChatSession
    from modelswitch.repl.compare import run_compare
    from modelswitch.repl.loop import Repl
    from modelswitch.store.chatlog import ChatLog
    from modelswitch.store.db import Store

    _, _, resumed = costly
    resumed.append(BUSY)
    cfg = config.load(Path(os.environ["MODELSWITCH_CONFIG"]))
    store = Store.open(tmp_path / "sessions.db")
    log = ChatLog(store, None, Conversation())
    session = ChatSession(cfg, cfg.resolve("kimi"), log=log)
    run_compare(Repl(session, color=False, interactive=False), [cfg.resolve("kimi"), cfg.resolve("expensive")],
                "tell me about pelicans")
    assert Usage(100000, 8) in [t.message.usage for t in session.stats()]
    assert log.session_id is not None
    _, turns = store.transcript(log.session_id)
    assert Usage(100000, 8) in [t.message.usage for t in turns]
    store.close()
