"""Retries, fallback and broken servers, through the real transport against a loopback server."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from modelswitch.config import load as config_mod
from modelswitch import errors
from modelswitch.engine.answer import Answer
from modelswitch.conversation import Conversation, Message
from modelswitch.events import Notice, TextDelta
from modelswitch.providers.transport import parse_retry_after
from tests.loopback import LoopbackServer, Reply

KEY = "sk-test-SECRET-0123456789abcdef"


def make_config(url: str, *, retries: int = 2, read_timeout: float = 5.0, extra: str = "") -> config_mod.Config:
    text = f"""
[providers.busy]
base_url = "{url}/busy/v1"
api_key_env = "BUSY_KEY"
retries = {retries}
timeout = {read_timeout}
[providers.busy.models.r1]
id = "deepseek-reasoner"
fallback = ["t1"]
[providers.backup]
base_url = "{url}/backup/v1"
api_key_env = "BUSY_KEY"
[providers.backup.models.t1]
id = "hunyuan-t1-latest"
{extra}
"""
    import tomllib

    return config_mod.build(tomllib.loads(text), Path("test.toml"), presets={})


def chunk(text: str) -> dict:
    return {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}


FINISH = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
          "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}


def ok_reply(text: str = "hello", **kw: object) -> Reply:
    return Reply.sse(chunk(text), FINISH, **kw)


def run(cfg: config_mod.Config, name: str = "r1", *, fallback: bool = True) -> tuple[Answer, list, list[float]]:
    waits: list[float] = []
    conv = Conversation().add(Message("user", "hi"))
    answer = Answer(cfg, conv, cfg.resolve(name), fallback=fallback, sleep=waits.append)
    events = []
    try:
        for e in answer:
            events.append(e)
    except errors.ProviderError:
        pass
    return answer, events, waits


@pytest.fixture(autouse=True)
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUSY_KEY", KEY)


def test_busy_once_then_answers_with_a_visible_retry(server: LoopbackServer) -> None:
    server.add(Reply.json(503, {"error": {"message": "Server is busy"}}, path="/busy/"),
               ok_reply("hello", path="/busy/"))
    answer, events, waits = run(make_config(server.url))
    notices = [e.text for e in events if isinstance(e, Notice)]
    assert notices and notices[0].startswith("busy 503 server busy, retrying in ")
    assert notices[0].endswith("1/2")
    assert len(waits) == 1
    m = answer.message
    assert (m.text, m.status, m.fallback_from) == ("hello", "complete", None)
    assert len(server.requests) == 2


def test_retry_after_seconds_is_honoured(server: LoopbackServer) -> None:
    server.add(Reply.json(429, {"error": {"message": "slow down"}}, headers={"Retry-After": "7"}, path="/busy/"),
               ok_reply(path="/busy/"))
    answer, events, waits = run(make_config(server.url))
    assert waits == [7.0]
    assert "retrying in 7 s" in [e for e in events if isinstance(e, Notice)][0].text
    assert answer.message.status == "complete"


def test_retry_after_http_date_and_cap() -> None:
    assert parse_retry_after("120") == 60.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("garbage") is None


def test_always_busy_falls_back_and_says_so(server: LoopbackServer) -> None:
    for _ in range(3):
        server.add(Reply.json(503, {"error": {"message": "Server is busy"}}, path="/busy/"))
    server.add(ok_reply("from backup", path="/backup/"))
    answer, events, waits = run(make_config(server.url))
    notices = [e.text for e in events if isinstance(e, Notice)]
    assert notices[-1] == "r1 unavailable (503 server busy) — trying t1"
    m = answer.message
    assert m.text == "from backup" and m.model.alias == "t1" and m.fallback_from == "r1"
    assert m.status == "complete"
    assert [r.path.split("/")[1] for r in server.requests] == ["busy", "busy", "busy", "backup"]


def test_no_fallback_reports_the_error(server: LoopbackServer) -> None:
    for _ in range(3):
        server.add(Reply.json(503, {"error": {"message": "Server is busy"}}, path="/busy/"))
    answer, events, waits = run(make_config(server.url), fallback=False)
    assert isinstance(answer.error, errors.OverloadedError)
    assert answer.error.message == "busy/deepseek-reasoner: server busy (503): Server is busy"
    assert answer.message.status == "error"


def test_drop_mid_stream_keeps_partial_and_does_not_retry(server: LoopbackServer) -> None:
    server.add(Reply.sse(chunk("partial "), chunk("answer"), FINISH, drop_after=2, path="/busy/"))
    answer, events, waits = run(make_config(server.url))
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["partial ", "answer"]
    assert isinstance(answer.error, errors.StreamError)
    assert answer.error.message == "busy/deepseek-reasoner: connection dropped mid-answer"
    m = answer.message
    assert (m.text, m.status) == ("partial answer", "interrupted")
    assert len(server.requests) == 1 and waits == []


def test_read_timeout_before_first_token_is_retried_then_fails(server: LoopbackServer) -> None:
    for _ in range(2):
        server.add(Reply(chunks=[b"data: {}\n\n"], hang=1.5, path="/busy/"))
    answer, _, waits = run(make_config(server.url, retries=1, read_timeout=0.3), fallback=False)
    assert isinstance(answer.error, errors.ProviderTimeoutError)
    assert "read timed out waiting for the first token" in answer.error.message
    assert len(waits) == 1


@pytest.mark.parametrize(
    "reply, cls, text",
    [
        (Reply.json(401, {"error": {"message": f"Invalid key {KEY}"}}), errors.AuthError,
         "busy/deepseek-reasoner: the API key was rejected (401): Invalid key sk-…cdef — check BUSY_KEY"),
        (Reply.json(402, {"error": {"message": "Insufficient Balance"}}), errors.QuotaError,
         "busy/deepseek-reasoner: insufficient balance (402) — top up the account at busy"),
        (Reply.json(404, {"error": {"message": "Model Not Exist"}}), errors.ModelNotFoundError,
         "busy/deepseek-reasoner: model not found (404): Model Not Exist — see `modelswitch models`"),
        (Reply(status=502, chunks=[b"<html><body><h1>502 Bad Gateway</h1></body></html>"], content_type="text/html",
               chunked=False), errors.OverloadedError,
         "busy/deepseek-reasoner: bad gateway (502): HTML error page (a proxy or gateway in the way?)"),
        (Reply(status=301, headers={"Location": "https://elsewhere/v1"}, chunked=False), errors.BadRequestError,
         "busy/deepseek-reasoner: redirected (301) to https://elsewhere/v1 — check base_url for provider 'busy'"),
        (Reply(chunks=[]), errors.StreamError, "busy/deepseek-reasoner: empty response"),
        (Reply(status=200, chunks=[b"<html>login</html>"], content_type="text/html", chunked=False),
         errors.StreamError, "busy/deepseek-reasoner: the server answered with an HTML page, not a stream — check base_url"),
    ],
)
def test_error_statuses_map_to_one_clear_line(server: LoopbackServer, reply: Reply, cls: type, text: str) -> None:
    for _ in range(3):
        server.add(Reply(**{**reply.__dict__}))
    answer, _, _ = run(make_config(server.url, retries=0), fallback=False)
    assert isinstance(answer.error, cls)
    assert answer.error.message == text
    assert KEY not in answer.error.message


def test_connection_refused(server: LoopbackServer) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    answer, _, _ = run(make_config(f"http://127.0.0.1:{port}", retries=0), fallback=False)
    assert isinstance(answer.error, errors.ConnectError)
    assert "connection refused at" in answer.error.message


def test_loopback_servers_bypass_environment_proxies(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    from modelswitch.providers import transport

    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.2:9")  # nothing listens there
    monkeypatch.setattr(transport, "_clients", {})
    server.add(ok_reply("direct", path="/busy/"))
    answer, _, _ = run(make_config(server.url, retries=0), fallback=False)
    assert answer.error is None and answer.message.text == "direct"
