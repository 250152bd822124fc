"""Ctrl-C in a /compare without tools: the lane that had finished is shown finished, the lane the
user cut shows "interrupted" in its footer (what /keep and the store keep), never "error: stopped"."""

from __future__ import annotations

import io
from pathlib import Path

from modelswitch.config import load as config
from modelswitch.conversation import Conversation, Message
from modelswitch.engine.compare import run_models
from modelswitch.ui.compare import CompareView
from tests.loopback import LoopbackServer, Reply


class CutView(CompareView):
    """Ctrl-C while the slow lane streams, once the fast lane has finished (as the user saw it)."""

    cut = False

    def text(self, i: int, text: str) -> None:
        super().text(i, text)
        if i == 1 and self.lanes[0].done and not self.cut:
            self.cut = True
            raise KeyboardInterrupt


def test_ctrl_c_keeps_a_finished_lane_finished_and_the_cut_one_interrupted(
        tmp_path: Path, server: LoopbackServer, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("K", "sk-k-0123456789")
    cfg_path = tmp_path / "config.toml"
    cfg_path.write_text(f"""
default = "fast"
[providers.f]
base_url = "{server.url}/fast/v1"
api_key_env = "K"
retries = 0
[providers.f.models.fast]
id = "fast-model"
[providers.s]
base_url = "{server.url}/slow/v1"
api_key_env = "K"
retries = 0
[providers.s.models.slow]
id = "slow-model"
""")
    cfg = config.load(cfg_path)
    server.add(Reply.say("ALPHA done", path="/fast/"))
    chunk = {"choices": [{"index": 0, "delta": {"content": "beta "}, "finish_reason": None}]}
    server.add(Reply.sse(*[chunk] * 40, delay=0.1, path="/slow/"))
    view = CutView(["fast", "slow"], terminal=False, quiet=True, out=io.StringIO())
    conv = Conversation().add(Message("user", "tell me"))
    outcomes, interrupt = run_models(cfg, conv, [cfg.resolve("fast"), cfg.resolve("slow")], view)
    assert isinstance(interrupt, KeyboardInterrupt)
    fast, slow = view.lanes
    assert outcomes[0].message.status == "complete" and fast.error is None
    assert fast.footer and "interrupted" not in fast.footer
    assert outcomes[1].message.status == "interrupted"
    assert slow.error is None and "interrupted" in slow.footer, (slow.error, slow.footer)
