"""Ctrl-C at a /compare lane's approval question while another lane has already finished: the
finished lane is shown finished (its answer is what /keep keeps), and the final view starts on a
line of its own, not after the cut question's "^C"."""

from __future__ import annotations

import io
import re
import shutil
import sys
import threading
import time
from pathlib import Path

import pytest

from modelswitch.conversation import Conversation, Message
from modelswitch.engine import compare as engine_compare
from modelswitch.engine.compare import run_models
from modelswitch.events import ToolCall
from modelswitch.ui.compare import CompareView
from tests.loopback import LoopbackServer, command_env
from tests.test_compare_tools import two, two_models  # noqa: F401 - two: the fixture of two DeepSeek fakes
from tests.test_tool_loop import Box, world  # noqa: F401 - world: the fixture of four validating APIs

EXE = shutil.which("modelswitch", path=str(Path(sys.executable).parent))
WAIT = 240  # a hang guard, not a timing assertion: an MCP server start can be slow on a loaded machine


def _lanes_alive() -> int:
    return sum(t.is_alive() and getattr(t, "_target", None) is engine_compare._work for t in threading.enumerate())


def test_a_lane_that_finished_before_the_ctrl_c_is_shown_finished(world) -> None:  # noqa: F811
    cfg, apis = world
    asked: list[int] = []

    def approve(i: int, call: ToolCall, server: str) -> bool:
        asked.append(i)
        if len(asked) == 1:
            return True
        deadline = time.monotonic() + WAIT  # a hang guard: the first lane ends on its own
        while _lanes_alive() > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        raise KeyboardInterrupt  # at the second lane's question, where the user pressed it

    view = CompareView(["v4", "claude"], terminal=False, quiet=True, out=io.StringIO())
    conv = Conversation().add(Message("user", "add 2 and 3"))
    outcomes, interrupt = run_models(cfg, conv, [cfg.resolve("v4"), cfg.resolve("claude")], view,
                                     toolbox=Box(), approve=approve)
    assert isinstance(interrupt, KeyboardInterrupt)
    done, cut = asked
    assert outcomes[done].message.status == "complete" and outcomes[done].message.text
    lane = view.lanes[done]
    assert lane.error is None and lane.footer and "interrupted" not in lane.footer
    assert "".join(lane.text) == outcomes[done].message.text  # what /keep keeps is what was shown
    assert view.lanes[cut].error is None and "interrupted" in view.lanes[cut].footer  # the user's cut, not an error
    assert all(not a.rejected for a in apis)


def test_the_final_view_starts_on_a_fresh_line_after_a_cut_question() -> None:
    out = io.StringIO()
    view = CompareView(["v4", "claude"], terminal=True, color=False, out=out, width=100)
    view.start()
    view.pause()
    out.write("  run it? [y]es / [N]o / [a]lways this tool (Enter = no): ^C")  # the question, cut short
    view.close()
    after = out.getvalue().split("^C", 1)[1]
    assert re.match(r"(\x1b\[[0-9;?]*[a-zA-Z])*\r?\n", after), repr(after[:40])


@pytest.mark.pty
@pytest.mark.skipif(EXE is None, reason="the modelswitch console script is not installed")
def test_ctrl_c_at_a_compare_question_in_a_terminal(tmp_path: Path, server: LoopbackServer, two) -> None:  # noqa: F811
    pexpect = pytest.importorskip("pexpect")
    pyte = pytest.importorskip("pyte")
    rows_n, cols = 40, 120
    screen = pyte.Screen(cols, rows_n)
    stream = pyte.Stream(screen)

    class Feed:
        def write(self, data: str) -> None:
            stream.feed(data)

        def flush(self) -> None:
            pass

    env = command_env(two_models(tmp_path, server.url), tmp_path, DS_KEY="sk-ds-test", COLUMNS=str(cols),
                      LINES=str(rows_n), PROMPT_TOOLKIT_NO_CPR="1")
    child = pexpect.spawn(EXE, ["chat"], env=env, encoding="utf-8", dimensions=(rows_n, cols), timeout=WAIT)
    child.logfile_read = Feed()
    child.expect("a ›")
    child.send("/compare a b add 2 and 3\r")
    child.expect(r"\[(a|b)\] ⚙ calc\.add")
    first = child.match.group(1)
    child.expect(r"run it\? \[y\]es / \[N\]o / \[a\]lways this tool \(Enter = no\): ")
    child.send("y\r")
    child.expect(r"\[(a|b)\] ⚙ calc\.add")
    child.expect(r"run it\? \[y\]es / \[N\]o / \[a\]lways this tool \(Enter = no\): ")
    fake = two[0 if first == "a" else 1]
    deadline = time.monotonic() + WAIT  # a hang guard: the first lane's answer after its call
    while len(fake.accepted) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(2)  # let that lane read its answer to the end; no assertion depends on how long
    child.sendintr()
    child.expect("interrupted — compare stopped")
    child.expect("a ›")
    rows = [row.rstrip() for row in screen.display]
    child.send("/exit\r")
    child.expect(pexpect.EOF)
    child.close()
    assert sum(row.split() == ["a", "b"] for row in rows) == 1, "\n".join(rows)  # the header on its own row
    assert not any("error:" in row for row in rows), "\n".join(rows)  # a cut lane is no error
    assert sum("interrupted" in row and "compare stopped" not in row for row in rows) == 1, "\n".join(rows)
    assert any(f"{'deepseek-v4-flash' if first == 'a' else 'deepseek-chat'} answer" in row for row in rows)
