"""Routes: one model served by several providers, tried in order, fastest first, or hedged.

Loopback providers with set latencies and failures; the transport, protocols and sessions are real."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from modelswitch import errors
from modelswitch.config import load as config_mod
from modelswitch.conversation import Conversation, Message, ModelRef, Timing
from modelswitch.engine.answer import Answer
from modelswitch.engine.session import ChatSession
from modelswitch.events import Event, Notice
from modelswitch.store.chatlog import ChatLog
from modelswitch.store.db import Store, Turn
from modelswitch.ui.base import footer_text
from tests.loopback import LoopbackServer, Reply

SLOW_TEXT = "slow route text"
FAST_TEXT = "fast route answer"
FAST = "fast/deepseek-ai/DeepSeek-R1"


def make_config(url: str, *, strategy: str, hedge_after: float = 0.2, extra_routes: str = "") -> config_mod.Config:
    text = f"""
[providers.slow]
type = "anthropic"
base_url = "{url}/slow"
api_key_env = "ROUTE_KEY"
retries = 0
[providers.slow.models.r1]
id = "deepseek-r1"
max_tokens = 100
routes = ["{FAST}"{extra_routes}]
strategy = "{strategy}"
hedge_after = {hedge_after}
price = {{ input = 4, output = 16, currency = "CNY" }}
[providers.fast]
base_url = "{url}/fast/v1"
api_key_env = "ROUTE_KEY"
retries = 0
[providers.fast.models.sf-r1]
id = "deepseek-ai/DeepSeek-R1"
price = {{ input = 1, output = 2, currency = "USD" }}
[providers.third]
base_url = "{url}/third/v1"
api_key_env = "ROUTE_KEY"
retries = 0
"""
    return config_mod.build(tomllib.loads(text), Path("test.toml"), presets={})


@pytest.fixture(autouse=True)
def key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ROUTE_KEY", "sk-route-0123456789abcdef")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))


def openai_routes(url: str, route: str, extra: str = "") -> str:
    """An OpenAI-protocol r1 at /slow/ with one route (its provider is the caller's to add)."""
    return (f'[providers.slow]\nbase_url = "{url}/slow/v1"\napi_key_env = "ROUTE_KEY"\nretries = 0\n'
            f'[providers.slow.models.r1]\nid = "deepseek-reasoner"\nroutes = ["{route}"]\n{extra}')


def slow_anthropic(delay: float) -> Reply:
    """Headers and message_start (which bills the input tokens) at once, the first token later."""
    events = [
        ("message_start", {"type": "message_start", "message": {
            "id": "msg_1", "type": "message", "role": "assistant", "model": "deepseek-r1", "content": [],
            "usage": {"input_tokens": 30, "output_tokens": 1}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": SLOW_TEXT}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 9}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    return Reply(chunks=[f"event: {n}\ndata: {json.dumps(d)}\n\n".encode() for n, d in events],
                 delay=delay, path="/slow/")


def run(cfg: config_mod.Config) -> tuple[Answer, list[Event], errors.ModelSwitchError | None]:
    answer = Answer(cfg, Conversation().add(Message("user", "hi")), cfg.resolve("r1"))
    events: list[Event] = []
    failure = None
    try:
        events.extend(answer)
    except errors.ModelSwitchError as exc:
        failure = exc
    return answer, events, failure


def notices(events: list[Event]) -> list[str]:
    return [e.text for e in events if isinstance(e, Notice)]


def test_hedge_takes_the_first_token_cancels_the_loser_and_counts_it(server: LoopbackServer,
                                                                      tmp_path: Path) -> None:
    # The slow route bills its input at once but sends its first token only after 3 s; after
    # 0.2 s without a token the fast route is asked too, answers at once and wins.
    server.add(slow_anthropic(delay=3.0), Reply.say(FAST_TEXT, usage=(12, 5), path="/fast/"))
    cfg = make_config(server.url, strategy="hedge")
    with Store.open() as store:
        session = ChatSession(cfg, cfg.resolve("r1"), log=ChatLog(store, None, Conversation()))
        user = Message("user", "hi")
        answer = session.ask(user)
        events = list(answer)
        message = session.finish(user, answer)

        assert message.text == FAST_TEXT and message.status == "complete"
        assert message.route == FAST and message.model == ModelRef("fast", "deepseek-ai/DeepSeek-R1", "openai", "r1")
        assert notices(events) == [f"no first token from slow/deepseek-r1 in 0.2 s — also asking {FAST}"]
        assert "r1 via fast/deepseek-ai/DeepSeek-R1" in footer_text(message, session.cost_for(message))
        # The winner is priced as the route that served it (USD), not as the alias's own provider.
        assert session.cost_for(message) is not None and session.cost_for(message).currency == "USD"  # type: ignore[union-attr]

        # The loser was cancelled before its first token (its text never came) and is on record
        # as a paid-for attempt. Its usage is unknown: Anthropic's parser reports the counts
        # (message_start's input included) only at message_stop, which a cancelled stream never
        # reaches; a usage that did arrive would be kept and priced like any answer's.
        (loser,) = answer.losers
        assert loser.text == "" and loser.status == "interrupted" and loser.usage is None
        assert loser.model is not None and loser.model.full_id == "slow/deepseek-r1"
        assert [t.message.model.full_id for t in session.answered if t.message.model] == [FAST, "slow/deepseek-r1"]

        assert session.log is not None and session.log.session_id is not None
        _, turns = store.transcript(session.log.session_id)
        assert [(t.message.role, t.alternate, t.message.text) for t in turns] == [
            ("user", False, "hi"), ("assistant", False, FAST_TEXT), ("assistant", True, "")]
        # and `stats` sees the cancelled route's attempt
        slow = next(h for h in store.health() if h.model == "slow/deepseek-r1")
        assert (slow.answers, slow.interrupted) == (1, 1)
    # Both were asked (in which order they reach the server depends on the machine's load).
    assert sorted(r.path.split("/")[1] for r in server.requests) == ["fast", "slow"]


def test_hedge_keeps_the_first_route_when_it_answers_in_time(server: LoopbackServer) -> None:
    server.add(slow_anthropic(delay=0.0), Reply.say(FAST_TEXT, path="/fast/"))
    answer, events, failure = run(make_config(server.url, strategy="hedge", hedge_after=30))
    assert failure is None and answer.message.text == SLOW_TEXT
    assert answer.message.route == "slow/deepseek-r1" and answer.losers == ()
    assert [r.path for r in server.requests] == ["/slow/v1/messages"]  # the fast route was never asked


def test_hedge_asks_the_next_route_at_once_when_one_fails(server: LoopbackServer) -> None:
    server.add(Reply.json(503, {"error": {"message": "server busy"}}, path="/slow/"),
               Reply.say(FAST_TEXT, path="/fast/"))
    answer, events, failure = run(make_config(server.url, strategy="hedge", hedge_after=60))
    assert failure is None and answer.message.text == FAST_TEXT and answer.message.route == FAST
    # not after 60 s: at once
    assert notices(events) == [f"slow/deepseek-r1 unavailable (503 server busy) — asking {FAST}"]
    (loser,) = answer.losers
    assert loser.status == "error" and "503" in (loser.error or "")


def test_hedge_with_every_route_failing_is_an_error(server: LoopbackServer) -> None:
    server.add(Reply.json(503, {"error": {"message": "busy"}}, path="/slow/"),
               Reply.json(429, {"error": {"message": "slow down"}}, path="/fast/"))
    answer, _, failure = run(make_config(server.url, strategy="hedge"))
    assert isinstance(failure, errors.RateLimitError)
    assert answer.message.status == "error" and answer.message.text == ""
    assert [m.status for m in answer.losers] == ["error"]


def test_fallback_strategy_tries_routes_in_order_and_says_which_answered(server: LoopbackServer) -> None:
    server.add(Reply.json(503, {"error": {"message": "server busy"}}, path="/slow/"),
               Reply.say(FAST_TEXT, path="/fast/"))
    answer, events, failure = run(make_config(server.url, strategy="fallback"))
    assert failure is None and answer.message.text == FAST_TEXT
    assert answer.message.route == FAST and answer.message.fallback_from is None  # same model
    assert notices(events) == [f"slow/deepseek-r1 unavailable (503 server busy) — trying {FAST}"]


def test_fastest_strategy_asks_the_route_with_the_best_recent_ttft_first(server: LoopbackServer) -> None:
    now = datetime.now(UTC)
    with Store.open() as store:
        sid = store.create_session().id
        for full, ttft in (("slow/deepseek-r1", 4.0), (FAST, 0.3), ("third/deepseek-r1", 1.0)):
            provider, _, model_id = full.partition("/")
            store.append(sid, Message("user", "q"), Turn(Message(
                "assistant", "a", model=ModelRef(provider, model_id, "openai", "r1"),
                timing=Timing(ttft, 5.0, 20.0)), created=now))
    server.add(Reply.say(FAST_TEXT, path="/fast/"))
    answer, _, failure = run(make_config(server.url, strategy="fastest",
                                         extra_routes=', "third/deepseek-r1"'))
    assert failure is None and answer.message.route == FAST
    assert [r.path for r in server.requests] == ["/fast/v1/chat/completions"]


@pytest.mark.parametrize(("entry", "where"), [
    ('routes = ["nowhere/x"]', "routes[0]"), ('routes = [3]', "routes[0]"),
    ('strategy = "random"', "strategy"), ("hedge_after = 0", "hedge_after"),
])
def test_bad_routes_are_pointed_at(entry: str, where: str) -> None:
    text = f'[providers.p]\nbase_url = "http://127.0.0.1:1/v1"\n[providers.p.models.m]\nid = "x"\n{entry}\n'
    with pytest.raises(errors.ConfigError) as exc:
        config_mod.build(tomllib.loads(text), Path("c.toml"), presets={})
    assert f"providers.p.models.m.{where}" in exc.value.message


def test_ask_json_says_which_route_answered(server: LoopbackServer, tmp_path: Path) -> None:
    import shutil
    import subprocess
    import sys

    from tests.loopback import command_env

    exe = shutil.which("modelswitch", path=str(Path(sys.executable).parent))
    assert exe is not None
    cfg = tmp_path / "config.toml"
    cfg.write_text(openai_routes(server.url, FAST, 'strategy = "hedge"\nhedge_after = 0.2\n')
                   + f'[providers.fast]\nbase_url = "{server.url}/fast/v1"\napi_key_env = "ROUTE_KEY"\nretries = 0\n')
    server.add(Reply.say("late", hang=3.0, path="/slow/"), Reply.say(FAST_TEXT, path="/fast/"))
    env = command_env(cfg, tmp_path, ROUTE_KEY="sk-route-0123456789abcdef")
    done = subprocess.run([exe, "ask", "--json", "-m", "r1", "hi"], env=env, capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, done.stderr
    obj = json.loads(done.stdout)
    assert obj["content"] == FAST_TEXT and obj["route"] == FAST and obj["alias"] == "r1"
    assert obj["cancelled_routes"] == [{"route": "slow/deepseek-reasoner", "status": "interrupted",
                                        "error": None, "output_tokens": None}]
    with Store.open(tmp_path / "data" / "modelswitch" / "modelswitch.db") as store:
        (info,) = [s.info for s in store.list()]
        _, turns = store.transcript(info.id)
        assert [(t.alternate, t.message.model.full_id if t.message.model else None) for t in turns] == [
            (False, None), (False, FAST), (True, "slow/deepseek-reasoner")]


def test_preset_routes_resolve_and_routes_without_a_key_are_skipped(
        server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    presets = config_mod.build({}, Path("none.toml"), presets=config_mod.load_presets())
    # DeepSeek's ids now name V4.1-Flash and V4-Pro: the old V3/R1 routes at other hosts are a
    # different model, and no host is confirmed to serve these under another id.
    assert [m.routes for m in presets.providers["deepseek"].models] == [(), (), ()]
    for route in (r for m in presets.models() for r in m.routes):
        assert presets.resolve(route).full_id == route
    # In a config: the route with no key is not tried, and the real failure is what is told.
    monkeypatch.delenv("NOKEY_KEY", raising=False)
    text = openai_routes(server.url, "nokey/deepseek-r1") + (
        f'[providers.nokey]\nbase_url = "{server.url}/nokey/v1"\napi_key_env = "NOKEY_KEY"\n')
    cfg = config_mod.build(tomllib.loads(text), Path("t.toml"), presets={})
    server.add(Reply.json(503, {"error": {"message": "server busy"}}, path="/slow/"))
    answer, events, failure = run(cfg)
    assert isinstance(failure, errors.ProviderError) and "503" in failure.message
    assert notices(events) == [] and len(server.requests) == 1
