"""/history lists each tool call under its answer, in the line the answer showed when it ran."""

from __future__ import annotations

import pytest

from modelswitch.engine.session import ChatSession
from modelswitch.repl.loop import Repl
from tests.test_tool_interrupts import ctrl_c
from tests.test_tool_loop import Box, world  # noqa: F401 - world: the fixture of four validating APIs


def _history(cfg, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], reply) -> list[str]:  # noqa: ANN001
    session = ChatSession(cfg, cfg.resolve("v4"))
    session.toolbox = Box()
    repl = Repl(session, color=False, interactive=True)
    monkeypatch.setattr("builtins.input", reply)
    repl.send("add 2 and 3")
    capsys.readouterr()
    repl.handle("/history")
    return capsys.readouterr().out.splitlines()


def test_history_shows_each_call_under_the_answer(world, monkeypatch, capsys) -> None:  # noqa: F811
    cfg, _ = world
    lines = _history(cfg, monkeypatch, capsys, lambda prompt="": "y")
    answer = next(i for i, ln in enumerate(lines) if ln.lstrip().startswith("2. v4:"))
    assert "deepseek-v4-flash answer" in lines[answer]
    assert lines[answer + 1].strip() == '⚙ calc.add {"a": 2, "b": 3}: ran'


def test_history_of_a_turn_stopped_at_the_question(world, monkeypatch, capsys) -> None:  # noqa: F811
    cfg, _ = world
    lines = _history(cfg, monkeypatch, capsys, ctrl_c)
    answer = next(i for i, ln in enumerate(lines) if ln.lstrip().startswith("2. v4 [interrupted]:"))
    assert "v4 [interrupted]: (tool calls, no text)" in lines[answer]
    assert lines[answer + 1].strip() == '⚙ calc.add {"a": 2, "b": 3}: cancelled (before running)'


def test_history_of_a_declined_call(world, monkeypatch, capsys) -> None:  # noqa: F811
    cfg, _ = world
    lines = _history(cfg, monkeypatch, capsys, lambda prompt="": "n")
    assert '⚙ calc.add {"a": 2, "b": 3}: not run (declined)' in [ln.strip() for ln in lines]
