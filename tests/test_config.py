from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelswitch import paths
from modelswitch.config import load as config
from modelswitch.config import keys as secrets
from modelswitch import redaction
from modelswitch.errors import ConfigError, UsageError


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "config.toml"
    p.write_text(text, "utf-8")
    return p


def test_presets_alone_give_every_required_provider() -> None:
    c = config.load(Path("/nonexistent/config.toml"))
    for name in ("deepseek", "hunyuan", "openai", "openrouter", "qwen", "moonshot", "doubao", "zhipu",
                 "siliconflow", "groq", "mistral", "xai", "ollama", "llamacpp", "lmstudio", "anthropic", "gemini"):
        assert name in c.providers, name
    assert c.providers["anthropic"].type == "anthropic"
    assert c.providers["gemini"].type == "gemini"
    assert c.providers["ollama"].type == "ollama"
    assert not c.providers["ollama"].needs_key and c.providers["ollama"].local
    r1, v3, pro = c.resolve("r1"), c.resolve("v3"), c.resolve("ds-pro")
    assert (r1.id, r1.reasoning) == ("deepseek-flash", True) and (v3.id, v3.reasoning) == ("deepseek-flash", False)
    assert (pro.id, pro.reasoning, pro.vision) == ("deepseek-v4-pro", True, False)
    assert c.providers["deepseek"].thinking_toggle is True
    assert c.exists is False


def test_provider_slash_id_resolves_listed_and_unlisted_models() -> None:
    c = config.load(Path("/nonexistent"))
    assert c.resolve("deepseek/deepseek-v4-pro").alias == "ds-pro"  # keeps the preset's settings
    adhoc = c.resolve("openrouter/anthropic/claude-3.5-haiku")
    assert (adhoc.provider, adhoc.id, adhoc.alias) == ("openrouter", "anthropic/claude-3.5-haiku", None)


def test_unknown_model_suggests_a_close_name() -> None:
    c = config.load(Path("/nonexistent"))
    with pytest.raises(UsageError, match="did you mean 'r1'"):
        c.resolve("r2")
    with pytest.raises(UsageError, match="unknown provider 'deepsek'.*'deepseek'"):
        c.resolve("deepsek/deepseek-chat")


def test_user_config_overrides_preset_and_adds_models(tmp_path: Path) -> None:
    p = write(tmp_path, """
default = "fast"
[providers.deepseek]
base_url = "https://proxy.example/v1"
timeout = 30
[providers.deepseek.models.fast]
id = "deepseek-chat"
temperature = 0.3
""")
    c = config.load(p)
    ds = c.providers["deepseek"]
    assert ds.base_url == "https://proxy.example/v1"
    assert ds.read_timeout == 30.0 and ds.connect_timeout == 10.0
    assert ds.api_key_env == "DEEPSEEK_API_KEY"  # kept from the preset
    assert c.resolve("fast").temperature == 0.3
    assert c.resolve("r1").provider == "deepseek"  # preset models still there
    assert c.default_model().alias == "fast"
    assert list(c.providers)[0] == "deepseek"  # the user's providers come first


def test_user_alias_shadows_preset_alias_of_another_provider(tmp_path: Path) -> None:
    p = write(tmp_path, """
[providers.mine]
base_url = "http://127.0.0.1:9/v1"
[providers.mine.models.r1]
id = "my-r1"
""")
    c = config.load(p)
    assert c.resolve("r1").provider == "mine"
    assert all(m.alias != "r1" for m in c.providers["deepseek"].models)


@pytest.mark.parametrize(
    "text, needle",
    [
        ('default = "nope"', "default: names nothing"),
        ('[providers.x]\ntype = "grpc"\nbase_url = "http://a"', "providers.x.type: unknown type 'grpc'"),
        ('[providers.x]\nbase_url = "http://a"\ntimeout = "slow"', "providers.x.timeout: must be a number, got a string"),
        ('[providers.x]\nbase_url = "api.example.com/v1"', "providers.x.base_url: 'api.example.com/v1' has no scheme"),
        ('[providers.x]\nbase_url = "http://a"\n[providers.x.models.m]\nid = "m"\ntemperature = true',
         "providers.x.models.m.temperature: must be a number, got true/false"),
        ('[providers.x]\nbase_url = "http://a"\n[providers.x.models.m]\nid = "m"\nfallback = ["zz9"]',
         "providers.x.models.m.fallback[0]: unknown model 'zz9'"),
        ('[providers.x]\nbase_url = "http://a"\n[providers.x.models.m]\nid = "m"\n'
         '[providers.y]\nbase_url = "http://b"\n[providers.y.models.m]\nid = "n"', "providers.y.models.m: duplicate alias 'm'"),
        ('[providers.x]\nbase_url = "http://a"\n[providers.x.models.m]\nid = "m"\nprice = {input = 1}',
         "price: needs both input and output"),
        ('[providers.x]\nbase_url = "http://a"\n[providers.x.models.m]\nreasoning = "max"\nid = "m"',
         "reasoning: must be true, false, low, medium, high or a token budget"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path: Path, text: str, needle: str) -> None:
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        config.load(p)
    assert str(p) in str(info.value)
    assert needle in str(info.value)
    assert info.value.exit_code == 2


def test_toml_syntax_error_gives_line_and_column(tmp_path: Path) -> None:
    p = write(tmp_path, 'default = "hy"\n[providers.x\nbase_url = 1\n')
    with pytest.raises(ConfigError, match=r"invalid TOML: .*line 2"):
        config.load(p)


def test_unknown_keys_warn_with_did_you_mean(tmp_path: Path) -> None:
    p = write(tmp_path, '[providers.deepseek]\napi_key_evn = "X"\n[providers.deepseek.models.r1]\nid = "deepseek-reasoner"\ntemprature = 1\n')
    c = config.load(p)
    text = "\n".join(c.warnings)
    assert "providers.deepseek.api_key_evn" in text and "'api_key_env'" in text
    assert "providers.deepseek.models.r1.temprature" in text and "'temperature'" in text


def test_config_path_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert paths.config_path() == tmp_path / "config" / "modelswitch" / "config.toml"
    monkeypatch.setenv("MODELSWITCH_CONFIG", str(tmp_path / "env.toml"))
    assert paths.config_path() == tmp_path / "env.toml"
    assert paths.config_path(str(tmp_path / "flag.toml")) == tmp_path / "flag.toml"


def test_default_model_is_first_preset_with_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    c = config.load(Path("/nonexistent"))
    assert c.default_model() is None
    monkeypatch.setenv("HUNYUAN_API_KEY", "hk-123456789")
    assert c.default_model().alias == "hy"
    monkeypatch.setenv("DEEPSEEK_API_KEY", "sk-123456789")
    assert c.default_model().alias == "v3"


def test_api_key_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = write(tmp_path, """
[providers.a]
base_url = "http://127.0.0.1:1/v1"
api_key_cmd = "echo '  sk-fromcmd-123456  '"
[providers.b]
base_url = "http://127.0.0.1:1/v1"
api_key_cmd = "echo oops >&2; exit 3"
[providers.c]
base_url = "http://127.0.0.1:1/v1"
api_key_env = "C_KEY"
[providers.d]
base_url = "http://127.0.0.1:1/v1"
api_key = "sk-inline-abcdef"
""")
    c = config.load(p)
    assert secrets.resolve_key(c.providers["a"]) == "sk-fromcmd-123456"
    with pytest.raises(ConfigError, match=r"providers\.b\.api_key_cmd: failed \(exit 3\): oops"):
        secrets.resolve_key(c.providers["b"])
    with pytest.raises(ConfigError, match="set C_KEY"):
        secrets.resolve_key(c.providers["c"])
    monkeypatch.setenv("C_KEY", "sk-env-key-9999")
    assert secrets.resolve_key(c.providers["c"]) == "sk-env-key-9999"
    assert secrets.resolve_key(c.providers["d"]) == "sk-inline-abcdef"
    assert redaction.redact("key sk-env-key-9999 leaked") == "key sk-…9999 leaked"


def test_api_key_cmd_that_hangs_times_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secrets, "API_KEY_CMD_TIMEOUT", 0.5)
    p = write(tmp_path, '[providers.a]\nbase_url = "http://127.0.0.1:1/v1"\napi_key_cmd = "sleep 30"\n')
    with pytest.raises(ConfigError, match="timed out"):
        secrets.resolve_key(config.load(p).providers["a"])


def test_non_utf8_config_is_a_config_error(tmp_path: Path) -> None:
    p = tmp_path / "config.toml"
    p.write_bytes(b'default = "\xff\xfe"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        config.load(p)
    assert os.path.exists(p)


# -- an explicitly named config must be there (issue "Trust at the edges" 15)


def _named_config_cases(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "a-folder.toml"
    folder.mkdir()
    loop = tmp_path / "loop.toml"
    loop.symlink_to(tmp_path / "loop2.toml")
    (tmp_path / "loop2.toml").symlink_to(loop)
    dangling = tmp_path / "dangling.toml"
    dangling.symlink_to(tmp_path / "gone.toml")
    return {"missing": tmp_path / "typo.toml", "a directory": folder, "a symlink loop": loop,
            "a dangling symlink": dangling}


@pytest.mark.parametrize("how", ["--config", "MODELSWITCH_CONFIG"])
def test_a_named_config_that_is_not_a_file_is_exit_2_naming_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    from typer.testing import CliRunner

    from modelswitch.cli.main import app

    monkeypatch.setenv("DEEPSEEK_API_KEY", "sk-ds-0123456789")  # presets alone would be usable
    for case, path in _named_config_cases(tmp_path).items():
        for command in (["models"], ["config", "validate"], ["config", "show"]):
            if how == "--config":
                result = CliRunner().invoke(app, ["--config", str(path), *command])
            else:
                monkeypatch.setenv("MODELSWITCH_CONFIG", str(path))
                result = CliRunner().invoke(app, command)
            assert result.exit_code == 2, (case, command, result.output)
            assert str(path) in result.stderr, (case, result.stderr)
            assert "Traceback" not in result.output


def test_the_default_config_path_may_be_missing() -> None:
    from typer.testing import CliRunner

    from modelswitch.cli.main import app

    result = CliRunner().invoke(app, ["config", "validate"])
    assert result.exit_code == 0, result.output
    assert "built-in presets are valid" in result.stdout


def test_validate_lists_every_error_not_only_the_first(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from modelswitch.cli.main import app

    p = write(tmp_path, 'default = "nowhere"\n'
                        '[providers.a]\nbase_url = "api.a.example"\ntype = "opneai"\n'
                        '[providers.a.models.m]\nid = "m"\ntemperature = 7\nfallback = ["ghost"]\n'
                        '[providers.b]\nretries = -1\n[providers.b.models.n]\nprice = { input = 1 }\n')
    result = CliRunner().invoke(app, ["--config", str(p), "config", "validate"])
    assert result.exit_code == 2, result.output
    for key in ("default", "providers.a.base_url", "providers.a.type", "providers.a.models.m.temperature",
                "providers.a.models.m.fallback[0]", "providers.b.base_url", "providers.b.retries",
                "providers.b.models.n.id", "providers.b.models.n.price"):
        assert f"{p}: {key}: " in result.stderr, key
    assert result.stderr.count("error: ") == 9
    with pytest.raises(ConfigError):  # a normal load still stops at the first
        config.load(p)


def test_validate_shows_unknown_keys_together_with_the_errors(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from modelswitch.cli.main import app

    p = write(tmp_path, 'defualt = "m"\n[providers.a]\nbase_url = "https://a.example/v1"\nretries = -1\n'
                        '[providers.a.models.m]\nid = "m"\ntemprature = 0.5\n')
    result = CliRunner().invoke(app, ["--config", str(p), "config", "validate"])
    assert result.exit_code == 2, result.output
    assert f"{p}: providers.a.retries: " in result.stderr
    assert "unknown key 'defualt'" in result.stderr and "unknown key 'providers.a.models.m.temprature'" in result.stderr
    assert result.stderr.count("unknown key") == 2


@pytest.mark.parametrize("url, needle", [
    ("http://", "'http://' has no host"),
    ("https:///v1", "'https:///v1' has no host"),
    ("ftp://api.example.com", "must start with http:// or https://"),
    ("http://[::1/v1", "is not a valid URL"),
    ("https://user:hunter2@:443/v1", "has no host"),
])
def test_a_base_url_needs_a_host_and_an_http_scheme(tmp_path: Path, url: str, needle: str) -> None:
    p = write(tmp_path, f'[providers.x]\nbase_url = "{url}"\n')
    with pytest.raises(ConfigError) as info:
        config.load(p)
    assert f"providers.x.base_url: " in str(info.value) and needle in str(info.value)
    assert "hunter2" not in str(info.value)


def test_a_base_url_scheme_is_case_insensitive(tmp_path: Path) -> None:
    p = write(tmp_path, '[providers.x]\nbase_url = "HTTPS://api.example.com/v1"\n[providers.x.models.m]\nid = "m"\n'
                        '[mcp.t]\nurl = "Http://127.0.0.1:9/mcp"\n')
    c = config.load(p)
    assert c.providers["x"].base_url == "https://api.example.com/v1"
    assert c.mcp[0].url == "http://127.0.0.1:9/mcp"
