"""Keys never reach output, logs or saved files; risky setups are warned about."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelswitch.config import load as config_mod
from modelswitch.engine.choice import insecure_key_warning
from modelswitch.cli.main import app
from modelswitch.redaction import mask, redact
from tests.loopback import LoopbackServer, Reply

KEY = "sk-live-TOPSECRET-1234567890abcd"


def test_mask_shape() -> None:
    assert mask(KEY) == "sk-…abcd"
    assert mask("short") == "…"
    assert redact(f"Bearer {KEY}") == "Bearer sk-…abcd"
    assert redact("AIzaSyA1234567890abcdefghijklmno here") == "…lmno here"


def test_debug_log_and_saved_session_never_hold_the_key(tmp_path: Path, server: LoopbackServer,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[providers.x]\nbase_url = "{server.url}/v1"\napi_key = "{KEY}"\n'
                   '[providers.x.models.m]\nid = "m"\n')
    os.chmod(cfg, 0o600)
    server.add(Reply.sse({"choices": [{"index": 0, "delta": {"content": "ok"}, "finish_reason": "stop"}]}))
    result = CliRunner().invoke(app, ["--config", str(cfg), "--debug", "ask", "-m", "m", f"my key is {KEY}"])
    assert result.exit_code == 0
    assert "debug: POST" in result.stderr and "authorization" in result.stderr.lower()
    assert KEY not in result.stderr and KEY not in result.stdout
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"  # it was really sent
    db = tmp_path / "data" / "modelswitch" / "modelswitch.db"
    assert db.exists()
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(FULL)")
    for f in db.parent.iterdir():
        assert KEY.encode() not in f.read_bytes(), f


def test_world_readable_inline_key_is_warned(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[providers.x]\nbase_url = "https://x.example/v1"\napi_key = "{KEY}"\n')
    os.chmod(cfg, 0o644)
    warnings = config_mod.load(cfg).warnings
    assert any("other users can read it: chmod 600" in w for w in warnings)
    os.chmod(cfg, 0o600)
    assert not config_mod.load(cfg).warnings


def test_plain_http_to_a_remote_host_with_a_key_is_warned(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[providers.far]\nbase_url = "http://api.example.com/v1"\napi_key_env = "K"\n'
                   '[providers.near]\nbase_url = "http://127.0.0.1:8080/v1"\napi_key_env = "K"\n'
                   '[providers.tls]\nbase_url = "https://api.example.com/v1"\napi_key_env = "K"\n')
    c = config_mod.load(cfg)
    assert "plain http://" in (insecure_key_warning(c.providers["far"]) or "")
    assert insecure_key_warning(c.providers["near"]) is None
    assert insecure_key_warning(c.providers["tls"]) is None


def test_every_way_of_choosing_a_model_warns_about_plain_http(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from modelswitch.engine.choice import ensure_usable

    monkeypatch.setenv("K", "sk-k-0123456789")
    cfg = tmp_path / "c.toml"
    cfg.write_text('[providers.far]\nbase_url = "http://api.example.com/v1"\napi_key_env = "K"\n'
                   '[providers.far.models.m]\nid = "m"\n')
    c = config_mod.load(cfg)
    ensure_usable(c, c.resolve("m"))  # ask, chat, /model, @model and compare all come through here
    assert "sends its API key over plain http:// to api.example.com" in capsys.readouterr().err
