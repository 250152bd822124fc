"""render.py: plain mode for pipes, terminal mode into a forced-terminal console."""

from __future__ import annotations

import io
import re
import subprocess
import sys

import pytest

from modelswitch.ui import render
from modelswitch.conversation import Message, ModelRef, Timing
from modelswitch.events import Usage
from modelswitch.ui.mdstream import Block, MarkdownStream
from modelswitch.config.pricing import Cost
from modelswitch.ui.base import footer_text
from modelswitch.ui.render import (
    make_renderer,
    print_error,
    print_info,
    print_markdown,
    print_table,
)
from modelswitch.ui.live import TerminalRenderer
from tests.test_render_pty import Screen

ANSI = re.compile(r"\x1b[\[\]]")
SGR = re.compile(r"\x1b\[([0-9;]*)m")
HY = ModelRef("hunyuan", "hunyuan-turbos-latest", "openai", "hy")


@pytest.fixture(autouse=True)
def screen_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """rich sizes even a StringIO console from whatever terminal runs pytest; pin it."""
    monkeypatch.setenv("LINES", "25")
    monkeypatch.setenv("COLUMNS", "60")
    monkeypatch.setenv("TERM", "xterm-256color")  # TERM=dumb (some CI) turns off Live and colour


def message(text: str = "", **kw: object) -> Message:
    base: dict[str, object] = {
        "model": HY,
        "timing": Timing(ttft_s=0.4, total_s=3.0, tokens_per_s=61.0),
        "usage": Usage(input_tokens=10, output_tokens=230),
    }
    base.update(kw)
    return Message("assistant", text, **base)  # type: ignore[arg-type]


class CountingIO(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.flushes = 0
        self.at_flush: list[str] = []

    def flush(self) -> None:
        self.flushes += 1
        self.at_flush.append(self.getvalue())


def has_colour(out: str) -> bool:
    """Any SGR that sets a foreground or background colour (bold, dim, italic are not colour)."""
    for params in SGR.findall(out):
        codes = [int(p) for p in params.split(";") if p]
        if any(30 <= c <= 49 or 90 <= c <= 107 for c in codes):
            return True
    return False


# -- plain mode -------------------------------------------------------------------------------


def test_plain_writes_exactly_the_text_flushed_per_chunk() -> None:
    out, err = CountingIO(), io.StringIO()
    r = make_renderer(terminal=False, out=out, err=err)
    r.begin("hy")
    chunks = ["# Title\n\n", "Some **bold** ", "text with `code`\n", "```py\nx = 1\n```"]
    for i, chunk in enumerate(chunks):
        r.text(chunk)
        assert out.at_flush[-1] == "".join(chunks[: i + 1])  # on the pipe as it arrives
    r.end(message("".join(chunks)), Cost(0.0012, "CNY"))
    assert out.getvalue() == "".join(chunks) + "\n"  # the final newline only because it lacked one
    assert not ANSI.search(out.getvalue())
    assert err.getvalue() == ""


def test_plain_adds_no_newline_when_the_answer_has_one() -> None:
    out = io.StringIO()
    r = make_renderer(terminal=False, out=out, err=io.StringIO())
    r.text("line\n")
    r.end(message("line\n"), None)
    assert out.getvalue() == "line\n"


@pytest.mark.parametrize("mode", ["show", "collapse", "hide"])
def test_plain_drops_reasoning_unless_stderr(mode: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    r = make_renderer(terminal=False, reasoning=mode, out=out, err=err)
    r.reasoning("pondering")
    r.text("answer")
    r.end(message("answer"), None)
    assert out.getvalue() == "answer\n"
    assert err.getvalue() == ""


def test_plain_reasoning_to_stderr() -> None:
    out, err = io.StringIO(), io.StringIO()
    r = make_renderer(terminal=False, reasoning="stderr", out=out, err=err)
    r.reasoning("step one, ")
    r.reasoning("step two")
    r.text("answer")
    r.notice("deepseek busy (503), retrying in 2 s… 1/2")
    r.end(message("answer"), None)
    assert out.getvalue() == "answer\n"
    assert err.getvalue() == "step one, step two\ndeepseek busy (503), retrying in 2 s… 1/2\n"


def test_plain_mode_never_imports_rich() -> None:
    code = (
        "import io, sys\n"
        "from modelswitch.ui.render import make_renderer\n"
        "assert not [m for m in sys.modules if m.startswith('rich')], 'import'\n"
        "r = make_renderer(terminal=False, reasoning='stderr', out=io.StringIO(), err=io.StringIO())\n"
        "r.begin('hy'); r.reasoning('x'); r.text('y'); r.notice('n'); r.abort()\n"
        "from modelswitch.conversation import Message\n"
        "r.end(Message('assistant', 'y'), None)\n"
        "assert not [m for m in sys.modules if m.startswith(('rich', 'pygments'))], 'use'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unknown_reasoning_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="reasoning"):
        make_renderer(terminal=False, reasoning="loud")


# -- terminal mode ----------------------------------------------------------------------------

DOC = """# Alpha heading

First paragraph, with **bold**
and a soft break.

- one
- two

  two continued

```python
# not a heading
def f() -> int:

    return 42
```

> a quote

| k | v |
|---|---|
| x | 1 |

Last words.
"""


def terminal(**kw: object) -> tuple[TerminalRenderer, io.StringIO]:
    out = io.StringIO()
    r = make_renderer(terminal=True, out=out, width=60, **kw)  # type: ignore[arg-type]
    assert isinstance(r, TerminalRenderer)
    return r, out


def screen(out: io.StringIO) -> list[str]:
    return Screen(rows=25, cols=60).feed(out.getvalue()).transcript()


def test_each_finished_block_is_printed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    printed: list[str] = []
    original = TerminalRenderer._renderable

    def spy(self: TerminalRenderer, item: object) -> object:
        if isinstance(item, Block):
            printed.append(item.text)
        return original(self, item)  # type: ignore[arg-type]

    monkeypatch.setattr(TerminalRenderer, "_renderable", spy)
    r, out = terminal()
    r.begin("hy")
    for i in range(0, len(DOC), 3):
        r.text(DOC[i : i + 3])
        r._draw()  # a frame after every chunk: the worst case for redrawing
    r.end(message(DOC), None)

    stream = MarkdownStream()
    assert printed == [b.text for b in stream.feed(DOC) + stream.close()]
    lines = screen(out)
    text = "\n".join(lines)
    for marker in ["Alpha heading", "First paragraph", "• one", "• two", "two continued",
                   "# not a heading", "return 42", "a quote", "Last words."]:
        assert text.count(marker) == 1, marker
    assert lines[-1] == "hy · 0.4 s to first token · 61 tok/s · 230 tokens"


def test_streamed_screen_equals_whole_answer_drawn_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    r, out = terminal()
    r.begin("hy")
    for ch in DOC:
        r.text(ch)
        if ch == "\n":
            r._draw()
    r.end(message(DOC), None)

    from rich.console import Console

    static = FakeTty()
    monkeypatch.setattr(render, "_console", lambda s: Console(file=s, width=60, force_terminal=True))
    print_markdown(DOC, out=static)
    assert screen(out)[:-1] == Screen(rows=25, cols=60).feed(static.getvalue()).transcript()


def test_collapse_replaces_reasoning_with_one_line() -> None:
    r, out = terminal(reasoning="collapse")
    r.begin("r1")
    for i in range(40):
        r.reasoning(f"hidden thought {i} ")
        if i % 10 == 0:
            r._draw()
    raw_before_answer = out.getvalue()
    r.text("The answer.\n")
    r._draw()
    r.end(message("The answer.\n", model=ModelRef("deepseek", "deepseek-reasoner", "openai", "r1")), None)

    assert "Thinking…" in raw_before_answer  # it streamed live
    assert "hidden thought 1" in raw_before_answer
    lines = screen(out)
    assert not any("hidden thought" in line for line in lines)
    summaries = [line for line in lines if line.startswith("Thought for ")]
    assert len(summaries) == 1
    # Its size is not known when the answer starts (usage comes at the end): the time only, not
    # the 40 stream chunks passed off as tokens.
    assert re.fullmatch(r"Thought for \d+\.\d s", summaries[0])
    assert lines.index(summaries[0]) < lines.index("The answer.")


def test_collapse_summary_uses_usage_when_the_answer_never_started() -> None:
    r, out = terminal(reasoning="collapse")
    r.begin("r1")
    r.reasoning("only thinking")
    r.end(message("", usage=Usage(5, 500, reasoning_tokens=412), finish_reason="length"), None)
    lines = screen(out)
    assert any(re.fullmatch(r"Thought for \d+\.\d s · 412 tokens", line) for line in lines)
    assert lines[-1] == "hy · 0.4 s to first token · 61 tok/s · 500 tokens"


def test_collapse_summary_marks_an_estimated_count() -> None:
    r, out = terminal(reasoning="collapse")
    r.begin("r1")
    for _ in range(30):
        r.reasoning("x")
    r.end(message("", usage=Usage(5, 500, reasoning_tokens=8, reasoning_estimated=True), finish_reason="length"), None)
    assert any(re.fullmatch(r"Thought for \d+\.\d s · ~8 tokens", line) for line in screen(out))


def test_show_keeps_reasoning_and_hide_never_shows_it() -> None:
    shown, out = terminal(reasoning="show")
    shown.reasoning("line one\nline two\npartial")
    shown._draw()
    shown.text("Answer.")
    shown.end(message("Answer."), None)
    lines = screen(out)
    for expected in ("line one", "line two", "partial", "Answer."):
        assert lines.count(expected) == 1, expected
    assert lines.index("partial") < lines.index("Answer.")
    assert any(line.startswith("Thought for ") for line in lines)

    hidden, out = terminal(reasoning="hide")
    hidden.reasoning("secret")
    hidden._draw()
    hidden.text("Answer.")
    hidden.end(message("Answer."), None)
    text = "\n".join(screen(out))
    assert "secret" not in text and "Thought for" not in text
    assert "Answer." in text


def test_spinner_until_first_token_then_gone() -> None:
    r, out = terminal()
    r.begin("hy")
    r._draw()
    assert "hy …" in out.getvalue()
    r.text("Hello")
    r.end(message("Hello"), None)
    assert screen(out) == ["Hello", "hy · 0.4 s to first token · 61 tok/s · 230 tokens"]


def test_footer_with_cost_and_interruption() -> None:
    assert footer_text(message(), Cost(0.0012, "CNY")) == (
        "hy · 0.4 s to first token · 61 tok/s · 230 tokens · ¥0.0012"
    )
    assert footer_text(message(status="interrupted"), None).startswith("hy · interrupted · ")
    # A cut answer is told by the provider's Notice ("stopped: the answer hit max_tokens"), not twice.
    assert "max_tokens" not in footer_text(message(finish_reason="length"), None)
    bare = Message("assistant", "", model=HY)
    assert footer_text(bare, None) == "hy"


def test_abort_keeps_the_partial_answer_and_end_adds_the_footer() -> None:
    r, out = terminal()
    r.begin("hy")
    r.text("# Done heading\n\nA paragraph still stream")
    r._draw()
    r.abort()
    r.abort()  # idempotent
    r.text("ing more")  # late chunks after Ctrl-C are not drawn
    r.end(message("", status="interrupted"), None)
    lines = screen(out)
    assert lines.count("A paragraph still stream") == 1
    assert not any("ing more" in line for line in lines)
    assert sum("Done heading" in line for line in lines) == 1
    assert lines[-2].startswith("hy · interrupted")  # the footer wraps at 60


def test_notice_is_a_line_above_the_live_region() -> None:
    r, out = terminal()
    r.begin("deepseek")
    r.notice("deepseek busy (503), retrying in 2 s… 1/2")
    r.text("ok")
    r.end(message("ok"), None)
    lines = screen(out)
    assert lines[0] == "deepseek busy (503), retrying in 2 s… 1/2"
    assert lines[1] == "ok"


def test_colour_only_when_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)

    def draw(color: bool) -> str:
        r, out = terminal(color=color)
        r.begin("hy")
        r.text("# Head\n\n```python\ndef f():\n    return 'x'\n```\n\nSome `code`.\n")
        r._draw()
        r.end(message(), None)
        return out.getvalue()

    assert has_colour(draw(True))  # so the checks below can fail
    no_colour = draw(False)
    assert not has_colour(no_colour)
    assert "def f():" in no_colour and "Head" in no_colour  # still laid out
    monkeypatch.setenv("NO_COLOR", "1")
    assert not has_colour(draw(True))


# -- helpers ----------------------------------------------------------------------------------


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_print_error_plain_and_red(monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    print_error("no key for deepseek", err=err)
    assert err.getvalue() == "error: no key for deepseek\n"
    monkeypatch.delenv("NO_COLOR", raising=False)
    tty = FakeTty()
    print_error("boom", err=tty)
    assert has_colour(tty.getvalue()) and "boom" in tty.getvalue()


def test_print_info_and_markdown_plain_when_piped() -> None:
    out = io.StringIO()
    print_info("switched to r1", style="bold", out=out)
    print_markdown("# Title\n\n**x**", out=out)
    assert out.getvalue() == "switched to r1\n# Title\n\n**x**\n"


def test_print_table_plain_columns_when_piped() -> None:
    out = io.StringIO()
    print_table(["model", "provider", "price"], [["hy", "hunyuan", ""], ["r1", "deepseek", "¥4/¥16"]], out=out)
    assert out.getvalue() == (
        "model  provider  price\n"
        "hy     hunyuan\n"
        "r1     deepseek  ¥4/¥16\n"
    )


def test_print_table_in_a_terminal_uses_rich() -> None:
    tty = FakeTty()
    print_table(["model", "alias"], [["deepseek-reasoner", "r1"]], out=tty)
    assert "deepseek-reasoner" in tty.getvalue() and "model" in tty.getvalue()


def test_a_tool_round_shows_the_next_rounds_reasoning_live_and_one_line_per_call() -> None:
    from modelswitch.events import ReasoningDelta, TextDelta, ToolActivity, ToolCall
    from modelswitch.ui.render import draw

    r, out = terminal(reasoning="show")
    r.begin("v4")
    call = ToolCall("c1", "add", '{"a": 2,\n "b": 3}')
    draw(r, [ReasoningDelta("First I add."), TextDelta("Adding."), ToolActivity(call, "calc", "running"),
             ToolActivity(call, "calc", "done", "0.1 s · 1 chars"), ReasoningDelta("Now I know it is 5."),
             TextDelta("It is 5.")])
    r.end(message("It is 5."), None)
    text = "\n".join(screen(out))
    assert text.count("Thinking") == 2 and "Now I know it is 5." in text
    assert '⚙ calc.add {"a": 2, "b": 3}: ran (0.1 s · 1 chars)' in text
    assert text.index("Adding.") < text.index("⚙ calc.add") < text.index("It is 5.")


def _compare_final(*usages: Usage) -> str:
    from modelswitch.ui.compare import CompareView

    out = io.StringIO()
    view = CompareView([f"m{i}" for i in range(len(usages))], terminal=True, color=False, out=out, width=120)
    for lane, usage in enumerate(usages):
        for _ in range(25):
            view.reasoning(lane, "hmm ")
        view.text(lane, "done")
        view.finish(lane, message("done", usage=usage), None, None)
    view.close()
    return out.getvalue().rsplit("\x1b[?25h", 1)[-1]


def test_compare_lanes_never_count_reasoning_chunks_as_tokens() -> None:
    # m0: the provider counted 12; m1: nobody counted (25 chunks are not 25 tokens): the time only.
    final = _compare_final(Usage(5, 40, reasoning_tokens=12), Usage(5, 40))
    assert re.search(r"Thought for \d+\.\d s · 12 tokens", final)
    assert len(re.findall(r"Thought for \d+\.\d s\b", final)) == 2 and "25 tokens" not in final


def test_compare_lanes_mark_an_estimated_reasoning_count() -> None:
    final = _compare_final(Usage(5, 40, reasoning_tokens=25, reasoning_estimated=True))
    assert re.search(r"Thought for \d+\.\d s · ~25 tokens", final)
