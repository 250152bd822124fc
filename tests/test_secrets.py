"""Keys never reach output, logs or saved files; risky setups are warned about."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelswitch.cli.main import app
from modelswitch.config import load as config_mod
from modelswitch.engine.choice import insecure_key_warning
from modelswitch.redaction import mask, redact, remember
from tests.loopback import LoopbackServer, Reply

KEY = "sk-live-TOPSECRET-1234567890abcd"


def test_mask_shape() -> None:
    assert mask(KEY) == "sk-…abcd"
    assert mask("short") == "…"
    remember(KEY)
    assert redact(f"Bearer {KEY}") == "Bearer sk-…abcd"
    # Only keys that are configured or resolved are masked: a lookalike is the user's own text.
    assert redact("AIzaSyA1234567890abcdefghijklmno here") == "AIzaSyA1234567890abcdefghijklmno here"
    remember("ollama")  # a local server's placeholder key is no secret: the word stays
    assert redact("ask ollama") == "ask ollama"


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


# -- keys from api_key_cmd, env and config: what is sent, what is refused (issue "Trust at the edges" 1)

PASS_KEY = "sk-pass-FIRSTLINE-0123456789"


def _key_config(tmp_path: Path, server: LoopbackServer, key_line: str, extra: str = "") -> Path:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[providers.x]\nbase_url = "{server.url}/v1"\n{key_line}\nretries = 0\n{extra}'
                   '[providers.x.models.m]\nid = "m"\n')
    os.chmod(cfg, 0o600)
    return cfg


def _saved_bytes(tmp_path: Path) -> bytes:
    folder = tmp_path / "data" / "modelswitch"
    return b"".join(f.read_bytes() for f in folder.iterdir()) if folder.exists() else b""


def test_api_key_cmd_sends_the_first_line_as_pass_prints_it(tmp_path: Path, server: LoopbackServer) -> None:
    # `pass show NAME` prints the key, then the entry's other lines.
    cmd = f"printf '{PASS_KEY}\\nurl: https://platform.example.com\\nuser: me\\n'"
    cfg = _key_config(tmp_path, server, f'api_key_cmd = "{cmd}"')
    server.add(Reply.say("ok"))
    result = CliRunner().invoke(app, ["--config", str(cfg), "ask", "-m", "m", "hi"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "ok\n"
    assert server.requests[0].headers["authorization"] == f"Bearer {PASS_KEY}"


@pytest.mark.parametrize("printed", ["sk-pass-CTRL\\\\033[0m-0123456789", "sk-pass-ключ-0123456789"])
def test_a_key_that_cannot_be_a_header_is_a_config_error_that_never_shows_it(
        tmp_path: Path, server: LoopbackServer, printed: str) -> None:
    cfg = _key_config(tmp_path, server, f'api_key_cmd = "printf \'{printed}\'"')
    result = CliRunner().invoke(app, ["--config", str(cfg), "ask", "-m", "m", "hi"])
    assert result.exit_code == 2, result.output
    assert "providers.x.api_key_cmd" in result.stderr and "control characters or non-ASCII" in result.stderr
    assert "pass-" not in result.output and "0123456789" not in result.output
    assert "Traceback" not in result.output and not server.requests
    assert b"0123456789" not in _saved_bytes(tmp_path)


def test_a_bad_key_in_the_environment_names_the_variable_not_the_value(
        tmp_path: Path, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_KEY", "sk-env-0123456789\nurl: https://example.com")
    cfg = _key_config(tmp_path, server, 'api_key_env = "X_KEY"')
    result = CliRunner().invoke(app, ["--config", str(cfg), "ask", "-m", "m", "hi"])
    assert result.exit_code == 2, result.output
    assert "X_KEY" in result.stderr and "provider 'x'" in result.stderr
    assert "0123456789" not in result.output and "example.com" not in result.output
    assert not server.requests


def test_a_config_header_that_cannot_be_sent_is_named_not_quoted(tmp_path: Path, server: LoopbackServer) -> None:
    cfg = _key_config(tmp_path, server, 'api_key = "sk-inline-0123456789"',
                      'headers = { "X-Token" = "tok-0123456789\\nsecond line" }\n')
    for args in (["ask", "-m", "m", "hi"], ["config", "validate"]):
        result = CliRunner().invoke(app, ["--config", str(cfg), *args])
        assert result.exit_code == 2, result.output
        assert "providers.x.headers.X-Token" in result.stderr
        assert "0123456789" not in result.output and "second line" not in result.output
    assert not server.requests


def test_transport_errors_never_quote_a_header_value() -> None:
    import httpx

    from modelswitch.providers.transport import _describe

    # What h11 raises for a header value with a newline in it: the value, key included, is quoted.
    exc = httpx.LocalProtocolError("Illegal header value b'Bearer sk-h11-0123456789\\nurl: x'")
    assert "0123456789" not in _describe(exc)


# -- what is masked, and what is not (issue items 2 and 4)


def test_config_show_and_debug_mask_every_secret_looking_header(tmp_path: Path, server: LoopbackServer) -> None:
    headers = ('headers = { Authorization = "Bearer hdr-auth-0123456789", "X-Auth-Token" = "hdr-tok-0123456789", '
               '"X-Client-Secret" = "hdr-sec-0123456789", "Api-Key" = "hdr-key-0123456789", '
               '"X-Trace" = "trace-visible" }\n')
    cfg = _key_config(tmp_path, server, 'api_key_env = "UNSET_KEY_VAR"', headers)
    shown = CliRunner().invoke(app, ["--config", str(cfg), "config", "show"])
    assert shown.exit_code == 0, shown.output
    assert "trace-visible" in shown.stdout and "X-Auth-Token" in shown.stdout
    assert "0123456789" not in shown.output

    cfg = _key_config(tmp_path, server, 'api_key = "sk-inline-0123456789"', headers)
    server.add(Reply.say("ok"))
    result = CliRunner().invoke(app, ["--config", str(cfg), "--debug", "ask", "-m", "m", "hi"])
    assert result.exit_code == 0, result.output
    assert "debug: headers" in result.stderr and "trace-visible" in result.stderr
    assert "0123456789" not in result.output
    assert server.requests[0].headers["x-auth-token"] == "hdr-tok-0123456789"  # sent, only not shown


def test_lookalikes_in_the_users_text_round_trip_while_configured_keys_are_masked(
        tmp_path: Path, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    other_key = "other-provider-key-0123456789"  # configured for a provider this chat never uses
    monkeypatch.setenv("OTHER_KEY", other_key)
    cfg = _key_config(tmp_path, server, f'api_key = "{KEY}"',
                      '[providers.other]\nbase_url = "https://other.example/v1"\napi_key_env = "OTHER_KEY"\n')
    text = f"rename .sk-folding-cube and sk-proj-lookalike-abcdefgh; my keys are {KEY} and {other_key}"
    server.add(Reply.say("done"), Reply.say("again"))
    runner = CliRunner()
    assert runner.invoke(app, ["--config", str(cfg), "ask", "-m", "m", text]).exit_code == 0
    resumed = runner.invoke(app, ["--config", str(cfg), "ask", "-c", "-m", "m", "and now?"])
    assert resumed.exit_code == 0, resumed.output

    sent_again = server.requests[1].json["messages"][0]["content"]
    assert ".sk-folding-cube and sk-proj-lookalike-abcdefgh;" in sent_again  # the user's words, unaltered
    assert KEY not in sent_again and other_key not in sent_again
    assert mask(KEY) in sent_again and mask(other_key) in sent_again
    saved = _saved_bytes(tmp_path)
    assert KEY.encode() not in saved and other_key.encode() not in saved


# -- files that hold prompts are private (issue item 3)


def test_prompt_history_is_private_whatever_the_umask(tmp_path: Path) -> None:
    from modelswitch.repl.prompt import make_prompt

    history = tmp_path / "data" / "modelswitch" / "history"
    history.parent.mkdir(parents=True)  # the data folder is already there, as after any chat
    old = os.umask(0o022)
    try:
        prompt = make_prompt(_FakeRepl())  # type: ignore[arg-type]
    finally:
        os.umask(old)
    assert prompt.session.history is not None
    assert history.stat().st_mode & 0o777 == 0o600

    history.chmod(0o644)  # written by an older build
    make_prompt(_FakeRepl())  # type: ignore[arg-type]
    assert history.stat().st_mode & 0o777 == 0o600


class _FakeRepl:
    """Just what the prompt's constructor reads; its methods are only called while prompting."""

    def toolbar(self) -> str:
        return ""


def test_an_imported_session_masks_configured_keys_and_keeps_lookalikes(
        tmp_path: Path, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    env_key = "env-configured-key-0123456789"
    monkeypatch.setenv("X_KEY", env_key)
    cfg = _key_config(tmp_path, server, 'api_key_env = "X_KEY"')
    monkeypatch.setenv("MODELSWITCH_CONFIG", str(cfg))
    server.add(Reply.say("PLACEHOLDER"))
    runner = CliRunner()
    assert runner.invoke(app, ["ask", "-m", "m", "hi"]).exit_code == 0
    exported = runner.invoke(app, ["sessions", "export", "--format", "json", "#1"])
    assert exported.exit_code == 0, exported.output
    export = tmp_path / "export.json"
    export.write_text(exported.stdout.replace("PLACEHOLDER", f"use .sk-folding-cube, not {env_key}"))

    from modelswitch import redaction as secrets

    monkeypatch.setattr(secrets, "_known", set())  # a fresh process: `sessions import` loads no model
    imported = runner.invoke(app, ["sessions", "import", str(export), "--name", "back"])
    assert imported.exit_code == 0, imported.output
    shown = runner.invoke(app, ["sessions", "export", "--format", "json", "back"])
    texts = [t["text"] for t in json.loads(shown.stdout)["turns"]]
    assert f"use .sk-folding-cube, not {mask(env_key)}" in texts
    assert env_key.encode() not in _saved_bytes(tmp_path)


# -- review items 2, 3 and 13: headers, URLs with credentials, header names


def test_secret_header_values_echoed_in_an_error_body_are_masked_and_the_hint_names_the_header(
        tmp_path: Path, server: LoopbackServer) -> None:
    auth, api, cookie = "Bearer hdr-ECHO-auth-5551234", "hdr-ECHO-xkey-5551234", "sid=hdr-ECHO-cookie-5551234"
    headers = f'headers = {{ Authorization = "{auth}", "X-Api-Key" = "{api}", Cookie = "{cookie}" }}\n'
    cfg = _key_config(tmp_path, server, 'api_key_cmd = "echo sk-cmd-ECHO-0123456789"', headers)
    for args in (["ask", "-m", "m", "hi"], ["ask", "--json", "-m", "m", "hi"]):
        server.add(Reply.json(401, {"error": {"message": f"bad credentials: {auth} / {api} / {cookie}",
                                              "type": "invalid_request_error"}}))
        result = CliRunner().invoke(app, ["--config", str(cfg), *args])
        assert result.exit_code != 0, result.output
        assert "bad credentials" in result.output
        assert "hdr-ECHO" not in result.output, result.output
        assert "api_key_cmd" not in result.output and "Authorization" in result.output


def test_credentials_in_a_base_url_are_masked_in_errors_config_show_and_debug(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[providers.x]\nbase_url = "http://user:pw-SECRET-URL@127.0.0.1:{port}/v1"\nretries = 0\n'
                   '[providers.x.models.m]\nid = "m"\n')
    for args in (["ask", "-m", "m", "hi"], ["ask", "--json", "-m", "m", "hi"], ["--debug", "ask", "-m", "m", "hi"]):
        result = CliRunner().invoke(app, ["--config", str(cfg), *args])
        assert result.exit_code != 0, result.output
        assert "pw-SECRET" not in result.output, result.output
        assert f"http://***@127.0.0.1:{port}" in result.output
    shown = CliRunner().invoke(app, ["--config", str(cfg), "config", "show"])
    assert shown.exit_code == 0, shown.output
    assert "pw-SECRET" not in shown.output and "***@127.0.0.1" in shown.stdout


def test_a_server_echoing_the_base_url_password_gets_it_masked(tmp_path: Path, server: LoopbackServer) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[providers.x]\nbase_url = "http://user:pw-ECHOED-URL-77@{server.url.split("//")[1]}/v1"\n'
                   'retries = 0\n[providers.x.models.m]\nid = "m"\n')
    server.add(Reply.json(400, {"error": {"message": "who is pw-ECHOED-URL-77?", "type": "invalid_request_error"}}))
    result = CliRunner().invoke(app, ["--config", str(cfg), "ask", "-m", "m", "hi"])
    assert result.exit_code != 0 and "who is" in result.output, result.output
    assert "pw-ECHOED" not in result.output


def test_secret_header_names_include_auth_session_signature_and_credential(tmp_path: Path,
                                                                          server: LoopbackServer) -> None:
    from modelswitch.redaction import is_secret_header

    for name in ("X-Auth", "X-Session", "X-Signature", "X-Credential", "X-Amz-Credential", "Proxy-Authorization",
                 "X-Session-Id", "X-Jwt", "Authorization", "X-Api-Key", "Cookie"):
        assert is_secret_header(name), name
    for name in ("X-Trace", "Content-Type", "User-Agent", "X-Title", "HTTP-Referer"):
        assert not is_secret_header(name), name
    headers = 'headers = { "X-Session" = "sess-value-0123456789", "X-Signature" = "sig-value-0123456789" }\n'
    cfg = _key_config(tmp_path, server, 'api_key = "sk-inline-0123456789"', headers)
    shown = CliRunner().invoke(app, ["--config", str(cfg), "config", "show"])
    assert shown.exit_code == 0 and "X-Session" in shown.stdout, shown.output
    assert "sess-value" not in shown.output and "sig-value" not in shown.output


# -- a key the model echoes is masked on every output surface, as in the database


def test_stream_mask_masks_a_key_split_anywhere_and_passes_other_text_unchanged() -> None:
    from modelswitch.redaction import StreamMask

    remember(KEY)
    text = f"Sure: {KEY}. Also sk-live-TOP alone, s and sk- at the end sk"
    for i in range(len(text) + 1):
        for j in range(i, len(text) + 1, 7):
            m = StreamMask()
            assert m.feed(text[:i]) + m.feed(text[i:j]) + m.feed(text[j:]) + m.flush() == redact(text)
    m = StreamMask()
    assert m.feed("no key here.") == "no key here."  # nothing that could begin a key is held
    cut = m.feed(f"cut off: {KEY[:20]}")
    assert cut == "cut off: " and KEY[:20] not in m.flush()  # a stream ending inside a key


def _echo_split(server: LoopbackServer, times: int = 1) -> None:
    """A reasoning model echoing the key in its thoughts and its answer, split across chunks."""
    for _ in range(times):
        server.add(Reply.sse(
            {"choices": [{"index": 0, "delta": {"reasoning_content": f"the key is {KEY[:9]}"}}]},
            {"choices": [{"index": 0, "delta": {"reasoning_content": f"{KEY[9:]} ok"}}]},
            {"choices": [{"index": 0, "delta": {"content": f"Your key: {KEY[:12]}"}}]},
            {"choices": [{"index": 0, "delta": {"content": f"{KEY[12:]} — keep it safe"}}]},
            {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
             "usage": {"prompt_tokens": 5, "completion_tokens": 9}}))


def test_an_echoed_key_is_masked_in_ask_plain_json_and_jsonl(tmp_path: Path, server: LoopbackServer) -> None:
    import json

    cfg = _key_config(tmp_path, server, f'api_key = "{KEY}"')
    _echo_split(server, 3)
    runner = CliRunner()
    plain = runner.invoke(app, ["--config", str(cfg), "ask", "-m", "m", "what is my key?"])
    assert plain.exit_code == 0, plain.output
    # Byte for byte what the model said, but for the key.
    assert plain.stdout == f"Your key: {mask(KEY)} — keep it safe\n"
    as_json = runner.invoke(app, ["--config", str(cfg), "ask", "--json", "-m", "m", "key?"])
    obj = json.loads(as_json.stdout)
    assert obj["content"] == f"Your key: {mask(KEY)} — keep it safe"
    assert obj["reasoning"] == f"the key is {mask(KEY)} ok"
    lines = runner.invoke(app, ["--config", str(cfg), "ask", "--jsonl", "-m", "m", "key?"]).stdout
    events = [json.loads(line) for line in lines.splitlines()]
    assert "".join(e["text"] for e in events if e["type"] == "text") == f"Your key: {mask(KEY)} — keep it safe"
    assert "".join(e["text"] for e in events if e["type"] == "reasoning") == f"the key is {mask(KEY)} ok"
    for out in (plain, as_json):
        assert KEY not in out.stdout and KEY not in out.stderr
    assert KEY not in lines and KEY.encode() not in _saved_bytes(tmp_path)


def test_an_echoed_key_is_masked_in_compare(tmp_path: Path, server: LoopbackServer) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[providers.x]\nbase_url = "{server.url}/v1"\napi_key = "{KEY}"\nretries = 0\n'
                   '[providers.x.models.a]\nid = "a"\n[providers.x.models.b]\nid = "b"\n')
    os.chmod(cfg, 0o600)
    _echo_split(server, 2)
    result = CliRunner().invoke(app, ["--config", str(cfg), "compare", "-m", "a", "-m", "b", "key?"])
    assert result.exit_code == 0, result.output
    assert result.stdout.count(f"Your key: {mask(KEY)} — keep it safe") == 2
    assert KEY not in result.stdout


@pytest.mark.pty
def test_an_echoed_key_is_masked_on_the_chat_screen(tmp_path: Path, server: LoopbackServer) -> None:
    import io
    import shutil
    import sys

    from tests.loopback import command_env

    pexpect = pytest.importorskip("pexpect")
    exe = shutil.which("modelswitch", path=str(Path(sys.executable).parent))
    assert exe is not None
    cfg = _key_config(tmp_path, server, 'api_key_env = "X_KEY"')
    _echo_split(server)
    env = command_env(cfg, tmp_path, X_KEY=KEY, COLUMNS="100", LINES="40")
    child = pexpect.spawn(exe, ["chat", "-m", "m"], env=env, encoding="utf-8", dimensions=(40, 100), timeout=20)
    child.expect("m ›")
    child.logfile_read = log = io.StringIO()
    child.send("what is my key?\r")
    child.expect("tokens")
    child.expect("m ›")
    child.sendline("/exit")
    child.expect(pexpect.EOF)
    screen = log.getvalue()
    assert mask(KEY) in screen
    assert KEY[12:] not in screen and KEY[9:] not in screen
