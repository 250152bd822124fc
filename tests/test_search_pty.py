"""Search in the REPL, in a real pseudo-terminal: /search, "searching: …", the sources list with
OSC 8 links, and the request the provider receives."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tests.loopback import LoopbackServer, command_env
from tests.search_fakes import QUERY, SOURCES, FakeAnthropicSearch

pexpect = pytest.importorskip("pexpect")
EXE = shutil.which("modelswitch", path=str(Path(sys.executable).parent))
pytestmark = [
    pytest.mark.pty,
    pytest.mark.skipif(EXE is None, reason="the modelswitch console script is not installed"),
]


@pytest.fixture
def env(tmp_path: Path, server: LoopbackServer) -> dict[str, str]:
    cfg = tmp_path / "config.toml"
    cfg.write_text(f"""
default = "claude"
[providers.anth]
type = "anthropic"
base_url = "{server.url}"
api_key_env = "ANTH_KEY"
retries = 0
[providers.anth.models.claude]
id = "claude-sonnet-4-5"
max_tokens = 1000
[providers.plain]
base_url = "{server.url}/plain/v1"
retries = 0
[providers.plain.models.tiny]
id = "tiny"
""")
    return command_env(cfg, tmp_path, ANTH_KEY="sk-ant-test", COLUMNS="120", LINES="40")


def test_search_in_the_repl_shows_queries_and_linked_sources(env: dict[str, str], server: LoopbackServer) -> None:
    fake = FakeAnthropicSearch()
    server.default = fake
    child = pexpect.spawn(EXE, ["chat"], env=env, encoding="utf-8", dimensions=(40, 120), timeout=20)
    child.expect("claude ›")
    child.send("/search on\r")
    child.expect("web search on")
    child.expect("claude ›")
    child.send("tell me about pelicans\r")
    child.expect(f"searching: {QUERY}")
    child.expect(r"coasts \[2\]\[1\]\.")
    child.expect("Sources")
    # The title is an OSC 8 hyperlink to the page; the URL is printed too, for terminals without links.
    child.expect(r"\[1\] ")
    child.expect(f"\x1b]8;[^\x1b]*;{SOURCES[0][1]}\x1b\\\\")
    child.expect(SOURCES[0][0])
    child.expect(SOURCES[1][1])
    child.expect("claude ·")  # the footer comes after the sources
    child.expect("claude ›")
    child.send("/model tiny\r")
    child.expect("tiny cannot search the web here; models that can: claude")
    child.expect("tiny ›")
    child.send("/exit\r")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert fake.rejected == []
    assert fake.accepted[0]["tools"][0]["name"] == "web_search"
