"""The slash-command registry: one table drives dispatch, /help and Tab completion."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from ..errors import UsageError

if TYPE_CHECKING:
    from ..config.load import ModelSpec
    from ..conversation import Message
    from ..engine.session import Arena, ChatSession
    from ..events import ToolCall


class Repl(Protocol):
    """The REPL as a command sees it (loop.Repl is the one implementation). Declared here, below
    the loop, so handlers, completion and compare need nothing from the loop that calls them."""

    session: ChatSession
    color: bool
    running: bool
    interactive: bool
    failed: bool  # an answer of this run failed: a piped chat exits 1
    pending_compare: tuple[ModelSpec, ...]
    pending_arena: Arena | None  # an /arena without a prompt: the next message goes to it

    def say(self, text: str, style: str | None = None) -> None: ...

    def send(self, text: str, model: ModelSpec | None = None) -> None: ...

    def stream(self, user: Message, model: ModelSpec | None = None, *, fallback: bool = True,
               replacing: bool = False) -> None: ...

    def toolbar(self, width: int | None = None) -> str: ...

    def confirm(self, question: str) -> bool: ...

    def approver(self, pause: Callable[[], None], resume: Callable[[], None],
                 who: str = "") -> Callable[[ToolCall, str], bool | None]: ...

    def choose(self, question: str) -> str | None:
        """The first letter of the user's answer (lower case); None if there is no one to ask."""
        ...

# What Tab offers after the command name.
ArgKind = Literal["none", "model", "session", "path", "think", "setting", "text"]


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    usage: str
    help: str
    handler: Callable[[Repl, str], None]
    aliases: tuple[str, ...] = ()
    args: ArgKind = "none"
    # The argument holds text for a model (/compare's prompt): it goes to the handler as typed,
    # trailing blanks and newlines included, as an ordinary message is sent.
    verbatim: bool = False


Handler = Callable[["Repl", str], None]
REGISTRY: dict[str, Command] = {}
_BY_NAME: dict[str, Command] = {}


def declare(into: list[Command]) -> Callable[..., Callable[[Handler], Handler]]:
    """A `@command(name, usage, help, aliases=..., args=...)` decorator that appends each handler
    `fn(repl, argument_text)` to `into`; nothing is dispatched until that list is `register`ed."""

    def command(name: str, usage: str, help: str, *, aliases: tuple[str, ...] = (),  # noqa: A002
                args: ArgKind = "none", verbatim: bool = False) -> Callable[[Handler], Handler]:
        def add(fn: Handler) -> Handler:
            into.append(Command(name, usage, help, fn, aliases, args, verbatim))
            return fn

        return add

    return command


def register(commands: Iterable[Command]) -> None:
    """Make `commands` the ones dispatch, /help and Tab completion know (the REPL calls this)."""
    for cmd in commands:
        REGISTRY[cmd.name] = cmd
        for n in (cmd.name, *cmd.aliases):
            _BY_NAME[n] = cmd


def lookup(word: str) -> Command:
    """The command for "/name" (or an alias); a did-you-mean error otherwise."""
    name = word.lstrip("/")
    if name in _BY_NAME:
        return _BY_NAME[name]
    close = difflib.get_close_matches(name, list(_BY_NAME), n=1, cutoff=0.5)
    hint = f" — did you mean /{close[0]}?" if close else " — /help lists commands"
    raise UsageError(f"unknown command /{name}{hint}")


def dispatch(repl: Repl, line: str) -> None:
    word, *more = line.split(maxsplit=1)
    rest = more[0] if more else ""
    cmd = lookup(word)
    cmd.handler(repl, rest if cmd.verbatim else rest.strip())


def prompt_after(rest: str) -> str:
    """The prompt after a model's name (`@r1 …`, `/compare a b …`) exactly as typed, less the
    blanks that separate it from the name (a prompt may start on the next line)."""
    head = rest.lstrip(" \t")
    return head[1:] if head.startswith("\n") else head


def names() -> list[str]:
    """Every "/name" and "/alias", for completion."""
    return sorted(f"/{n}" for n in _BY_NAME)


def help_rows() -> list[list[str]]:
    rows = []
    for cmd in REGISTRY.values():
        alias = ", ".join(f"/{a}" for a in cmd.aliases)
        rows.append([cmd.usage + (f"  ({alias})" if alias else ""), cmd.help])
    return rows
