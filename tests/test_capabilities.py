"""Declared model capabilities: `tools` (which models take function calling: shown by `models`,
`/models` and `models --json`, and never offered to a model declared without) and
`reasoning_passback` (who gets `reasoning_content` back inside a tool-call span)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelswitch.cli.main import app
from modelswitch.config import load as config_mod
from modelswitch.config.load import Config
from modelswitch.conversation import Conversation, Message, ModelRef, ToolResult, ToolRound, ToolSpec
from modelswitch.engine.answer import target_for
from modelswitch.engine.session import ChatSession
from modelswitch.engine.tools import ToolAnswer
from modelswitch.errors import ConfigError
from modelswitch.events import Notice, ToolCall
from modelswitch.providers import get_protocol
from tests.loopback import LoopbackServer, Received, Reply
from tests.test_tool_loop import Box
from tests.test_tools_cli import calc_table
from tests.validators import FakeDeepSeek

NO_TOOLS = "does not take tools; answering without them (models marked tools: yes can)"


def build(text: str, presets: dict | None = None) -> Config:
    return config_mod.build(tomllib.loads(text), Path("t.toml"), presets={} if presets is None else presets)


# -- the keys -----------------------------------------------------------------------------------


def test_tools_and_reasoning_passback_are_validated_like_every_model_key() -> None:
    cfg = build("""
[providers.p]
base_url = "http://127.0.0.1:9/v1"
reasoning_passback = true
[providers.p.models.yes]
id = "a"
tools = true
[providers.p.models.no]
id = "b"
tools = false
reasoning_passback = false
[providers.p.models.unsaid]
id = "c"
""")
    assert not cfg.warnings
    assert [(m.alias, m.tools, m.reasoning_passback) for m in cfg.models()] == [
        ("yes", True, None), ("no", False, False), ("unsaid", None, None)]
    assert cfg.provider("p").reasoning_passback is True
    with pytest.raises(ConfigError, match=r"providers\.p\.models\.m\.tools.*must be true/false, got a string 'yes'"):
        build('[providers.p]\nbase_url = "http://x"\n[providers.p.models.m]\nid = "a"\ntools = "yes"\n')
    with pytest.raises(ConfigError, match=r"providers\.p\.reasoning_passback.*must be true/false"):
        build('[providers.p]\nbase_url = "http://x"\nreasoning_passback = 1\n')


def test_presets_declare_tools_and_deepseeks_passback_from_the_vendor_docs() -> None:
    cfg = build("", presets=config_mod.load_presets())
    tools = {m.alias: m.tools for m in cfg.models()}
    assert tools["gpt-search"] is False and tools["sonar"] is False and tools["sonar-pro"] is False
    assert all(tools[a] for a in ("v3", "r1", "gpt-4o-mini", "o4-mini", "sonnet", "haiku", "flash", "gemini-pro"))
    assert cfg.provider("deepseek").reasoning_passback is True
    assert all(p.reasoning_passback is None for name, p in cfg.providers.items() if name != "deepseek")


# -- tools: shown ---------------------------------------------------------------------------------

SHOWN = """
default = "yes"
[providers.p]
base_url = "http://127.0.0.1:9/v1"
[providers.p.models.yes]
id = "tool-model"
tools = true
[providers.p.models.no]
id = "plain-model"
tools = false
[providers.p.models.unsaid]
id = "other-model"
"""


def tools_cells(table: str) -> dict[str, str]:
    """alias -> the text in the `tools` column of a plain (non-terminal) table."""
    lines = table.splitlines()
    header = next(ln for ln in lines if ln.startswith("alias"))
    at = header.index("tools")
    return {ln.split()[0]: ln[at : at + 5].strip() for ln in lines if ln.split() and ln.split()[0] in ("yes", "no", "unsaid")}


def test_models_and_models_json_show_which_models_take_tools(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(SHOWN)
    run = lambda *a: CliRunner().invoke(app, ["--config", str(cfg), "models", *a], catch_exceptions=False)  # noqa: E731
    data = {m["alias"]: m for m in json.loads(run("--json").stdout)["models"]}
    assert (data["yes"]["tools"], data["no"]["tools"], data["unsaid"]["tools"]) == (True, False, None)
    assert tools_cells(run().stdout) == {"yes": "yes", "no": "no", "unsaid": ""}


def test_slash_models_marks_the_current_model_and_its_tools(capsys: pytest.CaptureFixture[str]) -> None:
    from modelswitch.repl import builtins

    cfg = build(SHOWN)

    class Repl:
        session = ChatSession(cfg, cfg.resolve("no"))

        def say(self, text: str, style: str | None = None) -> None:
            print(text)

    builtins._models(Repl(), "")  # type: ignore[arg-type]
    out = capsys.readouterr().out
    lines = out.splitlines()
    at = lines[0].index("tools")
    row = {ln.split()[0]: ln for ln in lines[1:] if ln.split()}
    assert row["no"].split()[1] == "*" and row["no"][at : at + 5].strip() == "no"
    assert row["yes"][at : at + 5].strip() == "yes" and row["unsaid"][at : at + 5].strip() == ""
    assert lines[-1] == "tools: blank = not declared, offered and the API decides"


# -- tools: never sent to a model declared without ------------------------------------------------

# OpenAI's answer to a `tools` list for a model that takes none (the unsupported-parameter shape of
# the recorded openai_400_unsupported_value.json).
TOOLS_400 = {"error": {"code": "unsupported_parameter", "message": "Unsupported parameter: 'tools' is not supported "
                       "with this model.", "param": "tools", "type": "invalid_request_error"}}


def search_model(rec: Received) -> Reply:
    """An OpenAI search model: a `tools` list is a 400; otherwise the recorded text stream."""
    if "tools" in rec.json:
        return Reply.json(400, TOOLS_400)
    return Reply.fixture("openai_chat_stream_text_with_usage_chunk.sse")


def no_tools_config(url: str, mcp: str = "") -> str:
    return f"""
default = "search"
[providers.oa]
base_url = "{url}/v1"
api_key_env = "OA_KEY"
retries = 0
[providers.oa.models.search]
id = "gpt-4o-mini-search-preview"
tools = false
[providers.oa.models.plain]
id = "gpt-4o-mini"
fallback = ["search"]
{mcp}"""


def test_a_tool_loop_on_a_model_without_tools_sends_none_and_says_so_once(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OA_KEY", "sk-oa-test")
    server.default = search_model
    cfg = build(no_tools_config(server.url))
    box = Box()
    answer = ToolAnswer(cfg, Conversation().add(Message("user", "add 2 and 3")), cfg.resolve("search"), box,
                        lambda call, srv: True)
    events = list(answer)
    assert [e.text for e in events if isinstance(e, Notice)] == [f"search {NO_TOOLS}"]
    assert answer.message.status == "complete" and answer.message.text.startswith("The capital")
    assert [("tools" in r.json) for r in server.requests] == [False] and not box.ran


def test_a_fallback_to_a_model_without_tools_drops_them_for_that_model_only(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rule is per model: the first model is offered tools (and is busy), its fallback is not."""
    monkeypatch.setenv("OA_KEY", "sk-oa-test")
    server.add(Reply.json(503, {"error": {"message": "overloaded", "type": "server_error"}}))
    server.default = search_model
    cfg = build(no_tools_config(server.url))
    answer = ToolAnswer(cfg, Conversation().add(Message("user", "hi")), cfg.resolve("plain"), Box(), lambda c, s: True)
    events = list(answer)
    assert [("tools" in r.json) for r in server.requests] == [True, False]
    assert f"search {NO_TOOLS}" in [e.text for e in events if isinstance(e, Notice)]
    assert answer.message.status == "complete"


def test_ask_tools_on_a_model_without_tools_answers_with_one_notice(
    tmp_path: Path, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OA_KEY", "sk-oa-test")
    server.default = search_model
    cfg = tmp_path / "c.toml"
    cfg.write_text(no_tools_config(server.url, calc_table()))
    result = CliRunner().invoke(app, ["--config", str(cfg), "ask", "-T", "--yes", "add 2 and 3"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("The capital")
    assert [ln for ln in result.stderr.splitlines() if "tools" in ln] == [f"search {NO_TOOLS}"]
    assert [("tools" in r.json) for r in server.requests] == [False]


def test_the_repl_says_it_at_the_switch_in_the_toolbar_and_in_slash_tools(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelswitch.repl import builtins
    from modelswitch.repl.loop import Repl

    monkeypatch.setenv("OA_KEY", "sk-oa-test")
    cfg = build(no_tools_config(server.url))
    session = ChatSession(cfg, cfg.resolve("plain"))
    assert not session.tools_refused()  # no MCP servers: tools are off, nothing to say
    session.toolbox = Box()  # type: ignore[assignment]
    assert session.switch("search").endswith(f"\nsearch {NO_TOOLS}")
    assert session.tools_refused() and "tools off: this model cannot" in Repl.toolbar(_Shell(session), 200)  # type: ignore[arg-type]

    from modelswitch.engine import mcpclient

    class Toolbox(mcpclient.McpToolbox):
        def __init__(self) -> None:
            pass

        def status(self):  # noqa: ANN202
            return []

    session.toolbox = Toolbox()
    shell = _Shell(session)
    builtins._tools(shell, "")  # type: ignore[arg-type]
    assert shell.said == [f"search {NO_TOOLS}"]


def test_the_repl_says_it_once_per_model_not_at_every_answer(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from modelswitch.repl import builtins  # noqa: F401 - registers the commands
    from modelswitch.repl.loop import Repl

    monkeypatch.setenv("OA_KEY", "sk-oa-test")
    server.default = search_model
    cfg = build(no_tools_config(server.url))
    session = ChatSession(cfg, cfg.resolve("search"))
    session.toolbox = Box()  # type: ignore[assignment]
    repl = Repl(session, color=False, interactive=False)
    repl.handle("first")  # the first answer on this model says it
    repl.handle("second")
    repl.handle("/model plain")
    repl.handle("/model search")  # the switch says it
    repl.handle("third")  # and the answer after it does not again
    said = capsys.readouterr()
    assert (said.out + said.err).count(NO_TOOLS) == 2
    assert [("tools" in r.json) for r in server.requests] == [False, False, False]


class _Shell:
    def __init__(self, session: ChatSession) -> None:
        self.session = session
        self.said: list[str] = []

    def say(self, text: str, style: str | None = None) -> None:
        self.said.append(text)


# -- reasoning_passback -------------------------------------------------------------------------


def span(cfg: Config, model: str) -> list[dict]:
    """The assistant messages of a tool-call span as sent to `model`."""
    spec = cfg.resolve(model)
    ref = ModelRef(spec.provider, spec.id, "openai")
    rnd = ToolRound("", "my reasoning", ref, (ToolCall("c1", "add", "{}"),), (ToolResult("c1", "add", "5"),))
    conv = Conversation().add(Message("user", "q")).add(Message("assistant", "5", reasoning="done", model=ref,
                                                                rounds=(rnd,)))
    body = get_protocol("openai").build_request(target_for(cfg, spec), conv).body
    assert body is not None
    return [m for m in body["messages"] if m["role"] == "assistant"]


def test_a_relay_with_reasoning_passback_declared_gets_the_tool_loop_through(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another host and another model name (a relay of DeepSeek's thinking model): the declared key
    alone makes every assistant message of the span carry reasoning_content, as the API demands."""
    monkeypatch.setenv("DS_KEY", "sk-ds-test")
    fake = FakeDeepSeek(models=("ds-v4-flash",), thinking=("ds-v4-flash",), tool_args={"a": 2, "b": 3})
    server.default = fake
    cfg = build(f"""
[providers.relay]
base_url = "{server.url}/relay/v1"
api_key_env = "DS_KEY"
retries = 0
reasoning_passback = true
[providers.relay.models.thinker]
id = "ds-v4-flash"
""")
    conv = Conversation().add(Message("user", "add 2 and 3"))
    answer = ToolAnswer(cfg, conv, cfg.resolve("thinker"), Box(), lambda c, s: True)
    list(answer)
    assert answer.message.status == "complete" and not fake.rejected, fake.rejected
    conv = conv.add(answer.message).add(Message("user", "and again"))
    again = ToolAnswer(cfg, conv, cfg.resolve("thinker"), Box(), lambda c, s: True)
    list(again)
    assert not fake.rejected and again.message.status == "complete"
    sent = [m for m in fake.accepted[-1]["messages"] if m["role"] == "assistant"]
    # Two rounds of calls and the first final answer, each with the model's own reasoning.
    assert len(sent) == 3 and all(m["reasoning_content"].startswith("ds-v4-flash reasons") for m in sent)


def test_without_the_key_no_reasoning_content_goes_out_even_for_a_deepseek_model_id() -> None:
    cfg = build("""
[providers.router]
base_url = "https://openrouter.ai/api/v1"
[providers.router.models.or-r1]
id = "deepseek/deepseek-r1"
[providers.mine]
base_url = "https://api.deepseek.com"
[providers.mine.models.ds]
id = "deepseek-chat"
[providers.off]
base_url = "https://api.deepseek.com"
reasoning_passback = false
[providers.off.models.ds-off]
id = "deepseek-chat"
[providers.on]
base_url = "https://api.deepseek.com"
reasoning_passback = false
[providers.on.models.ds-on]
id = "deepseek-chat"
reasoning_passback = true
""")
    assert all("reasoning_content" not in m for m in span(cfg, "or-r1"))
    # A user's own provider on DeepSeek's host, undeclared: the host fallback still applies.
    assert [m["reasoning_content"] for m in span(cfg, "ds")] == ["my reasoning", "done"]
    assert all("reasoning_content" not in m for m in span(cfg, "ds-off"))
    assert [m["reasoning_content"] for m in span(cfg, "ds-on")] == ["my reasoning", "done"]  # the model's key wins


def test_the_deepseek_preset_passes_reasoning_back_by_declaration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPSEEK_API_KEY", "sk-ds-test")
    monkeypatch.setenv("SILICONFLOW_API_KEY", "sk-sf-test")
    cfg = build("", presets=config_mod.load_presets())
    assert target_for(cfg, cfg.resolve("r1")).reasoning_passback is True
    assert target_for(cfg, cfg.resolve("sf-r1")).reasoning_passback is None
    assert all("reasoning_content" not in m for m in span(cfg, "sf-r1"))
    assert len(span(cfg, "r1")) == 2 and all("reasoning_content" in m for m in span(cfg, "r1"))


def test_hedged_routes_get_the_tools_and_each_route_its_own_passback(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hedged model's lanes are answers of their own: they carry the tool list too, and whether
    reasoning goes back is the serving provider's rule, not the routed model's."""
    from modelswitch.engine.answer import Answer

    monkeypatch.setenv("OA_KEY", "sk-oa-test")
    server.default = lambda rec: Reply.say("ok")
    cfg = build(f"""
[providers.a]
base_url = "{server.url}/a/v1"
api_key_env = "OA_KEY"
retries = 0
[providers.a.models.m]
id = "x"
reasoning_passback = true
routes = ["b/x"]
strategy = "hedge"
hedge_after = 30
[providers.b]
base_url = "{server.url}/b/v1"
api_key_env = "OA_KEY"
""")
    answer = Answer(cfg, Conversation().add(Message("user", "hi")), cfg.resolve("m"), tools=(ToolSpec("add", "Add"),))
    list(answer)
    assert answer.message.text == "ok" and [r.json["tools"][0]["function"]["name"] for r in server.requests] == ["add"]
    assert [s.reasoning_passback for s in answer._routes()] == [True, None]
