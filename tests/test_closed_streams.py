"""A closed or full stdout/stderr (`>&-`, `2>&-`, `> /dev/full`) is no internal error.

The installed command runs with real file descriptors: /dev/full (every write fails with ENOSPC)
and descriptors a shell closed before exec. Output that cannot be written is one line on stderr
and exit 1; a stderr that cannot be written costs nothing but its diagnostics; a reader that
leaves (`| head`) is no failure at all. Never a traceback, never Python's "Exception ignored".
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.loopback import LoopbackServer, Reply
from tests.test_repl_pty import oa_chunk, oa_finish
from tests.test_terminal_safety import env  # noqa: F401 - the same loopback config (r1 on /deep/)

EXE = shutil.which("modelswitch", path=str(Path(sys.executable).parent))
pytestmark = [
    pytest.mark.skipif(EXE is None, reason="the modelswitch console script is not installed"),
    pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full"),
]

FULL = "error: cannot write to stdout: No space left on device\n"
CLOSED = "error: cannot write to stdout: Bad file descriptor\n"


def to_full(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """The command with stdout on /dev/full."""
    with open("/dev/full", "w") as full:
        return subprocess.run([EXE, *args], stdout=full, stderr=subprocess.PIPE, input=stdin, text=True, env=env,
                              timeout=60)


def closed(env: dict[str, str], redirect: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """The command with a descriptor the shell closed (`>&-` or `2>&-`) before exec."""
    return subprocess.run(["sh", "-c", f'exec "$0" "$@" {redirect}', EXE, *args], capture_output=True, input=stdin,
                          text=True, env=env, timeout=60)


def assert_one_line(done: subprocess.CompletedProcess[str], line: str) -> None:
    assert done.returncode == 1, done.stderr
    assert done.stderr == line  # and so no traceback, no "internal error", no "Exception ignored"


def test_ask_to_a_full_or_closed_stdout_says_so_and_keeps_the_answer(env: dict[str, str],
                                                                     server: LoopbackServer) -> None:
    server.add(Reply.say("the answer"))
    assert_one_line(to_full(env, "ask", "--session", "s", "hi"), FULL)
    server.add(Reply.say("again"))
    assert_one_line(closed(env, ">&-", "ask", "--session", "s", "hi"), CLOSED)
    for args in (["--json"], ["--jsonl"]):
        server.add(Reply.say("as json"))
        assert_one_line(to_full(env, "ask", *args, "hi"), FULL)

    # What the user had is kept: both answers are in the session.
    done = subprocess.run([EXE, "sessions", "export", "-f", "json", "s"], capture_output=True, text=True, env=env,
                          timeout=60)
    texts = [t["text"] for t in json.loads(done.stdout)["turns"]]
    assert texts == ["hi", "the answer", "hi", "again"]


@pytest.mark.parametrize("args", [["models"], ["sessions", "list"], ["--help"], ["--version"], ["ask", "--help"],
                                  ["config", "show"]])
def test_listings_help_and_version_to_a_full_or_closed_stdout(env: dict[str, str], args: list[str]) -> None:
    assert_one_line(to_full(env, *args), FULL)
    assert_one_line(closed(env, ">&-", *args), CLOSED)


def test_piped_chat_to_a_full_or_closed_stdout_ends_at_once(env: dict[str, str], server: LoopbackServer) -> None:
    server.add(Reply.say("one"), Reply.say("two"))
    assert_one_line(to_full(env, "chat", stdin="hello\nsecond\n"), FULL)
    assert len(server.requests) == 1  # it stopped: no second question into the void
    server.add(Reply.say("three"))
    assert_one_line(closed(env, ">&-", "chat", stdin="hello\n"), CLOSED)


def test_a_closed_or_full_stderr_costs_only_the_diagnostics(env: dict[str, str], server: LoopbackServer) -> None:
    server.add(Reply.sse(oa_chunk(reasoning="thinking it over\n"), oa_chunk(content="the answer"), oa_finish()))
    done = closed(env, "2>&-", "ask", "--reasoning", "stderr", "hi")
    assert (done.returncode, done.stdout) == (0, "the answer\n")

    server.add(Reply.sse(oa_chunk(reasoning="thinking it over\n"), oa_chunk(content="the answer"), oa_finish()))
    with open("/dev/full", "w") as full:
        done = subprocess.run([EXE, "ask", "--reasoning", "stderr", "hi"], stdout=subprocess.PIPE, stderr=full,
                              text=True, env=env, timeout=60)
    assert (done.returncode, done.stdout) == (0, "the answer\n")

    # A failure still has its exit code when it cannot be told.
    server.add(Reply.json(500, {"error": {"message": "busy"}}))
    assert closed(env, "2>&-", "ask", "hi").returncode == 1


def test_a_reader_that_leaves_is_no_failure(env: dict[str, str], server: LoopbackServer) -> None:
    server.add(Reply.say("word " * 200_000))
    done = subprocess.run(["bash", "-c", 'set -o pipefail; "$0" "$@" | head -c 10', EXE, "ask", "hi"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (0, "word word ", "")
