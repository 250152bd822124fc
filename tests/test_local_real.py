"""End-to-end against a real llama.cpp server running SmolLM2-135M (`pytest -m real`).

Needs the engine cache that scripts/ci_local_engine.sh fills (a ~10 minute build, once per
machine). Without it these tests skip and say so - unless MODELSWITCH_REQUIRE_REAL=1 (CI), where
a missing engine is a failure. Everything runs under temporary XDG dirs; the cache is only read.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from modelswitch.local import server as local
from modelswitch.local import setup as local_setup
from modelswitch.local.server import LocalPaths, ServerState
from modelswitch.local.setup import _cached_wheel
from tests.loopback import LoopbackServer, Received, Reply

# Read at import: the autouse conftest fixture strips MODELSWITCH_* variables from each test.
REQUIRE_REAL = os.environ.get("MODELSWITCH_REQUIRE_REAL") == "1"
CACHE = local.engine_cache_dir()
EXE = shutil.which("modelswitch", path=str(Path(sys.executable).parent))
pytestmark = pytest.mark.real


def _missing_engine() -> str | None:
    probe = LocalPaths(root=Path("/nonexistent"), cache=CACHE)
    if _cached_wheel(probe) is None:
        return (f"no llama.cpp engine wheel in {probe.wheelhouse}: run scripts/ci_local_engine.sh "
                "(builds llama.cpp once, ~10 minutes on 2 cores)")
    if not local.model_ready(probe.cached_model):
        return f"no SmolLM2 model at {probe.cached_model}: run scripts/ci_local_engine.sh"
    return None


def _require_engine() -> None:
    reason = _missing_engine()
    if reason is None:
        return
    if REQUIRE_REAL:
        pytest.fail(f"MODELSWITCH_REQUIRE_REAL=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def data_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _require_engine()
    home = tmp_path_factory.mktemp("real-data")
    paths = LocalPaths(root=home / "modelswitch" / "local", cache=CACHE)
    t0 = time.monotonic()
    assert local_setup.run_setup(paths, lambda _: None).changed
    # From the cache, setup is a venv and a local wheel install: seconds, not the engine build.
    assert time.monotonic() - t0 < 60
    return home


@pytest.fixture(scope="module")
def paths(data_home: Path) -> LocalPaths:
    return LocalPaths(root=data_home / "modelswitch" / "local", cache=CACHE)


@pytest.fixture(scope="module")
def real_server(paths: LocalPaths) -> Iterator[ServerState]:
    state = local.start(paths)
    yield state
    local.stop(paths)


def _client() -> httpx.Client:
    return httpx.Client(trust_env=False, timeout=httpx.Timeout(120, connect=5))


def _stream(state: ServerState, **extra: object) -> tuple[list[dict], list[str]]:
    """POST a streaming chat completion; returns the parsed chunks and the order of delta kinds."""
    body = {"model": local.MODEL_ID, "stream": True, "stream_options": {"include_usage": True},
            "max_tokens": 200, "messages": [{"role": "user", "content": "Why is the sky blue?"}], **extra}
    chunks: list[dict] = []
    with _client() as c, c.stream("POST", f"{state.base_url}/chat/completions", json=body) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data: {"):
                chunks.append(json.loads(line[6:]))
    kinds = []
    for ch in chunks:
        for choice in ch["choices"]:
            d = choice["delta"]
            kinds += ["reasoning"] * bool(d.get("reasoning_content")) + ["content"] * bool(d.get("content"))
    return chunks, kinds


def _env(tmp_path: Path, config: str, data_home: Path) -> dict[str, str]:
    cfg = tmp_path / "config.toml"
    cfg.write_text(config)
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and not k.startswith("MODELSWITCH_")}
    env.update({"MODELSWITCH_CONFIG": str(cfg), "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
                "XDG_DATA_HOME": str(data_home), "NO_PROXY": "127.0.0.1,localhost"})
    return env


def _config(base_url: str, extra: str = "") -> str:
    return f"""
[providers.realsmol]
type = "openai"
base_url = "{base_url}"
retries = 0
[providers.realsmol.models.rsmol]
id = "{local.MODEL_ID}"
max_tokens = 300
[providers.realsmol.models.rsmol-think]
id = "{local.MODEL_ID}-think"
reasoning = "low"
max_tokens = 300
{extra}"""


# ---------------------------------------------------------------- the server itself


def test_server_streams_role_then_content_then_usage(real_server: ServerState) -> None:
    chunks, kinds = _stream(real_server)
    first = chunks[0]["choices"][0]["delta"]
    assert first.get("role") == "assistant" and first.get("content") is None
    assert "content" in kinds and "reasoning" not in kinds  # plain smol never thinks
    last = chunks[-1]
    assert last["choices"] == [] and last["usage"]["completion_tokens"] > 0
    tok_s = last["timings"]["predicted_per_second"]
    print(f"\nsmol: {last['usage']['completion_tokens']} tokens at {tok_s:.1f} tok/s")
    assert tok_s > 5


def test_smol_think_streams_reasoning_content_before_content(real_server: ServerState) -> None:
    # reasoning_effort is what our OpenAI provider sends for `reasoning = "low"`.
    _chunks, kinds = _stream(real_server, reasoning_effort="low")
    assert kinds and kinds[0] == "reasoning"
    assert kinds.count("reasoning") >= 2  # real streamed chunks, not one block
    if "content" in kinds:
        first_content = kinds.index("content")
        assert "reasoning" not in kinds[first_content:]


def test_models_endpoint_lists_the_model(real_server: ServerState) -> None:
    with _client() as c:
        data = c.get(f"{real_server.base_url}/models").json()["data"]
    assert data[0]["id"] == local.MODEL_ID


def test_second_setup_is_a_noop(paths: LocalPaths) -> None:
    t0 = time.monotonic()
    assert not local_setup.run_setup(paths, lambda _: None).changed
    assert time.monotonic() - t0 < 2


# ---------------------------------------------------------------- the installed command


@pytest.fixture
def exe() -> str:
    if EXE is None:
        pytest.skip("the modelswitch console script is not installed")
    return EXE


def test_ask_piped_against_the_real_server(exe: str, real_server: ServerState, data_home: Path,
                                           tmp_path: Path) -> None:
    env = _env(tmp_path, _config(real_server.base_url), data_home)
    proc = subprocess.run([exe, "ask", "-m", "rsmol", "Say hello in one sentence."], env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    out = proc.stdout.decode()
    assert out.strip() and "\x1b" not in out
    jl = subprocess.run([exe, "ask", "-m", "rsmol", "--jsonl", "Say hi."], env=env, stdin=subprocess.DEVNULL,
                        capture_output=True, text=True, timeout=120)
    assert jl.returncode == 0, jl.stderr
    events = [json.loads(line) for line in jl.stdout.splitlines()]
    usage = next(e for e in events if e["type"] == "usage")
    assert usage["output_tokens"] > 0 and usage["input_tokens"] > 0
    assert events[-1]["type"] == "done"


def test_ask_json_has_timing_and_usage(exe: str, real_server: ServerState, data_home: Path, tmp_path: Path) -> None:
    env = _env(tmp_path, _config(real_server.base_url), data_home)
    proc = subprocess.run([exe, "ask", "-m", "rsmol-think", "--json", "Why is the sky blue?"], env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    # A 135M model sometimes ends inside its thoughts: that answer is (rightly) an error, exit 1,
    # and its JSON must carry the same timing and usage. Anything else is a failure.
    no_answer = proc.returncode == 1 and "returned no answer text" in proc.stderr
    assert proc.returncode == 0 or no_answer, proc.stderr
    obj = json.loads(proc.stdout)
    assert obj["status"] == "error" if no_answer else obj["status"] in ("complete", "length")
    assert obj["alias"] == "rsmol-think" and obj["reasoning"]  # reasoning_content, separated
    assert obj["usage"]["input_tokens"] > 0 and obj["usage"]["output_tokens"] > 0
    assert obj["timing"]["total_s"] > 0 and obj["timing"]["ttft_s"] is not None
    assert "<think>" not in obj["content"] + obj["reasoning"]


# ---------------------------------------------------------------- the REPL in a pseudo-terminal


def _proxy(state: ServerState, answers: list[str]) -> Callable[[Received], Reply]:
    """Forward /local/ requests to the real server, keeping the answer text it produced."""

    def forward(rec: Received) -> Reply:
        path = rec.path.split("/local/v1", 1)[1]
        with _client() as c:
            r = c.post(f"{state.base_url}{path}", content=rec.raw, headers={"Content-Type": "application/json"})
        text = ""
        for line in r.text.splitlines():
            if line.startswith("data: {"):
                for choice in json.loads(line[6:])["choices"]:
                    text += choice["delta"].get("content") or ""
        answers.append(text)
        return Reply(status=r.status_code, chunks=[r.content])

    return forward


def _spawn_chat(exe: str, env: dict[str, str], model: str):  # noqa: ANN202
    pexpect = pytest.importorskip("pexpect")
    env = {**env, "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "40", "PROMPT_TOOLKIT_NO_CPR": "1"}
    env.pop("NO_COLOR", None)
    child = pexpect.spawn(exe, ["chat", "-m", model], env=env, encoding="utf-8", dimensions=(40, 100), timeout=60)
    child.expect(f"{model} ›")
    return child


def test_repl_local_answer_travels_verbatim_to_another_provider(
    exe: str, real_server: ServerState, data_home: Path, tmp_path: Path, server: LoopbackServer
) -> None:
    pexpect = pytest.importorskip("pexpect")
    answers: list[str] = []
    server.default = _proxy(real_server, answers)
    server.add(Reply.sse({"choices": [{"index": 0, "delta": {"content": "Other provider here."},
                                       "finish_reason": "stop"}]}, path="/other/"))
    extra = f"""
[providers.other]
type = "openai"
base_url = "{server.url}/other/v1"
api_key_env = "OTHER_KEY"
retries = 0
[providers.other.models.oth]
id = "other-model"
"""
    env = _env(tmp_path, _config(f"{server.url}/local/v1", extra), data_home)
    env["OTHER_KEY"] = "sk-other-0123456789"
    child = _spawn_chat(exe, env, "rsmol")
    child.send("Say hello in one short sentence.\r")
    child.expect("rsmol ·")  # the footer after the answer
    child.expect("rsmol ›")
    child.send("/model oth\r")
    child.expect("oth ›")
    child.send("What did you just say?\r")
    child.expect("Other provider here.")
    child.expect("oth ›")
    child.send("/exit\r")
    child.expect(pexpect.EOF)

    assert len(answers) == 1 and answers[0].strip()
    other = next(r for r in server.requests if "/other/" in r.path).json
    assert other["model"] == "other-model"
    msgs = other["messages"]
    assert [m["role"] for m in msgs[-3:]] == ["user", "assistant", "user"]
    assert msgs[-2]["content"] == answers[0]  # the local model's answer, byte for byte


def _slot_busy(state: ServerState) -> bool:
    with _client() as c:
        return any(s.get("is_processing") for s in c.get(f"http://127.0.0.1:{state.port}/slots").json())


def test_ctrl_c_mid_answer_against_the_real_server(
    exe: str, real_server: ServerState, paths: LocalPaths, data_home: Path, tmp_path: Path
) -> None:
    pexpect = pytest.importorskip("pexpect")
    long = f'[providers.realsmol.models.rlong]\nid = "{local.MODEL_ID}"\nmax_tokens = 2000\n'
    child = _spawn_chat(exe, _env(tmp_path, _config(real_server.base_url, long), data_home), "rlong")
    child.send("Write a very long story about a dragon and a knight, with many chapters.\r")
    deadline = time.monotonic() + 30
    while not _slot_busy(real_server):
        assert time.monotonic() < deadline, "the server never started answering"
        time.sleep(0.05)
    time.sleep(0.5)  # mid-answer: some tokens out, far from 2000
    child.sendintr()
    child.expect("interrupted")
    child.expect("rlong ›")
    # The client hung up, so llama-server stops generating; and the server, in its own session,
    # did not receive the terminal's SIGINT.
    deadline = time.monotonic() + 10
    while _slot_busy(real_server):
        assert time.monotonic() < deadline, "llama-server kept generating after Ctrl-C"
        time.sleep(0.1)
    assert local.read_state(paths)[0] == real_server
    child.send("@rsmol Say hi.\r")  # the same server answers the next turn (300 tokens at most)
    child.expect("rsmol ·")
    child.expect("rlong ›")
    child.sendeof()
    child.expect(pexpect.EOF)


# ---------------------------------------------------------------- local start/stop from the shell


def _local_cmd(exe: str | None) -> list[str]:
    """`modelswitch local` once cli.py mounts it; the sub-app's own entry point until then."""
    if exe is not None:
        probe = subprocess.run([exe, "local", "--help"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return [exe, "local"]
    return [sys.executable, "-m", "modelswitch.cli.local"]


def _ps_alive(pid: int) -> bool:
    out = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True).stdout.strip()
    return bool(out) and not out.startswith("Z")


def test_local_start_status_stop_leaves_no_process(tmp_path: Path) -> None:
    _require_engine()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELSWITCH_")}
    env.update({"XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
                "MODELSWITCH_ENGINE_CACHE": str(CACHE)})
    cmd = _local_cmd(EXE)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*cmd, *args], env=env, capture_output=True, text=True, timeout=300)

    first = run("setup")
    assert first.returncode == 0, first.stderr
    again = run("setup")
    assert again.returncode == 0 and "Already set up" in again.stderr
    started = run("start")
    assert started.returncode == 0, started.stderr
    st = json.loads(run("status", "--json").stdout)
    assert st["running"] and st["base_url"].startswith("http://127.0.0.1:")
    pid = st["pid"]
    assert _ps_alive(pid)
    with _client() as c:
        assert c.get(f"{st['base_url']}/models").status_code == 200
    stopped = run("stop")
    assert stopped.returncode == 0 and f"pid {pid}" in stopped.stdout
    assert not _ps_alive(pid)
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    assert str(tmp_path) not in ps  # no llama-server of this data dir anywhere
    assert json.loads(run("status", "--json").stdout)["running"] is False
