"""A model that cannot search, with an MCP server the config names as a web search: `ask` says how
to use it, `ask --search -T --yes` does, through a real MCP server process (the REPL's offer is in
test_search_mcp_pty.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelswitch import errors
from modelswitch.cli.main import app
from modelswitch.config import load as config
from modelswitch.engine.catalog import mcp_search_tool
from tests.loopback import LoopbackServer
from tests.test_tools_cli import write_config
from tests.validators import FakeDeepSeek

WEBSEARCH = Path(__file__).parent / "mcp_servers" / "websearch.py"


def websearch_table(extra: str = 'search = "web_search"') -> str:
    return f"""
[mcp.web]
command = [{json.dumps(sys.executable)}, {json.dumps(str(WEBSEARCH))}]
{extra}
"""


def search_config(tmp_path: Path, url: str, search: str = 'search = "web_search"') -> Path:
    return write_config(tmp_path, url, websearch_table(search))


@pytest.fixture
def fake(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> FakeDeepSeek:
    monkeypatch.setenv("DS_KEY", "sk-ds-test")
    api = FakeDeepSeek(args_by_tool={"web_search": {"query": "pelicans"}})
    server.default = api
    return api


def ask(args: list[str], cfg: Path):  # noqa: ANN201
    return CliRunner().invoke(app, ["--config", str(cfg), "ask", *args], catch_exceptions=False)


def test_config_names_the_mcp_search_tool(tmp_path: Path) -> None:
    cfg = config.load(search_config(tmp_path, "http://127.0.0.1:9"))
    assert mcp_search_tool(cfg) == ("web", "web_search")
    assert mcp_search_tool(config.load(search_config(tmp_path, "http://127.0.0.1:9", search=""))) is None
    with pytest.raises(errors.ConfigError, match=r"mcp\.web\.search"):
        config.load(search_config(tmp_path, "http://127.0.0.1:9", search='search = " "'))


def test_ask_search_without_a_terminal_says_how_to_use_the_mcp_tool(tmp_path: Path, server: LoopbackServer,
                                                                    fake: FakeDeepSeek) -> None:
    result = ask(["--search", "pelicans?"], search_config(tmp_path, server.url))
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert lines[0].startswith("v4 cannot search the web here;")
    assert lines[1] == ('the MCP tool web.web_search can search instead: ask --search -T --yes, or list '
                        '"web_search" in [mcp.web] trust and pass -T')
    assert "tools" not in fake.accepted[0]  # nothing offered without -T: the question is answered as is


def test_ask_search_with_tools_and_yes_searches_through_the_mcp_server(tmp_path: Path, server: LoopbackServer,
                                                                       fake: FakeDeepSeek) -> None:
    result = ask(["--search", "-T", "--yes", "--json", "pelicans?"], search_config(tmp_path, server.url))
    assert result.exit_code == 0, result.output
    assert "can search instead" not in result.stderr  # -T given: the tool is offered already
    assert [t["function"]["name"] for t in fake.accepted[0]["tools"]] == ["web_search"]
    tool_message = fake.accepted[1]["messages"][-1]
    assert tool_message["role"] == "tool"
    found = json.loads(tool_message["content"])
    assert found["query"] == "pelicans" and found["results"][0]["url"] == "https://en.wikipedia.org/wiki/Pelican"


def _repl(tmp_path: Path, extra: str = 'search = "web_search"', *, interactive: bool):  # noqa: ANN202
    from modelswitch.engine.mcpclient import McpToolbox
    from modelswitch.engine.session import ChatSession
    from modelswitch.repl import builtins  # noqa: F401 - registers the commands
    from modelswitch.repl.loop import Repl

    cfg = config.load(search_config(tmp_path, "http://127.0.0.1:9", extra))
    session = ChatSession(cfg, cfg.resolve("v4"))
    session.toolbox = McpToolbox(cfg.mcp, cfg.tools)
    said: list[str] = []
    repl = Repl(session, color=False, interactive=interactive)
    repl.say = lambda text, style=None: said.append(text)  # type: ignore[method-assign]
    return repl, said


def _offered(repl) -> list[str]:  # noqa: ANN001
    return [t.name for t in repl.session.toolbox.specs()]


def test_piped_repl_is_not_asked_and_the_toolbar_names_a_taken_tool(tmp_path: Path) -> None:
    from modelswitch.repl.commands import dispatch

    repl, said = _repl(tmp_path, interactive=False)
    dispatch(repl, "/search on")
    # Said once, as the question (not "cannot search the web here" first, then again)
    assert said[0] == ("v4 cannot search the web itself; use the MCP tool web.web_search instead?"
                       " — not asked in a piped chat: no")
    assert said[1:] == ["not taken; search stays on (v4 cannot search; /search off turns it off)"]
    assert repl.session.search_offered and not repl.session.search_tool
    assert "search: this model cannot" in repl.toolbar(200)

    # A user at a terminal says yes: the real offer turns the MCP server's tool on.
    repl, said = _repl(tmp_path, 'search = "web_search"\nenabled = false', interactive=True)
    repl.confirm = lambda question: True  # type: ignore[method-assign]
    try:
        dispatch(repl, "/search on")
        assert said[-1] == "v4 is offered web.web_search to search the web; each call asks y/n/a unless trusted"
        assert _offered(repl) == ["web_search"]
        assert "search via web.web_search" in repl.toolbar(200)
    finally:
        repl.session.toolbox.close()


def test_the_search_stand_in_follows_the_toolbox_and_search_off_withdraws_it(tmp_path: Path) -> None:
    from modelswitch.repl.commands import dispatch

    repl, said = _repl(tmp_path, 'search = "web_search"\nenabled = false', interactive=True)
    asked: list[str] = []
    repl.confirm = lambda question: asked.append(question) or True  # type: ignore[method-assign]
    try:
        dispatch(repl, "/search on")
        assert _offered(repl) == ["web_search"] and len(asked) == 1
        dispatch(repl, "/tools off web")  # the user stops the server: nothing stands in any more
        assert _offered(repl) == [] and "search: this model cannot" in repl.toolbar(200)
        dispatch(repl, "/search off")
        assert said[-1] == "web search off"
        dispatch(repl, "/search on")  # the earlier yes holds: offered again, not asked twice
        assert len(asked) == 1
        assert said[-1] == "web search on (v4 cannot search itself: it is offered the MCP tool web.web_search again)"
        assert _offered(repl) == ["web_search"] and "search via web.web_search" in repl.toolbar(200)
        dispatch(repl, "/search off")  # what the yes turned on goes off with search
        assert said[-1] == "web search off; the MCP tool web.web_search is no longer offered (/search on offers it again)"
        assert _offered(repl) == [] and "search on" not in repl.toolbar()
    finally:
        repl.session.toolbox.close()


def test_with_every_tool_off_the_search_stand_in_is_not_said_to_be_offered(tmp_path: Path) -> None:
    from modelswitch.repl.commands import dispatch

    repl, said = _repl(tmp_path, 'search = "web_search"', interactive=True)
    repl.confirm = lambda question: True  # type: ignore[method-assign]
    try:
        dispatch(repl, "/tools off")
        dispatch(repl, "/search on")
        assert _offered(repl) == []
        assert not any("is offered web.web_search" in line for line in said), said
        assert any("/tools on first" in line for line in said), said
    finally:
        repl.session.toolbox.close()


def test_ctrl_c_at_the_search_offer_says_search_stays_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import prompt_toolkit

    from modelswitch.repl.commands import dispatch

    def interrupted(*args: object, **kwargs: object) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(prompt_toolkit, "prompt", interrupted)
    repl, said = _repl(tmp_path, interactive=True)
    try:
        dispatch(repl, "/search on")
        assert said == ["not taken; search stays on (v4 cannot search; /search off turns it off)"]
        assert repl.session.searching and not repl.session.search_tool
    finally:
        repl.session.toolbox.close()


def test_search_on_without_a_stand_in_says_search_is_on_and_how_to_name_one(tmp_path: Path) -> None:
    from modelswitch.repl.commands import dispatch

    repl, said = _repl(tmp_path, "", interactive=False)
    try:
        dispatch(repl, "/search on")
        [line] = said
        first, second = line.split("\n")
        assert first.startswith("v4 cannot search the web here; models that can: ")
        assert second == ('search is on: it applies when you switch to a model that can; '
                          'or name an MCP tool to search for it: [mcp.NAME] search = "TOOL"')
    finally:
        repl.session.toolbox.close()
