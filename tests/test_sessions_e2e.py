"""Sessions through the installed command: resume in the REPL, scripts holding a conversation,
and kill -9 mid-answer losing nothing that was already saved."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.loopback import LoopbackServer, Reply, command_env

say = Reply.say

pexpect = pytest.importorskip("pexpect")
EXE = shutil.which("modelswitch", path=str(Path(sys.executable).parent))
pytestmark = pytest.mark.skipif(EXE is None, reason="the modelswitch console script is not installed")


@pytest.fixture
def env(tmp_path: Path, server: LoopbackServer) -> dict[str, str]:
    cfg = tmp_path / "config.toml"
    cfg.write_text(f"""
default = "a"
[providers.one]
base_url = "{server.url}/v1"
api_key_env = "ONE_KEY"
retries = 0
[providers.one.models.a]
id = "model-a"
[providers.one.models.b]
id = "model-b"
""")
    return command_env(cfg, tmp_path, ONE_KEY="sk-one-0123456789")


def run(env: dict[str, str], *args: str, input: str | None = None) -> subprocess.CompletedProcess:  # noqa: A002
    return subprocess.run([EXE, *args], env=env, input=input, capture_output=True, text=True, timeout=60)


def test_chat_quit_then_continue_sees_old_history(env: dict[str, str], server: LoopbackServer) -> None:
    server.add(say("Nice to meet you, Ada."), say("You are Ada."))
    child = pexpect.spawn(EXE, ["chat"], env=env, encoding="utf-8", dimensions=(30, 100), timeout=20)
    child.expect("a ›")
    child.send("my name is Ada\r")
    child.expect("Nice to meet you, Ada.")
    child.expect("a ›")
    child.send("/model b\r")
    child.expect("b ›")
    child.sendeof()
    child.expect(pexpect.EOF)

    child = pexpect.spawn(EXE, ["chat", "-c"], env=env, encoding="utf-8", dimensions=(30, 100), timeout=20)
    child.expect("resumed with 2 turns")
    child.expect("b ›")  # back on the model the session last used
    child.send("what is my name?\r")
    child.expect("You are Ada.")
    child.expect("b ›")
    child.send("/exit\r")
    child.expect(pexpect.EOF)
    body = server.requests[1].json
    assert body["model"] == "model-b"
    assert [m["content"] for m in body["messages"]] == ["my name is Ada", "Nice to meet you, Ada.", "what is my name?"]


def test_ask_session_holds_a_conversation_for_scripts(env: dict[str, str], server: LoopbackServer) -> None:
    server.add(say("noted"), say("42"))
    assert run(env, "ask", "--session", "calc", "remember 42").returncode == 0
    second = run(env, "ask", "--session", "calc", "-m", "b", "what did I ask you to remember?")
    assert second.returncode == 0 and second.stdout.strip() == "42"
    msgs = server.requests[1].json["messages"]
    assert [m["content"] for m in msgs] == ["remember 42", "noted", "what did I ask you to remember?"]
    server.add(say("still 42"))
    third = run(env, "ask", "-c", "sure?")  # -c continues the latest session on its last model
    assert third.returncode == 0 and third.stdout.strip() == "still 42"
    assert server.requests[2].json["model"] == "model-b"
    assert len(server.requests[2].json["messages"]) == 5
    listed = json.loads(run(env, "sessions", "list", "--json").stdout)
    calc = next(s for s in listed if s["name"] == "calc")
    assert calc["turns"] == 6


def test_kill_9_mid_answer_keeps_every_earlier_turn(env: dict[str, str], server: LoopbackServer) -> None:
    server.add(say("first answer"), say("second answer"))
    assert run(env, "ask", "--session", "x", "one").returncode == 0
    assert run(env, "ask", "--session", "x", "two").returncode == 0
    words = [{"choices": [{"index": 0, "delta": {"content": f"w{i} "}, "finish_reason": None}]} for i in range(500)]
    server.add(Reply.sse(*words, delay=0.02))
    proc = subprocess.Popen([EXE, "ask", "--session", "x", "three"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None
    got = proc.stdout.read(10)  # the answer is streaming
    assert got.startswith(b"w0")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    time.sleep(0.1)
    shown = run(env, "sessions", "show", "x")
    assert shown.returncode == 0, shown.stderr
    for text in ("one", "first answer", "two", "second answer"):
        assert text in shown.stdout
    exported = json.loads(run(env, "sessions", "export", "x", "--format", "json").stdout)
    kept = [t for t in exported["turns"] if not t.get("alternate")]
    assert [t["text"] for t in kept] == ["one", "first answer", "two", "second answer"]


# -- crafted imports: exit 2 with the field named, never an internal error ----------------------

_EXPORT = {
    "format": "modelswitch-session", "version": 1,
    "session": {"id": 1, "name": None, "created": "2025-01-01T00:00:00+00:00",
                "updated": "2025-01-01T00:00:00+00:00", "model": None, "system": None},
    "turns": [{"idx": 0, "role": "user", "model": None, "text": "hi", "reasoning": "", "status": "complete",
               "alternate": False, "usage": None, "cost": None, "timing": None, "finish_reason": None,
               "fallback_from": None, "error": None, "replay": [], "created": None}],
}


def _crafted(path: str, value: str) -> str:
    """The export above as JSON text, with the JSON `value` (verbatim) at `path` (dots)."""
    marker = "\"@@crafted@@\""
    doc = json.loads(json.dumps(_EXPORT))
    *parents, key = path.split(".")
    node = doc
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    node[key] = "@@crafted@@"
    return json.dumps(doc).replace(marker, value)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (_crafted("turns.0.usage", '{"input_tokens": 1' + "0" * 30 + ', "output_tokens": 1,'
                  ' "reasoning_tokens": 0, "cached_tokens": 0}'),
         "turns[0].usage.input_tokens: expected an integer from 0 to 9223372036854775807"),
        (_crafted("session.id", "9223372036854775808"), "session.id: expected an integer"),
        (_crafted("turns.0.cost", '{"amount": 1' + "0" * 400 + ', "currency": "USD"}'),
         "turns[0].cost.amount: expected a finite number"),
        (_crafted("turns.0.cost", '{"amount": Infinity, "currency": "USD"}'), "turns[0].cost.amount: expected a finite number"),
        (_crafted("turns.0.cost", '{"amount": 1e999, "currency": "USD"}'), "turns[0].cost.amount: expected a finite number"),
        (_crafted("turns.0.timing", '{"ttft_s": NaN, "total_s": null, "tokens_per_s": null}'),
         "turns[0].timing.ttft_s: expected a finite number"),
        (_crafted("version", "1" * 5000), "a number with too many digits"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        (_crafted("session.created", '"0000-01-01T00:00:00"'), "session.created: expected an ISO 8601 time"),
        (_crafted("session.created", '"99999-01-01T00:00:00"'), "session.created: expected an ISO 8601 time"),
        (_crafted("session.created", '"9999-12-31T23:59:59-12:00"'), "session.created: expected a time between"),
        (_crafted("session.updated", '"0001-01-01T00:00:00+12:00"'), "session.updated: expected a time between"),
        (_crafted("session.created", '"0001-01-01T00:00:00"'), "session.created: expected a time between"),
        (_crafted("turns.0.created", '"9999-12-31T23:59:59"'), "turns[0].created: expected a time between"),
        (_crafted("turns.0.text", '"\\ud800"'), "turns[0].text: a string with an invalid character"),
        (_crafted("session.system", '"a\\udfff"'), "session.system: a string with an invalid character"),
        (_crafted("turns", "[]"), "turns: no turns"),
        (_crafted("turns.0.cost", '{"amount": -5, "currency": "USD"}'), "turns[0].cost.amount: expected a number of 0"),
        (_crafted("turns.0.role", '"assistant"'), "turns[0].role: the conversation must start with a user turn"),
        (_crafted("turns.0.model", '{"provider": "p", "id": "m", "protocol": "evil", "alias": null}'),
         "turns[0].model.protocol: expected one of openai"),
    ],
    ids=["huge-tokens", "huge-id", "huge-amount", "infinity", "1e999", "nan", "5000-digits", "deep-nesting",
         "year-0", "year-99999", "utc-past-9999", "utc-before-1", "year-1", "turn-year-9999",
         "lone-surrogate", "lone-surrogate-system", "no-turns", "negative-cost", "assistant-first",
         "unknown-protocol"],
)
def test_crafted_import_is_refused_in_one_line(env: dict[str, str], tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "crafted.json"
    path.write_text(text, "utf-8")
    result = run(env, "sessions", "import", str(path))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and match in lines[0], result.stderr
    assert "internal error" not in result.stderr
    assert json.loads(run(env, "sessions", "list", "--json").stdout) == []  # nothing half-imported


def test_ask_that_fails_before_answering_leaves_no_session(env: dict[str, str], server: LoopbackServer) -> None:
    server.add(Reply.json(500, {"error": {"message": "server error"}}))
    failed = run(env, "ask", "hello?")
    assert failed.returncode != 0 and "Traceback" not in failed.stderr
    assert json.loads(run(env, "sessions", "list", "--json").stdout) == []
    server.add(say("fresh start"))
    again = run(env, "ask", "-c", "second try")
    assert again.returncode == 0 and again.stdout.strip() == "fresh start"
    assert "no earlier session" in again.stderr
    assert [m["content"] for m in server.requests[1].json["messages"]] == ["second try"]
    listed = json.loads(run(env, "sessions", "list", "--json").stdout)
    assert [s["turns"] for s in listed] == [2]


def test_ask_whose_stream_broke_mid_answer_is_still_saved(env: dict[str, str], server: LoopbackServer) -> None:
    parts = [{"choices": [{"index": 0, "delta": {"content": t}, "finish_reason": None}]} for t in ("half ", "way")]
    server.add(Reply.sse(*parts, drop_after=2))
    assert run(env, "ask", "tell me").returncode == 1
    exported = json.loads(run(env, "sessions", "export", "#1", "--format", "json").stdout)
    assert [(t["text"], t["status"]) for t in exported["turns"]] == [("tell me", "complete"), ("half way", "interrupted")]


def test_undo_in_one_terminal_leaves_the_other_terminals_exchange(env: dict[str, str], server: LoopbackServer) -> None:
    server.add(say("A answers"), say("B answers"))
    a = pexpect.spawn(EXE, ["chat", "--session", "shared"], env=env, encoding="utf-8", dimensions=(30, 100), timeout=20)
    a.expect("a ›")
    a.send("from A\r")
    a.expect("A answers")
    a.expect("a ›")
    b = pexpect.spawn(EXE, ["chat", "--session", "shared"], env=env, encoding="utf-8", dimensions=(30, 100), timeout=20)
    b.expect("resumed with 2 turns")
    b.expect("a ›")
    b.send("from B\r")
    b.expect("B answers")
    b.expect("a ›")
    a.send("/undo\r")  # A's last exchange is "from A", even though B's is newer in the database
    a.expect("undone: 'from A'")
    a.expect("a ›")
    for child in (a, b):
        child.send("/exit\r")
        child.expect(pexpect.EOF)
    exported = json.loads(run(env, "sessions", "export", "shared", "--format", "json").stdout)
    assert [t["text"] for t in exported["turns"] if not t["alternate"]] == ["from B", "B answers"]


# -- no session that lost an exchange, none that holds nothing ----------------------------------


def test_parallel_asks_creating_one_new_session_name_all_land_in_it(env: dict[str, str], server: LoopbackServer) -> None:
    server.add(*(say(f"answer {i}") for i in range(3)))
    procs = [subprocess.Popen([EXE, "ask", "--session", "par-x", f"q{i}"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(3)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    assert not any("could not save" in err or "not be saved" in err for _, err in outs), outs
    listed = json.loads(run(env, "sessions", "list", "--json").stdout)
    assert len(listed) == 1
    exported = json.loads(run(env, "sessions", "export", "par-x", "--format", "json").stdout)
    assert sorted(t["text"] for t in exported["turns"] if t["role"] == "user") == ["q0", "q1", "q2"]


def test_save_before_any_answer_names_the_chat_without_an_empty_session(
    env: dict[str, str], server: LoopbackServer
) -> None:
    named = run(env, "chat", input="/save emptysave\n")
    assert named.returncode == 0, named.stderr
    assert json.loads(run(env, "sessions", "list", "--json").stdout) == []
    server.add(say("hello back"))
    chat = run(env, "chat", input="/save later\nhello\n")
    assert chat.returncode == 0, chat.stderr
    exported = json.loads(run(env, "sessions", "export", "later", "--format", "json").stdout)
    assert [t["text"] for t in exported["turns"]] == ["hello", "hello back"]


def test_edit_in_a_piped_chat_is_refused_without_starting_the_editor(env: dict[str, str], tmp_path: Path) -> None:
    started = tmp_path / "editor-started"
    editor = tmp_path / "editor.sh"
    editor.write_text(f'#!/bin/sh\ntouch "{started}"\nprintf "from the editor" > "$1"\n')
    editor.chmod(0o755)
    result = run({**env, "EDITOR": str(editor), "VISUAL": ""}, "chat", input="/edit\n")
    assert not started.exists()
    lines = [ln for ln in result.stderr.splitlines() if "/edit" in ln]
    assert len(lines) == 1 and "needs a terminal" in lines[0], result.stderr
    assert "Traceback" not in result.stderr
