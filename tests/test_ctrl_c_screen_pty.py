"""Ctrl-C while an answer streams, checked on a screen: the partial answer once, then the notice,
then the prompt.

What the REPL writes to its pseudo-terminal is replayed into pyte, a terminal emulator, as it is
read, so a resize lands between the right bytes. A check of the bytes cannot see this defect: the
terminal itself echoes "^C" at the cursor, the end of the live region's last row; when that row
was full (rich pads a paragraph's rows to the width) the echo wrapped onto a new row, rich's cursor
went up one row too few to erase the region, and its top row stayed above the reprinted answer.
"""

from __future__ import annotations

import re
import shutil
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.loopback import LoopbackServer, Reply
from tests.test_signals_pty import env  # noqa: F401 - the fixture, shared

pexpect = pytest.importorskip("pexpect")
pyte = pytest.importorskip("pyte")
EXE = shutil.which("modelswitch", path=str(Path(sys.executable).parent))
pytestmark = [
    pytest.mark.pty,
    pytest.mark.skipif(EXE is None, reason="the modelswitch console script is not installed"),
]
ROWS, COLS = 30, 100
STALL = 20.0  # seconds the server waits before the next chunk: longer than any test needs
WORD = re.compile(r"\b(?:alpha|beta|gamma|theta)\d+\b")


def chunk(content: str | None = None, reasoning: str | None = None) -> dict:
    delta = {"content": content} if content is not None else {"reasoning_content": reasoning}
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]}


def words(prefix: str, n: int) -> str:
    return " ".join(f"{prefix}{i}" for i in range(n))


def stalled(*chunks: dict, path: str = "/deep/", delay: float = STALL) -> Reply:
    """The chunks, then a stream that goes quiet: the answer is always interrupted mid-way."""
    return Reply.sse(*chunks, chunk(content=" never"), done=False, delay=delay, path=path)


class Terminal:
    """The REPL in a pseudo-terminal whose output lands on a pyte screen as pexpect reads it."""

    def __init__(self, env: dict[str, str], rows: int = ROWS, cols: int = COLS) -> None:
        self.screen = pyte.Screen(cols, rows)
        self._stream = pyte.Stream(self.screen)
        self.child = pexpect.spawn(EXE, ["chat"], env=env, encoding="utf-8", dimensions=(rows, cols),
                                   timeout=30)
        self.child.logfile_read = self
        self.child.expect("r1 ›")

    def write(self, data: str) -> None:  # pexpect's logfile: every byte read, in order
        self._stream.feed(data)

    def flush(self) -> None:
        pass

    def resize(self, rows: int, cols: int) -> None:
        self.screen.resize(rows, cols)
        self.child.setwinsize(rows, cols)

    def interrupt(self, notice: str) -> list[str]:
        """Ctrl-C; the screen's rows once the prompt is back."""
        self.child.sendintr()
        self.child.expect(notice)
        self.child.expect("r1 ›")
        return [row.rstrip() for row in self.screen.display]

    def close(self) -> None:
        self.child.sendeof()
        self.child.expect(pexpect.EOF)


@pytest.fixture
def screen_env(env: dict[str, str]) -> dict[str, str]:
    """r1 and v3 on the loopback server, in a terminal whose size is the pty's own."""
    return {k: v for k, v in env.items() if k not in ("COLUMNS", "LINES")}  # rich would take these


def assert_shown_once(rows: list[str], notice: str) -> None:
    """Every word of the answer once, all above the notice, and the prompt right under it."""
    counts = Counter(WORD.findall("\n".join(rows)))
    assert counts, rows
    assert {w: n for w, n in counts.items() if n != 1} == {}, "\n".join(rows)
    at = next(i for i, row in enumerate(rows) if notice in row)
    assert not WORD.search("\n".join(rows[at:])), "\n".join(rows)
    assert rows[at + 1].startswith("r1 ›"), "\n".join(rows)


def test_ctrl_c_mid_answer_shows_the_partial_answer_once(screen_env: dict[str, str], server: LoopbackServer) -> None:
    # One line of ~4 rows: it wraps at the width, and rich pads every row to the full width.
    server.add(stalled(chunk(content=words("alpha", 40))))
    term = Terminal(screen_env)
    term.child.send("tell me\r")
    term.child.expect("alpha39")
    rows = term.interrupt("interrupted — partial answer kept")
    assert_shown_once(rows, "interrupted — partial answer kept")
    assert sum("alpha0 alpha1 " in row for row in rows) == 1
    term.close()


@pytest.mark.parametrize("view", ["collapse", "show"])
def test_ctrl_c_mid_reasoning_shows_it_once(view: str, screen_env: dict[str, str], server: LoopbackServer) -> None:
    thought = words("theta", 12) + " "
    thought += "x" * (COLS - len(thought))  # a row that fills the width exactly: the echo wrapped
    server.add(stalled(chunk(reasoning=thought)))
    term = Terminal(screen_env)
    term.child.send(f"/think {view}\r")
    term.child.expect("r1 ›")
    term.child.send("tell me\r")
    term.child.expect("x{10}")
    rows = term.interrupt("interrupted while thinking — no answer yet")
    notice = "interrupted while thinking — no answer yet; /retry asks again"
    if view == "show":
        assert_shown_once(rows, notice)
    else:  # folded to its one line, as at a normal end
        assert sum(notice in row for row in rows) == 1 and not WORD.search("\n".join(rows)), "\n".join(rows)
    # The header folds as at a normal end, not frozen mid-count.
    assert sum(row.startswith("Thought for") for row in rows) == 1, "\n".join(rows)
    assert not any(re.match(r"▸ Thinking… \d", row) for row in rows), "\n".join(rows)  # no frozen timer
    term.close()


def test_ctrl_c_mid_compare_shows_each_lane_once(screen_env: dict[str, str], server: LoopbackServer) -> None:
    server.add(stalled(chunk(content=words("alpha", 20)), path="/deep/"))
    server.add(stalled(chunk(content=words("beta", 20)), path="/other/"))
    term = Terminal(screen_env)
    term.child.send("/compare r1 v3 tell me\r")
    term.child.expect("alpha19")
    term.child.expect("beta19")
    rows = term.interrupt("interrupted — compare stopped")
    assert_shown_once(rows, "/keep N")
    assert sum(row.split() == ["r1", "v3"] for row in rows) == 1  # the lanes' names, side by side
    term.close()


def test_ctrl_c_after_a_resize_shows_the_partial_answer_once(screen_env: dict[str, str], server: LoopbackServer) -> None:
    more = [chunk(content=f" gamma{i}") for i in range(200)]
    server.add(stalled(chunk(content=words("alpha", 30)), *more, delay=0.3))
    term = Terminal(screen_env, cols=80)
    term.child.send("tell me\r")
    term.child.expect("alpha29")
    term.resize(ROWS, COLS)  # wider: the next frame is drawn at 100 columns
    term.child.expect("gamma3")
    rows = term.interrupt("interrupted — partial answer kept")
    assert_shown_once(rows, "interrupted — partial answer kept")
    assert max(len(row) for row in rows) > 80  # the answer was redrawn at the new width
    term.close()
