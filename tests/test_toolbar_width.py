"""The REPL toolbar at the terminal's width: the states a user must not miss (search this model
cannot do, the MCP stand-in) come before the long figures, and the whole bar fits, so a terminal
that cuts at its edge cuts nothing that matters."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelswitch.config import load as config


def _repl(tmp_path: Path) -> object:
    from modelswitch.engine.session import ChatSession
    from modelswitch.repl import builtins  # noqa: F401 - registers the commands
    from modelswitch.repl.loop import Repl

    p = tmp_path / "c.toml"
    p.write_text('[providers.local]\nbase_url = "http://127.0.0.1:9/v1"\nretries = 0\n'
                 '[providers.local.models.v3-long-alias]\nid = "deepseek-flash-with-a-long-model-name-here"\n', "utf-8")
    cfg = config.load(p)
    session = ChatSession(cfg, cfg.resolve("v3-long-alias"))
    session.set_search(True)
    return Repl(session, color=False, interactive=False)


@pytest.mark.parametrize("width", [80, 100])
def test_the_search_state_is_whole_within_the_width(tmp_path: Path, width: int) -> None:
    repl = _repl(tmp_path)
    bar = repl.toolbar(width)  # type: ignore[attr-defined]
    assert len(bar) <= width
    assert "search: this model cannot" in bar
    assert bar.index("search") < bar.find("context") or "context" not in bar  # the state first


def test_a_wide_terminal_shows_every_figure(tmp_path: Path) -> None:
    bar = _repl(tmp_path).toolbar(200)  # type: ignore[attr-defined]
    assert "search: this model cannot · context " in bar and bar.endswith(" tokens")
