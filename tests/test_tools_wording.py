"""What `/tools` says and does, as a new user reads it: `/tools on` alone really turns every tool
back on (as /help says), and a failed server's line says how to restart it."""

from __future__ import annotations

from pathlib import Path

from modelswitch.config import load as config
from modelswitch.events import ToolCall
from tests.test_tools_cli import calc_table, write_config


def _repl(tmp_path: Path):  # noqa: ANN202
    from modelswitch.engine.mcpclient import McpToolbox
    from modelswitch.engine.session import ChatSession
    from modelswitch.repl import builtins  # noqa: F401 - registers the commands
    from modelswitch.repl.loop import Repl

    cfg = config.load(write_config(tmp_path, "http://127.0.0.1:9", calc_table()))
    session = ChatSession(cfg, cfg.resolve("v4"))
    session.toolbox = McpToolbox(cfg.mcp, cfg.tools, warn=lambda line: None)
    said: list[str] = []
    repl = Repl(session, color=False, interactive=False)
    repl.say = lambda text, style=None: said.append(text)  # type: ignore[method-assign]
    return repl, said


def test_tools_on_alone_turns_every_tool_and_server_back_on(tmp_path: Path) -> None:
    from modelswitch.repl.commands import dispatch

    repl, said = _repl(tmp_path)
    box = repl.session.toolbox
    try:
        dispatch(repl, "/tools off calc.add")
        dispatch(repl, "/tools off shout")
        dispatch(repl, "/tools off")
        assert box.specs() == ()
        dispatch(repl, "/tools on")
        count = len(box.specs())
        assert said[-1] == f"tools on: {count} tools on, from 1 server"
        said.clear()
        dispatch(repl, "/tools")
        assert not any("(off" in line for line in said), said  # add and shout are back
        dispatch(repl, "/tools off calc")  # a server turned off comes back too
        dispatch(repl, "/tools on")
        assert said[-1] == f"tools on: {count} tools on, from 1 server"
        assert {"add", "shout"} <= {t.name for t in box.specs()}
    finally:
        box.close()


def test_a_failed_server_line_says_how_to_restart_it(tmp_path: Path) -> None:
    from modelswitch.repl.commands import dispatch

    repl, said = _repl(tmp_path)
    box = repl.session.toolbox
    try:
        box.specs()
        box.call(ToolCall("d", "die", "{}"), 5.0)
        said.clear()
        dispatch(repl, "/tools")
        assert said[0].startswith("calc (failed: ") and said[0].endswith(" — /tools on calc restarts it"), said
        dispatch(repl, "/tools on")  # and `/tools on` alone restarts it too
        assert said[-1].startswith("tools on: ") and "from 1 server" in said[-1]
        assert box.call(ToolCall("c", "add", '{"a": 1, "b": 1}'), 5.0).content == "2"
    finally:
        box.close()
