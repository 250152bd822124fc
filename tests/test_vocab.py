"""One vocabulary: a reasoning word means the same in the config file as after /set."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from modelswitch.config import load as config_mod
from modelswitch.engine.session import ChatSession


@pytest.mark.parametrize(("word", "value"), [
    ("on", True), ("off", False), ("yes", True), ("default", None), ("high", "high"), ("2048", 2048),
])
def test_config_and_set_read_a_reasoning_word_alike(word: str, value: object,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K", "sk-k-0123456789")
    cfg = config_mod.build(tomllib.loads(
        f'[providers.a]\nbase_url = "http://127.0.0.1:9/v1"\napi_key_env = "K"\n'
        f'[providers.a.models.x]\nid = "model-x"\nreasoning = "{word}"\n'), Path("t.toml"), presets={})
    assert cfg.resolve("x").reasoning == value
    chat = ChatSession(cfg, cfg.resolve("x"))
    chat.set("reasoning", word)
    assert chat.settings.reasoning == value
