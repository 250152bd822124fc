"""The tool loop against validating fakes of all four APIs: calls, approval, parallel runs,
results, limits, Ctrl-C, and a model switch DeepSeek -> Claude -> Gemini -> Ollama mid-task."""

from __future__ import annotations

import json
import threading
import tomllib
from pathlib import Path

import pytest

from modelswitch.config import load as config_mod
from modelswitch.config.load import Config
from modelswitch.conversation import Conversation, Message, ToolResult, ToolSpec
from modelswitch.engine.tools import CANCELLED, ToolAnswer, ToolLimits, truncate
from modelswitch.events import Notice, ToolActivity, ToolCall
from tests.loopback import LoopbackServer
from tests.validators import FakeAnthropic, FakeAPI, FakeDeepSeek, FakeGemini, FakeOllama, router

ARGS = {"a": 2, "b": 3}


class Box:
    """An in-process toolbox: `add` adds, `slow` waits until released (or cancelled)."""

    def __init__(self, trusted: frozenset[str] = frozenset()) -> None:
        self.ran: list[ToolCall] = []
        self.trust = trusted
        self.release = threading.Event()
        self.cancelled = threading.Event()
        self.big = ""

    def specs(self) -> tuple[ToolSpec, ...]:
        schema = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}}
        return (ToolSpec("add", "Add two integers", json.dumps(schema)), ToolSpec("slow", "Wait"))

    def server_of(self, name: str) -> str | None:
        return "calc" if name in ("add", "slow") else None

    def trusted(self, name: str) -> bool:
        return name in self.trust

    def call(self, call: ToolCall, timeout: float) -> ToolResult:
        self.ran.append(call)
        if call.name == "slow":
            self.release.wait(10)
        args = json.loads(call.arguments)
        return ToolResult(call.id, call.name, self.big or str(args.get("a", 0) + args.get("b", 0)))

    def cancel(self) -> None:
        self.cancelled.set()
        self.release.set()


@pytest.fixture
def world(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> tuple[Config, list[FakeAPI]]:
    monkeypatch.setenv("DS_KEY", "sk-ds-test")
    monkeypatch.setenv("ANT_KEY", "sk-ant-test")
    monkeypatch.setenv("GM_KEY", "gm-test")
    apis: list[FakeAPI] = [FakeDeepSeek(tool_args=ARGS), FakeAnthropic(tool_args=ARGS), FakeGemini(tool_args=ARGS),
                           FakeOllama(tool_args=ARGS)]
    server.default = router(*apis)
    cfg = config_mod.build(tomllib.loads(f"""
[providers.ds]
type = "openai"
base_url = "{server.url}/deepseek"
api_key_env = "DS_KEY"
retries = 0
reasoning_passback = true  # declared: the host is 127.0.0.1, not api.deepseek.com
[providers.ds.models.v4]
id = "deepseek-v4-flash"
[providers.ant]
type = "anthropic"
base_url = "{server.url}"
api_key_env = "ANT_KEY"
retries = 0
[providers.ant.models.claude]
id = "claude-sonnet-4-5"
reasoning = 2048
[providers.gm]
type = "gemini"
base_url = "{server.url}"
api_key_env = "GM_KEY"
retries = 0
[providers.gm.models.gem]
id = "gemini-3-flash-preview"
[providers.ol]
type = "ollama"
base_url = "{server.url}"
retries = 0
[providers.ol.models.qwen]
id = "qwen3:8b"
reasoning = true
"""), Path("t.toml"), presets={})
    return cfg, apis


def run(cfg: Config, conv: Conversation, model: str, box: Box, approve=lambda call, server: True,
        limits: ToolLimits = ToolLimits()) -> tuple[ToolAnswer, list]:
    answer = ToolAnswer(cfg, conv, cfg.resolve(model), box, approve, limits=limits)
    events = list(answer)
    return answer, events


def test_a_task_switches_models_mid_way_and_every_api_accepts_the_history(world) -> None:
    cfg, apis = world
    box = Box()
    conv = Conversation("Use tools.")
    for model in ("v4", "claude", "gem", "qwen", "v4", "claude"):
        conv = conv.add(Message("user", f"add 2 and 3 ({model})"))
        answer, events = run(cfg, conv, model, box)
        assert all(not a.rejected for a in apis), [a.rejected for a in apis]
        msg = answer.message
        assert msg.status == "complete" and msg.text and len(msg.rounds) == 1, msg
        rnd = msg.rounds[0]
        assert [c.name for c in rnd.calls] == ["add"] and json.loads(rnd.calls[0].arguments) == ARGS
        assert [r.content for r in rnd.results] == ["5"]
        assert [e.state for e in events if isinstance(e, ToolActivity)] == ["running", "done"]
        conv = conv.add(msg)
    ds = apis[0].accepted[-1]  # DeepSeek's last request holds every protocol's history
    spans = [m for m in ds["messages"] if m.get("tool_calls")]
    assert len(spans) == 5 and all(isinstance(m["reasoning_content"], str) for m in spans)
    assert [m["reasoning_content"] != "" for m in spans] == [True, False, False, False, True]


def test_the_validators_reject_what_the_real_apis_reject(world) -> None:
    """Without the passback, the placeholder or the tool_result pairing, each fake says 400."""
    cfg, apis = world
    box = Box()
    conv = Conversation().add(Message("user", "add"))
    answer, _ = run(cfg, conv, "v4", box)
    msg = answer.message
    from dataclasses import replace

    from modelswitch.providers import get_protocol
    from modelswitch.providers.base import Target
    from tests.validators import drive

    url = cfg.provider("ds").base_url
    ds = Target("ds", url, "deepseek-v4-flash", api_key="sk-ds-test")
    history = conv.add(msg).add(Message("user", "again"))
    stripped = history  # DeepSeek: the same history, reasoning_content removed
    body = get_protocol("openai").build_request(ds, stripped).body
    for m in body["messages"]:
        m.pop("reasoning_content", None)
    import httpx

    r = httpx.post(url + "/chat/completions", json=body, headers={"authorization": "Bearer sk-ds-test"})
    assert r.status_code == 400 and "reasoning_content" in r.text
    # Gemini 3 without the placeholder
    gm = Target("gm", cfg.provider("gm").base_url, "gemini-3-flash-preview", api_key="gm-test")
    body = get_protocol("gemini").build_request(gm, history).body
    for c in body["contents"]:
        for p in c["parts"]:
            p.pop("thoughtSignature", None)
    r = httpx.post(f"{gm.base_url}/v1beta/models/gemini-3-flash-preview:streamGenerateContent?alt=sse",
                   json=body, headers={"x-goog-api-key": "gm-test"})
    assert r.status_code == 400 and "thought_signature" in r.text
    # Claude with its thinking altered inside a tool loop
    conv2 = Conversation().add(Message("user", "add"))
    cl_answer = ToolAnswer(cfg, conv2, cfg.resolve("claude"), box, lambda c, s: True)
    list(cl_answer)
    rnd = cl_answer.message.rounds[0]
    bad_state = replace(rnd.replay[0], data=rnd.replay[0].data.replace("thinks", "THINKS"))
    bad = conv2.add(Message("assistant", "", rounds=(replace(rnd, replay=(bad_state,)),)))
    ant = Target("ant", cfg.provider("ant").base_url, "claude-sonnet-4-5", api_key="sk-ant-test", reasoning=2048)
    with pytest.raises(Exception, match="signature"):
        drive(get_protocol("anthropic"), ant, bad)
    with pytest.raises(Exception, match="must start with a thinking block"):
        drive(get_protocol("anthropic"), ant, conv2.add(Message("assistant", "", rounds=(replace(rnd, replay=()),))))
    assert [len(a.rejected) for a in apis] == [1, 2, 1, 0]


def test_parallel_calls_run_at_once_and_results_keep_call_order(world) -> None:
    cfg, apis = world
    box = Box()
    apis[0].tool_args = {}

    started = threading.Barrier(2, timeout=10)

    class Two(Box):
        def call(self, call: ToolCall, timeout: float) -> ToolResult:
            started.wait()  # both calls must be running at once to get past this
            return ToolResult(call.id, call.name, call.id)

    two = Two()
    from modelswitch.engine.tools import ToolAnswer as TA

    ans = TA(cfg, Conversation().add(Message("user", "q")), cfg.resolve("v4"), two, lambda c, s: True)
    # Two calls in one answer: feed a stream with two tool calls through the DeepSeek fake.
    apis[0].parallel = True  # type: ignore[attr-defined]
    orig = apis[0].answer

    def answer_two(rec, body):
        reply = orig(rec, body)
        if body["messages"][-1]["role"] == "tool":
            return reply
        from tests.loopback import Reply

        chunk = lambda d, f=None: {"choices": [{"index": 0, "delta": d, "finish_reason": f}]}  # noqa: E731
        return Reply.sse(
            chunk({"role": "assistant", "content": None, "reasoning_content": "two at once"}),
            chunk({"tool_calls": [{"index": 0, "id": "c_a", "type": "function", "function": {"name": "add", "arguments": "{}"}}]}),
            chunk({"tool_calls": [{"index": 1, "id": "c_b", "type": "function", "function": {"name": "add", "arguments": "{}"}}]}),
            chunk({}, "tool_calls"),
        )

    apis[0].answer = answer_two  # type: ignore[method-assign]
    list(ans)
    assert [r.content for r in ans.message.rounds[0].results] == ["c_a", "c_b"]
    assert not apis[0].rejected


def test_a_refused_call_is_told_to_the_model_and_trusted_tools_are_not_asked(world) -> None:
    cfg, apis = world
    asked: list[tuple[str, str]] = []
    box = Box()
    answer, events = run(cfg, Conversation().add(Message("user", "q")), "claude", box,
                         approve=lambda call, server: asked.append((server, call.name)) or False)
    assert asked == [("calc", "add")] and box.ran == []
    result = answer.message.rounds[0].results[0]
    assert result.is_error and result.approved is False and "declined" in result.content
    assert not apis[1].rejected
    trusted = Box(frozenset({"add"}))
    answer, _ = run(cfg, Conversation().add(Message("user", "q")), "gem", trusted,
                    approve=lambda call, server: pytest.fail("a trusted tool is not asked about"))
    assert answer.message.rounds[0].results[0].approved is None and trusted.ran


def test_the_round_limit_stops_the_loop_and_the_model_is_told(world) -> None:
    cfg, apis = world

    class Loop(FakeOllama):
        pass

    # The Ollama fake calls again whenever the last message is not a tool result; with results it
    # answers. A limit of 0 rounds means the first calls are answered "not run".
    answer, events = run(cfg, Conversation().add(Message("user", "q")), "qwen", Box(), limits=ToolLimits(max_rounds=0))
    msg = answer.message
    assert msg.rounds[0].results[0].content.startswith("not run: the limit of 0 tool rounds")
    assert msg.text == "" and msg.has_answer
    assert any(isinstance(e, Notice) and "max_tool_rounds" in e.text for e in events)
    # The next question sends the unrun calls with their results: the API accepts it.
    run(cfg, Conversation().add(Message("user", "q")).add(msg).add(Message("user", "and now?")), "qwen", Box())
    assert not apis[3].rejected


def test_a_huge_result_is_truncated_with_a_note(world) -> None:
    cfg, _ = world
    box = Box()
    box.big = "x" * 5000
    answer, _ = run(cfg, Conversation().add(Message("user", "q")), "v4", box, limits=ToolLimits(max_result_chars=100))
    content = answer.message.rounds[0].results[0].content
    assert content.startswith("x" * 100) and "100 of 5000 characters shown" in content
    assert truncate("short", 100) == "short"


def test_ctrl_c_during_a_call_cancels_it_and_the_model_sees_it_was_cancelled(world) -> None:
    cfg, apis = world
    box = Box()
    box.specs = lambda: (ToolSpec("slow", "Wait"),)  # type: ignore[method-assign]
    answer = ToolAnswer(cfg, Conversation().add(Message("user", "q")), cfg.resolve("claude"), box, lambda c, s: True)
    it = iter(answer)
    for event in it:
        if isinstance(event, ToolActivity) and event.state == "running":
            break
    with pytest.raises(KeyboardInterrupt):
        it.throw(KeyboardInterrupt)
    assert box.cancelled.is_set()
    msg = answer.message
    assert msg.status == "interrupted" and msg.rounds[0].results[0].content == CANCELLED
    # The conversation stays valid: Claude accepts it with the cancelled result in it.
    conv = Conversation().add(Message("user", "q")).add(msg).add(Message("user", "never mind"))
    run(cfg, conv, "claude", Box())
    assert not apis[1].rejected


def test_claude_gets_tool_history_when_no_tools_are_offered_any_more(world) -> None:
    """`ask` without --tools after a tool answer: Claude still needs the used tools defined."""
    cfg, apis = world
    conv = Conversation().add(Message("user", "add"))
    answer, _ = run(cfg, conv, "v4", Box())
    from modelswitch.engine.answer import Answer

    later = Answer(cfg, conv.add(answer.message).add(Message("user", "thanks")), cfg.resolve("claude"))
    list(later)
    assert not apis[1].rejected
    body = apis[1].accepted[-1]
    assert body["tool_choice"] == {"type": "none"} and [t["name"] for t in body["tools"]] == ["add"]


@pytest.fixture
def no_tools_world(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> tuple[Config, list[FakeAPI]]:
    """DeepSeek with tools, then a model of each protocol declared `tools = false`, Perplexity's
    sonar among them (its fake takes only system/user/assistant, alternating)."""
    from tests.search_fakes import FakeChatSearch

    for env, key in (("DS_KEY", "sk-ds-test"), ("PPLX_KEY", "sk-test"), ("ANT_KEY", "sk-ant-test"), ("GM_KEY", "gm-test")):
        monkeypatch.setenv(env, key)
    apis: list[FakeAPI] = [FakeDeepSeek(tool_args=ARGS, prefix="/deepseek/"), FakeChatSearch(vendor="perplexity", prefix="/pplx/"),
                           FakeAnthropic(tool_args=ARGS), FakeGemini(tool_args=ARGS), FakeOllama(tool_args=ARGS)]
    server.default = router(*apis)
    cfg = config_mod.build(tomllib.loads(f"""
[providers.ds]
type = "openai"
base_url = "{server.url}/deepseek"
api_key_env = "DS_KEY"
retries = 0
reasoning_passback = true
[providers.ds.models.v4]
id = "deepseek-v4-flash"
[providers.pplx]
type = "openai"
base_url = "{server.url}/pplx"
api_key_env = "PPLX_KEY"
search = "perplexity"
retries = 0
[providers.pplx.models.sonar]
id = "sonar"
search = true
tools = false
[providers.ant]
type = "anthropic"
base_url = "{server.url}"
api_key_env = "ANT_KEY"
retries = 0
[providers.ant.models.claude]
id = "claude-sonnet-4-5"
tools = false
[providers.gm]
type = "gemini"
base_url = "{server.url}"
api_key_env = "GM_KEY"
retries = 0
[providers.gm.models.gem]
id = "gemini-3-flash-preview"
tools = false
[providers.ol]
type = "ollama"
base_url = "{server.url}"
retries = 0
[providers.ol.models.qwen]
id = "qwen3:8b"
tools = false
"""), Path("t.toml"), presets={})
    return cfg, apis


@pytest.mark.parametrize("model, api", [("sonar", 1), ("claude", 2), ("gem", 3), ("qwen", 4)])
def test_a_model_that_takes_no_tools_reads_earlier_tool_rounds_as_text(no_tools_world, model: str, api: int) -> None:
    """After a DeepSeek tool round, `/model sonar`: no calls, no `tool` messages, the roles still
    alternate, and the call with its result is there to read, before the answer it led to."""
    from modelswitch.engine.answer import Answer

    cfg, apis = no_tools_world
    conv = Conversation().add(Message("user", "add 2 and 3"))
    answer, _ = run(cfg, conv, "v4", Box())
    done = answer.message
    assert done.rounds and done.text and not apis[0].rejected
    later = Answer(cfg, conv.add(done).add(Message("user", "and what was the result?")), cfg.resolve(model))
    list(later)
    assert not apis[api].rejected, apis[api].rejected
    assert later.message.status == "complete" and later.message.text
    sent = json.dumps(apis[api].accepted[-1])
    for shape in ("tool_calls", '"tool"', "tool_use", "tool_result", "functionCall", "functionResponse"):
        assert shape not in sent, shape
    assert f'[tool call] add {json.dumps(json.dumps(ARGS))[1:-1]} returned:\\n5' in sent
    assert sent.index("[tool call] add") < sent.index(done.text)


def test_a_call_no_one_could_approve_is_not_told_as_the_users_no(world) -> None:
    from modelswitch.events import ToolActivity
    from modelswitch.ui.base import tool_line

    cfg, apis = world
    box = Box()
    answer, events = run(cfg, Conversation().add(Message("user", "q")), "claude", box,
                         approve=lambda call, server: None)
    result = answer.message.rounds[0].results[0]
    assert box.ran == [] and result.approved is False and result.is_error
    assert result.content == "not run: tool calls need approval, and none could be given here"
    [activity] = [e for e in events if isinstance(e, ToolActivity)]
    assert activity.state == "unapproved" and tool_line(activity).endswith(": not run (no approval here: list add in [mcp.calc] trust, or pass --yes to ask or compare)")
    # A state this version does not know (a newer one's) is still shown, as its own word.
    assert tool_line(ToolActivity(activity.call, "calc", "someday")).endswith(": someday")
    assert not apis[1].rejected
