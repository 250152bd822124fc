"""How every command ends: our errors as one line and an exit code, Ctrl-C as 130, never a traceback."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import NoReturn

import typer

from ..errors import ModelSwitchError


def run_guarded(fn: Callable[[], int | None], *, debug: bool = False) -> NoReturn:
    """Run a command body and exit with its code."""
    try:
        code = fn() or 0
    except ModelSwitchError as exc:
        from ..ui.render import print_error
        from ..redaction import redact

        print_error(redact(exc.message))
        if debug:
            import traceback

            traceback.print_exc()
        code = exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("\ninterrupted\n")
        code = 130
    except BrokenPipeError:
        # `... | head`: the reader left; say nothing, and keep Python's final flush quiet.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        code = 0
    except (typer.Exit, typer.Abort, SystemExit):
        raise
    except Exception as exc:  # a bug of ours: one line for the user, the traceback on request
        from ..ui.render import print_error
        from ..redaction import redact

        print_error(redact(f"internal error: {type(exc).__name__}: {exc} (run with --debug for details)"))
        if debug:
            import traceback

            traceback.print_exc()
        code = 1
    raise typer.Exit(code)
