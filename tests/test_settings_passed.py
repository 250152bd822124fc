"""--debug travels as a value from the command line to the transport, not through the environment."""

from __future__ import annotations

import os
from pathlib import Path

from typer.testing import CliRunner

from modelswitch.cli.main import app
from tests.loopback import LoopbackServer, Reply


def test_debug_is_passed_not_left_in_the_environment(tmp_path: Path, server: LoopbackServer) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[providers.x]\nbase_url = "{server.url}/v1"\n[providers.x.models.m]\nid = "m"\n')
    server.add(Reply.say("one"), Reply.say("two"))
    runner = CliRunner()
    debug = runner.invoke(app, ["--config", str(cfg), "--debug", "ask", "-m", "m", "first"])
    assert debug.exit_code == 0 and "debug: POST" in debug.stderr
    assert "MODELSWITCH_DEBUG" not in os.environ
    # The same process, without --debug: nothing of the previous command's setting lingers.
    plain = runner.invoke(app, ["--config", str(cfg), "ask", "-m", "m", "second"])
    assert plain.exit_code == 0 and plain.stdout == "two\n"
    assert "debug:" not in plain.stderr
