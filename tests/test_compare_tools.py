"""/compare with tools: every lane runs the tool loop of a normal answer, against validating fakes.

The engine (two lanes both calling, Ctrl-C during one lane's call), the REPL's approval (`a`
holds for every lane, /keep carries the rounds), `compare -T`, a piped chat, and a real terminal.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelswitch.cli.main import app
from modelswitch.conversation import CALL_NOT_STARTED, Conversation, Message, ToolResult
from modelswitch.engine.compare import run_models
from modelswitch.engine.session import ChatSession
from modelswitch.engine.tools import CANCELLED
from modelswitch.events import Citation, ToolActivity, ToolCall
from tests.loopback import LoopbackServer, command_env
from tests.test_tool_loop import Box, world  # noqa: F401 - world: the fixture of four validating APIs
from tests.test_tools_cli import calc_table
from tests.validators import FakeDeepSeek, router

EXE = shutil.which("modelswitch", path=str(Path(sys.executable).parent))
WAIT = 240  # a hang guard, not a timing assertion: an MCP server start can be slow on a loaded machine


class Lanes:
    """A CompareView that records what each lane sent, and can press Ctrl-C at a chosen moment."""

    def __init__(self, n: int, ctrl_c_when_one_done_and_one_running: bool = False) -> None:
        self.texts: list[list[str]] = [[] for _ in range(n)]
        self.tools: list[list[ToolActivity]] = [[] for _ in range(n)]
        self.finished: dict[int, Message] = {}
        self.running: set[int] = set()
        self.press = ctrl_c_when_one_done_and_one_running
        self.pressed = False

    def start(self) -> None:
        pass

    def text(self, i: int, text: str) -> None:
        self.texts[i].append(text)

    def reasoning(self, i: int, text: str) -> None:
        pass

    def notice(self, i: int, text: str) -> None:
        pass

    def tool(self, i: int, event: ToolActivity) -> None:
        self.tools[i].append(event)
        (self.running.add if event.state == "running" else self.running.discard)(i)
        self._maybe_press()

    def citation(self, i: int, citation: Citation) -> None:
        pass

    def search(self, i: int, query: str) -> None:
        pass

    def finish(self, i: int, message: Message, cost: object, error: str | None) -> None:
        self.finished[i] = message
        self._maybe_press()

    def _maybe_press(self) -> None:
        if self.press and not self.pressed and self.running - set(self.finished) and self.finished:
            self.pressed = True
            raise KeyboardInterrupt  # on the main thread, where the user's Ctrl-C arrives

    def abort(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_two_lanes_both_call_a_tool_each_approved_once_on_the_main_thread(world) -> None:  # noqa: F811
    cfg, apis = world
    box = Box()
    asked: list[tuple[int, str, str]] = []

    def approve(i: int, call: ToolCall, server: str) -> bool:
        assert threading.current_thread() is threading.main_thread()  # the thread that owns the terminal
        asked.append((i, call.name, server))
        return True

    view = Lanes(2)
    conv = Conversation().add(Message("user", "add 2 and 3"))
    outcomes, interrupt = run_models(cfg, conv, [cfg.resolve("v4"), cfg.resolve("claude")], view,
                                     toolbox=box, approve=approve)
    assert interrupt is None
    assert sorted(asked) == [(0, "add", "calc"), (1, "add", "calc")]
    assert len(box.ran) == 2 and all(not a.rejected for a in apis), [a.rejected for a in apis]
    for i, o in enumerate(outcomes):
        assert o.error is None and o.message.status == "complete" and o.message.text
        [rnd] = o.message.rounds
        assert [r.content for r in rnd.results] == ["5"] and rnd.results[0].approved is True
        assert [e.state for e in view.tools[i]] == ["running", "done"]
    # Each lane's second request carried its own call and its result.
    assert apis[0].accepted[-1]["messages"][-1]["content"] == "5"
    assert apis[1].accepted[-1]["messages"][-1]["content"][0]["content"] == "5"


def test_without_a_toolbox_no_lane_is_offered_tools(world) -> None:  # noqa: F811
    cfg, apis = world
    conv = Conversation().add(Message("user", "hi"))
    outcomes, _ = run_models(cfg, conv, [cfg.resolve("v4"), cfg.resolve("claude")], Lanes(2))
    assert all(o.message.text and not o.message.rounds for o in outcomes)
    assert "tools" not in apis[0].accepted[-1] and "tools" not in apis[1].accepted[-1]


class OneHangs(Box):
    """The second call to arrive hangs until it is cancelled; the first is answered at once."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.lock = threading.Lock()

    def call(self, call: ToolCall, timeout: float) -> ToolResult:
        with self.lock:
            self.count += 1
            mine = self.count
        if mine == 2:
            self.release.wait(30)
            return ToolResult(call.id, call.name, CANCELLED, is_error=True)
        return super().call(call, timeout)


def test_ctrl_c_during_one_lanes_call_cancels_it_and_keeps_the_finished_lane(world) -> None:  # noqa: F811
    cfg, apis = world
    box = OneHangs()
    view = Lanes(2, ctrl_c_when_one_done_and_one_running=True)
    conv = Conversation().add(Message("user", "add 2 and 3"))
    outcomes, interrupt = run_models(cfg, conv, [cfg.resolve("v4"), cfg.resolve("claude")], view,
                                     toolbox=box, approve=lambda i, call, server: True)
    assert isinstance(interrupt, KeyboardInterrupt) and box.cancelled.is_set()
    # Both lanes end in the view (the cut one with "interrupted" in its footer), only one complete.
    [done] = [o for i, o in enumerate(outcomes) if i in view.finished and o.message.status == "complete"]
    [cut] = [o for o in outcomes if o is not done]
    assert done.message.status == "complete" and done.message.text
    assert [r.content for r in done.message.rounds[0].results] == ["5"]
    # The cancelled lane keeps its round, every call answered: its history stays valid.
    assert cut.message.status == "interrupted" and not cut.message.text
    assert [r.content for r in cut.message.rounds[0].results] == [CANCELLED]
    assert all(not a.rejected for a in apis)


def _terminal_repl(cfg):  # noqa: ANN001, ANN202
    """A REPL at a terminal (its questions go to input()) on v4, with the in-process toolbox."""
    from modelswitch.repl.loop import Repl

    session = ChatSession(cfg, cfg.resolve("v4"))
    session.toolbox = box = Box()
    return Repl(session, color=False, interactive=True), box


def test_repl_compare_always_holds_for_every_lane_and_keep_carries_the_rounds(
    world, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    from modelswitch.repl.compare import run_compare

    cfg, apis = world
    repl, box = _terminal_repl(cfg)
    session = repl.session
    questions: list[str] = []

    def answer(prompt: str = "") -> str:
        questions.append(prompt)
        return "a"

    monkeypatch.setattr("builtins.input", answer)
    run_compare(repl, [cfg.resolve("v4"), cfg.resolve("claude")], "add 2 and 3")
    out = capsys.readouterr().out
    assert len(questions) == 1 and session.always == {"add"}  # one `a` for both lanes
    assert ("[v4] ⚙ calc.add" in out) != ("[claude] ⚙ calc.add" in out)
    assert len(box.ran) == 2
    assert session.held is not None and all(m.rounds for m in session.held[1])

    session.keep("2")  # Claude's answer with its tool round, then DeepSeek goes on from it
    repl.send("and now?")
    assert all(not a.rejected for a in apis), [a.rejected for a in apis]
    sent = apis[0].accepted[-1]["messages"]
    kept_call = next(m for m in sent if m["role"] == "assistant" and m.get("tool_calls"))
    assert kept_call["tool_calls"][0]["function"]["name"] == "add"
    assert sent[sent.index(kept_call) + 1] == {"role": "tool", "tool_call_id": kept_call["tool_calls"][0]["id"],
                                               "content": "5"}
    assert session.conversation.messages[1].rounds and session.conversation.messages[1].model.alias == "claude"


# -- the command line and a piped chat, with a real MCP server process --------------------------


@pytest.fixture
def two(server: LoopbackServer) -> tuple[FakeDeepSeek, FakeDeepSeek]:
    fakes = (FakeDeepSeek(prefix="/a/", tool_args={"a": 2, "b": 3}), FakeDeepSeek(prefix="/b/", tool_args={"a": 2, "b": 3}))
    server.default = router(*fakes)
    return fakes


def two_models(tmp_path: Path, url: str) -> Path:
    p = tmp_path / "ms.toml"
    p.write_text(f"""
default = "a"
[providers.pa]
base_url = "{url}/a/v1"
api_key_env = "DS_KEY"
reasoning_passback = true  # declared: the host is 127.0.0.1, not api.deepseek.com
retries = 0
[providers.pa.models.a]
id = "deepseek-v4-flash"
[providers.pb]
base_url = "{url}/b/v1"
api_key_env = "DS_KEY"
reasoning_passback = true  # declared: the host is 127.0.0.1, not api.deepseek.com
retries = 0
[providers.pb.models.b]
id = "deepseek-chat"
{calc_table()}
""", "utf-8")
    return p


def test_compare_cli_tools_like_ask(tmp_path: Path, server: LoopbackServer, two, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DS_KEY", "sk-ds-test")
    config = str(two_models(tmp_path, server.url))
    run = CliRunner().invoke(app, ["--config", config, "compare", "-T", "--yes", "--json", "-m", "a", "-m", "b", "add"],
                             catch_exceptions=False)
    assert run.exit_code == 0, run.output
    for r in json.loads(run.stdout)["results"]:
        [call] = r["tool_calls"]
        assert (call["name"], call["server"], call["result"], call["approved"]) == ("add", "calc", "5", True)
    # Without --yes (and with stdin piped): nothing runs, each model's call is named on stderr.
    run = CliRunner().invoke(app, ["--config", config, "compare", "-T", "-m", "a", "-m", "b", "add"], input="y\na\n",
                             catch_exceptions=False)
    assert run.exit_code == 0, run.output
    # One line per call, in its lane: what happened and how to allow it, never said twice
    assert run.stderr.count("not run") == 2, run.stderr
    assert run.stderr.count(": not run (no approval here: list add in [mcp.calc] trust, or pass --yes to ask or compare)") == 2, run.stderr
    assert run.stdout.startswith("== a ==\n")
    assert all(not f.rejected for f in two)
    assert all(f.accepted[-1]["messages"][-1]["content"].startswith("not run: tool calls need approval") for f in two)


@pytest.mark.skipif(EXE is None, reason="the modelswitch console script is not installed")
def test_piped_compare_never_approves_a_call(tmp_path: Path, server: LoopbackServer, two) -> None:
    env = command_env(two_models(tmp_path, server.url), tmp_path, DS_KEY="sk-ds-test")
    proc = subprocess.run([EXE, "chat"], input="/compare a b add 2 and 3\ny\n", env=env, capture_output=True,
                          text=True, timeout=WAIT)
    assert proc.returncode == 0, proc.stderr
    # One line per call, in its lane: what happened and how to allow it (no second "not run:" line).
    assert "approved only at a terminal" not in proc.stderr and "not run: calc.add" not in proc.stderr
    assert "== a ==" in proc.stdout and "== b ==" in proc.stdout
    for lane in ("a", "b"):  # each lane's tool line (the piped "y" is a message, so more may follow)
        assert f'{lane}: ⚙ calc.add {{"a": 2, "b": 3}}: not run (no approval here: list add in [mcp.calc] trust, or pass --yes to ask or compare)' in proc.stderr
    tool_results = [m["content"] for f in two for body in f.accepted for m in body["messages"] if m["role"] == "tool"]
    assert tool_results and all(c.startswith("not run: tool calls need approval") for c in tool_results)  # "y" was a message, not a yes


@pytest.mark.pty
@pytest.mark.skipif(EXE is None, reason="the modelswitch console script is not installed")
def test_compare_in_a_terminal_asks_each_lane_in_turn_and_keep_carries_the_call(
    tmp_path: Path, server: LoopbackServer, two
) -> None:
    pexpect = pytest.importorskip("pexpect")
    env = command_env(two_models(tmp_path, server.url), tmp_path, DS_KEY="sk-ds-test", COLUMNS="120", LINES="40")
    child = pexpect.spawn(EXE, ["chat"], env=env, encoding="utf-8", dimensions=(40, 120), timeout=WAIT)
    child.expect("a ›")
    child.send("/compare a b add 2 and 3\r")
    asked = []
    for _ in range(2):  # one question at a time, each naming the model that asked
        child.expect(r"\[(a|b)\] ⚙ calc\.add \{\"a\": 2, \"b\": 3\}")
        asked.append(child.match.group(1))
        child.expect(r"run it\? \[y\]es / \[N\]o / \[a\]lways this tool \(Enter = no\): ")
        child.send("y\r")
    assert sorted(asked) == ["a", "b"]
    child.expect(r"/keep N puts one answer into the conversation: 1 \(a\), 2 \(b\)")
    assert "deepseek-v4-flash answer" in child.before and "deepseek-chat answer" in child.before
    child.send("/keep 2\r")
    child.expect("kept the answer from b")
    child.send("and now?\r")
    child.expect(r"calc\.add")  # a calls again: `y` was for those calls only
    child.expect("run it\\?")
    child.send("n\r")
    child.expect("a ›")

    child.send("/compare a b once more\r")
    child.expect(r"\[(a|b)\] ⚙ calc\.add")
    child.expect("run it\\?")
    child.send("a\r")  # always: the other lane is not asked
    child.expect(r"/keep N puts one answer")
    assert "run it?" not in child.before
    child.expect("a ›")
    child.send("/exit\r")
    child.expect(pexpect.EOF)
    child.close()

    assert not two[0].rejected and not two[1].rejected
    after_keep = next(body for body in two[0].accepted if any(m["content"] == "and now?" for m in body["messages"]
                                                            if m["role"] == "user"))
    msgs = after_keep["messages"]
    kept = next(m for m in msgs if m["role"] == "assistant" and m.get("tool_calls"))
    assert msgs[msgs.index(kept) + 1]["content"] == "5"
    assert isinstance(kept["reasoning_content"], str)  # DeepSeek's rule inside a tool span, for b's round too


def test_ctrl_c_at_a_lanes_approval_cancels_its_call_and_keep_says_what_it_keeps(
    world, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    from modelswitch.repl.commands import dispatch
    from modelswitch.repl.compare import run_compare

    cfg, _ = world
    repl, box = _terminal_repl(cfg)
    session = repl.session
    asked: list[str] = []

    def ctrl_c(prompt: str = "") -> str:
        asked.append(prompt)
        raise KeyboardInterrupt  # the user's Ctrl-C at "run it?"

    monkeypatch.setattr("builtins.input", ctrl_c)
    run_compare(repl, [cfg.resolve("v4"), cfg.resolve("claude")], "add 2 and 3")
    assert len(asked) == 1 and not box.ran
    assert session.held is not None
    stopped = [i for i, m in enumerate(session.held[1], 1) if m.rounds]
    assert stopped  # the lane asked about (and any other that reached its call) kept its round
    for i in stopped:
        results = session.held[1][i - 1].rounds[0].results
        assert [r.content for r in results] == [CALL_NOT_STARTED]  # cancelled before it ran, not "declined"
    capsys.readouterr()
    dispatch(repl, f"/keep {stopped[0]}")
    out = capsys.readouterr().out
    assert "no text, only its tool call (1 cancelled)" in out and "empty" not in out
    assert session.conversation.messages[1].rounds[0].results[0].content == CALL_NOT_STARTED
