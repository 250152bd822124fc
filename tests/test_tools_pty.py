"""Tool approval in the REPL, in a real pseudo-terminal, with a real MCP server process."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tests.loopback import LoopbackServer, command_env
from tests.test_tools_cli import calc_table, write_config
from tests.validators import FakeDeepSeek

pexpect = pytest.importorskip("pexpect")
EXE = shutil.which("modelswitch", path=str(Path(sys.executable).parent))
pytestmark = [
    pytest.mark.pty,
    pytest.mark.skipif(EXE is None, reason="the modelswitch console script is not installed"),
]
# A hang guard, not a timing assertion: an MCP server start can be slow on a loaded machine.
WAIT = 240


@pytest.fixture
def fake(server: LoopbackServer) -> FakeDeepSeek:
    api = FakeDeepSeek(tool_args={"a": 2, "b": 3}, args_by_tool={"shout": {"text": "hey"}, "slow": {"seconds": 600}})
    server.default = api
    return api


def spawn(tmp_path: Path, url: str):  # noqa: ANN201
    cfg = write_config(tmp_path, url, calc_table())
    env = command_env(cfg, tmp_path, DS_KEY="sk-ds-test", COLUMNS="120", LINES="40")
    child = pexpect.spawn(EXE, ["chat"], env=env, encoding="utf-8", dimensions=(40, 120), timeout=WAIT)
    # Tools are offered from the first message: the greeting says so, before any call is asked.
    child.expect(r"tools on: MCP server calc \(each call asks y/n/a; /tools lists them")
    child.expect("v4 ›")
    return child


def test_approval_always_tools_list_off_and_ctrl_c_during_a_call(
    tmp_path: Path, server: LoopbackServer, fake: FakeDeepSeek
) -> None:
    child = spawn(tmp_path, server.url)
    child.send("add 2 and 3\r")
    child.expect(r"calc\.add \{\"a\": 2, \"b\": 3\}")
    child.expect(r"run it\? \[y\]es / \[N\]o / \[a\]lways this tool \(Enter = no\): ")
    child.send("a\r")
    child.expect(r"calc\.add .*: ran")
    child.expect("deepseek-v4-flash answer")
    child.expect("v4 ›")

    child.send("again\r")  # `a` holds for the session: no question this time
    child.expect(r"calc\.add .*: ran")
    child.expect("v4 ›")

    child.send("/tools\r")
    child.expect(r"calc \(ready\)")
    child.expect(r"add \(always this session\)")
    child.expect("v4 ›")
    child.send("/tools off add\r")
    child.expect(r"tool calc\.add: off")
    child.expect("v4 ›")

    child.send("shout it\r")  # add is off, so the model's first tool is shout
    child.expect(r"calc\.shout \{\"text\": \"hey\"\}")
    child.expect("run it\\?")
    child.send("n\r")
    child.expect(r"calc\.shout .*: not run \(declined\)")
    child.expect("v4 ›")

    child.send("/tools off shout\r")
    child.expect("v4 ›")
    child.send("wait\r")  # now slow: Ctrl-C while it runs
    child.expect("run it\\?")
    child.send("y\r")
    child.expect(r"\r\n")
    import time

    time.sleep(2)  # let the call reach the server; no assertion depends on how long it takes
    child.sendintr()
    child.expect("interrupted")
    child.expect("v4 ›")

    child.send("what happened?\r")
    child.expect("run it\\?")  # the model asks again; its request carried the cancelled call
    child.send("n\r")
    child.expect("v4 ›")
    child.send("/exit\r")
    child.expect(pexpect.EOF)
    child.close()

    assert not fake.rejected, fake.rejected
    tool_messages = [m for m in fake.accepted[-1]["messages"] if m["role"] == "tool"]
    assert "cancelled: the user interrupted this tool call" in tool_messages[-2]["content"]
    assert tool_messages[0]["content"] == "5"


def test_the_tool_question_says_what_it_takes(tmp_path: Path, server: LoopbackServer, fake: FakeDeepSeek) -> None:
    child = spawn(tmp_path, server.url)
    child.send("add 2 and 3\r")
    child.expect(r"run it\? \[y\]es / \[N\]o / \[a\]lways this tool \(Enter = no\): ")
    child.send("x\r")
    child.expect("answer y, n or a")
    child.expect(r"run it\?")
    child.send("/tools\r")
    child.expect("a command cannot run during a tool question: answer y, n or a first")
    child.expect(r"run it\?")
    child.send("y\r")
    child.expect(r"calc\.add .*: ran")
    child.expect("v4 ›")
    child.send("/exit\r")
    child.expect(pexpect.EOF)
    child.close()
    assert not fake.rejected, fake.rejected
