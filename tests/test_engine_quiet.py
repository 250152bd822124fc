"""The engine never prints: what it has to tell arrives as a value (a Notice, a callback's argument)."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelswitch.config import load as config_mod
from modelswitch.engine.answer import target_for
from modelswitch.local import server as local
from tests.test_local import _fake_install


def test_a_local_server_started_for_a_request_is_announced_through_the_callback(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = local.LocalPaths.default()  # under the test's own XDG_DATA_HOME
    _fake_install(paths)
    config = config_mod.load(tmp_path / "no-config.toml")  # presets + the managed local provider
    said: list[str] = []
    try:
        target = target_for(config, config.resolve("smol"), announce=said.append)
        assert target.base_url.startswith("http://127.0.0.1:") and target.base_url != local.STOPPED_BASE_URL
    finally:
        local.stop(paths)
    assert len(said) == 1 and "Starting the local model server" in said[0]
    assert capsys.readouterr().err == ""
