"""Search in the REPL for models without the usual kind, in a real pseudo-terminal: the offer of
the MCP search tool (asked once, its calls still approved), and Kimi's `$web_search` round shown
as "searching…" and not sent to the next vendor after /model."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tests.loopback import LoopbackServer, command_env
from tests.search_fakes import FakeChatSearch, FakeKimiSearch
from tests.test_search_kimi import kimi_config
from tests.test_search_mcp import search_config
from tests.validators import FakeDeepSeek

pexpect = pytest.importorskip("pexpect")
EXE = shutil.which("modelswitch", path=str(Path(sys.executable).parent))
pytestmark = [
    pytest.mark.pty,
    pytest.mark.skipif(EXE is None, reason="the modelswitch console script is not installed"),
]
# A hang guard, not a timing assertion: an MCP server start can be slow on a loaded machine.
WAIT = 240


def spawn(tmp_path: Path, cfg: Path, **env: str):  # noqa: ANN201
    child = pexpect.spawn(EXE, ["chat"], env=command_env(cfg, tmp_path, COLUMNS="120", LINES="40", **env),
                          encoding="utf-8", dimensions=(40, 120), timeout=WAIT)
    return child


def test_search_on_offers_the_mcp_search_tool_once(tmp_path: Path, server: LoopbackServer) -> None:
    fake = FakeDeepSeek(args_by_tool={"web_search": {"query": "pelicans"}})
    server.default = fake
    cfg = search_config(tmp_path, server.url, 'search = "web_search"\nenabled = false')
    child = spawn(tmp_path, cfg, DS_KEY="sk-ds-test")
    child.expect("v4 ›")
    child.send("/search on\r")
    child.expect(r"v4 cannot search the web itself; use the MCP tool web.web_search instead\? \[y/N\]")
    assert "cannot search the web here" not in child.before  # said once, as the question
    child.send("y\r")
    child.expect("v4 is offered web.web_search to search the web; each call asks y/n/a unless trusted")
    child.expect("v4 ›")
    child.send("pelicans?\r")
    # The call still asks: taking the tool for search did not trust it.
    child.expect(r"web\.web_search \{\"query\": \"pelicans\"\}")
    child.expect(r"run it\? \[y\]es / \[N\]o / \[a\]lways this tool \(Enter = no\): ")
    child.send("y\r")
    child.expect(r"web\.web_search .*: ran")
    child.expect("deepseek-v4-flash answer")
    child.expect("v4 ›")
    child.send("/search off\r")
    child.expect(r"web search off; the MCP tool web.web_search is no longer offered \(/search on offers it again\)")
    child.expect("v4 ›")
    child.send("/search on\r")  # asked once a session: the yes holds, now only said
    child.expect(r"web search on \(v4 cannot search itself: it is offered the MCP tool web.web_search again\)")
    child.expect("v4 ›")
    child.send("/exit\r")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert fake.rejected == []
    assert "Pelicans are a genus" in fake.accepted[1]["messages"][-1]["content"]  # the MCP tool's result


def test_kimi_search_in_the_repl_then_another_vendor(tmp_path: Path, server: LoopbackServer) -> None:
    kimi, other = FakeKimiSearch(), FakeChatSearch(vendor="qwen")
    server.default = lambda rec: kimi(rec) if rec.path.startswith("/kimi/") else other(rec)
    cfg = tmp_path / "kimi.toml"
    cfg.write_text(kimi_config(server.url), "utf-8")
    child = spawn(tmp_path, cfg, KIMI_KEY="sk-kimi", RELAY_KEY="sk-test")
    child.expect("kimi ›")
    child.send("/search on\r")
    child.expect("web search on")
    child.expect("kimi ›")
    child.send("tell me about pelicans\r")
    child.expect("searching…")
    # Said above the answer, as every notice is while an answer is drawn live.
    child.expect(r"Kimi searched the web \(\$web_search; its results took 3,869 input tokens\)")
    child.expect("brown pelican lives on coasts")
    child.expect("kimi ›")
    child.send("/model qwen\r")
    child.expect("kimi ›|qwen ›")
    child.send("and their wingspan?\r")
    child.expect(r"lives on coasts \[2\]")  # Qwen searches too: /search on holds across /model
    child.expect("qwen ›")
    child.send("/exit\r")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert kimi.rejected == [] and other.rejected == []
    assert [m["role"] for m in other.accepted[0]["messages"]] == ["user", "assistant", "user"]


def test_tools_suggests_naming_a_search_tool_in_the_config(tmp_path: Path, server: LoopbackServer) -> None:
    server.default = FakeDeepSeek()
    child = spawn(tmp_path, search_config(tmp_path, server.url, search=""), DS_KEY="sk-ds-test")
    child.expect("v4 ›")
    child.send("/search on\r")  # nothing named in the config: no question, only the line
    child.expect("v4 cannot search the web here")
    child.expect("v4 ›")
    child.send("/tools\r")
    child.expect(r"web \(ready\)")
    child.expect(r'web_search \(a web search\? search = "web_search" in \[mcp\.web\] offers it to models that cannot\)')
    child.expect("v4 ›")
    child.send("/exit\r")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
