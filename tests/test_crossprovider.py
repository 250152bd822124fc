"""One conversation across DeepSeek-R1, Claude, Gemini, Ollama and back, every request accepted.

Each step goes through the real protocol classes and the real transport to a loopback server that
validates like the receiving API (tests/validators.py). The validators themselves are shown to
reject the mistakes they exist to catch, so a pass here means something.
"""

from __future__ import annotations

import json

import pytest

from modelswitch.conversation import Conversation, Message, ModelRef
from modelswitch.events import ReasoningDelta, ReplayState, TextDelta, Usage
from modelswitch.providers import get_protocol
from modelswitch.providers.base import Target
from tests.loopback import LoopbackServer, Received
from tests.validators import FakeAnthropic, FakeAPI, FakeDeepSeek, FakeGemini, FakeOllama, drive, router

SYSTEM = "Answer in one line."


class World:
    """Four validating APIs behind one loopback server, and targets pointing at them."""

    def __init__(self, server: LoopbackServer) -> None:
        self.anthropic = FakeAnthropic(redacted=True)
        self.gemini = FakeGemini()
        self.ollama = FakeOllama()
        self.deepseek = FakeDeepSeek()
        self.apis: list[FakeAPI] = [self.anthropic, self.gemini, self.ollama, self.deepseek]
        server.default = router(*self.apis)
        url = server.url
        self.r1 = Target("deepseek", url, "deepseek-reasoner", api_key="sk-ds-test")
        self.claude = Target("anthropic", url, "claude-sonnet-4-5", api_key="sk-ant-test", reasoning=2048)
        self.haiku = Target("anthropic", url, "claude-haiku-4-5", api_key="sk-ant-test", reasoning=True)
        self.gemini_t = Target("gemini", url, "gemini-2.5-flash", api_key="gm-test", reasoning="low")
        self.qwen = Target("ollama", url, "qwen3:8b", reasoning=True)

    def turn(self, conv: Conversation, prompt: str, target: Target, protocol: str) -> tuple[Conversation, Message, dict]:
        """Send one user turn; return the grown conversation, the answer and the accepted request."""
        api = self.api_for(protocol)
        before = len(api.accepted)
        conv = conv.add(Message("user", prompt))
        events = drive(get_protocol(protocol), target, conv)
        assert all(not a.rejected for a in self.apis), [a.rejected for a in self.apis]
        assert len(api.accepted) == before + 1
        answer = Message(
            "assistant",
            "".join(e.text for e in events if isinstance(e, TextDelta)),
            reasoning="".join(e.text for e in events if isinstance(e, ReasoningDelta)),
            model=ModelRef(target.provider, target.model_id, protocol),
            replay=tuple(e for e in events if isinstance(e, ReplayState)),
            usage=next(e for e in events if isinstance(e, Usage)),
        )
        assert answer.text and answer.reasoning  # every step here is a reasoning model answering
        return conv.add(answer), answer, api.accepted[-1]

    def api_for(self, protocol: str) -> FakeAPI:
        return {"anthropic": self.anthropic, "gemini": self.gemini, "ollama": self.ollama, "openai": self.deepseek}[protocol]


def roles(items: list[dict], key: str = "role") -> list[str]:
    return [m[key] for m in items]


def assert_absent(body: dict, *needles: str) -> None:
    raw = json.dumps(body, ensure_ascii=False)
    for needle in needles:
        assert needle not in raw, f"{needle!r} leaked into {raw[:300]}"


def signatures(message: Message) -> list[str]:
    out = []
    for state in message.replay:
        data = json.loads(state.data)
        out += [v for k, v in data.items() if k in ("signature", "data")]
        out += [p["thoughtSignature"] for p in data.get("parts", []) if "thoughtSignature" in p]
    return out


def test_round_trip_across_all_four_protocols(server: LoopbackServer) -> None:
    w = World(server)
    conv = Conversation(SYSTEM)

    # 1. DeepSeek-R1 starts: system first, nothing else to carry.
    conv, r1_answer, body = w.turn(conv, "q1", w.r1, "openai")
    assert body["messages"] == [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "q1"}]

    # 2. Claude with thinking: system top-level, R1's chain of thought nowhere.
    conv, claude_answer, body = w.turn(conv, "q2", w.claude, "anthropic")
    assert body["system"] == SYSTEM and roles(body["messages"]) == ["user", "assistant", "user"]
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048} and body["max_tokens"] > 2048
    assert body["messages"][1]["content"] == [{"type": "text", "text": r1_answer.text}]
    assert_absent(body, r1_answer.reasoning, "reasoning_content")
    assert len(claude_answer.replay) == 2 and {r.protocol for r in claude_answer.replay} == {"anthropic"}

    # 3. Gemini: user/model roles, systemInstruction, no Claude thinking or signatures.
    conv, gemini_answer, body = w.turn(conv, "q3", w.gemini_t, "gemini")
    assert body["systemInstruction"] == {"parts": [{"text": SYSTEM}]}
    assert roles(body["contents"]) == ["user", "model", "user", "model", "user"]
    assert_absent(body, r1_answer.reasoning, claude_answer.reasoning, *signatures(claude_answer))

    # 4. Ollama: system as the first message; nobody's reasoning or signatures.
    conv, qwen_answer, body = w.turn(conv, "q4", w.qwen, "ollama")
    assert roles(body["messages"]) == ["system", "user", "assistant", "user", "assistant", "user", "assistant", "user"]
    assert body["messages"][0] == {"role": "system", "content": SYSTEM} and body["think"] is True
    assert_absent(body, r1_answer.reasoning, claude_answer.reasoning, gemini_answer.reasoning,
                  *signatures(claude_answer), *signatures(gemini_answer), "thinking")

    # 5. Back to DeepSeek: no reasoning_content (a 400 there), strict alternation kept.
    conv, _, body = w.turn(conv, "q5", w.r1, "openai")
    assert roles(body["messages"]) == ["system"] + ["user", "assistant"] * 4 + ["user"]
    assert_absent(body, "reasoning_content", r1_answer.reasoning, claude_answer.reasoning, gemini_answer.reasoning,
                  qwen_answer.reasoning, *signatures(claude_answer), *signatures(gemini_answer))

    # 6. Back to the same Claude: its own signed thinking goes first in its own turn, verified.
    conv, _, body = w.turn(conv, "q6", w.claude, "anthropic")
    msgs = body["messages"]
    assert roles(msgs) == ["user", "assistant"] * 5 + ["user"]
    own = msgs[3]["content"]
    assert [b["type"] for b in own] == ["thinking", "redacted_thinking", "text"]
    assert own[0]["thinking"] == claude_answer.reasoning and own[-1]["text"] == claude_answer.text
    for i, m in enumerate(msgs):
        if m["role"] == "assistant" and i != 3:
            assert [b["type"] for b in m["content"]] == ["text"]
    assert_absent(body, *signatures(gemini_answer), gemini_answer.reasoning, r1_answer.reasoning)

    # 7. Another Claude model: Sonnet's signatures are not valid there, so none are sent.
    conv, _, body = w.turn(conv, "q7", w.haiku, "anthropic")
    assert all(b["type"] == "text" for m in body["messages"] for b in m["content"])

    # 8. Back to the same Gemini: its own signed part returns in place, verified.
    conv, _, body = w.turn(conv, "q8", w.gemini_t, "gemini")
    signed = [p for c in body["contents"] for p in c["parts"] if "thoughtSignature" in p]
    assert [p["thoughtSignature"] for p in signed] == signatures(gemini_answer)
    assert_absent(body, *signatures(claude_answer), claude_answer.reasoning)


@pytest.mark.parametrize("which", ["r1", "claude", "gemini_t", "qwen"])
def test_a_failed_answer_in_the_middle_still_gives_valid_requests(server: LoopbackServer, which: str) -> None:
    """An errored turn is left out with its question: the retyped one goes alone, well-formed."""
    w = World(server)
    protocol = {"r1": "openai", "claude": "anthropic", "gemini_t": "gemini", "qwen": "ollama"}[which]
    failed = Message("assistant", "", reasoning="half a thought", model=ModelRef("x", "y", "gemini"), status="error")
    conv = Conversation(SYSTEM, (Message("user", "first try"), failed))
    conv, _, body = w.turn(conv, "second try", getattr(w, which), protocol)
    assert_absent(body, "half a thought")
    raw = json.dumps(body)
    assert "first try" not in raw and "second try" in raw


# -- the validators reject what the real APIs reject -----------------------------------------

A_OK = {"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
A_THINK = {**A_OK, "max_tokens": 4000, "thinking": {"type": "enabled", "budget_tokens": 2000}}
FORGED = {"type": "thinking", "thinking": "t", "signature": "EqQBforged"}
G_OK = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
D_OK = {"model": "deepseek-reasoner", "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}]}
O_OK = {"model": "qwen3:8b", "messages": [{"role": "user", "content": "hi"}]}


def _with(base: dict, **changes: object) -> dict:
    return {**base, **changes}


CASES = [
    # (api, body, status, words in the error)
    ("anthropic", A_OK, 200, ""),
    ("anthropic", _with(A_OK, messages=[{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}]), 400, "Input should be 'user' or 'assistant'"),
    ("anthropic", _with(A_OK, messages=[{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]), 400, "roles must alternate"),
    ("anthropic", {k: v for k, v in A_OK.items() if k != "max_tokens"}, 400, "max_tokens: Field required"),
    ("anthropic", _with(A_THINK, thinking={"type": "enabled", "budget_tokens": 500}), 400, "greater than or equal to 1024"),
    ("anthropic", _with(A_THINK, max_tokens=2000), 400, "`max_tokens` must be greater than `thinking.budget_tokens`"),
    ("anthropic", _with(A_THINK, temperature=0.5), 400, "`temperature` may only be set to 1"),
    ("anthropic", _with(A_OK, messages=[{"role": "user", "content": "q"}, {"role": "assistant", "content": [FORGED, {"type": "text", "text": "a"}]}, {"role": "user", "content": "q2"}]), 400, "Invalid `signature` in `thinking` block"),
    ("anthropic", _with(A_OK, messages=[{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "reasoning_content": "r"}, {"role": "user", "content": "q2"}]), 400, "Extra inputs are not permitted"),
    ("anthropic", _with(A_OK, messages=[{"role": "user", "content": "  "}]), 400, "non-whitespace text"),
    ("gemini", G_OK, 200, ""),
    ("gemini", {"contents": [{"role": "user", "parts": [{"text": "q"}]}, {"role": "assistant", "parts": [{"text": "a"}]}]}, 400, "valid role: user, model"),
    ("gemini", {"contents": [{"role": "system", "parts": [{"text": "s"}]}]}, 400, "valid role: user, model"),
    ("gemini", {"contents": [{"role": "user", "parts": [{"text": "a"}]}, {"role": "user", "parts": [{"text": "b"}]}]}, 400, "alternate between user and model"),
    ("gemini", {"contents": [{"role": "user", "parts": [{"text": ""}]}]}, 400, "empty text parameter"),
    ("gemini", {"contents": [{"role": "user", "parts": [{"text": "q"}]}, {"role": "model", "parts": [{"text": "a", "thoughtSignature": "CiIBforged"}]}, {"role": "user", "parts": [{"text": "q2"}]}]}, 400, "Corrupted thought signature"),
    ("gemini", _with(G_OK, system_prompt="s"), 400, 'Unknown name "system_prompt"'),
    ("deepseek", D_OK, 200, ""),
    ("deepseek", _with(D_OK, messages=D_OK["messages"] + [{"role": "assistant", "content": "a", "reasoning_content": "r"}, {"role": "user", "content": "q"}]), 400, "reasoning_content"),
    ("deepseek", _with(D_OK, messages=[{"role": "system", "content": "s"}, {"role": "assistant", "content": "a"}, {"role": "user", "content": "q"}]), 400, "must be a user message"),
    ("deepseek", _with(D_OK, messages=[{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]), 400, "successive user or assistant messages"),
    ("deepseek", _with(D_OK, model="deepseek-chat", messages=[{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]), 200, ""),
    ("ollama", O_OK, 200, ""),
    ("ollama", {"messages": []}, 400, "model is required"),
    ("ollama", _with(O_OK, model="llama9"), 404, "model 'llama9' not found"),
    ("ollama", _with(O_OK, model="llama3.2", think=True), 400, "does not support thinking"),
    ("ollama", _with(O_OK, think="max"), 400, "invalid think value"),
]
PATHS = {"anthropic": "/v1/messages", "gemini": "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse",
         "deepseek": "/chat/completions", "ollama": "/api/chat"}
HEADERS = {"anthropic": {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}, "gemini": {"x-goog-api-key": "gm-test"},
           "deepseek": {"authorization": "Bearer sk-ds-test"}, "ollama": {}}


@pytest.mark.parametrize(("api_name", "body", "status", "words"), CASES)
def test_validators_answer_like_the_real_api(api_name: str, body: dict, status: int, words: str) -> None:
    api = {"anthropic": FakeAnthropic, "gemini": FakeGemini, "deepseek": FakeDeepSeek, "ollama": FakeOllama}[api_name]()
    reply = api(Received("POST", PATHS[api_name], HEADERS[api_name], json.dumps(body).encode()))
    assert reply.status == status
    if status != 200:
        # The error body has the real API's shape: our own protocol reads the words back out of it.
        protocol = get_protocol({"deepseek": "openai"}.get(api_name, api_name))
        assert words in protocol.error_message(status, b"".join(reply.chunks))


def test_gemini_budget_zero_is_refused_for_pro_only() -> None:
    body = json.dumps(_with(G_OK, generationConfig={"thinkingConfig": {"thinkingBudget": 0}})).encode()
    reply = FakeGemini()(Received("POST", PATHS["gemini"], HEADERS["gemini"], body))
    assert reply.status == 400 and b"only works in thinking mode" in reply.chunks[0]


@pytest.mark.parametrize("api_name", ["anthropic", "gemini", "deepseek"])
def test_validators_refuse_a_missing_key(api_name: str) -> None:
    api = {"anthropic": FakeAnthropic, "gemini": FakeGemini, "deepseek": FakeDeepSeek}[api_name]()
    ok = {"anthropic": A_OK, "gemini": G_OK, "deepseek": D_OK}[api_name]
    reply = api(Received("POST", PATHS[api_name], {}, json.dumps(ok).encode()))
    assert reply.status in (401, 403)
