"""A local server that a chat started stops itself after its idle minutes; the REPL says so once."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from modelswitch.local import server as local
from modelswitch.local.server import LocalPaths
from tests.test_local import _fake_install


@pytest.fixture
def paths(tmp_path: Path) -> LocalPaths:
    return LocalPaths(root=tmp_path / "data" / "local", cache=tmp_path / "cache")


def _wait(cond, seconds: float = 30.0) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def test_a_server_started_on_demand_stops_when_idle(paths: LocalPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_install(paths)
    monkeypatch.setenv(local.IDLE_ENV, "0.02")  # 1.2 s
    state = local.ensure_running(paths)
    try:
        assert _wait(lambda: local.idle_stop_minutes(paths) == pytest.approx(0.02))
        assert _wait(lambda: local.read_state(paths)[0] is None)
        assert not local._is_our_server(state.pid, state.binary)
        assert _wait(lambda: not paths.idle_marker.exists())
    finally:
        local.stop(paths)


def test_use_keeps_it_up_and_zero_means_always(paths: LocalPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_install(paths)
    monkeypatch.setenv(local.IDLE_ENV, "0")
    try:
        state = local.ensure_running(paths)
        time.sleep(0.5)
        assert local.idle_stop_minutes(paths) is None and local.read_state(paths)[0] == state
    finally:
        local.stop(paths)
    monkeypatch.setenv(local.IDLE_ENV, "0.05")  # 3 s, kept alive by answers
    try:
        state = local.ensure_running(paths)
        assert _wait(lambda: local.idle_stop_minutes(paths) is not None)
        for _ in range(8):  # 4 s of use: longer than the limit
            time.sleep(0.5)
            assert local.ensure_running(paths).pid == state.pid
    finally:
        local.stop(paths)


def test_explicit_start_is_not_stopped(paths: LocalPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_install(paths)
    monkeypatch.setenv(local.IDLE_ENV, "0.01")
    try:
        local.start(paths)  # `modelswitch local start`: up until `local stop`
        assert local.idle_stop_minutes(paths) is None
        assert local.idle_minutes() == pytest.approx(0.01)
        monkeypatch.setenv(local.IDLE_ENV, "soon")
        assert local.idle_minutes() == local.DEFAULT_IDLE_MINUTES
    finally:
        local.stop(paths)


def test_leaving_the_repl_says_once_that_the_local_model_stays_up(tmp_path: Path) -> None:
    import shutil
    import sys

    pexpect = pytest.importorskip("pexpect")
    from tests.loopback import command_env

    exe = shutil.which("modelswitch", path=str(Path(sys.executable).parent))
    assert exe is not None
    data = tmp_path / "data"
    p = LocalPaths(root=data / "modelswitch" / "local", cache=tmp_path / "cache")
    _fake_install(p)
    cfg = tmp_path / "config.toml"
    cfg.write_text("", "utf-8")
    env = command_env(cfg, tmp_path, XDG_DATA_HOME=str(data), MODELSWITCH_LOCAL_IDLE_MINUTES="10")
    child = pexpect.spawn(exe, ["chat", "-m", "local/smol"], env=env, encoding="utf-8", timeout=30)
    try:
        child.expect("/help for commands")
        child.send("/exit\r")
        child.expect(pexpect.EOF)
        out = child.before
        assert out.count("local model stays up 10 min; `modelswitch local stop` ends it now") == 1
    finally:
        local.stop(p)
