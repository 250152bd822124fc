"""Ctrl-C while the model thinks: the header folds to "Thought for …" as at a normal end (not a
frozen "▸ Thinking… 1.0 s"), and the message says it was thinking, not that nothing arrived."""

from __future__ import annotations

from modelswitch.conversation import Message
from modelswitch.repl.loop import interrupted_text
from tests.test_render import screen, terminal


def test_ctrl_c_while_thinking_folds_the_header() -> None:
    r, out = terminal()
    r.begin("r1")
    r.reasoning("Let me think about this carefully. ")
    r._draw()
    r.abort()
    lines = [line for line in screen(out) if line.strip()]
    assert any("Thought for" in line for line in lines), lines
    assert not any("Thinking…" in line for line in lines), lines


def test_the_message_says_it_was_thinking() -> None:
    cut = Message("assistant", "", reasoning="Let me think", status="interrupted")
    assert interrupted_text(cut) == "interrupted while thinking — no answer yet"
    assert interrupted_text(Message("assistant", "", status="error")) == "interrupted — nothing arrived"
