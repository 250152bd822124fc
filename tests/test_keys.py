"""`modelswitch keys`: the keys file's mode and atomic writes, the order keys are taken in, masking."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelswitch.cli.main import app
from modelswitch.config import keystore
from modelswitch.config.keys import key_available, key_origin, resolve_key
from modelswitch.config.load import ProviderSpec

KEY = "sk-file-SECRET-0123456789abcdef"
ENV_KEY = "sk-env-SECRET-0123456789abcdef"
INLINE = "sk-inline-SECRET-0123456789abc"


def invoke(args: list[str], input: str | None = None):  # noqa: A002, ANN201
    return CliRunner().invoke(app, args, input=input, catch_exceptions=False)


def provider(**kw: object) -> ProviderSpec:
    base: dict[str, object] = {"name": "deepseek", "type": "openai", "base_url": "https://api.deepseek.com",
                               "api_key_env": "DEEPSEEK_API_KEY"}
    base.update(kw)
    return ProviderSpec(**base)  # type: ignore[arg-type]


def test_keys_set_from_stdin_writes_a_private_file(isolated_env: Path) -> None:
    result = invoke(["keys", "set", "deepseek"], input=KEY + "\n")
    assert result.exit_code == 0, result.output
    path = isolated_env / "config" / "modelswitch" / "keys.toml"
    assert invoke(["keys", "path"]).output.strip() == str(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert KEY in path.read_text("utf-8")
    assert KEY not in result.output
    assert [p.name for p in path.parent.iterdir()] == ["keys.toml"]  # no temporary file left


def test_keys_list_masks_and_says_where_from(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    invoke(["keys", "set", "deepseek"], input=KEY)
    monkeypatch.setenv("OPENAI_API_KEY", ENV_KEY)
    out = invoke(["keys", "list"]).output
    assert KEY not in out and ENV_KEY not in out
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "keys file" in lines["deepseek"] and "sk-…cdef" in lines["deepseek"]
    assert "env OPENAI_API_KEY" in lines["openai"]
    assert "none" in lines["hunyuan"] and "modelswitch keys set hunyuan" in lines["hunyuan"]


def test_precedence_env_then_cmd_then_file_then_inline(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = provider(api_key=INLINE)
    assert resolve_key(p) == INLINE and key_origin(p) == "config api_key"
    keystore.set_key("deepseek", KEY)
    assert resolve_key(p) == KEY and key_origin(p) == "keys file"
    cmd = provider(api_key=INLINE, api_key_cmd=f"{sys.executable} -c \"print('sk-cmd-SECRET-0123456789')\"")
    assert resolve_key(cmd) == "sk-cmd-SECRET-0123456789" and key_origin(cmd) == "api_key_cmd"
    monkeypatch.setenv("DEEPSEEK_API_KEY", ENV_KEY)
    assert resolve_key(cmd) == ENV_KEY and key_origin(cmd) == "env DEEPSEEK_API_KEY"


def test_a_saved_key_makes_the_model_ready(isolated_env: Path) -> None:
    before = invoke(["models"]).output
    line = next(x for x in before.splitlines() if x.startswith("v3 "))
    assert "needs DEEPSEEK_API_KEY" in line  # and how to set one, once under the table:
    assert "set a key: modelswitch keys set PROVIDER, or the environment variable named" in before
    assert not key_available(provider())
    invoke(["keys", "set", "deepseek"], input=KEY)
    assert key_available(provider())
    line = next(x for x in invoke(["models"]).output.splitlines() if x.startswith("v3 "))
    assert "ready" in line and "needs" not in line


def test_keys_remove_and_bad_input(isolated_env: Path) -> None:
    assert invoke(["keys", "remove", "deepseek"]).exit_code != 0
    empty = invoke(["keys", "set", "deepseek"], input="\n")
    assert empty.exit_code != 0 and "nothing was saved" in empty.output
    bad = invoke(["keys", "set", "deepseek"], input="sk-\x1bbad-key-value\n")
    assert bad.exit_code != 0 and "\x1b" not in bad.output
    unknown = invoke(["keys", "set", "nosuch"], input=KEY)
    assert unknown.exit_code == 2 and "deepseek" in unknown.output
    invoke(["keys", "set", "deepseek"], input=KEY)
    invoke(["keys", "set", "openai"], input=ENV_KEY)
    assert invoke(["keys", "remove", "deepseek"]).exit_code == 0
    assert keystore.read_keys() == {"openai": ENV_KEY}


def test_a_broken_keys_file_is_one_line_without_its_text(isolated_env: Path) -> None:
    path = keystore.keys_path()
    path.parent.mkdir(parents=True)
    path.write_text(f'deepseek = "{KEY}\n', "utf-8")
    result = invoke(["keys", "list"])
    assert result.exit_code != 0 and KEY not in result.output and "keys.toml" in result.output
    assert "Traceback" not in result.output


def test_keys_set_hidden_prompt_in_a_terminal(tmp_path: Path) -> None:
    pexpect = pytest.importorskip("pexpect")
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update({"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "XDG_DATA_HOME": str(tmp_path / "data")})
    exe = str(Path(sys.executable).with_name("modelswitch"))
    child = pexpect.spawn(exe, ["keys", "set", "deepseek"], env=env, encoding="utf-8", timeout=30)
    child.expect("input hidden")
    child.sendline(KEY)
    child.expect(pexpect.EOF)
    assert KEY not in child.before  # not echoed
    assert KEY in (tmp_path / "cfg" / "modelswitch" / "keys.toml").read_text("utf-8")


def test_starter_config_works_with_only_one_providers_key(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = isolated_env / "starter.toml"
    monkeypatch.setenv("MODELSWITCH_CONFIG", str(cfg))
    assert invoke(["config", "init"]).exit_code == 0
    invoke(["keys", "set", "deepseek"], input=KEY)  # DeepSeek's key only, no Hunyuan key
    shown = invoke(["config", "show"]).output
    assert "# default model: v3 (deepseek/deepseek-flash)" in shown or "# default model: r1 (deepseek/deepseek-flash)" in shown


def test_keys_set_without_a_provider_lists_the_providers(isolated_env: Path) -> None:
    result = invoke(["keys", "set"])
    assert result.exit_code == 2, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: usage: modelswitch keys set PROVIDER; providers that take a key: ")
    assert "deepseek" in line and "Missing argument" not in result.stderr
