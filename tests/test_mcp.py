"""The MCP client against a real MCP server process over stdio (tests/mcp_servers/calc.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from modelswitch.config.load import McpServerSpec
from modelswitch.engine.mcpclient import CANCELLED, McpToolbox
from modelswitch.events import ToolCall

CALC = [sys.executable, str(Path(__file__).parent / "mcp_servers" / "calc.py")]
# No timed assertions: the limits are only there so a hang fails instead of blocking the suite.
START = 300.0
CALL = 120.0


@pytest.fixture
def warnings() -> list[str]:
    return []


@pytest.fixture
def box(warnings: list[str]):
    spec = McpServerSpec("calc", command=tuple(CALC), env=(("CALC_SUFFIX", "!"),), trust=("add",))
    toolbox = McpToolbox((spec,), warn=warnings.append, start_timeout=START)
    yield toolbox
    toolbox.close()


def test_tools_are_listed_and_called_over_stdio(box: McpToolbox, warnings: list[str]) -> None:
    specs = {s.name: s for s in box.specs()}
    assert {"add", "shout", "slow", "big", "die", "fail"} <= set(specs)
    assert json.loads(specs["add"].parameters)["properties"].keys() == {"a", "b"}
    assert box.server_of("add") == "calc" and box.trusted("add") and not box.trusted("shout")
    result = box.call(ToolCall("c1", "add", '{"a": 2, "b": 40}'), CALL)
    assert (result.content, result.is_error, result.server) == ("42", False, "calc")
    # env from the config reaches the server
    assert box.call(ToolCall("c2", "shout", '{"text": "hi"}'), CALL).content == "HI!"
    assert not warnings


def test_tool_errors_timeouts_and_bad_arguments_are_results_not_crashes(box: McpToolbox) -> None:
    box.specs()
    failed = box.call(ToolCall("c1", "fail", "{}"), CALL)
    assert failed.is_error and "fail" in failed.content
    late = box.call(ToolCall("c2", "slow", '{"seconds": 5}'), 0.5)
    assert late.is_error and "did not answer within 0.5 s" in late.content
    bad = box.call(ToolCall("c3", "add", "not json"), CALL)
    assert bad.is_error and "not valid JSON" in bad.content
    assert box.call(ToolCall("c4", "add", '{"a": 1, "b": 1}'), CALL).content == "2"  # still serving


def test_parallel_calls_run_concurrently_and_cancel_stops_them(box: McpToolbox) -> None:
    box.specs()
    out: list = []
    threads = [threading.Thread(target=lambda: out.append(box.call(ToolCall("s", "slow", '{"seconds": 30}'), 60)))
               for _ in range(2)]
    for t in threads:
        t.start()
    while len(box._inflight) < 2:  # both are in flight at once
        threading.Event().wait(0.02)
    box.cancel()
    for t in threads:
        t.join(20)
    assert [r.content for r in out] == [CANCELLED, CANCELLED]


def test_a_server_that_dies_is_one_line_and_the_rest_goes_on(box: McpToolbox, warnings: list[str]) -> None:
    box.specs()
    result = box.call(ToolCall("d", "die", "{}"), CALL)
    assert result.is_error and "calc" in result.content
    assert len(warnings) == 1 and "stopped" in warnings[0] and "\n" not in warnings[0]
    assert box.specs() == () and box.server_of("add") is None


def test_a_server_that_cannot_start_is_one_line(warnings: list[str]) -> None:
    bad = McpToolbox((McpServerSpec("broken", command=(*CALC, "--crash")),
                      McpServerSpec("missing", command=("/nonexistent/mcp-server",))), warn=warnings.append, start_timeout=START)
    try:
        assert bad.specs() == ()
    finally:
        bad.close()
    assert len(warnings) == 2 and all("\n" not in w for w in warnings)
    assert "broken" in warnings[0] and "--crash given" in warnings[0]
    assert "missing" in warnings[1]
    assert [s.state for s in bad.status()] == ["failed", "failed"]


def test_tools_and_servers_can_be_turned_off_and_on(box: McpToolbox) -> None:
    box.specs()
    assert box.set_enabled("shout", False) == "tool calc.shout: off"
    assert "shout" not in {s.name for s in box.specs()} and box.server_of("shout") is None
    box.set_enabled("shout", True)
    assert "shout" in {s.name for s in box.specs()}
    assert box.set_enabled("calc", False) == "server calc: off"
    assert box.specs() == ()
    assert box.set_enabled("calc", True) == "server calc: ready"
    assert box.call(ToolCall("c", "add", '{"a": 1, "b": 2}'), CALL).content == "3"
    with pytest.raises(KeyError):
        box.set_enabled("nothing", True)


def test_disabled_servers_do_not_start(warnings: list[str]) -> None:
    off = McpToolbox((McpServerSpec("calc", command=tuple(CALC), enabled=False),), warn=warnings.append, start_timeout=START)
    assert off.specs() == () and off._loop is None  # no event loop, no process, no mcp import
    off.close()


def test_nothing_imports_mcp_until_a_server_starts() -> None:
    code = ("import sys; import modelswitch.engine.mcpclient, modelswitch.engine.tools, modelswitch.cli.main; "
            "print('mcp' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_streamable_http_server_is_reached_by_url(warnings: list[str]) -> None:
    import socket
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([*CALC, "--http", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(3000):  # until it listens (a hang guard, not a timing assertion)
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        spec = McpServerSpec("web", url=f"http://127.0.0.1:{port}/mcp", headers=(("X-Test", "1"),))
        box = McpToolbox((spec,), warn=warnings.append, start_timeout=START)
        try:
            assert "add" in {t.name for t in box.specs()}, warnings
            assert box.call(ToolCall("h", "add", '{"a": 20, "b": 22}'), CALL).content == "42"
        finally:
            box.close()
    finally:
        proc.terminate()
        proc.wait(30)
    assert not warnings


def calc_children() -> list[str]:
    """The calc.py server processes this test process started (and has not reaped)."""
    import os

    found = []
    for pid in os.listdir("/proc"):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if stat.split(") ")[-1].split()[1] == str(os.getpid()) and b"calc.py" in cmd:
            found.append(pid)
    return found


def test_closing_ends_the_server_processes(warnings: list[str]) -> None:
    box = McpToolbox((McpServerSpec("calc", command=tuple(CALC)),), warn=warnings.append, start_timeout=START)
    box.specs()
    assert len(calc_children()) == 1
    box.close()
    assert calc_children() == []


def test_two_threads_asking_for_tools_at_once_start_the_server_once(warnings: list[str]) -> None:
    """/compare lanes and a hedged answer ask for the tools from several threads at once: the
    server must start once, and every thread must see its tools (not a half-started session)."""
    box = McpToolbox((McpServerSpec("calc", command=tuple(CALC)),), warn=warnings.append, start_timeout=START)
    barrier = threading.Barrier(3)
    seen: list[tuple[str, ...]] = []

    def ask() -> None:
        barrier.wait()
        seen.append(tuple(t.name for t in box.specs()))

    threads = [threading.Thread(target=ask) for _ in range(3)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(START)
        assert len(seen) == 3 and all("add" in names for names in seen), seen
        assert warnings == []
        assert len(calc_children()) == 1  # not one per thread, the others orphaned
        assert not box.call(ToolCall("c1", "add", json.dumps({"a": 1, "b": 2})), CALL).is_error
    finally:
        box.close()


def test_a_dead_server_turned_on_again_is_a_fresh_process(box: McpToolbox, warnings: list[str]) -> None:
    box.specs()
    box.call(ToolCall("d", "die", "{}"), CALL)
    assert "/tools on calc restarts it" in warnings[0]
    assert box.set_enabled("calc", True) == "server calc: ready"
    assert box.call(ToolCall("c", "add", '{"a": 20, "b": 22}'), CALL).content == "42"
    # off then on after a death restarts it too, and the old process's end reports nothing new
    box.call(ToolCall("d2", "die", "{}"), CALL)
    box.set_enabled("calc", False)
    assert box.set_enabled("calc", True) == "server calc: ready"
    assert box.call(ToolCall("c2", "add", '{"a": 1, "b": 1}'), CALL).content == "2"
    assert len(warnings) == 2


def test_a_tool_is_found_by_name_before_any_server_started(box: McpToolbox) -> None:
    assert box.set_enabled("add", False) == "tool calc.add: off"  # the first thing a chat does
    assert box.server_of("add") is None


@pytest.mark.parametrize("name", ["calc.shout", "calc/shout", "shout"])
def test_a_tool_is_named_server_dot_tool_server_slash_tool_or_bare(box: McpToolbox, name: str) -> None:
    assert box.set_enabled(name, False) == "tool calc.shout: off"
    assert "shout" not in {s.name for s in box.specs()}
    assert box.set_enabled(name, True) == "tool calc.shout: on"
    with pytest.raises(KeyError):
        box.set_enabled("calc.nothing", False)
    assert "calc.shout" in box.names() and "servers: calc" in box.names()


def test_all_tools_off_and_back_on_for_the_session(box: McpToolbox) -> None:
    box.set_enabled("shout", False)
    box.set_all(False)
    assert box.specs() == () and box.server_of("add") is None
    assert box.set_all(True).startswith("tools on: ")
    names = {s.name for s in box.specs()}
    assert "add" in names and "shout" in names  # every tool, as /help says: the one turned off too
