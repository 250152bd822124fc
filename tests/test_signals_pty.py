"""Signals in a real pseudo-terminal: SIGTERM, SIGHUP and Ctrl-C keep what was said, and the chat.

Ctrl-C ends a chat only at an empty prompt (as Ctrl-D); SIGTERM and SIGHUP end the program the
way Ctrl-C ends an answer: the partial answer saved and marked interrupted, the cursor shown
again, exit 128+N.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from tests.loopback import LoopbackServer, Reply, command_env

pexpect = pytest.importorskip("pexpect")
EXE = shutil.which("modelswitch", path=str(Path(sys.executable).parent))
pytestmark = [
    pytest.mark.pty,
    pytest.mark.skipif(EXE is None, reason="the modelswitch console script is not installed"),
]
TIMEOUT = 20
HIDE, SHOW = "\x1b[?25l", "\x1b[?25h"


def words(n: int = 300) -> list[dict]:
    return [{"choices": [{"index": 0, "delta": {"content": f"word{i} "}, "finish_reason": None}]} for i in range(n)]


def slow_story(path: str = "/deep/") -> Reply:
    """An answer that takes ~15 s to finish: always interrupted first."""
    return Reply.sse(*words(), delay=0.05, path=path)


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
price = {{ input = 1.0, output = 2.0, currency = "USD" }}
[providers.other]
base_url = "{server.url}/other/v1"
api_key_env = "OTHER_KEY"
retries = 0
[providers.other.models.v3]
id = "deepseek-chat"
price = {{ input = 1.0, output = 2.0, currency = "USD" }}
""")
    return command_env(cfg, tmp_path, DEEP_KEY="sk-deep-0123456789", OTHER_KEY="sk-other-0123456789",
                       COLUMNS="100", LINES="40")


def spawn(env: dict[str, str], *args: str):  # noqa: ANN201
    child = pexpect.spawn(EXE, list(args or ["chat"]), env=env, encoding="utf-8", dimensions=(40, 100),
                          timeout=TIMEOUT)
    child.logfile_read = io.StringIO()  # the whole screen output, for the cursor checks
    if not args:
        child.expect("r1 ›")
    return child


def saved_turns() -> list:
    """Every stored turn of the most recent session (conftest points XDG_DATA_HOME where the child writes)."""
    from modelswitch.store.db import Store

    store = Store.open()
    info = store.latest()
    assert info is not None, "nothing was saved"
    return list(store.transcript(info.id)[1])


def assert_partial_saved(turns: list) -> None:
    user, answer = turns[-2].message, turns[-1].message
    assert user.text == "tell me a long story"
    assert answer.status == "interrupted"
    assert answer.text.startswith("word0 word1 word2 word3")
    assert "word299" not in answer.text


def assert_cursor_shown(output: str) -> None:
    assert HIDE in output, "the test expects the live view to have hidden the cursor"
    assert output.rfind(SHOW) > output.rfind(HIDE), "the cursor was left hidden"


def assert_alive_then_quit(child, answer: str) -> None:  # noqa: ANN001
    """The chat is back at its prompt and answers; Ctrl-D then ends it cleanly."""
    child.expect("r1 ›")
    child.send("are you there?\r")
    child.expect(answer)
    quit_chat(child)


def quit_chat(child) -> None:  # noqa: ANN001
    child.expect("r1 ›")
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def wait_for_line_mode(child, on: bool) -> None:  # noqa: ANN001
    """Wait until the terminal is back in line mode (prompt_toolkit has returned) or out of it."""
    deadline = time.monotonic() + TIMEOUT
    while bool(termios.tcgetattr(child.child_fd)[3] & termios.ISIG) != on:
        assert time.monotonic() < deadline, "the terminal mode never changed"
        time.sleep(0.001)


def wait_until_blocked_on_fifo(child) -> None:  # noqa: ANN001
    """Give the chat time to block opening a FIFO (Linux shows where); a /file that refuses FIFOs
    returns at once instead, and the test then only checks that Ctrl-C leaves the chat alive."""
    wchan = Path(f"/proc/{child.pid}/wchan")
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        if wchan.exists() and wchan.read_text() == "wait_for_partner":
            return
        time.sleep(0.01)


# -- item 6: SIGTERM and SIGHUP ------------------------------------------------------------------


@pytest.mark.parametrize("command", ["ask", "chat"])
def test_sigterm_mid_answer_keeps_the_partial_answer_and_the_cursor(
    env: dict[str, str], server: LoopbackServer, command: str
) -> None:
    server.add(slow_story())
    if command == "ask":
        child = spawn(env, "ask", "tell me a long story")
    else:
        child = spawn(env)
        child.send("tell me a long story\r")
    child.expect("word3 ")
    child.kill(signal.SIGTERM)
    child.expect(pexpect.EOF)
    child.close()
    output = child.logfile_read.getvalue()
    assert child.exitstatus == 128 + signal.SIGTERM, output
    assert_cursor_shown(output)
    assert "Traceback" not in output
    assert_partial_saved(saved_turns())


def test_terminal_closed_mid_answer_saves_the_partial_answer(env: dict[str, str], server: LoopbackServer) -> None:
    server.add(slow_story())
    child = spawn(env)
    child.send("tell me a long story\r")
    child.expect("word3 ")
    # Closing the terminal's master side hangs it up: the kernel sends SIGHUP, and every later
    # write to the terminal fails. Saving must happen anyway.
    os.close(child.child_fd)
    _, status = os.waitpid(child.pid, 0)
    child.child_fd = -1  # already closed: keep pexpect from closing it again
    child.closed = True
    assert os.WIFEXITED(status), f"killed by signal {os.WTERMSIG(status)} before saving"
    assert os.WEXITSTATUS(status) == 128 + signal.SIGHUP
    assert_partial_saved(saved_turns())


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_a_piped_chat_and_keeps_the_partial_answer(
    env: dict[str, str], server: LoopbackServer, signum: int
) -> None:
    server.add(slow_story())
    proc = subprocess.Popen([EXE, "chat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("tell me a long story\nand another one\n")
    proc.stdin.close()
    seen = ""
    while "word3 " not in seen:
        seen += proc.stdout.read(1)
    proc.send_signal(signum)
    proc.stdout.read()
    proc.wait(timeout=TIMEOUT)
    # A script has no prompt to come back to: it stops, 128+N, and the next line is not sent.
    assert proc.returncode == 128 + signum
    assert len(server.requests) == 1
    assert_partial_saved(saved_turns())


# -- item 7: Ctrl-C ends nothing but the current work ---------------------------------------------


def test_ctrl_c_right_after_enter_keeps_the_chat(env: dict[str, str], server: LoopbackServer) -> None:
    server.add(Reply.say("fresh answer"))
    child = spawn(env)
    wait_for_line_mode(child, on=False)  # the prompt reads keys
    child.send("hello\r")
    wait_for_line_mode(child, on=True)  # prompt_toolkit has given the terminal back
    # Ctrl-S holds the terminal's output, so the chat stops at its first write after the prompt:
    # in the gap before the answer starts streaming, where Ctrl-C used to end the whole chat
    # (a slow terminal or a cold import makes that gap ~100 ms in real use).
    child.delaybeforesend = None  # now, not 50 ms later
    child.send("\x13")
    time.sleep(0.5)
    child.sendintr()  # also restarts the output
    child.expect("interrupted")
    assert_alive_then_quit(child, "fresh answer")
    # Interrupted before its request went out; the question stays in history, as after any Ctrl-C.
    assert len(server.requests) == 1
    assert server.requests[0].json["messages"][-1]["content"].endswith("are you there?")


def test_ctrl_c_in_a_blocking_slash_command_returns_to_the_prompt(
    env: dict[str, str], server: LoopbackServer, tmp_path: Path
) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # opening it for reading blocks until a writer comes: none will
    server.add(Reply.say("still here"))
    child = spawn(env)
    child.send(f"/file {fifo}\r")
    wait_until_blocked_on_fifo(child)
    child.sendintr()
    assert_alive_then_quit(child, "still here")


def test_ctrl_c_in_a_slow_editor_returns_to_the_prompt(
    env: dict[str, str], server: LoopbackServer, tmp_path: Path
) -> None:
    started = tmp_path / "editor-started"
    editor = tmp_path / "editor.sh"
    # An editor that shrugs off Ctrl-C and does not return: /edit blocks until it is stopped.
    editor.write_text(f"#!/bin/sh\ntrap '' INT\ntouch {started}\nexec sleep 60\n")
    editor.chmod(0o755)
    env["EDITOR"] = str(editor)
    server.add(Reply.say("still here"))
    child = spawn(env)
    child.send("/edit\r")
    deadline = time.monotonic() + TIMEOUT
    while not started.exists():
        assert time.monotonic() < deadline, "the editor never started"
        time.sleep(0.01)
    child.sendintr()
    child.expect("interrupted")
    assert_alive_then_quit(child, "still here")
    assert [r.json["messages"][-1]["content"] for r in server.requests] == ["are you there?"]


def test_ctrl_c_while_the_exchange_is_saved_loses_nothing(
    env: dict[str, str], server: LoopbackServer, tmp_path: Path
) -> None:
    server.add(Reply.say("the complete answer"), Reply.say("still here"))
    child = spawn(env)  # the chat has created the database by now
    db = sqlite3.connect(tmp_path / "data" / "modelswitch" / "modelswitch.db", isolation_level=None)
    db.execute("BEGIN EXCLUSIVE")  # the save waits for this lock (busy timeout)...
    try:
        child.send("hi\r")
        child.expect("the complete answer")
        time.sleep(0.5)  # ...so Ctrl-C lands while the exchange is being written
        child.sendintr()
        time.sleep(0.5)
    finally:
        db.execute("ROLLBACK")
        db.close()
    child.expect("4 tokens")  # the footer: the answer was finished on screen too, then...
    child.expect("interrupted")  # ...the Ctrl-C acted, back at the prompt
    assert_alive_then_quit(child, "still here")
    texts = [(t.message.role, t.message.text, t.message.status) for t in saved_turns()]
    assert texts[:2] == [("user", "hi", "complete"), ("assistant", "the complete answer", "complete")]


def test_ctrl_c_during_compare_keeps_the_answers_that_finished(env: dict[str, str], server: LoopbackServer) -> None:
    server.add(Reply.say("quick and done", usage=(10, 4), path="/deep/"), slow_story(path="/other/"))
    child = spawn(env)
    child.send("/compare r1 v3 tell me a long story\r")
    child.expect("4 tokens")  # r1's footer: its answer finished; v3 is still streaming
    child.sendintr()
    child.expect("compare stopped")
    child.expect("r1 ›")
    child.send("/keep 1\r")
    child.expect("kept the answer from r1")
    child.expect("r1 ›")
    child.send("/cost\r")
    child.expect("v3")  # the interrupted answer was paid for: it counts
    quit_chat(child)
    turns = saved_turns()
    kept = [(t.message.text, t.message.status) for t in turns if not t.alternate]
    assert kept == [("tell me a long story", "complete"), ("quick and done", "complete")]
    others = [t.message for t in turns if t.alternate]
    assert len(others) == 1 and others[0].status == "interrupted" and others[0].text.startswith("word0 ")


# -- item 17: a piped chat reports failures ---------------------------------------------------------


@pytest.mark.parametrize("fails", [True, False])
def test_piped_chat_exits_1_when_an_answer_failed(env: dict[str, str], server: LoopbackServer, fails: bool) -> None:
    first = Reply.json(500, {"error": {"message": "boom", "type": "server_error"}}) if fails else Reply.say("first")
    server.add(first, Reply.say("second answer"))
    proc = subprocess.run([EXE, "chat"], input="hi\nagain\n", env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == (1 if fails else 0), proc.stderr
    assert "second answer" in proc.stdout  # the run goes on after a failure
    assert "Traceback" not in proc.stderr
