"""SIGTERM and SIGHUP end an answer the way Ctrl-C does, and saves are never cut in half.

The signals become a KeyboardInterrupt that remembers its number, so every path that keeps a
partial answer on Ctrl-C keeps it on `timeout`, `kill` or a closed terminal too; the top level
then exits 128+N, as shells expect.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import NoReturn


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP: stop the answer as Ctrl-C does, then end the program."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _signals(*names: str) -> list[signal.Signals]:
    return [getattr(signal, n) for n in names if hasattr(signal, n)]  # no SIGHUP on Windows


def _terminate(signum: int, frame: FrameType | None) -> NoReturn:
    raise Terminated(signum)


def install() -> None:
    """Turn SIGTERM and SIGHUP into Terminated (a signal ignored on purpose, as by nohup, stays so)."""
    for sig in _signals("SIGTERM", "SIGHUP"):
        if signal.getsignal(sig) is not signal.SIG_IGN:
            signal.signal(sig, _terminate)


def exit_code(exc: KeyboardInterrupt) -> int:
    """128+N for the signal that stopped us: 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP."""
    return 128 + (exc.signum if isinstance(exc, Terminated) else signal.SIGINT)


def describe(exc: KeyboardInterrupt) -> str:
    return f"terminated ({signal.Signals(exc.signum).name})" if isinstance(exc, Terminated) else "interrupted"


@contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP until the block ends, then act on them as usual.

    For writes that must happen whole (saving an exchange): the interrupt still happens, just
    after the write. Only the main thread can set handlers; elsewhere signals never arrive anyway.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        pending.append(signum)

    previous = {}
    for sig in _signals("SIGINT", "SIGTERM", "SIGHUP"):
        handler = signal.getsignal(sig)
        if handler is not None and handler is not signal.SIG_IGN:  # None: set outside Python
            previous[sig] = handler
            signal.signal(sig, hold)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for signum in dict.fromkeys(pending):
            signal.raise_signal(signum)  # the restored handler runs now (and usually raises)
