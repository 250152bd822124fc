"""Small edges a hostile review found: a UTF-8 BOM is encoding, not content, wherever text comes
in (config file, stdin, an attached file, an imported session); `/set max_tokens` takes a whole
number only."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelswitch import errors
from modelswitch.cli.main import app
from modelswitch.config import load as config_mod
from modelswitch.engine import attach
from modelswitch.engine.session import ChatSession
from tests.loopback import LoopbackServer, Reply

BOM = "\ufeff".encode("utf-8")


def _config(path: Path, url: str) -> Path:
    path.write_bytes(BOM + f'default = "m"\n[providers.p]\nbase_url = "{url}/v1"\napi_key_env = "P_KEY"\n'
                           '[providers.p.models.m]\nid = "m1"\n'.encode())
    return path


def test_a_config_file_starting_with_a_bom_loads(tmp_path: Path) -> None:
    config = config_mod.load(_config(tmp_path / "config.toml", "http://127.0.0.1:9"))
    assert config.default == "m"


def test_piped_stdin_with_a_bom_reaches_the_model_without_it(
    tmp_path: Path, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = _config(tmp_path / "config.toml", server.url)
    monkeypatch.setenv("MODELSWITCH_CONFIG", str(cfg))
    monkeypatch.setenv("P_KEY", "sk-p-0123456789")
    server.add(Reply.say("ok"))
    result = CliRunner().invoke(app, ["ask"], input=BOM + "hello from a file".encode())
    assert result.exit_code == 0, result.output
    assert server.requests[0].json["messages"][-1]["content"] == "hello from a file"


def test_an_attached_text_file_loses_its_bom(tmp_path: Path) -> None:
    f = tmp_path / "notes.txt"
    f.write_bytes(BOM + "line one\n".encode())
    got = attach.load(str(f))
    assert got.data.decode("utf-8").startswith("line one")


def test_sessions_import_of_a_bom_prefixed_export(tmp_path: Path) -> None:
    doc = {"format": "modelswitch-session", "version": 1,
           "session": {"id": 1, "name": "bom", "created": "2026-01-01T00:00:00+00:00",
                       "updated": "2026-01-01T00:00:00+00:00", "model": None, "system": None},
           "turns": [{"idx": 0, "role": "user", "model": None, "text": "q", "reasoning": "", "status": "complete",
                      "alternate": False, "usage": None, "cost": None, "timing": None, "finish_reason": None,
                      "fallback_from": None, "error": None, "replay": [], "created": None}]}
    f = tmp_path / "export.json"
    f.write_bytes(BOM + json.dumps(doc).encode())
    result = CliRunner().invoke(app, ["sessions", "import", str(f)])
    assert result.exit_code == 0, result.output
    assert "imported bom" in result.output


@pytest.mark.parametrize("value", ["1.5", "1e30", "-3", "many"])
def test_set_max_tokens_takes_a_whole_number_only(value: str) -> None:
    cfg = config_mod.build(tomllib.loads('[providers.p]\nbase_url = "http://127.0.0.1:9/v1"\n'
                                        '[providers.p.models.m]\nid = "m1"\n'), Path("t.toml"), presets={})
    chat = ChatSession(cfg, cfg.resolve("m"))
    with pytest.raises(errors.UsageError):
        chat.set("max_tokens", value)
    assert chat.settings.max_tokens is None
    assert chat.set("max_tokens", "1000") == "max_tokens = 1000"
    assert chat.settings.max_tokens == 1000
