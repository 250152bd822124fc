"""Remote text never reaches a terminal (or stderr) with its control sequences intact.

An answer, its reasoning, an error body, a model id a server lists, an imported session: each
carries OSC 0 (window title), OSC 52 (clipboard write) and CSI 2J (clear screen) here. In a real
pseudo-terminal the raw bytes the terminal receives must hold none of them, and the text must
still be there, shown harmlessly. Piped stdout of `ask` stays byte for byte: it is data.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from modelswitch.safetext import visible
from tests.loopback import LoopbackServer, Reply, command_env
from tests.test_repl_pty import oa_chunk, oa_finish

pexpect = pytest.importorskip("pexpect")
EXE = shutil.which("modelswitch", path=str(Path(sys.executable).parent))
needs_exe = pytest.mark.skipif(EXE is None, reason="the modelswitch console script is not installed")

TITLE, CLIPBOARD, CLEAR = "\x1b]0;pwned\x07", "\x1b]52;c;ZXZpbA==\x07", "\x1b[2J"
ATTACKS = [b"\x1b]0;", b"\x1b]52;", b"\x1b[2J", b"\x07", "\x9b".encode()]


def evil(tag: str) -> str:
    return f"{tag}:a{TITLE}b{CLIPBOARD}c{CLEAR}d \x9b31m end"


def assert_harmless(raw: bytes, *tags: str) -> None:
    """No attack reached the terminal, and each tagged text did arrive, made visible."""
    for attack in ATTACKS:
        assert attack not in raw, attack
    shown = raw.decode("utf-8", "replace")
    for tag in tags:
        assert f"{tag}:a␛]0;pwned␇b␛]52;c;ZXZpbA==␇c␛[2Jd" in shown, tag  # no space: never wrapped
    assert "␛[31m" in shown


# -- the rule itself -----------------------------------------------------------------------------


def test_visible_replaces_controls_but_newline_and_tab() -> None:
    assert visible("plain text, 中文\n\tindented") == "plain text, 中文\n\tindented"
    assert visible(TITLE + CLIPBOARD + CLEAR) == "␛]0;pwned␇␛]52;c;ZXZpbA==␇␛[2J"
    assert visible("a\x00b\x7fc\x08d") == "a␀b␡c␈d"
    assert visible("\x9b2J \x9d0;t\x9c \x85") == "␛[2J ␛]0;t␛\\ ␛E"  # C1: their 7-bit form
    assert visible("line one\r\nline two\rover") == "line one\nline two␍over"
    every = "".join(map(chr, range(0x00, 0xA0)))
    assert not [c for c in visible(every) if c not in "\n\t" and (ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0)]


# -- in a pseudo-terminal ------------------------------------------------------------------------


@pytest.fixture
def env(tmp_path: Path, server: LoopbackServer) -> dict[str, str]:
    cfg = tmp_path / "config.toml"
    cfg.write_text(f"""
default = "r1"
[providers.deep]
base_url = "{server.url}/deep/v1"
api_key_env = "DEEP_KEY"
retries = 0
[providers.deep.models.r1]
id = "deepseek-reasoner"
[providers.deep.models.v3]
id = "deepseek-chat"
[providers.lm]
base_url = "{server.url}/lm/v1"
local = true
""")
    return command_env(cfg, tmp_path, DEEP_KEY="sk-deep-0123456789", COLUMNS="140", LINES="40")


def answer_reply(tag: str) -> Reply:
    return Reply.sse(oa_chunk(reasoning=evil(f"R-{tag}") + "\n"), oa_chunk(content=evil(f"A-{tag}") + "\n"),
                     oa_finish(), path="/deep/")


def error_reply(tag: str) -> Reply:
    return Reply.json(500, {"error": {"message": evil(f"E-{tag}"), "type": "server_error"}}, path="/deep/")


def models_reply() -> Reply:
    return Reply.json(200, {"object": "list", "data": [{"id": "M" + TITLE + CLEAR, "object": "model"}]},
                      path="/lm/v1/models")


def run_in_pty(env: dict[str, str], *args: str) -> tuple[bytes, int]:
    # 140 columns: the models table (tools column included) shows the whole hostile id, uncut.
    child = pexpect.spawn(EXE, list(args), env=env, dimensions=(40, 140), timeout=30)
    child.expect(pexpect.EOF)
    child.close()
    return child.before, child.exitstatus


@needs_exe
@pytest.mark.pty
def test_ask_in_a_terminal_shows_answer_reasoning_and_error_harmlessly(
    env: dict[str, str], server: LoopbackServer
) -> None:
    server.add(answer_reply("ask"))
    raw, code = run_in_pty(env, "ask", "--reasoning", "show", "hi")
    assert code == 0, raw
    assert_harmless(raw, "R-ask", "A-ask")

    server.add(error_reply("ask"))
    raw, code = run_in_pty(env, "ask", "hi")  # stderr is the terminal too
    assert code == 1, raw
    assert_harmless(raw, "E-ask")


@needs_exe
@pytest.mark.pty
def test_models_table_in_a_terminal_shows_a_server_model_id_harmlessly(
    env: dict[str, str], server: LoopbackServer
) -> None:
    server.add(models_reply())
    raw, code = run_in_pty(env, "models")
    assert code == 0, raw
    assert b"\x1b]0;" not in raw and b"\x1b[2J" not in raw
    assert "lm/M␛]0;pwned␇␛[2J".encode() in raw


@needs_exe
@pytest.mark.pty
def test_repl_shows_answers_reasoning_errors_history_and_models_harmlessly(
    env: dict[str, str], server: LoopbackServer
) -> None:
    server.add(answer_reply("repl"), error_reply("repl"), models_reply())
    log = io.BytesIO()
    child = pexpect.spawn(EXE, ["chat"], env=env, dimensions=(40, 140), timeout=30)  # see run_in_pty
    child.logfile_read = log
    prompt = "r1 ›".encode()
    child.expect(prompt)
    child.send("/think show\r")
    child.expect(prompt)
    child.send("hello\r")
    child.expect("r1 ·".encode())  # the footer: the answer is over
    child.expect(prompt)
    child.send("again\r")
    child.expect(b"/retry asks again")
    child.expect(prompt)
    child.send("/history\r")
    child.expect(prompt)
    child.send("/models\r")
    child.expect(prompt)
    child.send("/exit\r")
    child.expect(pexpect.EOF)
    child.close()
    raw = log.getvalue()
    assert_harmless(raw, "R-repl", "A-repl", "E-repl")
    assert raw.count("A-repl:a␛]0;pwned".encode()) >= 2  # the answer, then /history
    assert "lm/M␛]0;pwned␇␛[2J".encode() in raw


def import_evil_session(env: dict[str, str], tmp_path: Path) -> None:
    doc = {
        "format": "modelswitch-session", "version": 1,
        "session": {"id": 1, "name": "evil", "created": "2026-11-01T10:00:00+00:00",
                    "updated": "2026-11-01T10:01:00+00:00", "model": "r1", "system": None},
        "turns": [
            {"idx": 0, "role": "user", "model": None, "text": "hi", "reasoning": "", "status": "complete",
             "alternate": False, "usage": None, "cost": None, "timing": None, "finish_reason": None,
             "fallback_from": None, "error": None, "replay": [], "created": None},
            {"idx": 1, "role": "assistant",
             "model": {"alias": None, "provider": "deep", "id": "M" + TITLE, "protocol": "openai"},
             "text": evil("S-text"), "reasoning": "", "status": "complete", "alternate": False, "usage": None,
             "cost": None, "timing": None, "finish_reason": "stop", "fallback_from": None, "error": None,
             "replay": [], "created": None},
        ],
    }
    path = tmp_path / "evil.json"
    path.write_text(json.dumps(doc), "utf-8")
    done = subprocess.run([EXE, "sessions", "import", str(path)], env=env, capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert b"\x1b" not in done.stderr


@needs_exe
@pytest.mark.pty
def test_sessions_show_and_list_of_an_imported_session_are_harmless(env: dict[str, str], tmp_path: Path) -> None:
    import_evil_session(env, tmp_path)
    raw, code = run_in_pty(env, "sessions", "show", "evil")
    assert code == 0, raw
    assert_harmless(raw, "S-text")
    assert "M␛]0;pwned␇".encode() in raw  # the model id, in the heading
    raw, code = run_in_pty(env, "sessions", "list")
    assert code == 0, raw
    assert b"\x1b]0;" not in raw and "M␛]0;pwned␇".encode() in raw

    # Exported, the session is data again: byte for byte.
    done = subprocess.run([EXE, "sessions", "export", "-f", "json", "evil"], env=env, capture_output=True,
                          timeout=30)
    assert json.loads(done.stdout)["turns"][1]["text"] == evil("S-text")


@needs_exe
@pytest.mark.pty
def test_sessions_export_to_a_terminal_is_harmless_and_to_a_pipe_or_file_is_the_data(
        env: dict[str, str], tmp_path: Path) -> None:
    import_evil_session(env, tmp_path)
    raw, code = run_in_pty(env, "sessions", "export", "evil")
    assert code == 0, raw
    assert_harmless(raw, "S-text")
    # JSON escapes C1 controls and DEL as well as C0 ones, in a terminal and in a pipe alike.
    raw, code = run_in_pty(env, "sessions", "export", "-f", "json", "evil")
    assert code == 0, raw
    for attack in ATTACKS:
        assert attack not in raw, attack
    assert json.loads(raw)["turns"][1]["text"] == evil("S-text")
    piped = subprocess.run([EXE, "sessions", "export", "--json", "evil"], env=env, capture_output=True, timeout=30)
    assert "\x9b".encode() not in piped.stdout and b"\\u009b31m" in piped.stdout

    # Markdown into a pipe or a file stays byte for byte what was saved.
    piped = subprocess.run([EXE, "sessions", "export", "evil"], env=env, capture_output=True, timeout=30)
    assert piped.returncode == 0 and evil("S-text").encode() in piped.stdout
    out = tmp_path / "evil.md"
    done = subprocess.run([EXE, "sessions", "export", "evil", "-o", str(out)], env=env, capture_output=True,
                          timeout=30)
    assert done.returncode == 0 and evil("S-text").encode() in out.read_bytes()


@needs_exe
@pytest.mark.pty
def test_compare_in_a_terminal_and_in_a_pipe_is_harmless(env: dict[str, str], server: LoopbackServer) -> None:
    server.add(answer_reply("c1"), error_reply("c2"))
    raw, code = run_in_pty(env, "compare", "-m", "r1", "-m", "v3", "hi")
    assert code == 0, raw
    assert_harmless(raw, "A-c1", "E-c2")

    server.add(answer_reply("c3"), error_reply("c4"))
    done = subprocess.run([EXE, "compare", "-m", "r1", "-m", "v3", "hi"], env=env, capture_output=True, timeout=30)
    assert_harmless(done.stdout + done.stderr, "A-c3", "E-c4")


# -- pipes and files -----------------------------------------------------------------------------


@needs_exe
def test_piped_ask_keeps_the_answer_byte_for_byte_but_stderr_is_harmless(
    env: dict[str, str], server: LoopbackServer
) -> None:
    server.add(answer_reply("pipe"))
    done = subprocess.run([EXE, "ask", "--reasoning", "stderr", "hi"], env=env, capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (evil("A-pipe") + "\n").encode()  # data: exactly what the model sent
    assert_harmless(done.stderr, "R-pipe")

    server.add(error_reply("file"))
    done = subprocess.run([EXE, "ask", "hi"], env=env, capture_output=True, timeout=30)
    assert done.returncode == 1
    assert_harmless(done.stderr, "E-file")  # stderr is a file here, and still no escapes reach it


@needs_exe
def test_piped_chat_keeps_answers_as_data_and_its_messages_harmless(
    env: dict[str, str], server: LoopbackServer
) -> None:
    server.add(answer_reply("chat"), error_reply("chat"))
    done = subprocess.run([EXE, "chat"], input=b"hello\nagain\n/history\n", env=env, capture_output=True,
                          timeout=30)
    assert done.returncode == 1, done.stderr  # one answer failed
    assert done.stdout == (evil("A-chat") + "\n").encode()
    assert_harmless(done.stderr, "E-chat", "A-chat")  # the error, then /history on stderr



def test_a_bug_quoting_remote_text_is_harmless_even_with_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    import modelswitch.cli.models as catalog
    from modelswitch.cli.main import app

    def boom(*args: object, **kw: object) -> int:
        raise ValueError(f"unexpected finish_reason {evil('K-bug')}")  # a bug of ours, quoting a provider

    monkeypatch.setattr(catalog, "show_models", boom)
    for args in (["models"], ["--debug", "models"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 1
        assert_harmless(result.stderr.encode(), "K-bug")
    assert "Traceback" in result.stderr


@needs_exe
def test_debug_log_of_a_request_holding_an_earlier_answer_is_harmless(
    env: dict[str, str], server: LoopbackServer
) -> None:
    server.add(answer_reply("first"), Reply.say("second", path="/deep/"))
    first = subprocess.run([EXE, "ask", "--session", "s", "hi"], env=env, capture_output=True, timeout=30)
    assert first.stdout == (evil("A-first") + "\n").encode()
    done = subprocess.run([EXE, "--debug", "ask", "--session", "s", "more"], env=env, capture_output=True,
                          timeout=30)
    assert done.returncode == 0, done.stderr
    assert b"debug: body" in done.stderr and b"A-first" in done.stderr  # the earlier answer, in the request
    assert "\x9b".encode() not in done.stderr and b"\x1b" not in done.stderr
