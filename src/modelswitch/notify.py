"""Warnings for the user, as a callback: the engine and the store take a `Warn` and call it; only the
default, `warn`, writes (to stderr, never stdout: stdout may be a pipe into a file).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from .safetext import visible

Warn = Callable[[str], None]


def warn(text: str) -> None:
    """A line for the user on stderr, its control characters made visible: it may quote a provider."""
    route = _route
    if route is not None:
        route(text)
        return
    to_stderr(text)


def to_stderr(text: str) -> None:
    """The line written straight to stderr: `warn` with no route, or a route with no live region."""
    sys.stderr.write(visible(text) + "\n")
    sys.stderr.flush()


# While a live region is drawn on the terminal (ui/live.py), a line written straight to stderr
# lands inside it and the next redraw wipes it: the region installs where warnings go instead.
_route: Warn | None = None


def route_warnings(to: Warn | None) -> Warn | None:
    """Send `warn`'s lines to `to` (None: stderr again); returns the previous route."""
    global _route
    previous, _route = _route, to
    return previous
