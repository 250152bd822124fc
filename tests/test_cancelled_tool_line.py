"""A call cancelled while running (Ctrl-C) is shown live in the words /history and exports use
("cancelled (while running)"), not as a failed call with its timing."""

from __future__ import annotations

from modelswitch.conversation import CALL_CANCELLED, Conversation, Message, ToolResult
from modelswitch.events import ToolActivity, ToolCall
from modelswitch.ui.base import result_line, tool_line
from tests.test_tool_loop import Box, run, world  # noqa: F401 - world: the fixture of four validating APIs


class CancelledBox(Box):
    """The toolbox's answer to a call its Ctrl-C cancelled mid-run (as the MCP client gives it)."""

    def call(self, call: ToolCall, timeout: float) -> ToolResult:
        self.ran.append(call)
        return ToolResult(call.id, call.name, CALL_CANCELLED, is_error=True)


def test_a_cancelled_call_is_shown_as_history_says(world) -> None:  # noqa: F811
    cfg, _ = world
    answer, events = run(cfg, Conversation().add(Message("user", "q")), "claude", CancelledBox(),
                         approve=lambda call, server: True)
    ended = [e for e in events if isinstance(e, ToolActivity) and e.state != "running"]
    result = answer.message.rounds[0].results[0]
    assert ended and tool_line(ended[0]) == result_line(answer.message.rounds[0].calls[0], result)
    assert "cancelled (while running)" in tool_line(ended[0])
