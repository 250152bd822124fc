"""What the provider receives, what the session keeps and what the user is shown and billed agree.

The REPL runs in a real pseudo-terminal; every provider is a loopback server that logs (and, for
Anthropic, validates) each request body.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.loopback import LoopbackServer, Reply, command_env
from tests.validators import FakeAnthropic

pexpect = pytest.importorskip("pexpect")
EXE = shutil.which("modelswitch", path=str(Path(sys.executable).parent))
pytestmark = [pytest.mark.skipif(EXE is None, reason="the modelswitch console script is not installed")]
TIMEOUT = 20
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r")


def write_config(tmp_path: Path, text: str, **keys: str) -> dict[str, str]:
    cfg = tmp_path / "config.toml"
    cfg.write_text(text)
    return command_env(cfg, tmp_path, COLUMNS="160", LINES="40", **keys)


def spawn(env: dict[str, str], prompt: str, *args: str):  # noqa: ANN201
    child = pexpect.spawn(EXE, ["chat", *args], env=env, encoding="utf-8", dimensions=(40, 160), timeout=TIMEOUT)
    child.expect(f"{re.escape(prompt)} ›")
    return child


def quit_(child) -> None:  # noqa: ANN001
    child.send("/exit\r")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def run(env: dict[str, str], *args: str) -> str:
    proc = subprocess.run([EXE, *args], env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def claude(tmp_path: Path, server: LoopbackServer, default: str, models: str) -> tuple[FakeAnthropic, dict[str, str]]:
    """A validating Anthropic API on the loopback server, and a config naming `models` on it."""
    api = FakeAnthropic(key="sk-ant-0123456789")
    server.default = api
    env = write_config(tmp_path, f"""
default = "{default}"
[providers.claude]
type = "anthropic"
base_url = "{server.url}"
api_key_env = "CLAUDE_KEY"
retries = 0
""" + models, CLAUDE_KEY="sk-ant-0123456789")
    return api, env


def stats_table(text: str) -> dict[str, list[str]]:
    """`model -> [answers, input, output, reasoning, cost]` from a stats table, drawn or plain."""
    rows = {}
    for line in ANSI.sub("", text).splitlines():
        m = re.match(r"\s*(\S+(?: \([^)]*\))?)\s+(\d+)\s+(\d+|-)\s+(\d+|-)\s+(~?\d+|-)\s+(\S+)", line)  # ~: estimated
        if m:
            rows[m.group(1)] = list(m.groups()[1:])
    return rows


# -- item 7: /set max_tokens on a thinking Claude --------------------------------------------


@pytest.mark.pty
def test_set_max_tokens_is_honoured_on_a_thinking_claude(tmp_path: Path, server: LoopbackServer) -> None:
    api, env = claude(tmp_path, server, "think", """
[providers.claude.models.think]
id = "claude-sonnet-4-5"
max_tokens = 16000
reasoning = 4096
""")
    child = spawn(env, "think")
    child.send("/set max_tokens 1000\r")
    child.expect("max_tokens = 1000")
    child.send("first\r")
    child.expect(r"thinking off for this answer: max_tokens 1000 leaves no room")
    child.expect("claude-sonnet-4-5 answer 1")
    child.expect("think ›")
    child.send("/set max_tokens 3000\r")
    child.expect("max_tokens = 3000")
    child.send("second\r")
    child.expect(r"thinking budget cut from 4096 to 1500 tokens to fit max_tokens 3000")
    child.expect("claude-sonnet-4-5 answer 2")
    child.expect("think ›")
    quit_(child)

    assert api.rejected == []
    first, second = api.accepted
    assert first["max_tokens"] == 1000 and "thinking" not in first
    assert second["max_tokens"] == 3000 and second["thinking"] == {"type": "enabled", "budget_tokens": 1500}


# -- item 8: Ollama's inline <think> ---------------------------------------------------------


def ollama_lines(*contents: str) -> Reply:
    lines = [{"model": "qwen3:8b", "created_at": "2026-01-01T00:00:00Z",
              "message": {"role": "assistant", "content": c}, "done": False} for c in contents]
    lines.append({"model": "qwen3:8b", "created_at": "2026-01-01T00:00:00Z",
                  "message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "stop",
                  "prompt_eval_count": 12, "eval_count": 30, "eval_duration": 600_000_000})
    return Reply(chunks=[json.dumps(ln).encode() + b"\n" for ln in lines],
                 content_type="application/x-ndjson", path="/api/chat")


@pytest.mark.pty
def test_ollama_inline_reasoning_is_not_sent_on_as_answer_text(tmp_path: Path, server: LoopbackServer) -> None:
    env = write_config(tmp_path, f"""
default = "local"
[providers.oll]
type = "ollama"
base_url = "{server.url}"
retries = 0
[providers.oll.models.local]
id = "qwen3:8b"
[providers.deep]
base_url = "{server.url}/deep/v1"
api_key_env = "DEEP_KEY"
retries = 0
[providers.deep.models.r1]
id = "deepseek-reasoner"
""", DEEP_KEY="sk-deep-0123456789")
    server.add(ollama_lines("<think>", "\nThe user says hi; ", "SECRET-CHAIN of thought.\n", "</think>", "\n\n", "Hello there!"))
    server.add(Reply.say("Hi again.", path="/deep/"))
    child = spawn(env, "local")
    child.send("hi\r")
    child.expect("Thought for")
    child.expect("Hello there!")
    child.expect("local ›")
    child.send("/model r1\r")
    child.expect("r1 ›")
    child.send("and again\r")
    child.expect("Hi again.")
    child.expect("r1 ›")
    quit_(child)

    deep = server.requests[-1]
    assert deep.path == "/deep/v1/chat/completions"
    assert deep.json["messages"] == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "Hello there!"},
        {"role": "user", "content": "and again"},
    ]
    export = json.loads(run(env, "sessions", "export", "1", "--format", "json"))
    answer = [t for t in export["turns"] if t["role"] == "assistant"][0]
    assert answer["text"] == "Hello there!" and "SECRET-CHAIN" in answer["reasoning"]


# -- item 11: a resumed chat counts what was paid for ----------------------------------------

PRICED = """
default = "a"
[providers.pa]
base_url = "{url}/a/v1"
api_key_env = "K"
retries = 0
[providers.pa.models.a]
id = "a-model"
price = {{ input = 1.0, output = 2.0, currency = "USD" }}
[providers.pb]
base_url = "{url}/b/v1"
api_key_env = "K"
retries = 0
[providers.pb.models.b]
id = "b-model"
price = {{ input = 3.0, output = 5.0, currency = "USD" }}
"""


@pytest.mark.pty
def test_resumed_chat_cost_equals_sessions_show_stats(tmp_path: Path, server: LoopbackServer) -> None:
    env = write_config(tmp_path, PRICED.format(url=server.url), K="sk-k-0123456789")
    server.add(Reply.say("first try", usage=(1000, 100), path="/a/"))
    server.add(Reply.say("second try", usage=(1000, 300), path="/a/"))
    server.add(Reply.say("ALPHA", usage=(2000, 50), path="/a/"))
    server.add(Reply.say("BETA", usage=(2000, 70), delay=0.2, path="/b/"))
    child = spawn(env, "a")
    child.send("question one\r")
    child.expect("first try")
    child.expect("a ›")
    child.send("/retry\r")
    child.expect("second try")
    child.expect("a ›")
    child.send("/compare a b question two\r")
    child.expect(r"/keep N puts one answer into the conversation")
    child.send("/keep 1\r")
    child.expect("kept the answer from a")
    quit_(child)

    shown = stats_table(run(env, "sessions", "show", "1", "--stats"))
    # Every answer paid for: the retried one and the compare answer not kept included.
    assert shown["a (pa/a-model)"][:3] == ["3", "4000", "450"]
    assert shown["b (pb/b-model)"][:3] == ["1", "2000", "70"]
    assert shown["total"][:3] == ["4", "6000", "520"]

    child = spawn(env, "a", "-c")
    child.send("/cost\r")
    child.expect(r"total[^\n]*\n")
    screen = child.before + child.after
    child.expect("a ›")
    quit_(child)
    assert stats_table(screen) == shown

    # The toolbar (not drawn where the terminal cannot report its size, as under pexpect) totals
    # the same answers, from the same records, as `chat -c` builds them.
    from modelswitch.store.chatlog import ChatLog
    from modelswitch.config.load import load
    from modelswitch.repl.loop import Repl
    from modelswitch.engine.session import ChatSession

    log = ChatLog.open_for(None, True, model=None, system=None)
    assert log is not None
    config = load(Path(env["MODELSWITCH_CONFIG"]))
    session = ChatSession(config, config.resolve("a"), conversation=log.conversation, log=log)
    assert f"6,520 tokens · {shown['total'][4]}" in Repl(session, color=False, interactive=False).toolbar(200)


# -- item 12: usage the provider did not report is unknown, not free -------------------------


def test_gemini_stream_without_usage_is_an_unknown_cost(tmp_path: Path, server: LoopbackServer) -> None:
    env = write_config(tmp_path, f"""
default = "flash"
[providers.gm]
type = "gemini"
base_url = "{server.url}"
api_key_env = "GM_KEY"
retries = 0
[providers.gm.models.flash]
id = "gemini-2.0-flash"
price = {{ input = 0.1, output = 0.4, currency = "USD" }}
""", GM_KEY="gm-key-0123456789")
    frame = {"candidates": [{"content": {"role": "model", "parts": [{"text": "No counts here."}]},
                             "finishReason": "STOP", "index": 0}], "modelVersion": "gemini-2.0-flash"}
    server.add(Reply(chunks=[b"data: " + json.dumps(frame).encode() + b"\r\n\r\n"], path=":streamGenerateContent"))
    out = json.loads(run(env, "ask", "--session", "s", "--json", "hi"))
    assert out["content"] == "No counts here."
    assert out["usage"] is None and out["cost"] is None
    assert stats_table(run(env, "sessions", "show", "s", "--stats"))["total"] == ["1", "-", "-", "-", "-"]  # usage unknown, not 0
    listed = run(env, "sessions", "list")
    assert re.search(r"^s\s+2\s+flash\s+.*\s-$", listed, re.M), listed


# -- item 13: aliases of one model id are the user's separate choices ------------------------


@pytest.mark.pty
def test_aliases_sharing_a_model_id_are_counted_apart(tmp_path: Path, server: LoopbackServer) -> None:
    api, env = claude(tmp_path, server, "son", """
[providers.claude.models.son]
id = "claude-sonnet-4-5"
max_tokens = 8192
price = { input = 3.0, output = 15.0, currency = "USD" }
[providers.claude.models.son-think]
id = "claude-sonnet-4-5"
max_tokens = 16000
reasoning = 4096
price = { input = 3.0, output = 15.0, currency = "USD" }
""")
    child = spawn(env, "son")
    child.send("plain\r")
    child.expect("claude-sonnet-4-5 answer 1")
    child.expect("son ›")
    child.send("/model son-think\r")
    child.expect("son-think ›")
    child.send("think\r")
    child.expect("claude-sonnet-4-5 answer 2")
    child.expect("son-think ›")
    child.send("/cost\r")
    child.expect(r"total[^\n]*\n")
    screen = child.before + child.after
    child.expect("son-think ›")
    quit_(child)

    live = stats_table(screen)
    assert live["son (claude/claude-sonnet-4-5)"][0] == "1"
    assert live["son-think (claude/claude-sonnet-4-5)"][0] == "1"
    assert stats_table(run(env, "sessions", "show", "1", "--stats")) == live
    assert re.search(r"^#1\s+4\s+son, son-think\s", run(env, "sessions", "list"), re.M)
