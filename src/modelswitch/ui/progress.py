"""Progress of the managed local model's setup: a spinner per step in a terminal, lines otherwise.

Drawing, so it lives in ui/; `modelswitch local setup` and a REPL's first run both pass
`setup_with_progress` where setup is wanted. rich is imported only when something is drawn.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .base import duration_text

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

    from ..local.server import SetupStep


def stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


@dataclass
class StepView:
    """Draws setup steps: a spinner and elapsed time per step in a terminal, plain lines otherwise."""

    console: Console
    progress: Progress | None = None
    task: TaskID | None = None
    started: float = field(default_factory=time.monotonic)
    shown_tenth: int = -1

    def __call__(self, step: SetupStep) -> None:
        if step.percent is not None:
            self._advance(step)
            return
        self._finish_task()
        if step.key == "done":
            return
        if step.long or step.log is not None:
            # Said up front so nobody thinks a long build has hung.
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

    def _advance(self, step: SetupStep) -> None:
        """The build's own percentage and the time left: a bar in a terminal, a line per 10% otherwise."""
        pct = step.percent or 0
        text = f"{step.key.replace('-', ' ')} {pct}%" + (f", {left_text(step.eta_s)}" if step.eta_s else "")
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, description=text, total=100, completed=pct)
        elif not self.console.is_terminal and pct // 10 != self.shown_tenth:
            self.shown_tenth = pct // 10
            self.console.print(f"  {text}", markup=False)

    def _finish_task(self) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, completed=1)
            self.progress.stop_task(self.task)
            self.task = None

    def close(self) -> None:
        self._finish_task()
        if self.progress is not None:
            self.progress.stop()


def left_text(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return "under a minute left"
    return f"about {duration_text(60 * round(seconds / 60))} left"


def setup_with_progress(console: Console | None = None) -> Path:
    """Run setup drawing its steps (for `local setup` and a first run with nothing configured)."""
    # start-up: --help must not load the server code, nor a chat the pip and zip machinery
    from ..local.server import LocalPaths
    from ..local.setup import run_setup

    console = console or stderr_console()
    view = StepView(console)
    try:
        result = run_setup(LocalPaths.default(), view)
    finally:
        view.close()
    if result.changed:
        elapsed = time.monotonic() - view.started
        console.print(f"Local model ready in {duration_text(elapsed)}: {result.model}", markup=False)
    return result.model
