"""`[mcp.NAME]` and `[tools]` in the config: valid tables become specs, bad ones one-line errors."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from modelswitch.config import load as config_mod
from modelswitch.errors import ConfigError


def build(text: str) -> config_mod.Config:
    return config_mod.build(tomllib.loads(text), Path("t.toml"), presets={})


def test_servers_and_tool_settings_are_read() -> None:
    cfg = build("""
[mcp.time]
command = ["uvx", "mcp-server-time"]
env = { TZ = "UTC" }
cwd = "/tmp"
trust = ["get_current_time"]
[mcp.web]
url = "https://example.com/mcp"
headers = { Authorization = "Bearer x" }
enabled = false
[tools]
max_rounds = 3
timeout = 5
max_result_chars = 1000
""")
    time, web = cfg.mcp
    assert (time.name, time.command, time.env, time.cwd, time.trust, time.enabled) == (
        "time", ("uvx", "mcp-server-time"), (("TZ", "UTC"),), "/tmp", ("get_current_time",), True)
    assert (web.url, web.headers, web.enabled) == ("https://example.com/mcp", (("Authorization", "Bearer x"),), False)
    assert "Bearer" not in repr(web)  # headers may hold a key
    assert cfg.tools == config_mod.ToolSettings(3, 5.0, 1000)
    assert build("").mcp == () and build("").tools.max_rounds == 10


@pytest.mark.parametrize(("table", "key", "words"), [
    ('[mcp.a]\ncommand = []', "mcp.a.command", "a program and its arguments"),
    ('[mcp.a]\ncwd = "/"', "mcp.a", "either command"),
    ('[mcp.a]\ncommand = ["x"]\nurl = "http://h"', "mcp.a", "not both"),
    ('[mcp.a]\nurl = "h/mcp"', "mcp.a.url", "no scheme"),
    ('[mcp.a]\ncommand = ["x"]\nenv = { A = 1 }', "mcp.a.env.A", "must be a string"),
    ('[mcp.a]\ncommand = ["x"]\ntrust = [1]', "mcp.a.trust[0]", "tool name"),
    ('[mcp.a]\ncommand = ["x"]\nenabled = "yes"', "mcp.a.enabled", "true/false"),
    ("mcp = 3", "mcp", "must be a table"),
    ("[tools]\nmax_rounds = -1", "tools.max_rounds", "0 or more"),
    ("[tools]\ntimeout = 0", "tools.timeout", "greater than 0"),
])
def test_bad_tables_are_one_line_errors(table: str, key: str, words: str) -> None:
    with pytest.raises(ConfigError) as exc:
        build(table)
    assert exc.value.key == key and words in str(exc.value) and "\n" not in str(exc.value)


def test_unknown_keys_warn_with_a_suggestion() -> None:
    cfg = build('[mcp.a]\ncommand = ["x"]\ntrusted = ["t"]')
    assert any("mcp.a.trusted" in w and "trust" in w for w in cfg.warnings)
