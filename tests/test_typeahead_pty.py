"""Text typed while an answer streams is kept for the next prompt, even when Ctrl-C stops it."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import pytest

from tests.loopback import LoopbackServer, Reply, command_env

pexpect = pytest.importorskip("pexpect")
EXE = shutil.which("modelswitch", path=str(Path(sys.executable).parent))
pytestmark = [pytest.mark.pty, pytest.mark.skipif(EXE is None, reason="modelswitch is not installed")]


def test_text_typed_during_an_answer_survives_ctrl_c(tmp_path: Path, server: LoopbackServer) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'default = "r1"\n[providers.deep]\nbase_url = "{server.url}/v1"\napi_key_env = "DEEP_KEY"\n'
                   'retries = 0\n[providers.deep.models.r1]\nid = "deepseek-chat"\n', "utf-8")
    words = [{"choices": [{"index": 0, "delta": {"content": f"word{i} "}, "finish_reason": None}]} for i in range(60)]
    server.add(Reply.sse(*words, {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}, delay=0.1))
    server.add(Reply.say("second answer"))
    env = command_env(cfg, tmp_path, DEEP_KEY="sk-typeahead-0123456789abcdef")
    child = pexpect.spawn(EXE, ["chat"], env=env, encoding="utf-8", timeout=30)
    child.expect("r1 ›")
    child.send("first\r")
    child.expect("word3")
    child.send("typed ahead")
    time.sleep(0.3)  # let the terminal driver take the keys before the interrupt
    child.sendcontrol("c")
    child.expect("interrupted")
    child.expect("r1 ›")
    child.send("\r")
    child.expect("second answer")
    child.send("/exit\r")
    child.expect(pexpect.EOF)
    sent = [r.json["messages"][-1]["content"] for r in server.requests if r.path.endswith("/chat/completions")]
    assert sent == ["first", "typed ahead"]
