"""A tool the conversation already used, turned off since: every API still takes the history.

The validating fakes reject what each real API rejects (Claude: a tool_use naming a tool that is
not defined), so a later turn on any model, in a chat, a /compare column or the REPL, must go
through with the used tool gone from the offer.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from modelswitch.conversation import Conversation, Message, ToolSpec
from modelswitch.engine.compare import run_models
from tests.loopback import LoopbackServer, command_env
from tests.test_compare_tools import Lanes
from tests.test_tool_loop import Box, run, world  # noqa: F401 - world: the fixture of four validating APIs
from tests.test_tools_cli import calc_table, write_config
from tests.validators import FakeAnthropic, FakeDeepSeek, router


class AddOff(Box):
    """`add` was turned off (/tools off add): only `slow` is offered, and nothing serves add."""

    def specs(self) -> tuple[ToolSpec, ...]:
        return (ToolSpec("slow", "Wait"),)

    def server_of(self, name: str) -> str | None:
        return "calc" if name == "slow" else None


def _used_add(cfg) -> Conversation:  # noqa: ANN001
    conv = Conversation("Use tools.").add(Message("user", "add 2 and 3"))
    answer, _ = run(cfg, conv, "v4", Box())
    assert [c.name for c in answer.message.rounds[0].calls] == ["add"]
    return conv.add(answer.message).add(Message("user", "thanks"))


@pytest.mark.parametrize("model", ["claude", "gem", "qwen", "v4"])
def test_a_used_tool_turned_off_leaves_the_history_valid_for_every_api(world, model: str) -> None:  # noqa: F811
    cfg, apis = world
    conv = _used_add(cfg)
    box = AddOff()
    box.release.set()
    answer, _ = run(cfg, conv, model, box, approve=lambda call, server: False)
    assert all(not a.rejected for a in apis), [a.rejected for a in apis]
    msg = answer.message
    assert msg.status == "complete" and msg.text, msg
    # The model was offered the tools on now: it called slow (declined), never the one turned off.
    assert [c.name for r in msg.rounds for c in r.calls] == ["slow"]


def test_claude_declares_the_used_tool_beside_the_offered_ones_once(world) -> None:  # noqa: F811
    cfg, apis = world
    conv = _used_add(cfg)
    box = AddOff()
    box.release.set()
    run(cfg, conv, "claude", box, approve=lambda call, server: False)
    body = apis[1].accepted[0]
    names = [t["name"] for t in body["tools"]]
    assert names == ["slow", "add"] and "tool_choice" not in body
    assert "not available" in body["tools"][1]["description"].lower()
    # With the tool still on, it is declared once, with its own schema.
    run(cfg, _used_add(cfg), "claude", Box(), approve=lambda call, server: False)
    assert [t["name"] for t in apis[1].accepted[-2]["tools"]] == ["add", "slow"]
    assert not apis[1].rejected


def test_a_compare_column_after_the_tool_is_turned_off(world) -> None:  # noqa: F811
    cfg, apis = world
    conv = _used_add(cfg)
    box = AddOff()
    box.release.set()
    outcomes, interrupt = run_models(cfg, conv, [cfg.resolve("v4"), cfg.resolve("claude")], Lanes(2),
                                     toolbox=box, approve=lambda i, call, server: False)
    assert interrupt is None and all(not a.rejected for a in apis), [a.rejected for a in apis]
    assert all(o.error is None and o.message.text for o in outcomes), outcomes


def test_a_piped_chat_switches_to_claude_after_tools_off(tmp_path: Path, server: LoopbackServer) -> None:
    """The trial's steps: add runs (trusted), /tools off add, /model claude, thanks."""
    exe = shutil.which("modelswitch", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("the modelswitch console script is not installed")
    ds, ant = FakeDeepSeek(tool_args={"a": 2, "b": 3}), FakeAnthropic(tool_args={"a": 2, "b": 3})
    server.default = router(ds, ant)
    # DeepSeek is the default; Claude beside it, and add trusted so the piped chat runs it.
    claude = f"""
[providers.ant]
type = "anthropic"
base_url = "{server.url}"
api_key_env = "ANT_KEY"
[providers.ant.models.claude]
id = "claude-sonnet-4-5"
"""
    config = write_config(tmp_path, server.url, claude + calc_table('["add"]'))
    env = command_env(config, tmp_path, DS_KEY="sk-ds-test", ANT_KEY="sk-ant-test")
    out = subprocess.run([exe, "chat"], input="add 2 and 3\n/tools off add\n/model claude\nthanks\n", env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "400" not in out.stdout + out.stderr and not ant.rejected, (ant.rejected, out.stderr)
    assert "claude-sonnet-4-5 answer" in out.stdout
    sent = ant.accepted[0]
    assert "add" in [t["name"] for t in sent["tools"]]
    assert any(b.get("type") == "tool_use" and b["name"] == "add" for m in sent["messages"]
               if isinstance(m["content"], list) for b in m["content"])
