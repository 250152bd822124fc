"""Small things users expect: errors that say what to type, aliases that read as people guess them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelswitch.cli.main import app
from tests.loopback import LoopbackServer, Reply

KEY = "sk-polish-SECRET-0123456789abcd"


@pytest.fixture
def cfg(tmp_path: Path, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "ms.toml"
    path.write_text(f"""
default = "r1"
[providers.loop]
base_url = "{server.url}/v1"
api_key_env = "LOOP_KEY"
retries = 0
[providers.loop.models.r1]
id = "deepseek-reasoner"
""", "utf-8")
    monkeypatch.setenv("LOOP_KEY", KEY)
    monkeypatch.setenv("MODELSWITCH_CONFIG", str(path))
    return path


def invoke(args: list[str], input: str | None = None):  # noqa: A002, ANN201
    return CliRunner().invoke(app, args, input=input, catch_exceptions=False)


def test_think_with_an_unknown_view_is_an_error_listing_the_views(cfg: Path) -> None:
    result = invoke(["chat"], input="/think bogus\n")
    assert "unknown reasoning view 'bogus'" in result.stderr and "show|hide|collapse" in result.stderr


def test_an_unknown_model_in_the_repl_points_at_slash_models(cfg: Path) -> None:
    result = invoke(["chat"], input="/m nosuch\n")
    assert "unknown model 'nosuch'" in result.stderr
    assert "/models" in result.stderr and "modelswitch models" not in result.stderr
    # The shell still names the shell command.
    assert "see `modelswitch models`" in invoke(["ask", "-m", "nosuch", "hi"]).stderr


def test_sessions_export_json_flag_and_import_into_a_taken_name(cfg: Path, server: LoopbackServer,
                                                              tmp_path: Path) -> None:
    server.add(Reply.say("an answer"))
    assert invoke(["ask", "--session", "work", "hi"]).exit_code == 0
    exported = invoke(["sessions", "export", "work", "--json"])
    assert exported.exit_code == 0
    doc = json.loads(exported.stdout)
    assert doc == json.loads(invoke(["sessions", "export", "work", "-f", "json"]).stdout)
    f = tmp_path / "work.json"
    f.write_text(exported.stdout, "utf-8")
    taken = invoke(["sessions", "import", str(f)])
    assert taken.exit_code == 2
    assert "already exists" in taken.stderr and "--name" in taken.stderr
    assert invoke(["sessions", "import", str(f), "--name", "work2"]).exit_code == 0


def test_a_free_model_costs_free_and_one_model_is_singular(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from modelswitch.config.load import Price
    from modelswitch.config.pricing import cost_of
    from modelswitch.events import Usage

    usage = Usage(input_tokens=100, output_tokens=50)
    assert str(cost_of(usage, Price(input=0.0, output=0.0, currency="USD"))) == "free"
    assert str(cost_of(usage, Price(input=1.0, output=2.0, currency="USD"))) == "$0.0002"
    cfg = tmp_path / "one.toml"
    cfg.write_text('[providers.x]\nbase_url = "http://127.0.0.1:9/v1"\napi_key_env = "X_KEY"\n'
                   '[providers.x.models.only]\nid = "m"\n', "utf-8")
    monkeypatch.setenv("MODELSWITCH_CONFIG", str(cfg))
    assert "(1 model configured)" in invoke(["config", "validate"]).stdout


def test_shell_completion_is_offered_and_shown(tmp_path: Path) -> None:
    import os
    import shutil
    import subprocess
    import sys

    exe = shutil.which("modelswitch", path=str(Path(sys.executable).parent))
    assert exe is not None
    env = {**os.environ, "SHELL": "/bin/bash", "HOME": str(tmp_path)}
    shown = subprocess.run([exe, "--show-completion"], env=env, capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and "_modelswitch_completion" in shown.stdout
    assert "complete " in shown.stdout
    helped = subprocess.run([exe, "--help"], env=env, capture_output=True, text=True, timeout=60)
    assert "--install-completion" in helped.stdout
    # --help still loads no drawing library: completion costs it nothing visible.
    probe = ("import sys; sys.argv = ['modelswitch', '--help']\n"
             "from modelswitch.cli.main import main\n"
             "try:\n    main()\nexcept SystemExit:\n    pass\n"
             "sys.stderr.write(str(sorted(m for m in sys.modules if m.split('.')[0] in ('rich', 'httpx', 'prompt_toolkit'))))")
    mods = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60)
    assert mods.stderr.strip().endswith("[]"), mods.stderr


def test_a_host_that_does_not_resolve_is_not_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    cfg = tmp_path / "dns.toml"
    cfg.write_text('default = "m"\n[providers.far]\nbase_url = "https://api.no-such-host.example/v1"\n'
                   'api_key_env = "FAR_KEY"\nretries = 3\n[providers.far.models.m]\nid = "m"\n', "utf-8")
    monkeypatch.setenv("MODELSWITCH_CONFIG", str(cfg))
    monkeypatch.setenv("FAR_KEY", KEY)
    lookups: list[str] = []

    def no_dns(host: object, *args: object, **kw: object) -> list:
        lookups.append(str(host))
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    result = invoke(["ask", "--no-fallback", "hi"])
    assert result.exit_code == 1 and "cannot resolve the host" in result.stderr
    assert lookups == ["api.no-such-host.example"]  # once: no retry, no wait


def test_timing_counts_the_time_spent_in_retries(server: LoopbackServer) -> None:
    from tests.test_reliability import make_config, ok_reply, run

    # The first attempt takes at least 0.5 s (the server waits before its 503); the retry is quick.
    server.add(Reply.json(503, {"error": {"message": "Server is busy"}}, path="/busy/", hang=0.5),
               ok_reply("hello", path="/busy/"))
    import os

    os.environ["BUSY_KEY"] = KEY
    try:
        answer, _, waits = run(make_config(server.url))
    finally:
        del os.environ["BUSY_KEY"]
    timing = answer.message.timing
    assert len(waits) == 1 and answer.message.text == "hello"
    assert timing.total_s is not None and timing.total_s >= 0.5
    assert timing.ttft_s is not None and timing.ttft_s >= 0.5


def test_reasoning_tokens_are_counted_when_the_provider_does_not(cfg: Path, server: LoopbackServer) -> None:
    """llama.cpp (the local model), Ollama and Anthropic stream reasoning without a separate count:
    /cost and --json estimate it from its text (engine.context.estimate_text), not its chunks."""
    def rc(text: str) -> dict:
        return {"choices": [{"index": 0, "delta": {"reasoning_content": text}, "finish_reason": None}]}

    server.add(Reply.sse(rc("Let me think"), rc(" about this"), rc(" carefully."),
                         {"choices": [{"index": 0, "delta": {"content": "Yes."}, "finish_reason": None}]},
                         {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                          "usage": {"prompt_tokens": 9, "completion_tokens": 15, "total_tokens": 24}}))
    out = invoke(["ask", "--json", "think?"])
    obj = json.loads(out.stdout)
    # 34 characters of English are ~9 tokens; there were 3 chunks.
    assert obj["usage"]["reasoning_tokens"] == 9 and obj["usage"]["output_tokens"] == 15
    server.add(Reply.sse(rc("Hm"), {"choices": [{"index": 0, "delta": {"content": "No."}, "finish_reason": None}]},
                         {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                          "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11,
                                    "completion_tokens_details": {"reasoning_tokens": 1}}}))
    chat = invoke(["chat"], input="again\n/cost\n")
    server.add(Reply.sse(rc("One"), rc(" two"), {"choices": [{"index": 0, "delta": {"content": "Ok."}, "finish_reason": None}]},
                         {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                          "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}}))
    counted = invoke(["chat"], input="more\n/cost\n")
    line = next(x for x in counted.stdout.splitlines() if x.startswith("r1 "))
    assert line.split()[5] == "~2"  # /cost has the estimate too ("One two": 7 characters), marked
    row = next(line for line in chat.stdout.splitlines() + chat.stderr.splitlines() if line.startswith("r1 "))
    assert row.split()[5] == "1"  # "r1 (loop/…) answers input output reasoning": the provider's count wins


def test_durations_over_a_minute_read_in_minutes() -> None:
    from modelswitch.ui.base import duration_text, thought_text

    assert duration_text(1632) == "27 min 12 s"
    assert thought_text(73.2, 400) == "Thought for 1 min 13 s · 400 tokens"
    assert thought_text(7.94, 412) == "Thought for 7.9 s · 412 tokens"
    assert thought_text(7.94, 1412, estimated=True) == "Thought for 7.9 s · ~1,412 tokens"
    assert thought_text(7.94) == "Thought for 7.9 s"  # not known: the time only
