"""What is sent, what is kept, what the user sees: one conversation (issue i20, items 1-6).

Each test drives the installed command (the REPL in a pseudo-terminal, or a piped chat) against
loopback servers and checks the exact `messages` of every request, and the session store.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from modelswitch.store.db import Store
from tests.loopback import LoopbackServer, Received, Reply
from tests.test_repl_pty import chat_env  # noqa: F401 - the fixture, shared

pexpect = pytest.importorskip("pexpect")
EXE = shutil.which("modelswitch", path=str(Path(sys.executable).parent))
pytestmark = [
    pytest.mark.pty,
    pytest.mark.skipif(EXE is None, reason="the modelswitch console script is not installed"),
]


@pytest.fixture
def env(chat_env: dict[str, str], server: LoopbackServer) -> dict[str, str]:
    """The REPL tests' r1 (OpenAI wire) and hy (Anthropic wire), plus gem on Gemini's."""
    with open(chat_env["MODELSWITCH_CONFIG"], "a") as cfg:
        cfg.write(f"""
[providers.goog]
type = "gemini"
base_url = "{server.url}/gem"
api_key_env = "GEM_KEY"
retries = 0
[providers.goog.models.gem]
id = "gemini-2.5-flash"
""")
    return {**chat_env, "GEM_KEY": "gem-key-0123456789"}


def deep(text: str) -> Reply:
    return Reply.say(text, path="/deep/")


def anthropic(*, text: str = "", stop_reason: str = "end_turn", stop_details: dict | None = None) -> Reply:
    """A Messages API stream as documented: message_start, one text block (if any), message_delta."""
    events: list[tuple[str, dict]] = [
        ("message_start", {"type": "message_start", "message": {
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5", "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 30, "output_tokens": 1}}}),
    ]
    if text:
        events += [
            ("content_block_start", {"type": "content_block_start", "index": 0,
                                     "content_block": {"type": "text", "text": ""}}),
            ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                     "delta": {"type": "text_delta", "text": text}}),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ]
    delta: dict = {"stop_reason": stop_reason, "stop_sequence": None}
    if stop_details is not None:
        delta["stop_details"] = stop_details
    events += [
        ("message_delta", {"type": "message_delta", "delta": delta, "usage": {"output_tokens": 12}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    return Reply(chunks=[f"event: {n}\ndata: {json.dumps(d)}\n\n".encode() for n, d in events], path="/anth/")


def anthropic_error(status: int = 400) -> Reply:
    return Reply.json(status, {"type": "error", "error": {"type": "invalid_request_error",
                                                           "message": "messages: bad request"}}, path="/anth/")


def texts(request: Received) -> list[tuple[str, str]]:
    """(role, text) of every message a request sent, whatever the protocol's shape."""
    body = request.json
    if "contents" in body:  # Gemini
        return [(c["role"], "".join(p.get("text", "") for p in c["parts"])) for c in body["contents"]]
    out = []
    for m in body["messages"]:
        content = m["content"]
        if not isinstance(content, str):
            content = "".join(b.get("text", "") for b in content)
        out.append((m["role"], content))
    return out


def spawn(env: dict[str, str], *args: str, prompt: str = "r1 ›"):  # noqa: ANN201
    child = pexpect.spawn(EXE, ["chat", *args], env=env, encoding="utf-8", dimensions=(40, 100), timeout=20)
    child.expect(prompt)
    return child


def finish(child) -> None:  # noqa: ANN001
    child.send("/exit\r")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def stored(session: int | str = 1) -> list[tuple[str, str, bool]]:
    """(role, text, alternate) of every stored turn of a session."""
    with Store.open() as st:
        _, turns = st.transcript(session)
    return [(t.message.role, t.message.text, t.alternate) for t in turns]


# -- item 1: a failed /retry keeps the earlier answer ----------------------------------------


def test_failed_retry_keeps_the_earlier_answer(env: dict[str, str], server: LoopbackServer) -> None:
    server.add(deep("the good answer"), anthropic_error(400), deep("follow-up answer"))
    child = spawn(env)
    child.send("question one\r")
    child.expect("the good answer")
    child.expect("r1 ›")
    child.send("/retry hy\r")
    child.expect("bad request")
    child.expect("the earlier answer is kept")
    child.expect("r1 ›")
    child.send("/history\r")
    child.expect(r"2\. r1: the good answer")
    child.expect("r1 ›")
    child.send("and then?\r")
    child.expect("follow-up answer")
    child.expect("r1 ›")
    child.send("/undo\r")
    child.expect("undone: 'and then\\?'")
    child.send("/undo\r")
    child.expect("undone: 'question one'")
    finish(child)

    first, retry, follow = server.requests
    assert texts(retry) == [("user", "question one")]  # the retry asked the question, once
    assert texts(follow) == [("user", "question one"), ("assistant", "the good answer"), ("user", "and then?")]
    # On record: the kept exchange (undone at the end), the failed attempt as a paid-for alternate.
    assert stored() == [
        ("user", "question one", True), ("assistant", "the good answer", True),
        ("user", "question one", True), ("assistant", "", True),
        ("user", "and then?", True), ("assistant", "follow-up answer", True),
    ]


def test_successful_retry_replaces_the_answer_and_keeps_the_old_on_record(
    env: dict[str, str], server: LoopbackServer
) -> None:
    server.add(deep("first try"), anthropic(text="second try"), deep("next"))
    child = spawn(env)
    child.send("question\r")
    child.expect("first try")
    child.expect("r1 ›")
    child.send("/retry hy\r")
    child.expect("second try")
    child.expect("r1 ›")
    child.send("go on\r")
    child.expect("next")
    child.expect("r1 ›")
    finish(child)
    assert texts(server.requests[2]) == [("user", "question"), ("assistant", "second try"), ("user", "go on")]
    assert stored() == [
        ("user", "question", True), ("assistant", "first try", True),
        ("user", "question", False), ("assistant", "second try", False),
        ("user", "go on", False), ("assistant", "next", False),
    ]


# -- item 2: /clear ends a comparison awaiting /keep -----------------------------------------


def test_clear_closes_the_comparison_so_keep_cannot_send_what_is_saved_nowhere(
    env: dict[str, str], server: LoopbackServer
) -> None:
    server.add(deep("r1 compared"), anthropic(text="hy compared"), deep("fresh answer"), deep("resumed answer"))
    child = spawn(env)
    child.send("/compare r1 hy which is best?\r")
    child.expect("/keep N puts one answer")
    child.expect("r1 ›")
    child.send("/clear\r")
    child.expect("new conversation; the comparison is closed")
    child.send("/keep 1\r")
    child.expect("nothing to keep")
    child.expect("r1 ›")
    child.send("fresh start\r")
    child.expect("fresh answer")
    child.expect("r1 ›")
    finish(child)
    assert texts(server.requests[2]) == [("user", "fresh start")]

    # `chat -c` continues the new session and sends exactly what the REPL sent.
    proc = subprocess.run([EXE, "chat", "-c"], input="again\n", env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert texts(server.requests[3]) == [("user", "fresh start"), ("assistant", "fresh answer"), ("user", "again")]


# -- item 3: /retry after an unkept /compare retries the compared prompt ---------------------


def test_retry_after_compare_retries_the_compared_prompt(env: dict[str, str], server: LoopbackServer) -> None:
    server.add(deep("earlier answer"), deep("r1 compared"), anthropic(text="hy compared"), deep("retried answer"))
    child = spawn(env)
    child.send("earlier question\r")
    child.expect("earlier answer")
    child.expect("r1 ›")
    child.send("/compare r1 hy the compared prompt\r")
    child.expect("/keep N puts one answer")
    child.expect("r1 ›")
    child.send("/retry\r")
    child.expect("retrying the compared prompt 'the compared prompt' on r1")
    child.expect("retried answer")
    child.expect("r1 ›")
    child.send("/history\r")
    child.expect(r"4\. r1: retried answer")
    finish(child)
    assert texts(server.requests[3]) == [
        ("user", "earlier question"), ("assistant", "earlier answer"), ("user", "the compared prompt"),
    ]
    kept = [(role, text) for role, text, alternate in stored() if not alternate]
    assert kept == [("user", "earlier question"), ("assistant", "earlier answer"),
                    ("user", "the compared prompt"), ("assistant", "retried answer")]


# -- item 4: chat --session NAME -m X records X ---------------------------------------------


def test_chat_session_with_m_records_the_model_for_next_time(env: dict[str, str], server: LoopbackServer) -> None:
    server.add(deep("on r1"), anthropic(text="on hy"), anthropic(text="still hy"))

    def chat(*args: str, line: str) -> None:
        proc = subprocess.run([EXE, "chat", "--session", "work", *args], input=line + "\n", env=env,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr

    chat(line="one")
    chat("-m", "hy", line="two")
    chat(line="three")  # no -m: the session goes on with the model it last used
    assert [r.path for r in server.requests] == ["/deep/v1/chat/completions", "/anth/v1/messages", "/anth/v1/messages"]
    assert texts(server.requests[2])[-1] == ("user", "three")


# -- item 5: /compare sends the prompt exactly as typed --------------------------------------


def test_compare_prompt_keeps_newlines_and_indentation(env: dict[str, str], server: LoopbackServer) -> None:
    server.add(deep("a"), anthropic(text="b"), deep("c"), anthropic(text="d"))
    child = spawn(env)
    child.send("/compare r1 hy fix this:")
    child.send("\x1b\r")  # Alt+Enter: a new line, not a send
    child.send("def f():")
    child.send("\x1b\r")
    child.send("    return  1\r")
    child.expect("/keep N puts one answer")
    child.expect("r1 ›")
    child.send("/compare r1 hy")
    child.send("\x1b[200~\n    pasted  block\n\tend\x1b[201~")  # a pasted code block on its own lines
    child.send("\r")
    child.expect("/keep N puts one answer")
    child.expect("r1 ›")
    finish(child)
    typed = "fix this:\ndef f():\n    return  1"
    pasted = "    pasted  block\n\tend"
    assert sorted(texts(r)[-1][1] for r in server.requests) == sorted([typed, typed, pasted, pasted])


# -- item 6: a turn with no answer is not sent again; a refusal says so ----------------------


def test_failed_turn_is_not_merged_into_the_next_question(env: dict[str, str], server: LoopbackServer) -> None:
    server.add(Reply.json(500, {"error": {"message": "upstream broke", "type": "server_error"}}, path="/deep/"))
    server.add(deep("answered"), deep("next"))
    child = spawn(env)
    child.send("my question\r")
    child.expect("upstream broke")
    child.expect("r1 ›")
    child.send("my question\r")
    child.expect("answered")
    child.expect("r1 ›")
    child.send("/history\r")
    child.expect(r"2\. r1 \[error\]")  # still on record
    child.expect("r1 ›")
    child.send("thanks\r")
    child.expect("next")
    child.expect("r1 ›")
    finish(child)
    assert texts(server.requests[1]) == [("user", "my question")]
    assert texts(server.requests[2]) == [("user", "my question"), ("assistant", "answered"), ("user", "thanks")]


def test_anthropic_refusal_is_explained_offers_undo_and_is_not_resent(
    env: dict[str, str], server: LoopbackServer
) -> None:
    details = {"type": "refusal", "category": None,
               "explanation": "This request asks for \x1b[31mhelp\x1b[0m I cannot give."}
    server.add(anthropic(text="hello back"), anthropic(stop_reason="refusal", stop_details=details),
               anthropic(text="sure"))
    child = spawn(env, "-m", "hy", prompt="hy ›")
    child.send("hello\r")
    child.expect("hello back")
    child.expect("hy ›")
    child.send("forbidden thing\r")
    child.expect(r"declined to continue this answer \(refusal\): This request asks for")
    child.expect(r" \[31mhelp\[0m I")  # the provider's escape codes arrive defused
    child.expect(r"cannot give\.")  # (the line wraps at 100 columns)
    child.expect("/undo removes it")
    child.expect("hy ›")
    child.send("something else\r")
    child.expect("sure")
    child.expect("hy ›")
    finish(child)
    assert texts(server.requests[2]) == [("user", "hello"), ("assistant", "hello back"), ("user", "something else")]


def test_gemini_blocked_prompt_is_not_resent(env: dict[str, str], server: LoopbackServer) -> None:
    def frames(*objs: dict) -> Reply:
        return Reply(chunks=[f"data: {json.dumps(o)}\r\n\r\n".encode() for o in objs], path="/gem/")

    def said(text: str) -> Reply:
        return frames({"candidates": [{"content": {"role": "model", "parts": [{"text": text}]},
                                       "finishReason": "STOP", "index": 0}],
                       "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 2}})

    server.add(frames({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 9}}),
               said("fine answer"), said("second"))
    child = spawn(env, "-m", "gem", prompt="gem ›")
    child.send("blocked prompt\r")
    child.expect(r"blocked: Gemini refused the prompt \(SAFETY\)")
    child.expect("/undo removes it")
    child.expect("gem ›")
    child.send("/history\r")
    child.expect(r"2\. gem \[refused\]")  # on record, marked
    child.expect("gem ›")
    child.send("harmless prompt\r")
    child.expect("fine answer")
    child.expect("gem ›")
    child.send("more\r")
    child.expect("second")
    child.expect("gem ›")
    finish(child)
    assert texts(server.requests[1]) == [("user", "harmless prompt")]
    assert texts(server.requests[2]) == [("user", "harmless prompt"), ("model", "fine answer"), ("user", "more")]


def test_retry_cut_by_length_keeps_the_earlier_answer_and_says_so(
    env: dict[str, str], server: LoopbackServer
) -> None:
    cut = Reply.sse(
        {"choices": [{"index": 0, "delta": {"content": "partial"}, "finish_reason": None}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}, path="/deep/")
    server.add(deep("GOOD"), cut, deep("next"))
    proc = subprocess.run([EXE, "chat"], input="question\n/retry\ngo on\n", env=env, capture_output=True,
                          text=True, timeout=60)
    assert "did not finish; the earlier answer is kept" in proc.stdout + proc.stderr
    assert texts(server.requests[2]) == [("user", "question"), ("assistant", "GOOD"), ("user", "go on")]
