"""`ask -T/--tools` with a real MCP server process and a validating DeepSeek fake."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelswitch.cli.main import app
from tests.loopback import LoopbackServer
from tests.validators import FakeDeepSeek

CALC = Path(__file__).parent / "mcp_servers" / "calc.py"


def write_config(tmp_path: Path, url: str, mcp: str) -> Path:
    p = tmp_path / "ms.toml"
    p.write_text(f"""
default = "v4"
[providers.ds]
base_url = "{url}/v1"
api_key_env = "DS_KEY"
retries = 0
[providers.ds.models.v4]
id = "deepseek-v4-flash"
reasoning_passback = true  # DeepSeek's rule, declared: the fake is on 127.0.0.1, not api.deepseek.com
{mcp}
""", "utf-8")
    return p


def calc_table(trust: str = "[]", extra: str = "") -> str:
    return f"""
[mcp.calc]
command = [{json.dumps(sys.executable)}, {json.dumps(str(CALC))}{extra}]
trust = {trust}
"""


@pytest.fixture
def fake(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> FakeDeepSeek:
    monkeypatch.setenv("DS_KEY", "sk-ds-test")
    api = FakeDeepSeek(tool_args={"a": 2, "b": 3})
    server.default = api
    return api


def ask(args: list[str], config: Path, input: str | None = None):  # noqa: A002, ANN201
    return CliRunner().invoke(app, ["--config", str(config), "ask", *args], input=input, catch_exceptions=False)


def test_ask_tools_yes_runs_the_call_and_json_reports_it(tmp_path: Path, server: LoopbackServer, fake: FakeDeepSeek) -> None:
    config = write_config(tmp_path, server.url, calc_table())
    result = ask(["-T", "--yes", "--json", "add 2 and 3"], config)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["content"].startswith("deepseek-v4-flash answer") and len(fake.accepted) == 2
    [call] = out["tool_calls"]
    assert (call["name"], call["server"], call["arguments"], call["result"], call["approved"]) == (
        "add", "calc", {"a": 2, "b": 3}, "5", True)
    assert isinstance(call["duration_s"], float)
    assert not fake.rejected and fake.accepted[-1]["messages"][-1] == {
        "role": "tool", "tool_call_id": fake.accepted[-1]["messages"][-2]["tool_calls"][0]["id"], "content": "5"}


def test_ask_tools_without_yes_runs_only_trusted_tools_and_piped_input_approves_nothing(
    tmp_path: Path, server: LoopbackServer, fake: FakeDeepSeek
) -> None:
    config = write_config(tmp_path, server.url, calc_table())
    result = ask(["-T", "--json", "add"], config, input="y\ny\na\n")
    assert result.exit_code == 0, result.output
    [call] = json.loads(result.stdout)["tool_calls"]
    # Nobody was asked: the model is not told the user declined.
    assert call["approved"] is False and call["is_error"]
    assert call["result"] == "not run: tool calls need approval, and none could be given here"
    # --json draws no tool line: the one stderr line is the tool line's words
    assert result.stderr.count("not run") == 1
    assert ': not run (no approval here: list add in [mcp.calc] trust, or pass --yes to ask or compare)' in result.stderr
    trusted = write_config(tmp_path, server.url, calc_table('["add"]'))
    result = ask(["-T", "--json", "add"], trusted)
    [call] = json.loads(result.stdout)["tool_calls"]
    assert (call["result"], call["approved"]) == ("5", None)
    assert not fake.rejected


def test_ask_tools_without_servers_is_a_one_line_usage_error(tmp_path: Path, server: LoopbackServer, fake: FakeDeepSeek) -> None:
    result = ask(["-T", "hi"], write_config(tmp_path, server.url, ""))
    assert result.exit_code == 2 and "no MCP servers are configured" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not fake.accepted


def test_a_server_that_fails_to_start_is_one_line_and_the_answer_still_comes(
    tmp_path: Path, server: LoopbackServer, fake: FakeDeepSeek
) -> None:
    config = write_config(tmp_path, server.url, calc_table(extra=', "--crash"'))
    result = ask(["-T", "--yes", "hi"], config)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().startswith("deepseek-v4-flash answer") and len(fake.accepted) == 1
    lines = [ln for ln in result.stderr.splitlines() if "calc" in ln]
    assert len(lines) == 1 and "did not start" in lines[0] and "--crash given" in lines[0]
    assert "tools" not in fake.accepted[0]  # nothing to offer


def test_a_session_keeps_calls_results_and_approvals_and_export_shows_them(
    tmp_path: Path, server: LoopbackServer, fake: FakeDeepSeek
) -> None:
    """Saved through the store (a schema step), loaded back into the next request unchanged."""
    config = write_config(tmp_path, server.url, calc_table())
    first = ask(["-T", "--yes", "--session", "calc", "add 2 and 3"], config)
    assert first.exit_code == 0, first.output
    again = ask(["--session", "calc", "thanks"], config)  # no tools this time: history alone
    assert again.exit_code == 0, again.output
    last = fake.accepted[-1]["messages"]
    assert [m["role"] for m in last] == ["user", "assistant", "tool", "assistant", "user"]
    assert last[2]["content"] == "5" and isinstance(last[1]["reasoning_content"], str)
    assert not fake.rejected

    shown = CliRunner().invoke(app, ["--config", str(config), "sessions", "export", "calc", "--format", "json"],
                               catch_exceptions=False)
    doc = json.loads(shown.stdout)
    [rnd] = doc["turns"][1]["tools"]
    assert rnd["calls"][0]["name"] == "add" and rnd["results"][0] == {
        "call_id": rnd["calls"][0]["id"], "name": "add", "content": "5", "is_error": False, "server": "calc",
        "approved": True, "duration_s": rnd["results"][0]["duration_s"]}
    md = CliRunner().invoke(app, ["--config", str(config), "sessions", "show", "calc"], catch_exceptions=False)
    assert '⚙ `calc.add` `{"a": 2, "b": 3}` (ran): 5' in md.stdout


def test_the_reference_mcp_server_time_end_to_end(tmp_path: Path, server: LoopbackServer,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A real third-party server from the registry (mcp-server-time), started by `ask -T`."""
    import shutil

    exe = shutil.which("mcp-server-time", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("mcp-server-time is not installed (it is in the [test] extra)")
    monkeypatch.setenv("DS_KEY", "sk-ds-test")
    api = FakeDeepSeek(args_by_tool={"get_current_time": {"timezone": "UTC"}})
    server.default = api
    config = write_config(tmp_path, server.url, f"""
[mcp.time]
command = [{json.dumps(exe)}, "--local-timezone", "UTC"]
trust = ["get_current_time"]
""")
    result = ask(["-T", "--json", "what time is it in UTC?"], config)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert {t["function"]["name"] for t in api.accepted[0]["tools"]} >= {"get_current_time", "convert_time"}
    [call] = out["tool_calls"]
    assert (call["name"], call["server"], call["approved"], call["is_error"]) == ("get_current_time", "time", None, False)
    assert json.loads(call["result"])["timezone"] == "UTC"
    assert not api.rejected


def test_a_piped_chat_never_approves_a_call(tmp_path: Path, server: LoopbackServer, fake: FakeDeepSeek) -> None:
    """The lines after the question are messages, not answers to an approval prompt."""
    import shutil
    import subprocess

    from tests.loopback import command_env

    exe = shutil.which("modelswitch", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("the modelswitch console script is not installed")
    config = write_config(tmp_path, server.url, calc_table())
    env = command_env(config, tmp_path, DS_KEY="sk-ds-test")
    out = subprocess.run([exe, "chat"], input="add 2 and 3\ny\n", env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr
    # One line per call: the call, that it was not run, and how to allow it (no second "not run:" line).
    assert "not run: calc.add" not in out.stderr + out.stdout
    assert "calc.add" in out.stderr and "not run (no approval here: list add in [mcp.calc] trust, or pass --yes to ask or compare)" in out.stderr
    tool_messages = [m for m in fake.accepted[-1]["messages"] if m["role"] == "tool"]
    assert tool_messages and all(m["content"] == "not run: tool calls need approval, and none could be given here"
                                 for m in tool_messages)
    assert not fake.rejected


def test_a_session_with_tool_rounds_goes_on_with_a_model_that_takes_no_tools(
    tmp_path: Path, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tool answer saved, then `ask --session -m sonar`: Perplexity takes no `tool` messages and
    wants user/assistant alternating; the call and its result reach it as text."""
    from tests.search_fakes import FakeChatSearch
    from tests.validators import router

    monkeypatch.setenv("DS_KEY", "sk-ds-test")
    monkeypatch.setenv("PPLX_KEY", "sk-test")
    ds, pplx = FakeDeepSeek(tool_args={"a": 2, "b": 3}, prefix="/v1/"), FakeChatSearch(vendor="perplexity", prefix="/pplx/")
    server.default = router(ds, pplx)
    config = write_config(tmp_path, server.url, calc_table() + f"""
[providers.perplexity]
base_url = "{server.url}/pplx"
api_key_env = "PPLX_KEY"
search = "perplexity"
retries = 0
[providers.perplexity.models.sonar]
id = "sonar"
search = true
tools = false
""")
    first = ask(["-T", "--yes", "--session", "calc", "add 2 and 3"], config)
    assert first.exit_code == 0, first.output
    again = ask(["--session", "calc", "-m", "sonar", "--json", "what was the sum?"], config)
    assert again.exit_code == 0, again.output
    assert not pplx.rejected and not ds.rejected
    sent = pplx.accepted[-1]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[1]["content"].startswith('[tool call] add {"a": 2, "b": 3} returned:\n5\n\n')
    assert json.loads(again.stdout)["status"] == "complete"


def test_ask_yes_without_tools_says_it_does_nothing_and_still_answers(
    tmp_path: Path, server: LoopbackServer, fake: FakeDeepSeek
) -> None:
    result = ask(["--yes", "hi"], write_config(tmp_path, server.url, calc_table()))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().startswith("deepseek-v4-flash answer")
    assert result.stderr.strip().splitlines() == ["--yes only matters with -T/--tools"]
