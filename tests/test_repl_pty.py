"""The REPL in a real pseudo-terminal: keys in, screen out, requests checked at the server."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from tests.loopback import LoopbackServer, Reply, command_env

pexpect = pytest.importorskip("pexpect")
EXE = shutil.which("modelswitch", path=str(Path(sys.executable).parent))
pytestmark = [
    pytest.mark.pty,
    pytest.mark.skipif(EXE is None, reason="the modelswitch console script is not installed"),
]
PROMPT_TIMEOUT = 20


def oa_chunk(content: str | None = None, reasoning: str | None = None) -> dict:
    delta: dict = {}
    if content is not None:
        delta["content"] = content
    if reasoning is not None:
        delta["reasoning_content"] = reasoning
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]}


def oa_finish(prompt: int = 10, completion: int = 20) -> dict:
    return {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}}


def anthropic_text(text: str) -> Reply:
    events = [
        ("message_start", {"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant",
                                                                "model": "claude-haiku-4-5", "content": [],
                                                                "usage": {"input_tokens": 30, "output_tokens": 1}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 12}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    return Reply(chunks=[f"event: {n}\ndata: {json.dumps(d)}\n\n".encode() for n, d in events], path="/anth/")


@pytest.fixture
def chat_env(tmp_path: Path, server: LoopbackServer) -> dict[str, str]:
    cfg = tmp_path / "config.toml"
    cfg.write_text(f"""
default = "r1"
[providers.deep]
base_url = "{server.url}/deep/v1"
api_key_env = "DEEP_KEY"
retries = 0
[providers.deep.models.r1]
id = "deepseek-reasoner"
[providers.claude]
type = "anthropic"
base_url = "{server.url}/anth"
api_key_env = "CLAUDE_KEY"
retries = 0
[providers.claude.models.hy]
id = "claude-haiku-4-5"
max_tokens = 1000
""")
    return command_env(cfg, tmp_path, DEEP_KEY="sk-deep-0123456789", CLAUDE_KEY="sk-ant-0123456789",
                       COLUMNS="100", LINES="40")


def spawn(env: dict[str, str], *args: str):  # noqa: ANN201
    child = pexpect.spawn(EXE, ["chat", *args], env=env, encoding="utf-8", dimensions=(40, 100),
                          timeout=PROMPT_TIMEOUT)
    child.expect("r1 ›")
    return child


def test_switch_models_mid_conversation(chat_env: dict[str, str], server: LoopbackServer) -> None:
    server.add(Reply.sse(oa_chunk(reasoning="Let me think about "), oa_chunk(reasoning="greetings."),
                         oa_chunk(content="Hello there, "), oa_chunk(content="friend."), oa_finish(),
                         path="/deep/"))
    server.add(anthropic_text("Yes, that was right."))
    server.add(Reply.sse(oa_chunk(content="One-off from r1."), oa_finish(), path="/deep/"))
    child = spawn(chat_env)

    child.send("hello\r")
    child.expect("Thought for")
    child.expect("Hello there, friend.")
    child.expect("r1 ·")  # the footer names the model
    child.expect("r1 ›")

    child.send("/model hy\r")
    child.expect(r"switched to hy \(claude/claude-haiku-4-5\); history kept \(2 turns\)")
    child.expect("hy ›")
    child.send("was that right?\r")
    child.expect("Yes, that was right.")
    child.expect("hy ›")

    child.send("@r1 say it once\r")
    child.expect("One-off from r1.")
    child.expect("hy ›")  # the current model stays

    child.send("/exit\r")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0

    deep1, claude, deep2 = server.requests
    assert deep1.path == "/deep/v1/chat/completions"
    assert claude.path == "/anth/v1/messages"
    body = claude.json
    assert body["model"] == "claude-haiku-4-5"
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    texts = [m["content"] if isinstance(m["content"], str) else "".join(b.get("text", "") for b in m["content"])
             for m in body["messages"]]
    assert texts == ["hello", "Hello there, friend.", "was that right?"]
    assert "greetings" not in json.dumps(body)  # DeepSeek's reasoning never crosses to Claude
    assert claude.headers["x-api-key"] == "sk-ant-0123456789"
    # The one-off went to r1 with the whole history, in OpenAI format, without reasoning_content.
    msgs = deep2.json["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "user", "assistant", "user"]
    assert msgs[-1]["content"] == "say it once"
    assert all("reasoning_content" not in m for m in msgs)


def test_ctrl_c_mid_stream_keeps_the_partial_answer(chat_env: dict[str, str], server: LoopbackServer) -> None:
    words = [oa_chunk(content=f"word{i} ") for i in range(200)]
    server.add(Reply.sse(*words, oa_finish(), delay=0.05, path="/deep/"))
    server.add(Reply.sse(oa_chunk(content="fresh answer"), oa_finish(), path="/deep/"))
    child = spawn(chat_env)
    child.send("tell me a long story\r")
    child.expect("word3 ")
    child.sendintr()
    child.expect("interrupted — partial answer kept")
    child.expect("r1 ›")
    child.send("/history\r")
    child.expect(r"r1 \[interrupted\]: word0 word1 word2 word3")
    child.expect("r1 ›")
    child.send("go on\r")
    child.expect("fresh answer")
    child.expect("r1 ›")
    child.sendeof()
    child.expect(pexpect.EOF)
    # The server saw the connection closed early, and the partial answer travelled as history.
    follow_up = server.requests[1].json["messages"]
    assert follow_up[1]["role"] == "assistant" and follow_up[1]["content"].startswith("word0 word1 word2 word3")
    assert "word199" not in follow_up[1]["content"]


def test_unknown_command_and_refused_switch(chat_env: dict[str, str], server: LoopbackServer) -> None:
    child = spawn(chat_env)
    child.send("/modle hy\r")
    child.expect("unknown command /modle — did you mean /model\\?")
    child.send("/model gpt-4o-mini\r")
    child.expect("set OPENAI_API_KEY")
    child.expect("r1 ›")  # still on r1
    child.send("/help\r")
    child.expect("/think show\\|hide\\|collapse")
    child.send("/exit\r")
    child.expect(pexpect.EOF)


def test_piped_chat_reads_one_message_per_line(chat_env: dict[str, str], server: LoopbackServer) -> None:
    import subprocess

    server.add(Reply.sse(oa_chunk(reasoning="hmm"), oa_chunk(content="first"), oa_finish(), path="/deep/"))
    server.add(anthropic_text("second"))
    proc = subprocess.run([EXE, "chat"], input="one\n/model hy\ntwo\n", env=chat_env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "first" in proc.stdout and "second" in proc.stdout
    assert "hmm" not in proc.stdout
    assert "\x1b[" not in proc.stdout


def test_bare_command_takes_chat_options(chat_env: dict[str, str], server: LoopbackServer) -> None:
    import subprocess

    server.add(anthropic_text("from hy"))
    proc = subprocess.run([EXE, "-m", "hy", "--system", "Be brief.", "--session", "bare"], input="hello\n",
                          env=chat_env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "from hy" in proc.stdout
    [req] = server.requests
    assert req.path.startswith("/anth/") and req.json["system"] == "Be brief."
    # -c on the root continues that session, as `chat -c` does.
    server.add(anthropic_text("again"))
    proc = subprocess.run([EXE, "-c"], input="more\n", env=chat_env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert [m["role"] for m in server.requests[1].json["messages"]] == ["user", "assistant", "user"]
    # Before another command they would be ignored: refused instead.
    proc = subprocess.run([EXE, "-m", "hy", "models"], env=chat_env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


@pytest.mark.parametrize("bad", ["/model nope", "@nope hi", "/nosuchcommand"])
def test_piped_chat_exits_1_after_a_failed_command(chat_env: dict[str, str], server: LoopbackServer,
                                                   bad: str) -> None:
    import subprocess

    server.add(Reply.sse(oa_chunk(content="still answered"), oa_finish(), path="/deep/"))
    proc = subprocess.run([EXE, "chat"], input=f"{bad}\nhi\n", env=chat_env, capture_output=True,
                          text=True, timeout=60)
    assert "still answered" in proc.stdout  # the chat goes on...
    assert proc.returncode == 1, proc.stderr  # ...and says at the end that a line failed
    assert "Traceback" not in proc.stderr


def test_piped_chat_strips_crlf(chat_env: dict[str, str], server: LoopbackServer) -> None:
    import subprocess

    server.add(Reply.sse(oa_chunk(content="ok"), oa_finish(), path="/deep/"))
    proc = subprocess.run([EXE, "chat"], input=b"hello\r\n", env=chat_env, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    [req] = server.requests
    assert req.json["messages"][-1]["content"] == "hello"


def test_multiline_input_paste_and_edit(chat_env: dict[str, str], server: LoopbackServer, tmp_path: Path) -> None:
    editor = tmp_path / "editor.sh"
    editor.write_text('#!/bin/sh\nprintf "written in the editor\\nsecond line\\n" > "$1"\n')
    editor.chmod(0o755)
    chat_env["EDITOR"] = str(editor)
    for text in ("one", "two", "three"):
        server.add(Reply.sse(oa_chunk(content=f"ok {text}"), oa_finish(), path="/deep/"))
    child = spawn(chat_env)
    child.send("first line")
    child.send("\x1b\r")  # Alt+Enter: a new line, not a send
    child.send("second line\r")
    child.expect("ok one")
    child.expect("r1 ›")
    child.send("\x1b[200~pasted one\npasted two\x1b[201~")  # bracketed paste with a newline inside
    child.send("\r")
    child.expect("ok two")
    child.expect("r1 ›")
    child.send("/edit\r")
    child.expect("ok three")
    child.expect("r1 ›")
    child.send("/exit\r")
    child.expect(pexpect.EOF)
    sent = [r.json["messages"][-1]["content"] for r in server.requests]
    assert sent == ["first line\nsecond line", "pasted one\npasted two", "written in the editor\nsecond line"]


def test_an_empty_answer_and_a_cut_one_are_said_in_the_repl(chat_env: dict[str, str], server: LoopbackServer) -> None:
    server.add(Reply.sse(oa_chunk(reasoning="only thinking"), oa_finish(), path="/deep/"))
    server.add(Reply.sse(oa_chunk(content="half"), {"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]},
                         path="/deep/"))
    server.add(Reply.say("fine", path="/deep/"))
    child = spawn(chat_env)
    child.send("first\r")
    child.expect("r1 returned no answer text")
    child.expect("r1 ›")
    child.send("second\r")
    child.expect("stopped: the answer hit max_tokens")
    child.expect("r1 ›")
    child.send("third\r")
    child.expect("fine")
    child.expect("r1 ›")
    child.send("/exit\r")
    child.expect(pexpect.EOF)
    # The empty turn is never sent back as an answer; the cut one is.
    sent = server.requests[2].json["messages"]
    assert [m for m in sent if m["role"] == "assistant"] == [{"role": "assistant", "content": "half"}]
    assert sent[-1] == {"role": "user", "content": "third"}


def test_leaving_says_where_the_chat_was_saved_and_how_to_continue(chat_env: dict[str, str],
                                                                   server: LoopbackServer) -> None:
    child = spawn(chat_env)
    child.sendcontrol("d")  # nothing asked: nothing saved, nothing said about it
    child.expect(pexpect.EOF)
    assert "saved as session" not in child.before
    child.close()

    server.add(Reply.sse(oa_chunk(content="Hi."), oa_finish(), path="/deep/"))
    child = spawn(chat_env, "--session", "notes")
    child.send("hello\r")
    child.expect("Hi.")
    child.expect("r1 ›")
    child.sendcontrol("d")
    child.expect(r"saved as session #(\d+) \(notes\) — `modelswitch -c` or `modelswitch --session (\d+)` continues it")
    assert child.match.group(1) == child.match.group(2)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
