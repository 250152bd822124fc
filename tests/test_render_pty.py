"""render.py in a real pseudo-terminal: a long streamed answer lands on screen whole and once.

The bytes a terminal receives are replayed through `Screen`, a small emulator of what rich emits
(cursor up, erase line, carriage return, line feed, autowrap), keeping scrollback: a Live region
that ever outgrew the screen would leave duplicated lines there, and cropping would leave "...".
"""

from __future__ import annotations

import os
import re
import sys
import textwrap
import unicodedata
from pathlib import Path

import pytest

pexpect = pytest.importorskip("pexpect")

pytestmark = pytest.mark.pty

ROWS, COLS = 24, 80


class Screen:
    """Scrollback plus a ROWS x COLS screen; unknown escape sequences fail the test."""

    _CSI = re.compile(r"\x1b\[([?0-9;]*)([A-Za-z])")
    _OSC = re.compile(r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")

    def __init__(self, rows: int = ROWS, cols: int = COLS) -> None:
        self.rows, self.cols = rows, cols
        self.lines: list[list[str]] = [[]]
        self.top = 0  # index in `lines` of the screen's first row
        self.row = 0
        self.col = 0

    def feed(self, data: str) -> Screen:
        i = 0
        while i < len(data):
            ch = data[i]
            if ch == "\x1b":
                m = self._CSI.match(data, i) or self._OSC.match(data, i)
                assert m is not None, f"unknown escape at {data[i:i + 12]!r}"
                if m.re is self._CSI:
                    self._csi(m.group(1), m.group(2))
                i = m.end()
                continue
            if ch == "\r":
                self.col = 0
            elif ch == "\n":  # as a tty's ONLCR turns it (what StringIO output relies on)
                self.col = 0
                self._line_feed()
            elif ch == "\b":
                self.col = max(0, self.col - 1)
            elif ch == "\x07":
                pass
            else:
                self._put(ch)
            i += 1
        return self

    def transcript(self) -> list[str]:
        """Every line ever shown (scrollback and screen), right-trimmed, trailing blanks dropped."""
        out = ["".join(c for c in line if c is not None).rstrip() for line in self.lines]
        while out and not out[-1]:
            out.pop()
        return out

    def _line_feed(self) -> None:
        self.row += 1
        if self.row == len(self.lines):
            self.lines.append([])
        if self.row - self.top >= self.rows:
            self.top = self.row - self.rows + 1

    def _put(self, ch: str) -> None:
        width = 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        if self.col + width > self.cols:  # autowrap
            self.col = 0
            self._line_feed()
        line = self.lines[self.row]
        if len(line) < self.col + width:
            line.extend(" " * (self.col + width - len(line)))
        line[self.col] = ch
        if width == 2:
            line[self.col + 1] = None  # type: ignore[call-overload]
        self.col += width

    def _csi(self, params: str, final: str) -> None:
        if params.startswith("?") and final in "hl":
            return  # cursor visibility, bracketed paste
        n = int(params or "1") if final in "ABCDG" else 0
        if final == "m":
            return
        if final == "A":
            self.row = max(self.top, self.row - n)  # the cursor cannot leave the screen
        elif final == "B":
            self.row = min(self.top + self.rows - 1, self.row + n)
            while len(self.lines) <= self.row:
                self.lines.append([])
        elif final == "C":
            self.col = min(self.cols - 1, self.col + n)
        elif final == "D":
            self.col = max(0, self.col - n)
        elif final == "G":
            self.col = n - 1
        elif final == "K":
            line = self.lines[self.row]
            mode = params or "0"
            if mode == "2":
                line.clear()
            elif mode == "0":
                del line[self.col :]
            else:
                line[: self.col + 1] = [" "] * min(len(line), self.col + 1)
        else:
            raise AssertionError(f"unexpected CSI {params!r}{final}")


CODE_LINES = [f"value_{i:02d} = compute({i})  # step {i}" for i in range(40)]

ANSWER = (
    "# Streaming check\n\n"
    + "".join(
        f"Paragraph {p} says something long enough to wrap across the eighty columns of this "
        f"terminal, so that wrapping is exercised too (mark P{p}).\n\n"
        for p in range(6)
    )
    + "".join(f"- list item L{i} with a little text\n" for i in range(30))
    + "\n```python\n"
    + "\n".join(CODE_LINES)
    + "\n```\n\n"
    + "## Second part\n\n"
    + "".join(f"{i}. ordered O{i}\n" for i in range(1, 15))
    + "\nFinal words (mark END).\n"
)

DRIVER = textwrap.dedent(
    """
    import sys, time
    from modelswitch.conversation import Message, ModelRef, Timing
    from modelswitch.events import Usage
    from modelswitch.ui.render import make_renderer, print_markdown

    answer = sys.stdin.read() if False else open(sys.argv[1], encoding="utf-8").read()
    r = make_renderer(terminal=True, reasoning="collapse")
    r.begin("hy")
    for i in range(60):
        r.reasoning(f"secret thought R{i} ")
        time.sleep(0.002)
    step = 5
    for i in range(0, len(answer), step):
        r.text(answer[i:i + step])
        time.sleep(0.0005)
    message = Message("assistant", answer, model=ModelRef("p", "m", "openai", "hy"),
                      timing=Timing(0.4, 2.0, 61.0), usage=Usage(5, 230, 60))
    r.end(message, None)
    print("=" * 20 + " STATIC")
    print_markdown(answer)
    """
)


def run_in_pty(tmp_path: Path, answer: str) -> str:
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER, encoding="utf-8")
    (tmp_path / "answer.md").write_text(answer, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLUMNS", "LINES")}
    env["TERM"] = "xterm-256color"
    child = pexpect.spawn(
        sys.executable,
        [str(driver), str(tmp_path / "answer.md")],
        dimensions=(ROWS, COLS),
        env=env,
        encoding="utf-8",
        timeout=60,
    )
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    return child.before


def test_long_answer_lands_whole_and_once(tmp_path: Path) -> None:
    raw = run_in_pty(tmp_path, ANSWER)
    lines = Screen().feed(raw).transcript()
    cut = lines.index("=" * 20 + " STATIC")
    streamed, static = lines[:cut], lines[cut + 1 :]
    text = "\n".join(streamed)

    assert len(streamed) > 2 * ROWS  # the test means something only if it scrolled
    for mark in [f"P{p})" for p in range(6)] + [f"L{i} " for i in range(30)] + ["END"]:
        assert text.count(mark) == 1, mark
    for code in CODE_LINES:
        assert sum(code in line for line in streamed) == 1, code
    for i in range(1, 15):
        assert text.count(f"ordered O{i}\n") + text.endswith(f"ordered O{i}") <= 1
        assert f"ordered O{i}" in text
    assert not any(line.strip() in ("...", "…") for line in streamed)
    assert "secret thought" not in text  # collapsed
    assert sum(line.startswith("Thought for ") for line in streamed) == 1
    assert streamed[-1].startswith("hy · 0.4 s to first token · 61 tok/s · 230 tokens")

    # What was streamed is exactly what the whole answer draws at once.
    first = next(i for i, line in enumerate(streamed) if "Streaming check" in line)
    assert streamed[first:-1] == static


def test_cjk_answer_in_pty(tmp_path: Path) -> None:
    answer = "".join(f"第{i}段：这是一个很长的中文段落，用来检查宽字符的换行是否正确，没有重复。\n\n" for i in range(30))
    raw = run_in_pty(tmp_path, answer)
    lines = Screen().feed(raw).transcript()
    cut = lines.index("=" * 20 + " STATIC")
    streamed = lines[:cut]
    text = "".join(streamed)
    for i in range(30):
        assert text.count(f"第{i}段") == 1
