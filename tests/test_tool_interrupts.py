"""Ctrl-C in the tool loop: at the approval question (nothing ran) or while a call runs. The
record, the REPL's line and an export say which of the two happened, and agree with the README."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from modelswitch.conversation import Conversation, Message, ToolResult
from modelswitch.engine.session import ChatSession
from modelswitch.engine.tools import CANCELLED, NOT_STARTED, ToolAnswer
from modelswitch.events import ToolCall
from modelswitch.store.export import to_markdown
from modelswitch.store.records import SessionInfo, Turn
from tests.test_tool_loop import Box, world  # noqa: F401 - world: the fixture of four validating APIs


class CtrlCInCall(Box):
    """Ctrl-C lands while the call runs: the main thread, waiting for it, gets the interrupt."""

    def call(self, call: ToolCall, timeout: float) -> ToolResult:
        self.ran.append(call)
        raise KeyboardInterrupt


def ctrl_c(*_: object) -> bool:
    raise KeyboardInterrupt


def test_ctrl_c_at_the_question_records_a_call_that_never_started(world) -> None:  # noqa: F811
    cfg, apis = world
    box = Box()
    answer = ToolAnswer(cfg, Conversation().add(Message("user", "q")), cfg.resolve("claude"), box, ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        list(answer)
    msg = answer.message
    [result] = msg.rounds[0].results
    assert msg.status == "interrupted" and not box.ran
    assert result.content == NOT_STARTED and result.content != CANCELLED and result.is_error
    # The model is told, and Claude takes the history.
    sent = len(apis[1].accepted)
    list(ToolAnswer(cfg, Conversation().add(Message("user", "q")).add(msg).add(Message("user", "go on")),
                    cfg.resolve("claude"), Box(), lambda c, s: False))
    assert not apis[1].rejected
    assert NOT_STARTED in json.dumps(apis[1].accepted[sent]["messages"])


def test_a_call_approved_but_stopped_at_the_next_question_never_started_either(world) -> None:  # noqa: F811
    cfg, apis = world
    box = Box()
    answers = iter([True])

    def approve(call: ToolCall, server: str) -> bool:
        for yes in answers:
            return yes
        raise KeyboardInterrupt

    calls = [ToolCall("c1", "add", '{"a": 1, "b": 2}'), ToolCall("c2", "add", '{"a": 3, "b": 4}')]
    answer = ToolAnswer(cfg, Conversation().add(Message("user", "q")), cfg.resolve("claude"), box, approve)
    run = answer._run_calls(Message("assistant", ""), calls)
    with pytest.raises(KeyboardInterrupt):
        list(run)
    assert [r.content for r in answer.rounds[0].results] == [NOT_STARTED, NOT_STARTED] and not box.ran


def test_ctrl_c_while_the_call_runs_records_it_interrupted(world) -> None:  # noqa: F811
    cfg, _ = world
    box = CtrlCInCall()
    answer = ToolAnswer(cfg, Conversation().add(Message("user", "q")), cfg.resolve("v4"), box, lambda c, s: True)
    with pytest.raises(KeyboardInterrupt):
        list(answer)
    assert [r.content for r in answer.message.rounds[0].results] == [CANCELLED] and box.ran


def _repl(cfg, box: Box):  # noqa: ANN001, ANN202
    from modelswitch.repl.loop import Repl

    session = ChatSession(cfg, cfg.resolve("v4"))
    session.toolbox = box
    return session, Repl(session, color=False, interactive=True)


def test_repl_says_ctrl_c_at_the_question_ran_nothing_and_the_model_was_told(
    world, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    cfg, _ = world
    session, repl = _repl(cfg, Box())
    monkeypatch.setattr("builtins.input", ctrl_c)
    repl.send("add 2 and 3")
    out = capsys.readouterr().out
    assert "interrupted before the tool call calc.add ran — it was not run and the model was told; " \
           "/retry asks again" in out
    assert "nothing arrived" not in out
    [result] = session.conversation.messages[-1].rounds[0].results
    assert result.content == NOT_STARTED


def test_repl_says_ctrl_c_during_the_call_cancelled_it_and_the_model_was_told(
    world, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    cfg, _ = world
    session, repl = _repl(cfg, CtrlCInCall())
    monkeypatch.setattr("builtins.input", lambda prompt="": "y")
    repl.send("add 2 and 3")
    out = capsys.readouterr().out
    assert "interrupted during the tool call calc.add — the call was cancelled and the model was told; " \
           "/retry asks again" in out
    assert "nothing arrived" not in out


def test_an_export_tells_a_call_never_started_from_one_interrupted_while_running() -> None:
    now = datetime.now(UTC)
    calls = (ToolCall("c1", "slow", "{}"), ToolCall("c2", "add", "{}"))
    from modelswitch.conversation import ToolRound

    results = (ToolResult("c1", "slow", CANCELLED, True, "calc", True),
               ToolResult("c2", "add", NOT_STARTED, True, "calc"))
    msg = Message("assistant", "", status="interrupted", rounds=(ToolRound("", "", None, calls, results),))
    md = to_markdown(SessionInfo(1, "s", now, now), [Turn(Message("user", "q")), Turn(msg)], details=True)
    assert "`calc.slow` `{}` (interrupted while running)" in md
    assert "`calc.add` `{}` (cancelled before running)" in md
    assert "(failed)" not in md
