"""The CLI as a user meets it: typer's CliRunner for most, the installed command in a pipe for one."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelswitch.cli.main import app
from tests.loopback import LoopbackServer, Reply

KEY = "sk-cli-SECRET-abcdef0123456789"
REASONING_STREAM = "deepseek_reasoner_stream_reasoning_content.sse"


def config_for(tmp_path: Path, url: str) -> Path:
    p = tmp_path / "ms.toml"
    p.write_text(f"""
default = "r1"
[providers.loop]
base_url = "{url}/v1"
api_key_env = "LOOP_KEY"
retries = 0
[providers.loop.models.r1]
id = "deepseek-reasoner"
price = {{ input = 4.0, output = 16.0, currency = "CNY" }}
""", "utf-8")
    return p


@pytest.fixture
def env(tmp_path: Path, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.setenv("LOOP_KEY", KEY)
    cfg = config_for(tmp_path, server.url)
    monkeypatch.setenv("MODELSWITCH_CONFIG", str(cfg))
    return {"config": cfg}


def invoke(args: list[str], input: str | None = None):  # noqa: A002, ANN201
    return CliRunner().invoke(app, args, input=input, catch_exceptions=False)


def fixture_text() -> tuple[str, str]:
    """The answer and reasoning in the recorded DeepSeek stream, read independently of our parser."""
    text, reasoning = [], []
    raw = (Path(__file__).parent / "fixtures" / REASONING_STREAM).read_text("utf-8")
    for line in raw.splitlines():
        if line.startswith("data: {"):
            delta = json.loads(line[6:])["choices"]
            if delta:
                d = delta[0]["delta"]
                text.append(d.get("content") or "")
                reasoning.append(d.get("reasoning_content") or "")
    return "".join(text), "".join(reasoning)


def test_ask_piped_prints_only_the_answer(env: dict, server: LoopbackServer) -> None:
    server.add(Reply.fixture(REASONING_STREAM, size=37))
    result = invoke(["ask", "hello"])
    text, reasoning = fixture_text()
    assert result.exit_code == 0, result.output
    assert result.stdout == text + "\n" or result.stdout == text
    assert reasoning[:20] not in result.stdout
    assert "\x1b[" not in result.stdout
    body = server.requests[0].json
    assert body["messages"] == [{"role": "user", "content": "hello"}]
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"


def test_ask_joins_stdin_and_prompt(env: dict, server: LoopbackServer) -> None:
    server.add(Reply.fixture(REASONING_STREAM))
    result = invoke(["ask", "write", "a", "commit", "message"], input="diff --git a/x b/x\n+hi\n")
    assert result.exit_code == 0
    content = server.requests[0].json["messages"][-1]["content"]
    assert content == "diff --git a/x b/x\n+hi\n\nwrite a commit message"


def test_ask_json_has_reasoning_usage_cost_timing(env: dict, server: LoopbackServer) -> None:
    server.add(Reply.fixture(REASONING_STREAM))
    result = invoke(["ask", "--json", "hi"])
    assert result.exit_code == 0
    obj = json.loads(result.stdout)
    text, reasoning = fixture_text()
    assert obj["content"] == text and obj["reasoning"] == reasoning
    assert obj["model"] == "loop/deepseek-reasoner" and obj["alias"] == "r1"
    u = obj["usage"]
    assert u["input_tokens"] > 0 and u["output_tokens"] >= u["reasoning_tokens"] > 0
    expected = (u["input_tokens"] * 4.0 + u["output_tokens"] * 16.0) / 1e6
    assert obj["cost"] == {"amount": pytest.approx(expected), "currency": "CNY"}
    assert obj["finish_reason"] == "stop" and obj["fallback_from"] is None
    assert obj["timing"]["total_s"] >= obj["timing"]["ttft_s"] >= 0


def test_ask_jsonl_streams_events(env: dict, server: LoopbackServer) -> None:
    server.add(Reply.fixture(REASONING_STREAM))
    result = invoke(["ask", "--jsonl", "hi"])
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = [line["type"] for line in lines]
    assert kinds[0] == "reasoning" and "text" in kinds
    assert kinds[-2:] == ["usage", "done"]
    text, _ = fixture_text()
    assert "".join(line["text"] for line in lines if line["type"] == "text") == text


def test_ask_reasoning_stderr(env: dict, server: LoopbackServer) -> None:
    server.add(Reply.fixture(REASONING_STREAM))
    result = invoke(["ask", "--reasoning", "stderr", "hi"])
    text, reasoning = fixture_text()
    assert reasoning in result.stderr
    assert reasoning not in result.stdout


def test_ask_reasoning_show_into_a_pipe_goes_to_stderr_not_nowhere(env: dict, server: LoopbackServer) -> None:
    server.add(Reply.fixture(REASONING_STREAM))
    result = invoke(["ask", "--reasoning", "show", "hi"])
    text, reasoning = fixture_text()
    assert result.exit_code == 0
    assert reasoning in result.stderr
    assert result.stdout.rstrip("\n") == text.rstrip("\n")  # the pipe still carries the answer only


def test_provider_error_is_one_line_exit_1_and_no_key(env: dict, server: LoopbackServer) -> None:
    server.add(Reply.json(401, {"error": {"message": f"Authentication Fails, your api key: {KEY} is invalid"}}))
    result = invoke(["ask", "hi"])
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: loop/deepseek-reasoner: the API key was rejected (401)")
    assert lines[0].endswith("— check LOOP_KEY")
    assert KEY not in result.stderr


def test_unknown_model_exit_2(env: dict) -> None:
    result = invoke(["ask", "-m", "r2", "hi"])
    assert result.exit_code == 2
    assert "unknown model 'r2' — did you mean 'r1'?" in result.stderr


def test_missing_key_names_the_variable(env: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOOP_KEY")
    result = invoke(["ask", "hi"])
    assert result.exit_code == 2
    assert "set LOOP_KEY" in result.stderr


def test_binary_stdin_is_refused(env: dict) -> None:
    result = CliRunner().invoke(app, ["ask", "what is this"], input=b"\x89PNG\r\n\x1a\n\x00\x00")
    assert result.exit_code == 2
    assert "stdin looks binary" in result.stderr


def test_nothing_to_ask(env: dict) -> None:
    result = invoke(["ask"], input="")
    assert result.exit_code == 2
    assert "nothing to ask" in result.stderr


def test_no_model_at_all_explains_how_to_get_one(tmp_path: Path) -> None:
    result = invoke(["ask", "hi"])
    assert result.exit_code == 2
    assert "modelswitch keys set deepseek" in result.stderr and "DEEPSEEK_API_KEY" in result.stderr
    assert "ollama at http://127.0.0.1:11434" in result.stderr
    assert "modelswitch local setup" in result.stderr


def test_models_lists_key_status(env: dict) -> None:
    result = invoke(["models", "--json"])
    data = json.loads(result.stdout)["models"]
    r1 = next(m for m in data if m["alias"] == "r1")
    assert r1["key_present"] is True and r1["model"] == "loop/deepseek-reasoner"
    hy = next(m for m in data if m["alias"] == "hy")
    assert hy["key_present"] is False and hy["key"] == "needs HUNYUAN_API_KEY (or `modelswitch keys set hunyuan`)"
    table = invoke(["models"]).stdout
    assert "r1" in table and "needs HUNYUAN_API_KEY" in table


def test_config_init_never_overwrites(tmp_path: Path) -> None:
    target = tmp_path / "config" / "modelswitch" / "config.toml"
    assert invoke(["config", "init"]).exit_code == 0
    assert target.exists() and oct(target.stat().st_mode & 0o777) == "0o600"
    target.write_text("# mine\n")
    again = invoke(["config", "init"])
    assert again.exit_code == 2 and "--force" in again.stderr
    assert target.read_text() == "# mine\n"
    assert invoke(["config", "init", "--force"]).exit_code == 0
    assert "[providers.deepseek.models.r1]" in target.read_text()
    assert invoke(["config", "validate"]).exit_code == 0


def test_config_validate_points_at_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('default = "hy"\n[providers.x\n')
    result = invoke(["--config", str(bad), "config", "validate"])
    assert result.exit_code == 2
    assert str(bad) in result.stderr and "line 2" in result.stderr


def test_config_show_redacts_inline_keys(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[providers.x]\nbase_url = "https://x.example/v1"\napi_key = "sk-inline-SECRET-9876"\n'
                   '[providers.x.models.m]\nid = "m"\n')
    result = invoke(["--config", str(cfg), "config", "show"])
    assert result.exit_code == 0
    assert "sk-inline-SECRET-9876" not in result.stdout
    assert "sk-…9876" in result.stdout


@pytest.mark.skipif(shutil.which("modelswitch", path=str(Path(sys.executable).parent)) is None,
                    reason="the modelswitch console script is not installed in this environment")
def test_installed_command_streams_into_a_pipe(env: dict, server: LoopbackServer, tmp_path: Path) -> None:
    server.add(Reply.fixture(REASONING_STREAM, size=50, delay=0.001))
    exe = shutil.which("modelswitch", path=str(Path(sys.executable).parent))
    out = tmp_path / "msg.txt"
    with open(out, "wb") as f:
        proc = subprocess.run([exe, "ask", "hello"], stdout=f, stderr=subprocess.PIPE, env=os.environ.copy(),
                              timeout=60)
    assert proc.returncode == 0, proc.stderr
    text, reasoning = fixture_text()
    assert out.read_text("utf-8").rstrip("\n") == text
    assert b"\x1b" not in out.read_bytes()
    assert KEY.encode() not in proc.stderr


def test_no_key_but_a_running_local_server_is_used(tmp_path: Path, server: LoopbackServer) -> None:
    cfg = tmp_path / "local.toml"
    cfg.write_text(f'[providers.mine]\nbase_url = "{server.url}/v1"\nlocal = true\n')
    server.add(Reply.json(200, {"object": "list", "data": [{"id": "smol-135m", "object": "model"}]}, path="/models"))
    server.add(Reply.sse({"choices": [{"index": 0, "delta": {"content": "hi from local"}, "finish_reason": "stop"}]}))
    result = invoke(["--config", str(cfg), "ask", "hello"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "hi from local"
    assert server.requests[1].json["model"] == "smol-135m"


def test_non_utf8_stdin_is_refused(env: dict) -> None:
    result = CliRunner().invoke(app, ["ask", "summarise"], input="caf\xe9 latin-1".encode("latin-1"))
    assert result.exit_code == 2
    assert "stdin is not UTF-8 text" in result.stderr


def test_ten_megabytes_of_stdin_is_warned_not_crashed(env: dict, server: LoopbackServer) -> None:
    server.add(Reply.sse({"choices": [{"index": 0, "delta": {"content": "long"}, "finish_reason": "stop"}]}))
    big = ("x" * 99 + "\n") * 100_000
    result = CliRunner().invoke(app, ["ask", "count"], input=big)
    assert result.exit_code == 0
    assert "warning: stdin is 10.0 MB" in result.stderr
    assert len(server.requests[0].raw) > 10_000_000


def test_tls_error_is_one_line(tmp_path: Path, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "tls.toml"
    cfg.write_text(f'[providers.t]\nbase_url = "https://127.0.0.1:{server.port}/v1"\nretries = 0\n'
                   '[providers.t.models.m]\nid = "m"\n')
    result = invoke(["--config", str(cfg), "ask", "-m", "m", "hi"])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: t/m: ")
    assert "TLS" in lines[0] or "SSL" in lines[0] or "connection dropped" in lines[0]


def test_corrupt_session_database_does_not_stop_answers(env: dict, server: LoopbackServer, tmp_path: Path) -> None:
    db = tmp_path / "data" / "modelswitch" / "modelswitch.db"
    db.parent.mkdir(parents=True)
    db.write_bytes(b"this is not a database" * 100)
    server.add(Reply.sse({"choices": [{"index": 0, "delta": {"content": "still here"}, "finish_reason": "stop"}]}))
    result = invoke(["ask", "hi"])
    assert result.exit_code == 0
    assert result.stdout.strip() == "still here"
    assert "will not be saved" in result.stderr
    assert db.read_bytes() == b"this is not a database" * 100


def slow_ask(server: LoopbackServer, *args: str) -> subprocess.Popen:
    """The installed `ask` on a 300-word answer streamed 20 ms a word, for a signal mid-answer."""
    words = [{"choices": [{"index": 0, "delta": {"content": f"w{i} "}, "finish_reason": None}]} for i in range(300)]
    server.add(Reply.sse(*words, delay=0.02))
    exe = shutil.which("modelswitch", path=str(Path(sys.executable).parent))
    assert exe is not None
    return subprocess.Popen([exe, "ask", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ.copy())


@pytest.mark.skipif(shutil.which("modelswitch", path=str(Path(sys.executable).parent)) is None,
                    reason="the modelswitch console script is not installed in this environment")
def test_ctrl_c_mid_answer_exits_130_keeping_the_partial_text(env: dict, server: LoopbackServer) -> None:
    import signal
    import time

    proc = slow_ask(server, "--session", "s", "go")
    assert proc.stdout is not None
    first = proc.stdout.read(6)
    time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert (first + out).startswith(b"w0 w1 ")
    assert b"Traceback" not in err
    shown = invoke(["sessions", "show", "s"])
    assert "interrupted" in shown.stdout and "w0 w1" in shown.stdout


def test_stream_that_breaks_keeps_what_was_printed_and_exits_1(env: dict, server: LoopbackServer) -> None:
    parts = [{"choices": [{"index": 0, "delta": {"content": t}, "finish_reason": None}]} for t in ("partial ", "answer")]
    server.add(Reply.sse(*parts, drop_after=2))
    result = invoke(["ask", "hi"])
    assert result.exit_code == 1
    assert result.stdout == "partial answer\n"
    assert result.stderr.strip().splitlines() == ["error: loop/deepseek-reasoner: connection dropped mid-answer"]
    assert KEY not in result.stdout + result.stderr


def test_models_lists_what_a_running_ollama_has_pulled(tmp_path: Path, server: LoopbackServer) -> None:
    cfg = tmp_path / "ollama.toml"
    cfg.write_text(f'[providers.ollama]\nbase_url = "{server.url}"\n')
    server.add(Reply.json(200, {"models": [{"name": "qwen3:8b", "model": "qwen3:8b"},
                                           {"name": "llama3.2:latest", "model": "llama3.2:latest"}]}, path="/api/tags"))
    data = json.loads(invoke(["--config", str(cfg), "models", "--json"]).stdout)["models"]
    ids = [m["model"] for m in data if m["provider"] == "ollama"]
    assert ids == ["ollama/qwen3:8b", "ollama/llama3.2:latest"]


def test_config_path_prints_where_it_reads(tmp_path: Path) -> None:
    result = invoke(["config", "path"])
    assert result.exit_code == 0
    assert result.stdout.strip() == str(tmp_path / "config" / "modelswitch" / "config.toml")
    assert "config init" in result.stderr


def test_a_bug_of_ours_is_one_line_not_a_traceback(env: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    import modelswitch.cli.models as catalog

    def boom(*args: object, **kw: object) -> int:
        raise RuntimeError("unexpected state")

    monkeypatch.setattr(catalog, "show_models", boom)
    result = invoke(["models"])
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: internal error: RuntimeError: unexpected state (run with --debug for details)"
    assert "Traceback" not in result.stderr
    debug = invoke(["--debug", "models"])
    assert "Traceback" in debug.stderr


def test_damage_past_the_database_header_still_lets_ask_answer(env: dict, server: LoopbackServer,
                                                               tmp_path: Path) -> None:
    server.add(Reply.say("first"))
    assert invoke(["ask", "--session", "s", "hi"]).exit_code == 0
    db = tmp_path / "data" / "modelswitch" / "modelswitch.db"
    import sqlite3

    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw = bytearray(db.read_bytes())
    raw[4096:] = b"\xde\xad\xbe\xef" * ((len(raw) - 4096) // 4)  # every page after the header page
    db.write_bytes(bytes(raw))
    server.add(Reply.say("still answering"))
    result = invoke(["ask", "-c", "hi again"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "still answering"
    assert "will not be saved" in result.stderr
    assert db.read_bytes() == bytes(raw)


@pytest.mark.skipif(shutil.which("modelswitch", path=str(Path(sys.executable).parent)) is None,
                    reason="the modelswitch console script is not installed in this environment")
@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
def test_a_narrow_pythonioencoding_is_no_internal_error(env: dict, server: LoopbackServer, encoding: str) -> None:
    # stdout is data and stays UTF-8 whatever PYTHONIOENCODING says (JSON must stay JSON); stderr
    # speaks the encoding asked for, with what it cannot hold written as a backslash escape.
    exe = shutil.which("modelswitch", path=str(Path(sys.executable).parent))
    run_env = {**os.environ, "PYTHONIOENCODING": encoding}
    answer = "café ☃ → 😀"

    def run(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([exe, *args], capture_output=True, env=run_env, timeout=60)

    server.add(Reply.say(answer))
    done = run("ask", "héllo ☃")
    assert done.returncode == 0 and b"internal error" not in done.stderr, done.stderr
    assert done.stdout.decode("utf-8").rstrip("\n") == answer
    server.add(Reply.say(answer))
    done = run("ask", "--json", "héllo ☃")
    assert done.returncode == 0 and b"internal error" not in done.stderr, done.stderr
    assert json.loads(done.stdout.decode("utf-8"))["content"] == answer
    done = run("sessions", "list")
    assert done.returncode == 0 and b"internal error" not in done.stderr, done.stderr
    assert "¥0." in done.stdout.decode("utf-8")  # the cost column: a CNY-priced model
    server.add(Reply.json(400, {"error": {"message": "échec ☃", "type": "invalid_request_error"}}))
    done = run("ask", "héllo")
    assert done.returncode == 1 and b"internal error" not in done.stderr, done.stderr
    assert b"\\u2603" in done.stderr and done.stderr.decode(encoding)


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_ask_json_interrupted_still_prints_its_object(env: dict, server: LoopbackServer, signame: str) -> None:
    import signal
    import time

    signum = getattr(signal, signame)
    proc = slow_ask(server, "--json", "go")
    while len(server.requests) < 1:  # the request is out: words are streaming into the answer
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signum
    assert b"Traceback" not in err
    result = json.loads(out)
    assert result["status"] == "interrupted"
    assert result["content"].startswith("w0 w1 ")


@pytest.mark.skipif(shutil.which("modelswitch", path=str(Path(sys.executable).parent)) is None,
                    reason="the modelswitch console script is not installed in this environment")
def test_ask_jsonl_interrupted_ends_with_an_error_event(env: dict, server: LoopbackServer) -> None:
    import signal

    proc = slow_ask(server, "--jsonl", "go")
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert json.loads(first) == {"type": "text", "text": "w0 "}
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert b"Traceback" not in err
    last = json.loads(out.splitlines()[-1])
    assert last["type"] == "error" and last["status"] == "interrupted"


def test_out_of_range_usage_on_a_priced_model_is_unknown_not_a_wrong_cost(env: dict, server: LoopbackServer) -> None:
    server.add(Reply.sse(
        {"choices": [{"index": 0, "delta": {"content": "ok"}, "finish_reason": None}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
         "usage": {"prompt_tokens": 10**30, "completion_tokens": 5}},
    ))
    result = invoke(["ask", "--json", "hi"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["content"] == "ok"
    assert out["usage"] is None and out["cost"] is None


def test_config_validate_warns_about_an_mcp_command_that_cannot_be_found(tmp_path: Path) -> None:
    cfg = tmp_path / "mcp.toml"
    cfg.write_text(f'[mcp.calc]\ncommand = ["/nonexistent/mcp-calc"]\n[mcp.gone]\ncommand = ["no-such-mcp-xyz"]\n'
                   f'[mcp.ok]\ncommand = [{json.dumps(sys.executable)}, "-V"]\n')
    result = invoke(["--config", str(cfg), "config", "validate"])
    assert result.exit_code == 0  # a warning: the program may be installed later
    assert "[mcp.calc] command: '/nonexistent/mcp-calc' does not exist" in result.stderr
    assert "[mcp.gone] command: 'no-such-mcp-xyz' is not on PATH" in result.stderr
    assert "[mcp.ok]" not in result.stderr
