"""Head to head: cost arithmetic for every protocol's usage shape, and /compare in a real terminal."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from modelswitch.config.load import Price
from modelswitch.events import Usage
from modelswitch.config.pricing import Cost, cost_of
from modelswitch.providers import get_protocol
from modelswitch.providers.base import Target
from tests.loopback import LoopbackServer, Reply, command_env

say = Reply.say

EXE = shutil.which("modelswitch", path=str(Path(sys.executable).parent))


def usage_from(protocol: str, body: bytes) -> Usage:
    events = list(get_protocol(protocol).parse_stream([body], Target("p", "http://x", "m")))
    return [e for e in events if isinstance(e, Usage)][-1]


def sse(*objs: object, done: bool = False) -> bytes:
    out = b"".join(f"data: {json.dumps(o)}\n\n".encode() for o in objs)
    return out + (b"data: [DONE]\n\n" if done else b"")


def anthropic_events(*pairs: tuple[str, dict]) -> bytes:
    return b"".join(f"event: {n}\ndata: {json.dumps(d)}\n\n".encode() for n, d in pairs)


def test_cost_deepseek_cache_hits_and_reasoning() -> None:
    body = sse({"choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1000, "completion_tokens": 500, "prompt_cache_hit_tokens": 800,
                          "prompt_cache_miss_tokens": 200, "completion_tokens_details": {"reasoning_tokens": 300}}},
               done=True)
    u = usage_from("openai", body)
    assert u == Usage(1000, 500, 300, 800)
    # 200 uncached x 2 + 800 cached x 0.2 + 500 output (reasoning included) x 3, per million
    assert cost_of(u, Price(2.0, 3.0, "CNY", cached_input=0.2)) == Cost(0.00206, "CNY")


def test_cost_openai_cached_prompt_tokens() -> None:
    body = sse({"choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": "stop"}]},
               {"choices": [], "usage": {"prompt_tokens": 2000, "completion_tokens": 100,
                                         "prompt_tokens_details": {"cached_tokens": 1024}}}, done=True)
    u = usage_from("openai", body)
    assert (u.input_tokens, u.cached_tokens, u.output_tokens) == (2000, 1024, 100)
    # 976 x 0.15 + 1024 x 0.075 + 100 x 0.6 = 283.2 per million
    assert cost_of(u, Price(0.15, 0.6, "USD", cached_input=0.075)) == Cost(0.0002832, "USD")


def test_cost_anthropic_cache_reads() -> None:
    body = anthropic_events(
        ("message_start", {"type": "message_start", "message": {
            "id": "m", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5", "content": [],
            "usage": {"input_tokens": 100, "cache_read_input_tokens": 5000, "cache_creation_input_tokens": 0,
                      "output_tokens": 1}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "x"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 400}}),
        ("message_stop", {"type": "message_stop"}),
    )
    u = usage_from("anthropic", body)
    assert (u.input_tokens, u.cached_tokens, u.output_tokens) == (5100, 5000, 400)
    # 100 x 3 + 5000 x 0.3 + 400 x 15 = 7800 per million
    assert cost_of(u, Price(3.0, 15.0, "USD", cached_input=0.3)) == Cost(0.0078, "USD")


def test_cost_gemini_thoughts_billed_as_output() -> None:
    body = b"data: " + json.dumps({
        "candidates": [{"content": {"role": "model", "parts": [{"text": "x"}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 3000, "cachedContentTokenCount": 2000, "candidatesTokenCount": 100,
                          "thoughtsTokenCount": 400, "totalTokenCount": 3500},
    }).encode() + b"\r\n\r\n"
    u = usage_from("gemini", body)
    assert u == Usage(3000, 500, 400, 2000)
    # 1000 x 1.25 + 2000 x 0.31 + 500 x 10 = 6870 per million
    assert cost_of(u, Price(1.25, 10.0, "USD", cached_input=0.31)) == Cost(0.00687, "USD")


def test_unknown_price_is_unknown_cost() -> None:
    assert cost_of(Usage(10, 10), None) is None


# --- /compare in a pseudo-terminal -----------------------------------------------------------

@pytest.fixture
def env(tmp_path: Path, server: LoopbackServer) -> dict[str, str]:
    cfg = tmp_path / "config.toml"
    cfg.write_text(f"""
default = "fast"
[providers.f]
base_url = "{server.url}/fast/v1"
api_key_env = "K"
retries = 0
[providers.f.models.fast]
id = "fast-model"
price = {{ input = 1.0, output = 2.0, currency = "USD" }}
[providers.s]
base_url = "{server.url}/slow/v1"
api_key_env = "K"
retries = 0
[providers.s.models.slow]
id = "slow-model"
""")
    return command_env(cfg, tmp_path, K="sk-k-0123456789")


@pytest.mark.pty
@pytest.mark.skipif(EXE is None, reason="the modelswitch console script is not installed")
def test_compare_columns_keep_and_follow_up(env: dict[str, str], server: LoopbackServer) -> None:
    pexpect = pytest.importorskip("pexpect")
    server.add(say("ALPHA-fast-answer", path="/fast/"))
    server.add(say("BETA-slow-answer", delay=0.4, path="/slow/"))
    server.add(say("follow-up answer", path="/fast/"))
    child = pexpect.spawn(EXE, ["chat"], env=env, encoding="utf-8", dimensions=(30, 120), timeout=20)
    child.expect("fast ›")
    child.send("/compare fast slow which is better?\r")
    # Side by side: both answers on one screen line, each under its own column.
    child.expect(r"ALPHA-fast-answer[^\n]*BETA-slow-answer")
    child.expect(r"fast · [^\n]*4 tokens · \$0\.0000[^\n]*slow · ")
    child.expect(r"/keep N puts one answer into the conversation: 1 \(fast\), 2 \(slow\)")
    child.send("/keep 2\r")
    child.expect("kept the answer from slow")
    child.send("and now?\r")
    child.expect("follow-up answer")
    child.expect("fast ›")
    child.send("/exit\r")
    child.expect(pexpect.EOF)
    fast1, slow1, fast2 = (server.requests[0], server.requests[1], server.requests[2]) \
        if server.requests[0].path.startswith("/fast/") else (server.requests[1], server.requests[0], server.requests[2])
    assert fast1.json["messages"] == slow1.json["messages"] == [{"role": "user", "content": "which is better?"}]
    assert fast2.json["messages"] == [
        {"role": "user", "content": "which is better?"},
        {"role": "assistant", "content": "BETA-slow-answer"},
        {"role": "user", "content": "and now?"},
    ]


@pytest.mark.skipif(EXE is None, reason="the modelswitch console script is not installed")
def test_compare_one_model_503_the_other_answers(env: dict[str, str], server: LoopbackServer) -> None:
    server.add(say("fine answer", path="/fast/"))
    server.add(Reply.json(503, {"error": {"message": "Server is busy"}}, path="/slow/"))
    proc = subprocess.run([EXE, "compare", "-m", "fast", "-m", "slow", "--json", "hi"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    results = json.loads(proc.stdout)["results"]
    assert [r["alias"] for r in results] == ["fast", "slow"]
    assert results[0]["content"] == "fine answer" and results[0]["error"] is None
    assert results[0]["cost"] == {"amount": pytest.approx((10 * 1.0 + 4 * 2.0) / 1e6), "currency": "USD"}
    assert results[1]["content"] == "" and results[1]["error"] == "s/slow-model: server busy (503): Server is busy"

    server.add(say("fine again", path="/fast/"))
    server.add(Reply.json(503, {"error": {"message": "Server is busy"}}, path="/slow/"))
    piped = subprocess.run([EXE, "compare", "-m", "fast", "-m", "slow", "hi"], env=env, capture_output=True,
                           text=True, timeout=60)
    assert piped.stdout.startswith("== fast ==\nfine again\n")
    assert "== slow ==" in piped.stdout
    assert "error: s/slow-model: server busy (503)" in piped.stderr


@pytest.mark.skipif(EXE is None, reason="the modelswitch console script is not installed")
def test_a_piped_chat_that_only_compared_keeps_the_answers(env: dict[str, str], server: LoopbackServer) -> None:
    # No /keep, then EOF: both paid answers are saved, and the lists say what the session holds.
    server.add(say("ALPHA-fast-answer", path="/fast/"))
    server.add(say("BETA-slow-answer", path="/slow/"))
    chat = subprocess.run([EXE, "chat"], input="/compare fast slow what is up\n/history\n", env=env,
                          capture_output=True, text=True, timeout=60)
    assert chat.returncode == 0, chat.stderr
    assert "no turns yet; 2 compared answers await /keep" in chat.stderr
    resumed = subprocess.run([EXE, "chat", "-c"], input="/history\n", env=env, capture_output=True, text=True,
                             timeout=60)
    assert "no turns yet; 2 answers not kept (`modelswitch sessions show` lists them)" in resumed.stderr
    listed = subprocess.run([EXE, "sessions", "list", "--json"], env=env, capture_output=True, text=True, timeout=60)
    (only,) = json.loads(listed.stdout)
    assert (only["turns"], only["alternates"]) == (0, 2)
    table = subprocess.run([EXE, "sessions", "list"], env=env, capture_output=True, text=True, timeout=60)
    assert "0 (+2 not kept)" in table.stdout
    shown = subprocess.run([EXE, "sessions", "show", str(only["id"])], env=env, capture_output=True, text=True,
                           timeout=60)
    assert "0 turns, 2 answers not kept" in shown.stdout
    assert "ALPHA-fast-answer" in shown.stdout and "BETA-slow-answer" in shown.stdout
    stats = subprocess.run([EXE, "stats"], env=env, capture_output=True, text=True, timeout=60)
    assert "no answers saved yet" not in stats.stdout + stats.stderr
    assert "fast" in stats.stdout and "slow" in stats.stdout
