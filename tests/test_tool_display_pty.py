"""How tool activity looks on a real screen: the pseudo-terminal's bytes replayed into pyte, so a
line that a live region's redraw wiped (or drew over) is seen as the user sees it."""

from __future__ import annotations

import shutil
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from tests.loopback import LoopbackServer, Received, Reply, command_env
from tests.test_tools_cli import calc_table, write_config
from tests.validators import FakeDeepSeek

pexpect = pytest.importorskip("pexpect")
pyte = pytest.importorskip("pyte")
EXE = shutil.which("modelswitch", path=str(Path(sys.executable).parent))
pytestmark = [
    pytest.mark.pty,
    pytest.mark.skipif(EXE is None, reason="the modelswitch console script is not installed"),
]
WAIT = 240  # a hang guard, not a timing assertion: an MCP server start can be slow on a loaded machine
ROWS, COLS = 40, 120


class PacedDeepSeek(FakeDeepSeek):
    """The fake, its chunks a little apart: the live region is on screen when a round ends."""

    def answer(self, rec: Received, body: dict) -> Reply:
        return replace(super().answer(rec, body), delay=0.25)


@pytest.fixture
def fake(server: LoopbackServer) -> FakeDeepSeek:
    api = PacedDeepSeek(tool_args={"a": 2, "b": 3}, args_by_tool={"slow": {"seconds": 4}})
    server.default = api
    return api


class Screen:
    """A command in a pseudo-terminal whose output lands on a pyte screen as pexpect reads it."""

    def __init__(self, tmp_path: Path, url: str, args: list[str], mcp: str | None = None) -> None:
        cfg = write_config(tmp_path, url, calc_table() if mcp is None else mcp)
        env = command_env(cfg, tmp_path, DS_KEY="sk-ds-test", COLUMNS=str(COLS), LINES=str(ROWS))
        self.screen = pyte.Screen(COLS, ROWS)
        self._stream = pyte.Stream(self.screen)
        self.child = pexpect.spawn(EXE, args, env=env, encoding="utf-8", dimensions=(ROWS, COLS), timeout=WAIT)
        self.child.logfile_read = self

    def write(self, data: str) -> None:  # pexpect's logfile: every byte read, in order
        self._stream.feed(data)

    def flush(self) -> None:
        pass

    def rows(self) -> list[str]:
        return [row.rstrip() for row in self.screen.display if row.strip()]

    def finish(self) -> list[str]:
        self.child.expect(pexpect.EOF)
        self.child.close()
        return self.rows()


def chat(tmp_path: Path, url: str) -> Screen:
    """The REPL on a screen, at its first prompt."""
    term = Screen(tmp_path, url, ["chat"])
    term.child.expect("v4 ›")
    return term


def test_ask_tools_without_yes_keeps_the_not_run_line_on_screen(
    tmp_path: Path, server: LoopbackServer, fake: FakeDeepSeek
) -> None:
    rows = Screen(tmp_path, server.url, ["ask", "-T", "add 2 and 3"]).finish()
    text = "\n".join(rows)
    assert not any("Thinking…" in r for r in rows), text  # no stray frame of the live region
    # One line says what happened and how to allow it; not a second one above it
    assert [r for r in rows if "not run" in r] == [
        '⚙ calc.add {"a": 2, "b": 3}: not run (no approval here: list add in [mcp.calc] trust, or pass --yes to ask or compare)'], text
    assert any("deepseek-v4-flash answer" in r for r in rows), text


def test_a_server_that_does_not_start_is_told_on_its_own_line(
    tmp_path: Path, server: LoopbackServer, fake: FakeDeepSeek
) -> None:
    broken = '[mcp.calc]\ncommand = ["/nonexistent/modelswitch-test-server"]\n'
    rows = Screen(tmp_path, server.url, ["ask", "-T", "add 2 and 3"], mcp=broken).finish()
    text = "\n".join(rows)
    line = next((r for r in rows if "did not start" in r), "")
    assert line.startswith("MCP server 'calc' did not start"), text
    assert "…" not in line, text  # not written into the spinner's line
    assert any("deepseek-v4-flash answer" in r for r in rows), text


def test_compare_tells_a_server_that_does_not_start_above_its_columns(
    tmp_path: Path, server: LoopbackServer, fake: FakeDeepSeek
) -> None:
    broken = '[mcp.calc]\ncommand = ["/nonexistent/modelswitch-test-server"]\n'
    rows = Screen(tmp_path, server.url, ["compare", "-T", "-m", "v4", "-m", "v4", "add 2 and 3"], mcp=broken).finish()
    text = "\n".join(rows)
    assert any(r.startswith("MCP server 'calc' did not start") for r in rows), text


def test_a_running_tool_is_shown_live_and_becomes_its_finished_line(
    tmp_path: Path, server: LoopbackServer, fake: FakeDeepSeek
) -> None:
    term = chat(tmp_path, server.url)
    child = term.child
    child.send("/tools\r")  # starts the server: its tools can be named
    child.expect("v4 ›")
    for tool in ("add", "shout"):  # the fake's model calls the first tool offered: slow
        child.send(f"/tools off {tool}\r")
        child.expect("v4 ›")
    child.send("wait\r")
    child.expect("run it\\?")
    child.send("y\r")
    # What comes first after the approval: the live line while it runs, or (bug) only its end.
    first = child.expect([r"running… \d+ s \(Ctrl-C cancels\)", r": ran \("])
    assert first == 0, "\n".join(term.rows())
    assert any('⚙ calc.slow {"seconds": 4}: running…' in r for r in term.rows()), "\n".join(term.rows())
    child.expect(r": ran \(")
    child.expect("v4 ›")
    rows = term.rows()
    text = "\n".join(rows)
    assert not any("running" in r for r in rows), text  # the live line became the finished one
    assert sum('⚙ calc.slow {"seconds": 4}: ran (' in r for r in rows) == 1, text
    assert any("deepseek-v4-flash answer" in r for r in rows), text
    child.send("/exit\r")
    term.finish()


def test_compare_columns_keep_the_tool_line_before_the_answer_it_led_to(
    tmp_path: Path, server: LoopbackServer, fake: FakeDeepSeek
) -> None:
    rows = Screen(tmp_path, server.url, ["compare", "-T", "--yes", "-m", "v4", "-m", "v4", "add 2 and 3"]).finish()
    text = "\n".join(rows)
    tool = next(i for i, r in enumerate(rows) if "calc.add" in r and ": ran" in r)
    answer = next(i for i, r in enumerate(rows) if "deepseek-v4-flash answer" in r)
    assert tool < answer, text  # the call ran first, the answer came from its result


def test_compare_tools_in_a_terminal_asks_nothing_as_the_readme_says(
    tmp_path: Path, server: LoopbackServer, fake: FakeDeepSeek
) -> None:
    readme = " ".join((Path(__file__).parents[1] / "README.md").read_text("utf-8").split())
    assert "`compare -T` is a one-shot command too and follows the same rules as `ask -T`" in readme
    assert "`/compare` (and `compare -T`) runs the same loop" not in readme
    term = Screen(tmp_path, server.url, ["compare", "-T", "-m", "v4", "-m", "v4", "add 2 and 3"])
    seen = term.child.expect([r"run it\?", pexpect.EOF])
    assert seen == 1, "\n".join(term.rows())  # a terminal, and still no question
    rows = term.rows()
    assert any("calc.add" in r and "not run (no approval here" in r for r in rows), "\n".join(rows)  # in its lane
    assert not any("not run: calc.add" in r for r in rows), "\n".join(rows)  # not said twice, above the columns


def test_a_tool_answer_folds_every_rounds_reasoning_and_has_a_speed(
    tmp_path: Path, server: LoopbackServer, fake: FakeDeepSeek
) -> None:
    term = chat(tmp_path, server.url)
    child = term.child
    child.send("add 2 and 3\r")
    child.expect("run it\\?")
    child.send("y\r")
    child.expect(r": ran \(")
    child.expect("v4 ›")
    rows = term.rows()
    text = "\n".join(rows)
    assert not any("Thinking…" in r or "reasons" in r for r in rows), text  # the first round folded too
    assert sum(r.startswith("Thought for") for r in rows) == 2, text
    assert any("deepseek-v4-flash answer" in r for r in rows), text
    footer = next(r for r in rows if r.startswith("v4 · "))
    assert "tok/s" in footer, text
    child.send("/exit\r")
    term.finish()


def test_ask_tools_json_has_every_rounds_reasoning_and_a_speed(
    tmp_path: Path, server: LoopbackServer, fake: FakeDeepSeek
) -> None:
    import json
    import subprocess

    cfg = write_config(tmp_path, server.url, calc_table())
    env = command_env(cfg, tmp_path, DS_KEY="sk-ds-test")
    out = subprocess.run([EXE, "ask", "-T", "--yes", "--json", "add 2 and 3"], env=env, capture_output=True,
                         text=True, timeout=WAIT, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr
    obj = json.loads(out.stdout)
    first, last = obj["reasoning"].split("\n\n")  # both rounds', a blank line between
    assert first.startswith("deepseek-v4-flash reasons") and last.startswith("deepseek-v4-flash reasons")
    assert first != last
    assert obj["timing"]["tokens_per_s"] is not None and obj["timing"]["tokens_per_s"] > 0
    assert obj["tool_calls"][0]["result"] == "5"
