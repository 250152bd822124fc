"""The context window in a real terminal: the switch prompt, /compact, /fork and /edit N."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from modelswitch.store.db import Store
from tests.loopback import LoopbackServer, Reply, command_env

pexpect = pytest.importorskip("pexpect")
EXE = shutil.which("modelswitch", path=str(Path(sys.executable).parent))
pytestmark = [
    pytest.mark.pty,
    pytest.mark.skipif(EXE is None, reason="the modelswitch console script is not installed"),
]
TIMEOUT = 20
LONG = "tell me more about this " * 20  # about 120 tokens a message


@pytest.fixture
def env(tmp_path: Path, server: LoopbackServer) -> dict[str, str]:
    cfg = tmp_path / "config.toml"
    cfg.write_text(f"""
default = "r1"
[providers.deep]
base_url = "{server.url}/deep/v1"
api_key_env = "DEEP_KEY"
retries = 0
[providers.deep.models.r1]
id = "deepseek-reasoner"
[providers.deep.models.tiny]
id = "tiny-chat"
context_window = 300
max_tokens = 50
""")
    return command_env(cfg, tmp_path, DEEP_KEY="sk-deep-0123456789", COLUMNS="120", LINES="40")


def spawn(env: dict[str, str], prompt: str = "r1 ›"):  # noqa: ANN201
    child = pexpect.spawn(EXE, ["chat"], env=env, encoding="utf-8", dimensions=(40, 120), timeout=TIMEOUT)
    child.expect(prompt)
    return child


def chat(child, server: LoopbackServer, text: str, reply: str, prompt: str = "r1 ›") -> None:  # noqa: ANN001
    server.add(Reply.say(reply, path="/deep/"))
    child.send(text + "\r")
    child.expect(reply[:10])  # a long answer wraps on screen
    child.expect(prompt)


def db(tmp_path: Path) -> Store:
    return Store.open(tmp_path / "data" / "modelswitch" / "modelswitch.db")


def test_switch_to_a_smaller_window_asks_first(env: dict[str, str], server: LoopbackServer) -> None:
    child = spawn(env)
    chat(child, server, "one " + LONG, "answer one " + "word " * 60)
    chat(child, server, "two " + LONG, "answer two")
    child.send("/model\r")
    child.expect(r"r1 \(deep/deepseek-reasoner\); context \d+ tokens")  # r1's window is not configured

    child.send("/model tiny\r")
    child.expect("does not fit tiny's 300-token window")
    child.expect(r"\[c\]ompact older turns, \[t\]rim to the last turns that fit, switch \[a\]nyway, or \[n\]o\?")
    child.send("n\r")
    child.expect("cancelled: nothing changed")
    child.expect("staying on r1")
    child.expect("r1 ›")

    child.send("/model tiny\r")
    child.expect(r"\[n\]o\?")
    child.send("t\r")
    child.expect(r"dropped the 2 oldest turns; kept the system prompt and the last 1 exchange")
    child.expect(r"switched to tiny")
    child.expect("tiny ›")
    child.send("/model\r")
    child.expect(r"tiny \(deep/tiny-chat\); context \d+/300")
    child.expect("tiny ›")
    n_before = len(server.requests)
    chat(child, server, "short", "fits", prompt="tiny ›")
    sent = server.requests[n_before].json["messages"]
    assert [m["content"][:3] for m in sent] == ["two", "ans", "sho"]  # the oldest exchange was trimmed

    child.send("/undo\r")  # the last exchange, not the trim: the trim is no longer the last change
    child.expect("undone: 'short'")
    child.send("/exit\r")
    child.expect(pexpect.EOF)


def test_send_over_the_window_asks_before_sending(env: dict[str, str], server: LoopbackServer) -> None:
    child = spawn(env)
    child.send("/model tiny\r")
    child.expect("tiny ›")
    child.send("x" * 1400 + "\r")  # 350 tokens: over the window on its own
    child.expect(r"send \[a\]nyway, or \[n\]o\?")
    child.send("n\r")
    child.expect("not sent")
    child.expect("tiny ›")
    child.send("/exit\r")
    child.expect(pexpect.EOF)
    assert server.requests == []


def test_compact_replaces_older_turns_with_a_marked_summary_and_undo_restores(
        env: dict[str, str], server: LoopbackServer, tmp_path: Path) -> None:
    child = spawn(env)
    for word in ("alpha", "beta", "gamma"):
        chat(child, server, f"{word} question", f"{word} answer")
    server.add(Reply.say("SUMMARY: alpha and beta were discussed", path="/deep/"))
    child.send("/compact\r")
    child.expect("summarising 4 older turns with r1")
    child.expect("SUMMARY: alpha and beta were discussed")
    child.expect(r"compacted: 4 turns replaced by a \[summary\] \(/undo brings them back\)")
    child.expect("r1 ›")
    asked = server.requests[-1].json["messages"]
    assert len(asked) == 1 and "alpha question" in asked[0]["content"] and "gamma" not in asked[0]["content"]

    child.send("/history\r")
    child.expect(r"1\. you: \[summary\] The 4 earlier turns of this conversation, summarised by r1")
    child.expect(r"2\. r1: SUMMARY: alpha and beta")
    child.expect(r"3\. you: gamma question")
    child.expect("r1 ›")
    with db(tmp_path) as store:
        assert store.kept(store.latest().id)[1][0].message.text.startswith("[summary]")

    child.send("/undo\r")
    child.expect("the 6 turns from before the /compact or /trim are back")
    child.send("/history\r")
    child.expect(r"1\. you: alpha question")
    child.expect("r1 ›")
    child.send("/exit\r")
    child.expect(pexpect.EOF)
    with db(tmp_path) as store:
        assert [t.message.text for t in store.kept(store.latest().id)[1]][0] == "alpha question"


def test_fork_branches_into_a_new_session_and_load_goes_back(
        env: dict[str, str], server: LoopbackServer, tmp_path: Path) -> None:
    child = spawn(env)
    chat(child, server, "first", "answer 1")
    child.send("/save main\r")
    child.expect("saved as 'main'")
    chat(child, server, "second", "answer 2")
    child.send("/fork 2 side\r")
    child.expect(r"branched main at turn 2 into 'side'; you are on the branch")
    child.expect("r1 ›")
    chat(child, server, "on the branch", "branch answer")
    sent = server.requests[-1].json["messages"]
    assert [m["content"] for m in sent] == ["first", "answer 1", "on the branch"]
    child.send("/load main\r")
    child.expect("loaded 'main': 4 turns")
    child.send("/load side\r")
    child.expect("loaded 'side': 4 turns")
    child.send("/exit\r")
    child.expect(pexpect.EOF)
    tree = subprocess.run([EXE, "sessions", "tree", "side"], env=env, capture_output=True, text=True, timeout=60)
    assert tree.returncode == 0, tree.stderr
    lines = tree.stdout.splitlines()
    assert lines[0].startswith("main · 4 turns")
    assert lines[1].startswith("└─ side · 4 turns · from turn 2 of its parent")


def test_edit_n_asks_again_from_an_earlier_question_as_a_branch(
        env: dict[str, str], server: LoopbackServer, tmp_path: Path) -> None:
    editor = tmp_path / "editor.sh"
    editor.write_text('#!/bin/sh\ngrep -q "^second$" "$1" && printf "second, edited\\n" > "$1"\n')
    editor.chmod(0o755)
    env["EDITOR"] = str(editor)
    child = spawn(env)
    chat(child, server, "first", "answer 1")
    chat(child, server, "second", "answer 2")
    server.add(Reply.say("edited answer", path="/deep/"))
    child.send("/edit 3\r")
    child.expect(r"branched #\d+ at turn 2 into 's\d+@2'")
    child.expect("edited answer")
    child.expect("r1 ›")
    sent = server.requests[-1].json["messages"]
    assert [m["content"] for m in sent] == ["first", "answer 1", "second, edited"]
    child.send("/edit 2\r")
    child.expect(r"turn 2 is not one of your messages \(yours: 1, 3\)")
    child.send("/exit\r")
    child.expect(pexpect.EOF)
    with db(tmp_path) as store:
        sessions = {i.info.label: [t.message.text for t in store.kept(i.info.id)[1]] for i in store.list()}
    # The old branch is kept as it was; the new one holds the edited question.
    assert ["first", "answer 1", "second", "answer 2"] in sessions.values()
    assert ["first", "answer 1", "second, edited", "edited answer"] in sessions.values()
