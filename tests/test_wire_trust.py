"""Text from the wire that must not break an answer: split surrogates, typed content parts, empty
answers, a BOM, absurd usage, keep-alive-only servers, extra choices and abnormal finishes.

Each test plays real bytes from a loopback server through the installed code paths (CliRunner on
`ask`/`compare`, or transport.stream for the protocols), as a user or a caller would meet them.
"""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelswitch.cli.main import app
from modelswitch.conversation import Conversation, Message
from modelswitch.events import Done, Notice, ReasoningDelta, TextDelta, Usage
from modelswitch.providers import get_protocol
from modelswitch.providers.base import Target
from modelswitch.ui.compare import CompareView
from modelswitch.providers.transport import stream
from tests.loopback import LoopbackServer, Reply

GRIN = "\U0001f600"  # 😀, "\ud83d\ude00" in UTF-16


def delta(content: object = None, finish: str | None = None, index: int = 0, **extra: object) -> dict:
    d: dict = dict(extra)
    if content is not None:
        d["content"] = content
    return {"choices": [{"index": index, "delta": d, "finish_reason": finish}]}


def stop(finish: str = "stop", usage: dict | None = None) -> dict:
    return {"choices": [{"index": 0, "delta": {}, "finish_reason": finish}],
            "usage": usage or {"prompt_tokens": 3, "completion_tokens": 2}}


@pytest.fixture
def cfg(tmp_path: Path, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    p = tmp_path / "ms.toml"
    p.write_text(f"""
default = "m"
[providers.loop]
base_url = "{server.url}/v1"
api_key_env = "LOOP_KEY"
retries = 0
timeout = 1
[providers.loop.models.m]
id = "loop-model"
[providers.loop.models.other]
id = "other-model"
[providers.claude]
type = "anthropic"
base_url = "{server.url}"
api_key_env = "LOOP_KEY"
retries = 0
[providers.claude.models.c]
id = "claude-x"
""", "utf-8")
    monkeypatch.setenv("LOOP_KEY", "sk-loop-0123456789abcdef")
    monkeypatch.setenv("MODELSWITCH_CONFIG", str(p))
    return p


def ask(*args: str):  # noqa: ANN201
    return CliRunner().invoke(app, ["ask", *args], catch_exceptions=False)


def stored_turns(tmp_path: Path) -> list[tuple[str, str, str]]:
    db = next((tmp_path / "data").rglob("*.db"))
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT role, text, status FROM turns ORDER BY session, idx").fetchall()


# --- 8: UTF-16 surrogate halves ---------------------------------------------------------------


def test_emoji_split_into_surrogate_halves_is_rejoined_saved_and_sent_back(
    cfg: Path, server: LoopbackServer, tmp_path: Path
) -> None:
    # json.dumps writes "\ud83d" and "\ude00" as escapes, as a JavaScript proxy does.
    server.add(Reply.sse(delta("hi \ud83d"), delta("\ude00 there"), stop()), Reply.say("again"))
    first = ask("--session", "s", "hello")
    assert first.exit_code == 0, first.output
    assert first.stdout == f"hi {GRIN} there\n"
    second = ask("--session", "s", "more")  # the history went back as valid UTF-8
    assert second.exit_code == 0, second.output
    assert server.requests[1].json["messages"][1] == {"role": "assistant", "content": f"hi {GRIN} there"}
    assert stored_turns(tmp_path)[1] == ("assistant", f"hi {GRIN} there", "complete")


def test_a_lone_surrogate_half_becomes_a_replacement_character(
    cfg: Path, server: LoopbackServer, tmp_path: Path
) -> None:
    server.add(Reply.sse(delta("a\ud83d"), delta("b\ude00c"), delta("end\ud83d"), stop()))
    result = ask("--session", "s", "hello")
    assert result.exit_code == 0, result.output
    assert result.stdout == "a\ufffdb\ufffdcend\ufffd\n"
    assert stored_turns(tmp_path)[1][1] == "a\ufffdb\ufffdcend\ufffd"


def anthropic_reply(texts: list[str], stop_reason: str = "end_turn") -> Reply:
    """A Messages API stream of one text block, as the API documents its event sequence."""
    events = [
        {"type": "message_start", "message": {"usage": {"input_tokens": 3, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        *({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}} for t in texts),
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": stop_reason}, "usage": {"output_tokens": 2}},
        {"type": "message_stop"},
    ]
    return Reply(chunks=[f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events])


SPLIT_STREAMS = {
    "openai": Reply.sse(delta("x\ud83d"), delta("\ude00y"), stop()),
    "anthropic": anthropic_reply(["x\ud83d", "\ude00y"]),
    "gemini": Reply(chunks=[
        f"data: {json.dumps(e)}\r\n\r\n".encode() for e in [
            {"candidates": [{"content": {"parts": [{"text": "x\ud83d"}], "role": "model"}}]},
            {"candidates": [{"content": {"parts": [{"text": "\ude00y"}], "role": "model"}, "finishReason": "STOP"}],
             "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2}},
        ]
    ]),
    "ollama": Reply(content_type="application/x-ndjson", chunks=[
        (json.dumps(e) + "\n").encode() for e in [
            {"message": {"role": "assistant", "content": "x\ud83d"}, "done": False},
            {"message": {"role": "assistant", "content": "\ude00y"}, "done": False},
            {"message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "stop",
             "prompt_eval_count": 3, "eval_count": 2},
        ]
    ]),
}


@pytest.mark.parametrize("protocol", sorted(SPLIT_STREAMS))
def test_every_protocol_rejoins_split_halves_and_never_sends_a_lone_one(
    protocol: str, server: LoopbackServer
) -> None:
    server.add(SPLIT_STREAMS[protocol])
    target = Target(protocol, server.url + ("/v1" if protocol == "openai" else ""), "model-x")
    # An old session (or an imported one) may hold a lone half: the request must still go out.
    history = Conversation().add(Message("user", "was \ud83d cut"))
    events = list(stream(get_protocol(protocol), target, history))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == f"x{GRIN}y"
    assert "was \ufffd cut" in server.requests[0].raw.decode("utf-8")


def test_the_store_never_receives_a_lone_surrogate(tmp_path: Path) -> None:
    from modelswitch.store.db import Store

    with Store.open(tmp_path / "s.db") as store:
        info = store.create_session(name="x")
        store.append(info.id, Message("user", "q \udc00"), Message("assistant", "a \ud83d", reasoning="r \ud83d"))
        _, turns = store.transcript(info.id)
    assert [(t.message.text, t.message.reasoning) for t in turns] == [("q \ufffd", ""), ("a \ufffd", "r \ufffd")]


def test_a_lone_half_in_an_error_body_does_not_crash_the_json_output(
    cfg: Path, server: LoopbackServer, tmp_path: Path
) -> None:
    server.add(Reply.json(400, {"error": {"message": "bad \ud83d input"}}))
    result = ask("--json", "--session", "s", "hi")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"] == "loop/loop-model: rejected the request (400): bad \ufffd input"
    assert stored_turns(tmp_path) == []  # refused before any answer: no session is made for it


# --- 9: typed content parts (Mistral's Magistral) ---------------------------------------------


def test_magistral_thinking_and_text_parts_become_reasoning_and_answer(cfg: Path, server: LoopbackServer) -> None:
    server.add(Reply.fixture("mistral_magistral_stream_thinking_content_parts.sse"))
    result = ask("--json", "What is 17 times 2?")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["content"] == "17 × 2 = **34**."
    assert out["reasoning"] == "The user asks for 17 multiplied by 2 is 34, since 17 + 17 = 34."
    assert (out["status"], out["finish_reason"]) == ("complete", "stop")
    assert out["usage"]["output_tokens"] == 49


def test_a_content_shape_the_parser_does_not_know_is_a_notice_not_silence(
    cfg: Path, server: LoopbackServer
) -> None:
    server.add(Reply.sse(
        delta([{"type": "image_url", "image_url": {"url": "data:..."}}]),
        delta([{"type": "image_url", "image_url": {"url": "data:..."}}, {"type": "text", "text": "seen"}]),
        delta({"odd": True}),
        {"choices": [{"index": 0, "delta": ["not", "an", "object"], "finish_reason": None}]},
        stop(),
    ))
    result = ask("hi")
    assert result.exit_code == 0, result.output
    assert result.stdout == "seen\n"
    assert result.stderr.count("content part of type 'image_url'") == 1  # told once, not per chunk
    assert "content of an unknown shape (dict)" in result.stderr
    assert "a delta of an unknown shape (list)" in result.stderr


# --- 10: no answer text -----------------------------------------------------------------------


@pytest.mark.parametrize("reply", [
    Reply(chunks=[b"data: [DONE]\n\n"]),
    Reply.sse(delta(None, reasoning_content="thinking only"), stop()),
    Reply.sse(delta("  \n"), stop("length")),
], ids=["only-done", "reasoning-only", "whitespace-cut"])
def test_an_answer_without_text_is_an_error_on_every_ask_surface(
    reply: Reply, cfg: Path, server: LoopbackServer, tmp_path: Path
) -> None:
    server.add(reply, reply, reply)
    text = ask("--session", "s", "hi")
    assert text.exit_code == 1
    assert text.stderr.strip().splitlines()[-1] == "error: m returned no answer text"
    as_json = ask("--json", "hi")
    assert as_json.exit_code == 1
    out = json.loads(as_json.stdout)
    assert (out["status"], out["error"]) == ("error", "m returned no answer text")
    lines = [json.loads(line) for line in ask("--jsonl", "hi").stdout.splitlines()]
    assert lines[-1] == {"type": "error", "message": "m returned no answer text"}
    # Saved when anything arrived, but never as a complete answer; a stream with nothing in it
    # makes no session at all (`chat -c` must not resume an exchange that never started).
    assert all(status == "error" for role, _, status in stored_turns(tmp_path) if role == "assistant")


def test_compare_shows_an_empty_answer_as_that_lanes_error(cfg: Path, server: LoopbackServer) -> None:
    server.add(Reply(chunks=[b"data: [DONE]\n\n"]), Reply(chunks=[b"data: [DONE]\n\n"]))
    result = CliRunner().invoke(app, ["compare", "-m", "m", "-m", "other", "hi"], catch_exceptions=False)
    assert result.exit_code == 1
    assert "error: m returned no answer text" in result.stderr
    assert "error: other returned no answer text" in result.stderr


# --- 11: BOM, absurd usage --------------------------------------------------------------------


def test_a_bom_before_the_first_event_loses_nothing(cfg: Path, server: LoopbackServer) -> None:
    body = b"".join(Reply.sse(delta("first"), delta(" second"), stop()).chunks)
    server.add(Reply(chunks=[b"\xef\xbb", b"\xbf" + body[:9], body[9:]]))
    result = ask("hi")
    assert result.exit_code == 0, result.output
    assert result.stdout == "first second\n"


def test_a_huge_integer_in_usage_is_unknown_not_a_crash(cfg: Path, server: LoopbackServer, tmp_path: Path) -> None:
    huge = {"prompt_tokens": 10**30, "completion_tokens": 5, "completion_tokens_details": {"reasoning_tokens": 10**400}}
    server.add(Reply.sse(delta("fine"), stop(usage=huge)))
    result = ask("--session", "s", "--json", "hi")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["content"] == "fine"
    # Unknown, not 0 input tokens and a definite (wrong) cost on this priced model.
    assert out["usage"] is None and out["cost"] is None
    assert stored_turns(tmp_path)[1] == ("assistant", "fine", "complete")
    assert Usage(10**30, -1, 3, True).unknown  # type: ignore[arg-type]
    assert not Usage(1, 2, 3, 0).unknown


def test_absurd_ollama_counters_are_unknown_not_an_overflow() -> None:
    line = {"message": {"role": "assistant", "content": "ok"}, "done": True, "done_reason": "stop",
            "prompt_eval_count": 3, "eval_count": 10**400, "eval_duration": 10**400}
    events = list(get_protocol("ollama").parse_stream([json.dumps(line).encode() + b"\n"], Target("o", "http://h", "m")))
    assert events[-1] == Done("stop", None)
    assert isinstance(events[-2], Usage) and events[-2].unknown


# --- 14: keep-alives forever ------------------------------------------------------------------


def test_keep_alive_comments_alone_end_as_timed_out(cfg: Path, server: LoopbackServer) -> None:
    # timeout = 1 in the config; comments every 0.1 s reset httpx's own read timeout each time.
    server.add(Reply(chunks=[b": keep-alive\n\n"] * 60, delay=0.1))
    result = ask("hi")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "timed out" in lines[0] and "keep-alives for 1 s" in lines[0], lines


@pytest.mark.parametrize("split", [False, True])
def test_anthropic_pings_alone_end_as_timed_out(cfg: Path, server: LoopbackServer, split: bool) -> None:
    # A ping is the API's keep-alive: after message_start, pings every 0.25 s for 3 s must not
    # count as progress past the 1 s timeout (they used to run until the server gave up).
    cfg.write_text(cfg.read_text("utf-8").replace(
        'retries = 0\n[providers.claude.models.c]', 'retries = 0\ntimeout = 1\n[providers.claude.models.c]'), "utf-8")
    start = {"type": "message_start", "message": {"usage": {"input_tokens": 3, "output_tokens": 1}}}
    ping = b'event: ping\ndata: {"type": "ping"}\n\n'
    pings = [ping[:9], ping[9:30], ping[30:]] * 12 if split else [ping] * 12
    head = f"event: message_start\ndata: {json.dumps(start)}\n\n".encode()
    server.add(Reply(chunks=[head, *pings], delay=0.25 / (3 if split else 1)))
    result = ask("-m", "c", "hi")
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "timed out" in lines[0] and "keep-alives for 1 s" in lines[0], lines


def test_a_one_byte_dribble_ends_as_timed_out_and_keeps_the_partial_answer(
    cfg: Path, server: LoopbackServer
) -> None:
    head = b"".join(Reply.sse(delta("partial"), done=False).chunks)
    dribble = [bytes([b]) for b in b'data: {"choices":[{"index":0,"delta":{"content":"never"}}]}\n\n']
    server.add(Reply(chunks=[head, *dribble], delay=0.25))
    result = ask("hi")
    assert result.exit_code == 1
    assert result.stdout == "partial\n"
    assert "read timed out mid-answer" in result.stderr and "never" not in result.stdout


def test_slow_but_real_events_are_not_a_keep_alive_timeout(cfg: Path, server: LoopbackServer) -> None:
    pieces = [delta(f"{i} ") for i in range(6)]
    server.add(Reply.sse(*pieces, stop(), delay=0.3))  # 2 s in all, never 1 s without an event
    result = ask("hi")
    assert result.exit_code == 0, result.output
    assert result.stdout == "0 1 2 3 4 5 \n"


# --- choices, refusal, tool_calls, duplicated reasoning ---------------------------------------


def test_a_second_choice_is_not_appended_to_the_answer(cfg: Path, server: LoopbackServer) -> None:
    server.add(Reply.sse(
        {"choices": [{"index": 0, "delta": {"content": "one"}, "finish_reason": None},
                     {"index": 1, "delta": {"content": "TWO"}, "finish_reason": None}]},
        delta("TWO again", index=1),
        delta(" done"),
        stop(),
    ))
    result = ask("hi")
    assert result.exit_code == 0, result.output
    assert result.stdout == "one done\n"
    assert result.stderr.count("a second choice") == 1


def test_tool_calls_finish_without_tools_is_told_and_named_in_status(cfg: Path, server: LoopbackServer) -> None:
    server.add(Reply.sse(delta("Let me look that up."), stop("tool_calls")))
    result = ask("--json", "hi")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert (out["status"], out["finish_reason"]) == ("tool_calls", "tool_calls")
    assert "asked to call a tool, but none was offered" in result.stderr


def test_reasoning_fields_that_differ_only_in_whitespace_are_shown_once(cfg: Path, server: LoopbackServer) -> None:
    server.add(Reply.sse(
        delta(None, reasoning_content="Step one.\n", reasoning="Step one."),
        delta(None, reasoning_content=" then two", reasoning="then two"),
        delta("answer"),
        stop(),
    ))
    out = json.loads(ask("--json", "hi").stdout)
    assert out["reasoning"] == "Step one.\n then two"


# --- abnormal finishes: every surface, and --json's status ------------------------------------


def test_deepseek_insufficient_system_resource_is_a_cut_answer(cfg: Path, server: LoopbackServer) -> None:
    cut = Reply.sse(delta("half an ans"), stop("insufficient_system_resource"))
    server.add(cut, cut)
    result = ask("--json", "hi")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert (out["status"], out["finish_reason"]) == ("cut", "insufficient_system_resource")
    assert "cut the answer short (insufficient_system_resource)" in result.stderr
    lines = [json.loads(line) for line in ask("--jsonl", "hi").stdout.splitlines()]
    assert any(e["type"] == "notice" and "cut the answer short" in e["text"] for e in lines)
    assert lines[-1]["type"] == "done" and lines[-1]["status"] == "cut"


def test_anthropic_pause_turn_is_a_notice_and_status_paused(cfg: Path, server: LoopbackServer) -> None:
    server.add(anthropic_reply(["Searching"], "pause_turn"))
    result = ask("-m", "c", "--json", "hi")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert (out["status"], out["finish_reason"]) == ("paused", "pause_turn")
    assert "paused its turn (pause_turn)" in result.stderr


def test_plain_compare_output_says_an_answer_hit_max_tokens(cfg: Path, server: LoopbackServer) -> None:
    server.add(Reply.sse(delta("cut sho"), stop("length")), Reply.say("whole"))
    result = CliRunner().invoke(app, ["compare", "-m", "m", "-m", "other", "hi"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "hit max_tokens" in result.stderr


def test_the_final_compare_view_keeps_the_max_tokens_notice() -> None:
    out = io.StringIO()
    view = CompareView(["a", "b"], terminal=True, color=False, out=out, width=100)
    view.text(0, "cut sho")
    view.notice(0, "stopped: the answer hit max_tokens")
    view.text(1, "whole")
    view.finish(0, Message("assistant", "cut sho", finish_reason="length"), None, None)
    view.finish(1, Message("assistant", "whole"), None, None)
    view.close()
    final = out.getvalue().rsplit("\x1b[?25h", 1)[-1]  # what stays once the live frame is gone
    assert "stopped: the answer hit max_tokens" in final


def test_events_from_a_split_stream_keep_their_order() -> None:
    # The surrogate filter holds a half back; nothing else may move past it.
    from modelswitch.providers.base import valid_text

    got = list(valid_text([TextDelta("a\ud83d"), ReasoningDelta("r"), Notice("n"), TextDelta("\ude00"), Done("stop")]))
    assert got == [TextDelta("a"), ReasoningDelta("r"), Notice("n"), TextDelta(GRIN), Done("stop")]
