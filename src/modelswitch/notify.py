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
    sys.stderr.write(visible(text) + "\n")
    sys.stderr.flush()
