"""How every command ends: our errors as one line and an exit code, Ctrl-C as 130, never a traceback.

Also how the process meets a closed or full stdout/stderr (`>&-`, `2>&-`, `> /dev/full`): the
standard streams are wrapped at start (`StdStreams`), so a write that fails is one line and exit
code 1 for stdout, and a diagnostic that cannot be shown on stderr is dropped, never a traceback.
"""

from __future__ import annotations

import errno
import io
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn

import typer

from ..errors import ModelSwitchError, StdoutError

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer


def run_guarded(fn: Callable[[], int | None], *, debug: bool = False) -> NoReturn:
    """Run a command body and exit with its code."""
    try:
        code = fn() or 0
    except ModelSwitchError as exc:
        from ..ui.render import print_error
        from ..redaction import mask_urls, redact

        print_error(mask_urls(redact(exc.message)))
        if debug:
            _print_traceback()
        code = exc.exit_code
    except KeyboardInterrupt as exc:
        code = exit_interrupted(exc)
    except BrokenPipeError:
        # `... | head`: the reader left; say nothing, and keep Python's final flush quiet.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        code = 0
    except StdoutError:
        code = 1  # said once, by StdStreams.finish, whoever met the failure first
    except (typer.Exit, typer.Abort, SystemExit):
        raise
    except Exception as exc:  # a bug of ours: one line for the user, the traceback on request
        from ..ui.render import print_error
        from ..redaction import mask_urls, redact

        print_error(mask_urls(redact(f"internal error: {type(exc).__name__}: {exc} (run with --debug for details)")))
        if debug:
            _print_traceback()
        code = 1
    raise typer.Exit(code)


def _print_traceback() -> None:
    import traceback

    from ..safetext import visible
    from ..redaction import redact

    # The exception may quote a provider: its text is shown safe, as every error line is.
    sys.stderr.write(visible(redact(traceback.format_exc())))


class _StdFile(io.FileIO):
    """File descriptor 1 or 2 that remembers its first failed write.

    After that failure every write "succeeds" into nowhere: the failure is reported once (stdout)
    or not at all (stderr), and what is still buffered, Python's final flush included, cannot
    raise again ("Exception ignored ... BrokenPipeError").
    """

    def __init__(self, fd: int, *, closed: bool) -> None:
        super().__init__(fd, "wb", closefd=False)
        self.was_closed = closed  # the descriptor was closed at start; it now holds /dev/null
        self.failure: OSError | None = None

    def write(self, data: ReadableBuffer, /) -> int:
        if self.failure is None:
            try:
                if self.was_closed:
                    raise OSError(errno.EBADF, os.strerror(errno.EBADF))  # as the closed fd would
                return super().write(data)
            except BlockingIOError:
                raise  # a non-blocking descriptor that is busy is not a lost stream
            except OSError as exc:
                self.failure = exc
                if self.fileno() != 2:  # on stderr, a diagnostic that cannot be shown fails nothing
                    lost = exc if isinstance(exc, BrokenPipeError) else StdoutError(exc.errno, exc.strerror)
                    raise lost from None
        return memoryview(data).nbytes  # into nowhere, once the failure is known


class StdStreams:
    """sys.stdout and sys.stderr over `_StdFile`s: closed or full streams end the command cleanly."""

    def __init__(self) -> None:
        self.out = self._install(1, "stdout")
        self._install(2, "stderr")

    @staticmethod
    def _install(fd: int, name: str) -> _StdFile | None:
        old = getattr(sys, name)
        try:
            if old is not None and old.fileno() != fd:
                return None  # someone else's stream (a test harness): leave it alone
        except (AttributeError, OSError, ValueError):
            return None
        closed = old is None
        if closed:
            try:
                os.fstat(fd)
            except OSError:
                # Hold the number with /dev/null: a database or socket opened later must not
                # become "stdout", nor a child process inherit it as such.
                null = os.open(os.devnull, os.O_RDWR)
                if null != fd:
                    os.dup2(null, fd)
                    os.close(null)
        raw = _StdFile(fd, closed=closed)
        # stdout carries data (an answer, JSON, an export): always UTF-8, so none of it is lost and
        # JSON stays JSON (RFC 8259 is UTF-8; a backslash form such as `\xe9` is no JSON escape),
        # whatever PYTHONIOENCODING asks; surrogateescape gives back bytes that came in undecodable.
        # stderr is for a person: the encoding asked for, and what it cannot hold as `\u2192`
        # rather than an error about the error.
        if fd == 1:
            encoding, errors = "utf-8", "surrogateescape"
        else:
            encoding, errors = getattr(old, "encoding", None) or "utf-8", "backslashreplace"
        stream = io.TextIOWrapper(
            io.BufferedWriter(raw),
            encoding=encoding,
            errors=errors,
            line_buffering=getattr(old, "line_buffering", False),
            write_through=getattr(old, "write_through", fd == 2),
        )
        setattr(sys, name, stream)
        return raw

    def finish(self, code: int | str | None) -> int | str | None:
        """Flush stdout; if any of its output was lost, say so once and make the exit code 1."""
        try:
            sys.stdout.flush()
        except OSError:
            pass  # recorded by the _StdFile
        failure = self.out.failure if self.out is not None else None
        if failure is None or isinstance(failure, BrokenPipeError):
            return code
        from ..ui.render import print_error

        print_error(f"cannot write to stdout: {failure.strerror or failure}")
        return code if code not in (0, None) else 1


def exit_interrupted(exc: KeyboardInterrupt) -> int:
    """Say why we stop and give the exit code (128+N); quietly when the terminal is gone (SIGHUP)."""
    from ..interrupts import describe, exit_code

    for stream, text in ((sys.stderr, f"\n{describe(exc)}\n"), (sys.stdout, "")):
        try:
            stream.write(text)
            stream.flush()
        except (OSError, ValueError):
            # The terminal is gone (SIGHUP): else Python's last flush fails too, and exits 120.
            try:
                os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
            except (OSError, ValueError):
                pass
    return exit_code(exc)
