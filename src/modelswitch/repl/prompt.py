"""prompt_toolkit input for the REPL: history, keys, Tab completion from the command registry."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent

from .. import paths
from . import commands
from ..errors import UsageError
from ..vocab import REASONING_VIEWS, SETTINGS

if TYPE_CHECKING:
    from .commands import Repl


class ReplCompleter(Completer):
    """Commands after "/", model names after /model, /retry, /compare and "@", sessions after /load."""

    def __init__(self, repl: Repl) -> None:
        self.repl = repl

    def model_names(self) -> list[str]:
        config = self.repl.session.config
        names = list(config.aliases)
        names += [f"{p}/" for p in config.providers]
        return names

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterable[Completion]:
        text = document.text_before_cursor
        if text.startswith("@") and " " not in text:
            yield from _matches(text[1:], self.model_names())
            return
        if not text.startswith("/"):
            return
        if " " not in text:
            yield from _matches(text, commands.names())
            return
        word, _, rest = text.partition(" ")
        try:
            cmd = commands.lookup(word)
        except UsageError:  # an unknown command offers nothing; the error comes on Enter
            return
        current = rest.split(" ")[-1]
        if cmd.args == "model":
            yield from _matches(current, self.model_names())
        elif cmd.args == "session" and self.repl.session.log is not None:
            yield from _matches(current, self.repl.session.log.names())
        elif cmd.args == "think":
            yield from _matches(current, REASONING_VIEWS)
        elif cmd.args == "setting" and " " not in rest:
            yield from _matches(current, SETTINGS)


def _matches(prefix: str, candidates: Iterable[str]) -> Iterable[Completion]:
    for c in candidates:
        if c.startswith(prefix):
            yield Completion(c, start_position=-len(prefix))


def _bindings() -> KeyBindings:
    kb = KeyBindings()

    @kb.add("enter")
    def _send(event: KeyPressEvent) -> None:
        buf = event.current_buffer
        if buf.complete_state and buf.complete_state.current_completion:
            buf.apply_completion(buf.complete_state.current_completion)
            return
        buf.validate_and_handle()

    @kb.add("escape", "enter")
    def _newline(event: KeyPressEvent) -> None:
        event.current_buffer.insert_text("\n")

    return kb


def make_prompt(repl: Repl) -> "_Prompt":
    return _Prompt(repl, private_history())


def private_history() -> FileHistory | None:
    """The prompt history, readable by its owner only: it holds every prompt, like the database.

    prompt_toolkit would create the file with the umask's mode (0644 as a rule), so it is created
    0600 here first, and an existing one from an older build is tightened.
    """
    path = paths.data_dir() / "history"
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
    except OSError:
        return None  # a read-only home still gets a working prompt, just without saved history
    return FileHistory(str(path))


class _Prompt:
    def __init__(self, repl: Repl, history: FileHistory | None) -> None:
        self.repl = repl
        self.session: PromptSession[str] = PromptSession(
            history=history,
            multiline=True,
            key_bindings=_bindings(),
            completer=ReplCompleter(repl),
            complete_while_typing=False,
            bottom_toolbar=repl.toolbar,
            prompt_continuation=lambda width, line_number, wrap_count: "… ".rjust(width),
            enable_open_in_editor=False,
        )

    def prompt(self) -> str:
        return self.session.prompt(f"{self.repl.session.model.name} › ")
