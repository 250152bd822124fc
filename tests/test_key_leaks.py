"""A configured key stays masked beyond the answer text: tool calls and results, search queries,
sources, a stream cut off inside a key, and credentials in an address written without a scheme."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelswitch.cli.main import app
from modelswitch.conversation import sources_text
from modelswitch.events import Citation, ToolActivity, ToolCall
from modelswitch.redaction import StreamMask, mask, remember
from modelswitch.ui.base import call_text, search_text, sources_block, tool_line
from tests import search_fakes
from tests.loopback import LoopbackServer, Reply
from tests.search_fakes import FakeGeminiSearch
from tests.test_tools_cli import write_config
from tests.validators import FakeDeepSeek

KEY = "sk-LeakCanaryQwrtpMnbvZXYW"
MIDDLE = KEY[3:-4]  # what no mask shows: any 4 characters of it in an output are a leak
SERVERS = Path(__file__).parent / "mcp_servers"


def leaks(text: str) -> bool:
    return any(MIDDLE[i:i + 4] in text for i in range(len(MIDDLE) - 3))


def invoke(config: Path, *args: str):  # noqa: ANN201
    return CliRunner().invoke(app, ["--config", str(config), *args], catch_exceptions=False)


# -- tool calls and results --------------------------------------------------------------------


def tools_config(tmp_path: Path, url: str, server: str) -> Path:
    return write_config(tmp_path, url, f"""
[mcp.{server}]
command = [{json.dumps(sys.executable)}, {json.dumps(str(SERVERS / f"{server}.py"))}]
""")


@pytest.fixture
def calc(tmp_path: Path, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, FakeDeepSeek]:
    """The reviewer's case: the model puts the key into a call's arguments."""
    monkeypatch.setenv("DS_KEY", KEY)
    fake = FakeDeepSeek(key=KEY, tool_args={"a": 2, "b": 3, "note": KEY})
    server.default = fake
    return tools_config(tmp_path, server.url, "calc"), fake


@pytest.fixture
def websearch(tmp_path: Path, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, FakeDeepSeek]:
    """The tool's result holds the key too: websearch echoes its query."""
    monkeypatch.setenv("DS_KEY", KEY)
    fake = FakeDeepSeek(key=KEY, tool_args={"query": f"who has {KEY}"})
    server.default = fake
    return tools_config(tmp_path, server.url, "websearch"), fake


def test_ask_tools_json_masks_the_key_in_arguments_and_result_but_the_tool_and_model_get_it(
    websearch: tuple[Path, FakeDeepSeek],
) -> None:
    config, fake = websearch
    result = invoke(config, "ask", "-T", "--yes", "--json", "hi")
    assert result.exit_code == 0, result.output
    [call] = json.loads(result.stdout)["tool_calls"]
    assert call["arguments"] == {"query": f"who has {mask(KEY)}"}
    assert json.loads(call["result"])["query"] == f"who has {mask(KEY)}"
    assert not leaks(result.stdout) and not leaks(result.stderr)
    # The wire is untouched: the server ran with the real argument, and the model got its real answer.
    sent_back = fake.accepted[-1]["messages"][-1]
    assert sent_back["role"] == "tool" and json.loads(sent_back["content"])["query"] == f"who has {KEY}"
    assert not fake.rejected


def test_ask_tools_json_masks_a_key_among_other_arguments(calc: tuple[Path, FakeDeepSeek]) -> None:
    config, fake = calc
    result = invoke(config, "ask", "-T", "--yes", "--json", "hi")
    assert result.exit_code == 0, result.output
    [call] = json.loads(result.stdout)["tool_calls"]
    assert call["arguments"] == {"a": 2, "b": 3, "note": mask(KEY)} and call["result"] == "5"
    assert not leaks(result.stdout) and not leaks(result.stderr)
    assert json.loads(fake.accepted[-1]["messages"][-2]["tool_calls"][0]["function"]["arguments"])["note"] == KEY


def test_ask_tools_jsonl_and_the_stderr_tool_line_mask_the_key(websearch: tuple[Path, FakeDeepSeek],
                                                              tmp_path: Path) -> None:
    config, _ = websearch
    lines = invoke(config, "ask", "-T", "--yes", "--jsonl", "hi")
    assert lines.exit_code == 0, lines.output
    events = [json.loads(line) for line in lines.stdout.splitlines()]
    assert any(e["type"] == "tool" for e in events)
    assert not leaks(lines.stdout) and not leaks(lines.stderr)
    plain = invoke(config, "ask", "-T", "--yes", "--session", "t", "hi")
    assert plain.exit_code == 0, plain.output
    assert f'⚙ websearch.web_search {{"query": "who has {mask(KEY)}"}}: ran' in plain.stderr
    assert not leaks(plain.stderr) and not leaks(plain.stdout)
    # The saved session and both exports hold only the masked form (the store redacts on write).
    for fmt in ("json", "md"):
        exported = invoke(config, "sessions", "export", "t", "--format", fmt)
        assert exported.exit_code == 0 and mask(KEY) in exported.stdout and not leaks(exported.stdout)


def test_the_approval_line_and_the_tool_line_mask_the_key() -> None:
    """What the REPL asks (`⚙ calc.add {...}` via call_text) and the line each finished call leaves."""
    remember(KEY)
    call = ToolCall("c1", "add", json.dumps({"a": 2, "b": 3, "note": KEY}))
    assert call_text(call, "calc") == f'calc.add {{"a": 2, "b": 3, "note": "{mask(KEY)}"}}'
    line = tool_line(ToolActivity(call, "calc", "failed", f"bad note {KEY}"))
    assert mask(KEY) in line and not leaks(line)
    # Cut to the width after masking: the cut never lands inside the key and shows part of it.
    for width in range(10, 60):
        assert not leaks(call_text(call, "calc", width))


# -- search queries and sources ----------------------------------------------------------------


def test_search_lines_and_sources_mask_the_key() -> None:
    remember(KEY)
    assert search_text(f"find {KEY}") == f"searching: find {mask(KEY)}"
    cited = (Citation(f"Seen {KEY}", f"https://example.com/?k={KEY}"), Citation("", f"https://x.test/{KEY}"))
    plain = sources_text(cited)
    assert plain == (f"Sources:\n[1] Seen {mask(KEY)} — https://example.com/?k={mask(KEY)}\n"
                     f"[2] https://x.test/{mask(KEY)}")
    block = sources_block(cited)
    assert not leaks(block.plain) and mask(KEY) in block.plain
    assert all(not leaks(str(span.style)) for span in block.spans)  # the OSC 8 link target too


def test_ask_masks_the_key_in_search_events_sources_and_citations(tmp_path: Path, server: LoopbackServer,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GM_KEY", KEY)
    monkeypatch.setattr(search_fakes, "QUERY", f"pelicans {KEY}")
    monkeypatch.setattr(search_fakes, "SOURCES", [(f"Pelican {KEY}", f"https://en.wikipedia.org/wiki/{KEY}", "")])
    server.default = FakeGeminiSearch(key=KEY)
    config = tmp_path / "gm.toml"
    config.write_text(f"""
default = "flash"
[providers.gm]
type = "gemini"
base_url = "{server.url}"
api_key_env = "GM_KEY"
retries = 0
[providers.gm.models.flash]
id = "gemini-2.5-flash"
search = true
""", "utf-8")
    lines = invoke(config, "ask", "--jsonl", "pelicans?")
    assert lines.exit_code == 0, lines.output
    events = [json.loads(line) for line in lines.stdout.splitlines()]
    assert {"type": "search", "query": f"pelicans {mask(KEY)}"} in events
    assert [e["title"] for e in events if e["type"] == "citation"] == [f"Pelican {mask(KEY)}"]
    as_json = invoke(config, "ask", "--json", "pelicans?")
    assert json.loads(as_json.stdout)["citations"][0]["url"] == f"https://en.wikipedia.org/wiki/{mask(KEY)}"
    plain = invoke(config, "ask", "pelicans?")
    assert plain.exit_code == 0, plain.output
    assert f"searching: pelicans {mask(KEY)}" in plain.stderr and f"[1] Pelican {mask(KEY)} — " in plain.stdout
    for out in (lines, as_json, plain):
        assert not leaks(out.stdout) and not leaks(out.stderr)


# -- a stream cut off inside a key -------------------------------------------------------------


@pytest.mark.parametrize("n", range(1, len(KEY)))
def test_a_held_tail_cut_off_shows_no_more_than_the_keys_mask(n: int) -> None:
    remember(KEY)
    m = StreamMask()
    shown = m.feed(f"Your key: {KEY[:n]}")
    assert shown == "Your key: "
    # `sk-` is what mask(KEY) shows anyway; anything further is the ellipsis, never key characters.
    expected = KEY[:n] if n <= 3 else "sk-…"
    assert m.pending() == expected  # what an interrupted answer keeps (Ctrl-C mid-key)
    assert m.flush() == expected and m.pending() == ""  # what a stream that ends there shows


def test_a_word_that_ends_like_a_key_begins_keeps_its_end() -> None:
    """Ordinary text is not eaten: the held tail ends a word, so it is no key written apart."""
    remember("enWordStartKey123456")
    m = StreamMask()
    assert m.feed("I have seen") + m.flush() == "I have seen"
    m = StreamMask()
    assert m.feed("token: enWord") + m.flush() == "token: …"


def test_an_answer_that_stops_inside_a_key_never_prints_part_of_it(tmp_path: Path, server: LoopbackServer) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[providers.x]\nbase_url = "{server.url}/v1"\napi_key = "{KEY}"\nretries = 0\n'
                   '[providers.x.models.m]\nid = "m"\n')
    os.chmod(cfg, 0o600)
    for _ in range(2):
        server.add(Reply.sse(
            {"choices": [{"index": 0, "delta": {"content": f"Your key: {KEY[:7]}"}}]},
            {"choices": [{"index": 0, "delta": {"content": KEY[7:16]}}]},
            {"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}],
             "usage": {"prompt_tokens": 5, "completion_tokens": 9}}))
    plain = invoke(cfg, "ask", "-m", "m", "key?")
    assert plain.stdout == "Your key: sk-…\n"
    as_json = invoke(cfg, "ask", "--json", "-m", "m", "key?")
    assert json.loads(as_json.stdout)["content"] == "Your key: sk-…"


# -- credentials in an address without a scheme ------------------------------------------------


def test_credentials_in_an_address_without_a_scheme_are_masked_and_the_advice_fits(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[providers.x]\nbase_url = "admin:hunter2secret@api.example.com/v1"\n'
                   '[providers.x.models.m]\nid = "m"\n'
                   '[mcp.s]\nurl = "https//bob:tok3nvalue@host/mcp"\n')
    validate = invoke(cfg, "config", "validate")
    asked = invoke(cfg, "ask", "-m", "m", "hi")
    for result in (validate, asked):
        assert result.exit_code == 2, result.output
        assert "hunter2secret" not in result.output and "tok3nvalue" not in result.output, result.output
        assert "Traceback" not in result.output and "https://https" not in result.output
    assert ("providers.x.base_url: '***@api.example.com/v1' has no scheme: put https:// (or http://) in front"
            in validate.stderr)
    assert "mcp.s.url: 'https//***@host/mcp' has a mistyped scheme: write https:// in place of 'https//'" \
        in validate.stderr
    plain = tmp_path / "p.toml"
    plain.write_text('[providers.x]\nbase_url = "https:/api.example.com/v1"\n[providers.x.models.m]\nid = "m"\n')
    assert "has a mistyped scheme: write https://api.example.com/v1" in invoke(plain, "config", "validate").stderr


def test_mask_url_masks_userinfo_with_or_without_a_scheme() -> None:
    from modelswitch.redaction import mask_url

    assert mask_url("admin:pw@api.example.com/v1") == "***@api.example.com/v1"
    assert mask_url("https//bob:pw@host/mcp") == "https//***@host/mcp"
    assert mask_url("https://bob:p@ss@host/mcp") == "https://***@host/mcp"
    assert mask_url("api.example.com/v1?to=a@b") == "api.example.com/v1?to=a@b"  # not userinfo
    assert mask_url("localhost:8080/v1") == "localhost:8080/v1"


def test_an_mcp_servers_secret_env_and_headers_are_masked_everywhere(tmp_path: Path) -> None:
    """A tool may echo its own credential ("Bad credentials ghp_…"): an [mcp.X] env value named like
    a secret, and a secret header, are masked as provider keys are; a path in env is not."""
    from modelswitch.engine.choice import load_config
    from modelswitch.redaction import redact

    cfg = tmp_path / "mcp.toml"
    cfg.write_text('''
[mcp.gh]
command = ["true"]
env = { GITHUB_TOKEN = "ghp_REALSECRETTOKEN1234567890", ALLOWED_DIR = "/home/someone/projects" }
[mcp.remote]
url = "https://mcp.example.com/mcp"
headers = { Authorization = "Bearer mcp-REALHEADERTOKEN99" }
''', "utf-8")
    load_config(str(cfg))
    said = redact("Bad credentials ghp_REALSECRETTOKEN1234567890 / mcp-REALHEADERTOKEN99 in /home/someone/projects")
    assert "REALSECRET" not in said and "REALHEADER" not in said
    assert "/home/someone/projects" in said
    shown = CliRunner().invoke(app, ["--config", str(cfg), "config", "show"])
    assert shown.exit_code == 0, shown.output
    assert "REALSECRET" not in shown.output and "REALHEADER" not in shown.output
    assert "/home/someone/projects" in shown.output


@pytest.mark.parametrize("password", ["Zm9v/YmFy+AAAA", "s3cr#etvalue", "q?uestion1234", "at@sign12345"])
def test_a_password_with_an_unencoded_slash_hash_question_or_at_is_masked(tmp_path: Path, password: str) -> None:
    """urlsplit ends the userinfo at an unencoded `/`, `#` or `?`: the error line quoting the
    address must still not show the password, nor `config show`."""
    from modelswitch.redaction import mask_url, mask_urls

    url = f"https://bob:{password}@api.example.com/v1"
    assert password not in mask_urls(f"connection refused at {url} (after 1 s)")
    assert password not in mask_url(f"https//bob:{password}@host/mcp")
    cfg = tmp_path / "pw.toml"
    cfg.write_text(f'[providers.p]\ntype = "openai"\nbase_url = "{url}"\n[providers.p.models.m]\nid = "m"\n', "utf-8")
    for args in (["config", "validate"], ["config", "show"]):
        out = CliRunner().invoke(app, ["--config", str(cfg), *args])
        assert password not in out.output, (args, out.output)


def test_a_base_url_with_a_space_is_refused_without_showing_the_password(tmp_path: Path) -> None:
    cfg = tmp_path / "space.toml"
    cfg.write_text('[providers.p]\ntype = "openai"\nbase_url = "http://bob:s3cr et99@127.0.0.1:9/v1"\n'
                   '[providers.p.models.m]\nid = "m"\n', "utf-8")
    out = CliRunner().invoke(app, ["--config", str(cfg), "config", "validate"])
    assert out.exit_code != 0 and "has a space in it" in out.output
    assert "s3cr" not in out.output


def test_most_of_a_key_glued_to_a_word_and_cut_off_is_masked() -> None:
    """`id42sk-proj-ABCD…` cut by Ctrl-C one character before the key's end: the word-end exemption
    releases only a tail as short as the mask's own prefix, never most of a key."""
    key = remember("sk-proj-GLUEDKEY0123456789")
    stream = StreamMask()
    shown = stream.feed("your id42" + key[:-1])
    shown += stream.flush()
    assert key[:-1] not in shown and "GLUEDKEY" not in shown
    assert shown.startswith("your id42")


def test_history_says_a_call_no_one_could_approve_was_not_run_not_declined() -> None:
    from modelswitch.conversation import CALL_DECLINED, CALL_UNAPPROVED, ToolResult
    from modelswitch.ui.base import result_line

    call = ToolCall("c1", "add", '{"a": 2}')
    assert result_line(call, ToolResult("c1", "add", CALL_UNAPPROVED, is_error=True, server="calc",
                                        approved=False)).endswith(": not run (no approval here: list add in [mcp.calc] trust,"
                                                                   " or pass --yes to ask or compare)")
    assert result_line(call, ToolResult("c1", "add", CALL_DECLINED, is_error=True, server="calc",
                                        approved=False)).endswith(": not run (declined)")
