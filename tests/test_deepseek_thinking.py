"""DeepSeek's thinking switch, the presets that use it, and the ids DeepSeek retired on 2026-07-24.

The built-in presets are used as shipped, with only the base_url pointed at a loopback fake that
validates DeepSeek's documented request shape (tests/validators.FakeDeepSeek)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelswitch import errors
from modelswitch.cli.main import app
from modelswitch.config import load as config_mod
from modelswitch.conversation import Message
from modelswitch.engine.session import ChatSession
from tests.loopback import LoopbackServer, command_env
from tests.search_fakes import FakeChatSearch
from tests.validators import FakeDeepSeek, router

DS_KEY = "sk-ds-test"


def preset_config(url: str, extra: str = "") -> config_mod.Config:
    """The shipped presets, DeepSeek's endpoint moved to the loopback server (as a proxy would)."""
    text = f'[providers.deepseek]\nbase_url = "{url}/ds"\nretries = 0\n' + extra
    return config_mod.build(tomllib.loads(text), Path("t.toml"), presets=config_mod.load_presets())


def own_provider(base_url: str, monkeypatch: pytest.MonkeyPatch, models: str) -> config_mod.Config:
    """A provider of the user's own (not DeepSeek's preset) named `own`, with these models."""
    monkeypatch.setenv("OWN_KEY", DS_KEY)
    text = f'[providers.own]\nbase_url = "{base_url}"\napi_key_env = "OWN_KEY"\nretries = 0\n' + models
    return config_mod.build(tomllib.loads(text), Path("t.toml"), presets={})


def exchange(chat: ChatSession, text: str, model: str | None = None) -> Message:
    user = chat.user_message(text)
    answer = chat.ask(user, chat.resolve(model) if model else None)
    for _ in answer:
        pass
    return chat.finish(user, answer)


@pytest.fixture(autouse=True)
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPSEEK_API_KEY", DS_KEY)


@pytest.mark.parametrize("alias, model_id, thinking, reasons", [
    ("v3", "deepseek-flash", "disabled", False),
    ("r1", "deepseek-flash", "enabled", True),
    ("ds-pro", "deepseek-v4-pro", "enabled", True),
])
def test_presets_name_todays_ids_and_switch_thinking_as_deepseek_documents(
        server: LoopbackServer, alias: str, model_id: str, thinking: str, reasons: bool) -> None:
    fake = FakeDeepSeek(prefix="/ds/", models=("deepseek-flash", "deepseek-v4-pro"))
    server.default = router(fake)
    cfg = preset_config(server.url)
    chat = ChatSession(cfg, cfg.resolve(alias))
    reply = exchange(chat, "hello")
    assert fake.rejected == [] and len(fake.accepted) == 1
    body = fake.accepted[0]
    assert body["model"] == model_id and body["thinking"] == {"type": thinking}
    assert "reasoning_effort" not in body
    assert bool(reply.reasoning) is reasons and reply.text.startswith(f"{model_id} answer")


def test_set_reasoning_off_on_r1_really_turns_thinking_off_and_on_on_v3_turns_it_on(
        server: LoopbackServer) -> None:
    fake = FakeDeepSeek(prefix="/ds/", models=("deepseek-flash",))
    server.default = router(fake)
    cfg = preset_config(server.url)
    chat = ChatSession(cfg, cfg.resolve("r1"))
    chat.set("reasoning", "off")  # what `/set reasoning off` does
    off = exchange(chat, "no thinking please")
    chat.switch("v3")
    chat.set("reasoning", "high")
    effort = exchange(chat, "think hard")
    chat.set("reasoning", "on")
    on = exchange(chat, "think")
    chat.set("reasoning", "default")
    default = exchange(chat, "as you like")
    assert fake.rejected == []
    sent = [(b.get("thinking"), b.get("reasoning_effort")) for b in fake.accepted]
    assert sent == [({"type": "disabled"}, None), ({"type": "enabled"}, "high"), ({"type": "enabled"}, None),
                    # default: v3's own `reasoning = false` from the preset
                    ({"type": "disabled"}, None)]
    assert off.reasoning == "" and effort.reasoning and on.reasoning and default.reasoning == ""


def test_a_model_may_declare_the_toggle_and_a_budget_of_zero_is_off(server: LoopbackServer,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeDeepSeek(prefix="/relay/", models=("deepseek-flash",))
    server.default = router(fake)
    cfg = own_provider(server.url + "/relay", monkeypatch, """
[providers.own.models.flash]
id = "deepseek-flash"
thinking_toggle = true
reasoning = 0
[providers.own.models.plain]
id = "deepseek-flash"
reasoning = false
""")
    chat = ChatSession(cfg, cfg.resolve("flash"))
    exchange(chat, "a")
    exchange(chat, "b", "plain")
    assert [b.get("thinking") for b in fake.accepted] == [{"type": "disabled"}, None]


def test_a_provider_without_the_toggle_never_gets_the_thinking_field(server: LoopbackServer,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # OpenAI answers 400 "Unrecognized request argument supplied: thinking" to the field; DeepSeek,
    # in the same chat with the same setting, gets it.
    ds, oa = FakeDeepSeek(prefix="/ds/", models=("deepseek-flash",)), FakeChatSearch(vendor="openai", key="sk-oa-test")
    server.default = router(ds, oa)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-oa-test")
    cfg = preset_config(server.url, f'[providers.openai]\nbase_url = "{server.url}/oa/v1"\nretries = 0\n')
    assert cfg.providers["openai"].thinking_toggle is None
    chat = ChatSession(cfg, cfg.resolve("o4-mini"))
    for value in ("off", "on", "low", "4096"):
        chat.set("reasoning", value)
        exchange(chat, f"reasoning {value}")
        exchange(chat, f"reasoning {value}", "r1")
    assert oa.rejected == [] and ds.rejected == [] and len(oa.accepted) == len(ds.accepted) == 4
    assert all("thinking" not in b for b in oa.accepted)
    assert [b["thinking"]["type"] for b in ds.accepted] == ["disabled", "enabled", "enabled", "enabled"]


@pytest.mark.parametrize("old, mode", [("deepseek-chat", "off"), ("deepseek-reasoner", "on")])
def test_a_retired_id_is_named_retired_with_its_replacement(server: LoopbackServer, tmp_path: Path,
                                                           old: str, mode: str) -> None:
    # Today's DeepSeek: the old ids are gone (400 "Model Not Exist", invalid_request_error).
    fake = FakeDeepSeek(prefix="/ds/", models=("deepseek-flash", "deepseek-v4-pro"))
    server.default = router(fake)
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[providers.deepseek]\nbase_url = "{server.url}/ds"\nretries = 0\n'
                   f'[providers.deepseek.models.old]\nid = "{old}"\n', "utf-8")
    result = CliRunner().invoke(app, ["--config", str(cfg), "ask", "-m", "old", "hi"])
    assert result.exit_code != 0 and fake.rejected == [(400, "Model Not Exist")]
    assert result.stderr.strip().splitlines() == [
        f"error: deepseek/{old}: rejected the request (400): Model Not Exist — DeepSeek retired {old} on "
        f"2026-07-24: use deepseek-flash with reasoning {mode} (`reasoning = {'true' if mode == 'on' else 'false'}`, "
        f"the {'r1' if mode == 'on' else 'v3'} preset)"]


def test_retired_advice_is_only_for_deepseek_and_only_for_a_refused_model(server: LoopbackServer,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeDeepSeek(prefix="/", models=("deepseek-flash",))
    server.default = router(fake)
    # Another host may still serve an old name: its refusal is told as it is.
    cfg = own_provider(server.url + "/v1", monkeypatch, '[providers.own.models.old]\nid = "deepseek-chat"\n')
    chat = ChatSession(cfg, cfg.resolve("old"))
    with pytest.raises(errors.BadRequestError) as info:
        exchange(chat, "hi")
    assert "retired" not in info.value.message
    # DeepSeek itself, but the key is wrong: that is what is said, not the retirement.
    monkeypatch.setenv("DEEPSEEK_API_KEY", "sk-wrong")
    cfg = config_mod.build(tomllib.loads(f'[providers.deepseek]\nbase_url = "{server.url}"\nretries = 0\n'
                                         '[providers.deepseek.models.old]\nid = "deepseek-chat"\n'),
                           Path("t.toml"), presets=config_mod.load_presets())
    chat = ChatSession(cfg, cfg.resolve("old"))
    with pytest.raises(errors.AuthError) as auth:
        exchange(chat, "hi")
    assert "retired" not in auth.value.message and "DEEPSEEK_API_KEY" in auth.value.message


def test_a_saved_session_on_a_retired_id_is_told_the_replacement(server: LoopbackServer, tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[providers.deepseek]\nbase_url = "{server.url}/ds"\nretries = 0\n', "utf-8")
    server.default = router(FakeDeepSeek(prefix="/ds/"))  # before 2026-07-24: the old id still answers
    runner = CliRunner()
    first = runner.invoke(app, ["--config", str(cfg), "ask", "--session", "old", "-m", "deepseek/deepseek-reasoner", "hi"])
    assert first.exit_code == 0, first.stderr
    retired = FakeDeepSeek(prefix="/ds/", models=("deepseek-flash", "deepseek-v4-pro"))
    server.default = router(retired)
    again = runner.invoke(app, ["--config", str(cfg), "ask", "--session", "old", "and now?"])
    assert again.exit_code != 0 and retired.rejected == [(400, "Model Not Exist")]
    assert again.stderr.startswith("error: deepseek/deepseek-reasoner: rejected the request (400): Model Not Exist — "
                                   "DeepSeek retired deepseek-reasoner on 2026-07-24: use deepseek-flash with reasoning on")


@pytest.mark.pty
def test_in_the_repl_set_reasoning_off_on_r1_sends_thinking_disabled(server: LoopbackServer, tmp_path: Path) -> None:
    import shutil
    import sys

    pexpect = pytest.importorskip("pexpect")
    exe = shutil.which("modelswitch", path=str(Path(sys.executable).parent))
    assert exe is not None
    fake = FakeDeepSeek(prefix="/ds/", models=("deepseek-flash",))
    server.default = router(fake)
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'default = "r1"\n[providers.deepseek]\nbase_url = "{server.url}/ds"\nretries = 0\n', "utf-8")
    env = command_env(cfg, tmp_path, DEEPSEEK_API_KEY=DS_KEY, COLUMNS="100", LINES="40")
    child = pexpect.spawn(exe, ["chat"], env=env, encoding="utf-8", dimensions=(40, 100), timeout=20)
    child.expect("r1 ›")
    child.send("think first\r")
    child.expect("r1 ·")  # the footer: the answer is done
    child.expect("r1 ›")
    child.send("/set reasoning off\r")
    child.expect("reasoning = off")
    child.send("now just answer\r")
    child.expect("r1 ·")
    child.expect("r1 ›")
    child.send("/exit\r")
    child.expect(pexpect.EOF)
    child.close()
    assert fake.rejected == []
    assert [b["thinking"] for b in fake.accepted] == [{"type": "enabled"}, {"type": "disabled"}]


@pytest.mark.parametrize("declared, base_url, sent", [
    (None, "https://api.deepseek.com", {"type": "disabled"}),  # a user's own entry for DeepSeek
    (None, "https://api.deepseek.com/v1", {"type": "disabled"}),
    (None, "http://127.0.0.1:9/v1", None),  # undeclared elsewhere: never (OpenAI answers 400)
    (False, "https://api.deepseek.com", None),  # declared off wins over the host
    (True, "http://127.0.0.1:9/v1", {"type": "disabled"}),
])
def test_undeclared_thinking_toggle_follows_deepseeks_host(declared: bool | None, base_url: str, sent: object) -> None:
    """`[providers.ds] base_url = "https://api.deepseek.com"` with `reasoning = false`: without the
    field DeepSeek's default (thinking on) would think and bill reasoning the user turned off."""
    from modelswitch.conversation import Conversation, Message
    from modelswitch.providers import get_protocol
    from modelswitch.providers.base import Target

    target = Target("ds", base_url, "deepseek-flash", api_key="sk-x", reasoning=False, thinking_toggle=declared)
    body = get_protocol("openai").build_request(target, Conversation().add(Message("user", "hi"))).body
    assert body.get("thinking") == sent
