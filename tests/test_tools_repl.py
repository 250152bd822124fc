"""`/tools` in a piped REPL, in process, with a real MCP server process (tests/mcp_servers/calc.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelswitch.config import load as config
from modelswitch.engine.mcpclient import McpToolbox
from modelswitch.engine.session import ChatSession
from modelswitch.events import ToolCall
from modelswitch.repl import builtins  # noqa: F401 - registers the commands
from modelswitch.repl.loop import Repl
from tests.test_tools_cli import calc_table, write_config

START = 300.0  # a hang guard, not a timing assertion


class Chat:
    def __init__(self, tmp_path: Path, mcp: str) -> None:
        self.cfg = config.load(write_config(tmp_path, "http://127.0.0.1:9", mcp))
        self.warnings: list[str] = []
        self.said: list[str] = []
        self.errors: list[str] = []
        self.session = ChatSession(self.cfg, self.cfg.resolve("v4"))
        self.box = McpToolbox(self.cfg.mcp, self.cfg.tools, warn=self.warnings.append, start_timeout=START,
                              config_path=str(self.cfg.path))
        self.session.toolbox = self.box
        self.repl = Repl(self.session, color=False, interactive=False)
        self.repl.say = lambda text, style=None: self.said.append(text)  # type: ignore[method-assign]
        self.repl.fail = self.errors.append  # type: ignore[method-assign]

    def run(self, line: str) -> list[str]:
        self.said.clear()
        self.errors.clear()
        self.repl.handle(line)
        return self.said + self.errors


@pytest.fixture
def chat(tmp_path: Path):
    c = Chat(tmp_path, calc_table())
    yield c
    c.box.close()


def test_a_tool_off_as_the_first_command_of_a_fresh_chat(chat: Chat) -> None:
    assert chat.run("/tools off add") == ["tool calc.add: off"]
    assert "add" not in {s.name for s in chat.box.specs()}


@pytest.mark.parametrize("name", ["calc.add", "calc/add", "add"])
def test_tools_takes_a_tool_as_server_dot_tool_server_slash_tool_or_bare(chat: Chat, name: str) -> None:
    assert chat.run(f"/tools off {name}") == ["tool calc.add: off"]
    assert chat.run(f"/tools on {name}") == ["tool calc.add: on"]


def test_tools_usage_errors_say_what_name_is_and_list_what_exists(chat: Chat) -> None:
    chat.box.start()
    for line in ("/tools bogus", "/tools on a b"):
        [error] = chat.run(line)
        assert "server.tool" in error and "servers: calc" in error and "calc.add" in error
    [error] = chat.run("/tools off nothing")
    assert error.startswith("no MCP server or tool named 'nothing'") and "calc.shout" in error


def test_tools_off_alone_turns_every_tool_off_for_the_session_and_on_brings_them_back(chat: Chat) -> None:
    chat.run("/tools off shout")
    assert chat.run("/tools off")[0].startswith("tools off: no tool is offered")
    assert chat.box.specs() == ()
    assert any("every tool is off this session" in line for line in chat.run("/tools"))
    assert chat.run("/tools on")[0].startswith("tools on: ")
    names = {s.name for s in chat.box.specs()}
    assert "add" in names and "shout" in names  # every tool, as /help says: the one turned off too


def test_a_dead_server_restarts_with_tools_on_its_name(chat: Chat) -> None:
    chat.box.specs()
    chat.box.call(ToolCall("d", "die", "{}"), START)
    assert chat.warnings and "/tools on calc restarts it" in chat.warnings[-1]
    assert chat.run("/tools on calc") == ["server calc: ready"]
    assert chat.box.call(ToolCall("c", "add", '{"a": 2, "b": 3}'), START).content == "5"


def test_a_server_that_crashes_at_start_shows_its_reason_once(tmp_path: Path) -> None:
    c = Chat(tmp_path, calc_table(extra=', "--crash"'))
    try:
        out = c.run("/tools")
    finally:
        c.box.close()
    assert not c.warnings  # /tools lists the error: a warning too would say it twice
    [head] = [line for line in out if line.startswith("calc (")]
    assert "calc: cannot start, --crash given" in head and "TaskGroup" not in head and "sub-exception" not in head


def test_a_wrong_command_names_the_config_line_and_file(tmp_path: Path) -> None:
    c = Chat(tmp_path, '[mcp.calc]\ncommand = ["/nonexistent/mcp-calc"]\n')
    try:
        c.box.specs()
        out = c.run("/tools")
    finally:
        c.box.close()
    assert len(c.warnings) == 1
    assert "fix [mcp.calc] command in " + str(c.cfg.path) in c.warnings[0]
    assert "'/nonexistent/mcp-calc'" in c.warnings[0]
    assert sum(line.count("/nonexistent/mcp-calc") for line in out) == 1




def test_help_says_the_tool_basics(chat: Chat, capsys: pytest.CaptureFixture[str]) -> None:
    chat.run("/help")
    out = " ".join(capsys.readouterr().out.split())
    assert "y / n / a" in out and "always this tool" in out and "Ctrl-C cancels a running tool" in out
    assert "/tools [on|off [NAME]]" in out and "a tool (server.tool)" in out and "every tool" in out
