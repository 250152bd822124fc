"""/compare shows each searched answer's sources under its own column: numbered per lane, linked
(OSC 8) in a terminal, plain in a pipe, provider text made safe, the same lists as a normal answer."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from modelswitch.conversation import Message
from modelswitch.events import Citation
from modelswitch.ui.compare import CompareView
from tests.loopback import LoopbackServer, Reply
from tests.search_fakes import QUERY, SOURCES, FakeAnthropicSearch
from tests.test_search_pty import env  # noqa: F401 - the fixture: a chat with claude and tiny

EXE = shutil.which("modelswitch", path=str(Path(sys.executable).parent))
WIKI = Citation(SOURCES[0][0], SOURCES[0][1])
AUDUBON = Citation(SOURCES[1][0], SOURCES[1][1])
HOSTILE = Citation("Evil\x1b[2J title", "https://example.com/evil")


def stream(view: CompareView) -> None:
    view.text(0, "Pelicans are large [1], coastal [2].")
    view.citation(0, WIKI)
    view.citation(0, AUDUBON)
    view.citation(0, WIKI)  # cited twice: listed once
    view.text(1, "Another view [1].")
    view.citation(1, HOSTILE)


def finish(view: CompareView) -> None:
    view.finish(0, Message("assistant", "Pelicans are large [1], coastal [2].", citations=(WIKI, AUDUBON)), None, None)
    view.finish(1, Message("assistant", "Another view [1].", citations=(HOSTILE,)), None, None)


def test_plain_compare_lists_each_lanes_sources_numbered_from_one() -> None:
    out = io.StringIO()
    view = CompareView(["claude", "other"], terminal=False, out=out)
    stream(view)
    finish(view)
    view.close()
    assert out.getvalue() == (
        "== claude ==\nPelicans are large [1], coastal [2].\n\n"
        "Sources:\n[1] Pelican - Wikipedia — https://en.wikipedia.org/wiki/Pelican\n"
        "[2] Brown pelican | Audubon — https://www.audubon.org/field-guide/bird/brown-pelican\n\n"
        "== other ==\nAnother view [1].\n\n"
        "Sources:\n[1] Evil␛[2J title — https://example.com/evil\n\n"
    )


def test_terminal_compare_links_the_sources_under_each_column_live_and_final() -> None:
    out = io.StringIO()
    view = CompareView(["claude", "other"], terminal=True, color=False, out=out, width=120)
    view.start()
    stream(view)
    view._live.refresh()  # one live frame, as the refresh thread draws it
    live = _strip_links(out.getvalue())
    assert "Sources" in live and "[2] Brown pelican" in live and "[1] Evil␛[2J title" in live
    streamed = out.tell()
    finish(view)
    view.close()
    final = out.getvalue()[streamed:].rsplit("\x1b[?25h", 1)[-1]  # what stays once the live frame is gone
    for c in (WIKI, AUDUBON, HOSTILE):
        assert "\x1b]8;id=" in final and f";{c.url}\x1b\\" in final  # an OSC 8 link to each page
    assert "\x1b[2J" not in final and "Evil␛[2J title" in final
    # Numbered per lane: the second column's only source is its [1], not a [3].
    plain = _strip_links(final)
    assert "[1] Pelican - Wikipedia" in plain and "[2] Brown pelican | Audubon" in plain
    assert "[1] Evil␛[2J title" in plain and "[3]" not in plain
    assert plain.index("Sources") > plain.index("Pelicans are large")  # under the answer


def _strip_links(text: str) -> str:
    import re

    return re.sub(r"\x1b\]8;[^\x1b]*\x1b\\|\x1b\[[0-9;]*m", "", text)  # links and colours: the screen's text


@pytest.fixture
def lanes(server: LoopbackServer) -> FakeAnthropicSearch:
    """claude searches (Anthropic's web_search); tiny does not."""
    server.default = fake = FakeAnthropicSearch()
    server.add(Reply.say("tiny-did-not-search", path="/plain/"))
    return fake


@pytest.mark.pty
@pytest.mark.skipif(EXE is None, reason="the modelswitch console script is not installed")
def test_compare_in_a_terminal_shows_the_searched_lanes_linked_sources(
    env: dict[str, str], lanes: FakeAnthropicSearch  # noqa: F811
) -> None:
    pexpect = pytest.importorskip("pexpect")
    child = pexpect.spawn(EXE, ["chat"], env=env, encoding="utf-8", dimensions=(40, 120), timeout=20)
    child.expect("claude ›")
    child.send("/search on\r")
    child.expect("claude ›")
    child.send("/compare claude tiny tell me about pelicans\r")
    # The final columns: claude's answer with its sources beside tiny's answer, which has none.
    child.expect(r"claude\s+tiny")
    child.expect("coasts")
    child.expect("Sources")
    child.expect(r"\[1\] ")
    child.expect(f"\x1b]8;[^\x1b]*;{SOURCES[0][1]}\x1b\\\\")
    child.expect(SOURCES[0][0])
    child.expect(SOURCES[1][1])
    child.expect(r"/keep N puts one answer into the conversation: 1 \(claude\), 2 \(tiny\)")
    child.send("/exit\r")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert lanes.rejected == []


@pytest.mark.skipif(EXE is None, reason="the modelswitch console script is not installed")
def test_piped_compare_prints_the_sources_under_the_answer(
    env: dict[str, str], lanes: FakeAnthropicSearch  # noqa: F811
) -> None:
    proc = subprocess.run([EXE, "chat"], input="/search on\n/compare claude tiny tell me about pelicans\n", env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    claude, tiny = proc.stdout.split("== tiny ==")
    assert claude.endswith(
        "the brown pelican lives on coasts [2][1].\n\nSources:\n"
        f"[1] {SOURCES[0][0]} — {SOURCES[0][1]}\n[2] {SOURCES[1][0]} — {SOURCES[1][1]}\n\n")
    assert "Sources" not in tiny and "tiny-did-not-search" in tiny
    assert lanes.rejected == []


@pytest.mark.skipif(EXE is None, reason="the modelswitch console script is not installed")
def test_compare_command_searches_with_search_and_says_which_lane_cannot(
    env: dict[str, str], lanes: FakeAnthropicSearch  # noqa: F811
) -> None:
    proc = subprocess.run([EXE, "compare", "--search", "-m", "claude", "-m", "tiny", "tell me about pelicans"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    claude, tiny = proc.stdout.split("== tiny ==")
    assert "Sources" in claude and SOURCES[0][1] in claude
    assert "tiny-did-not-search" in tiny and "Sources" not in tiny
    assert f"searching: {QUERY}" in proc.stdout + proc.stderr  # the query claude ran, as under an answer
    assert [ln for ln in proc.stderr.splitlines() if "cannot search" in ln][0].startswith("tiny cannot search")
    assert lanes.rejected == []
    # Without --search the model's own setting holds: claude does not search.
    lanes_before = len(lanes.accepted)
    quiet = subprocess.run([EXE, "compare", "-m", "claude", "-m", "tiny", "again"], env=env, capture_output=True,
                           text=True, timeout=60)
    assert quiet.returncode == 0, quiet.stderr
    assert "web_search" not in json.dumps(lanes.accepted[lanes_before:])
