"""The interactive loop: prompt_toolkit input, slash commands, streamed answers, Ctrl-C that keeps.

When stdin is not a terminal the same loop reads one message per line and prints plain answers,
so scripts can drive a conversation (`printf 'hi\\n/model r1\\nand you?\\n' | modelswitch chat`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

from .. import errors
from ..config.load import ModelSpec
from ..conversation import CALL_CANCELLED, CALL_NOT_STARTED, Message
from ..engine.choice import choose_for_session, load_config
from ..engine.catalog import can_search
from ..engine.session import Arena, ChatSession
from ..engine.tools import ToolAnswer
from ..events import ToolCall
from ..notify import warn
from ..errors import StdoutError
from ..interrupts import Terminated, deferred
from ..ui.base import Renderer, hold_terminal, nothing
from . import builtins, commands
from .firstrun import first_run


@dataclass(frozen=True)
class ChatOptions:
    model: str | None = None
    system: str | None = None
    cont: bool = False
    session: str | None = None
    config_path: str | None = None
    color: bool = True
    debug: bool = False


def run_chat(opts: ChatOptions) -> int:
    from ..store.chatlog import ChatLog

    config, wanted = first_run(load_config(opts.config_path), opts.model)
    log = ChatLog.open_for(opts.session, opts.cont, model=wanted, system=opts.system)
    spec = choose_for_session(config, wanted, log.resumed_model if log else None)
    if log:
        log.set_model(spec.name)  # `--session NAME -m X` goes on with X next time, as `ask` does
    conversation = log.conversation if log else None
    session = ChatSession(config, spec, conversation=conversation, log=log, debug=opts.debug)
    if opts.system:
        session.set_system(opts.system)
    if config.mcp:
        from ..engine.mcpclient import McpToolbox  # mcp itself loads when a server first starts

        session.toolbox = McpToolbox(config.mcp, config.tools, warn=warn, config_path=str(config.path))
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    try:
        return Repl(session, color=opts.color, interactive=interactive).run()
    finally:
        close = getattr(session.toolbox, "close", None)
        if close is not None:
            close()


def interrupted_text(message: Message) -> str:
    """What Ctrl-C stopped: tool calls (running, or not yet started) or the answer's stream."""
    results = message.rounds[-1].results if message.rounds else ()

    def names(content: str) -> str:
        return ", ".join(f"{r.server}.{r.name}" if r.server else r.name for r in results if r.content == content)

    if running := names(CALL_CANCELLED):
        return f"interrupted during the tool call {running} — the call was cancelled and the model was told"
    if waiting := names(CALL_NOT_STARTED):
        return f"interrupted before the tool call {waiting} ran — it was not run and the model was told"
    if not message.text and message.reasoning:  # the reasoning was on screen: something did arrive
        return "interrupted while thinking — no answer yet"
    return "interrupted — " + ("partial answer kept" if message.text else "nothing arrived")


@contextmanager
def keep_typeahead(interactive: bool) -> Iterator[None]:
    """While an answer streams, Ctrl-C must not make the terminal driver flush its queues (it does
    unless NOFLSH is set): that threw away what the user had typed ahead for the next prompt, and
    output not yet drawn, which left the live view redrawing a line twice."""
    restore = hold_terminal(sys.stdin, echo=True) if interactive else nothing
    try:
        yield
    finally:
        restore()


class Repl:
    def __init__(self, session: ChatSession, *, color: bool, interactive: bool) -> None:
        commands.register(builtins.BUILTINS)
        self.session = session
        self.color = color
        self.interactive = interactive
        self.running = True
        self.failed = False  # an answer, a command or an @model failed (fail): a piped chat exits 1
        self.pending_compare: tuple[ModelSpec, ...] = ()
        self.pending_arena: Arena | None = None

    # -- output ----------------------------------------------------------------------------
    def say(self, text: str, style: str | None = None) -> None:
        from ..ui.render import print_info

        # Piped chats keep stdout for answers only; everything else goes to stderr.
        out = None if self.interactive else sys.stderr
        print_info(text, style=style if self.color else None, out=out)

    def choose(self, question: str) -> str | None:
        if not self.interactive:
            return None
        try:
            line = input(question)
        except (EOFError, KeyboardInterrupt):
            return None
        return line.strip().lower()[:1] or None

    def fail(self, message: str) -> None:
        from ..ui.render import print_error

        print_error(message)
        # A piped chat goes on (the next lines may not depend on this one) but exits 1 at the
        # end, so a script learns that a command, an @model or an answer failed.
        self.failed = True

    def confirm(self, question: str) -> bool:
        """A yes/no question at the prompt; no in a piped chat (nobody is there to answer)."""
        if not self.interactive:
            self.say(f"{question} — not asked in a piped chat: no", "yellow")
            return False
        from prompt_toolkit import prompt

        try:
            answer = prompt(f"{question} [y/N] ")
        except (EOFError, KeyboardInterrupt):
            return False
        return answer.strip().lower() in ("y", "yes")

    # -- the loop --------------------------------------------------------------------------
    def run(self) -> int:
        """Read and handle lines until Ctrl-D or /exit; 1 when a piped run had an answer fail."""
        read = self._prompt_reader() if self.interactive else self._read_line
        if self.interactive:
            self._greet()
        interrupted = False
        while self.running:
            # Ctrl-C anywhere in a line's work (a slash command, the gap before streaming, a
            # save) comes back here: only the prompt's Ctrl-D ends a chat. The note is said
            # inside the try, so a second Ctrl-C while saying it is caught too.
            try:
                if interrupted:
                    interrupted = False
                    self.say("interrupted", "yellow")
                line = read()
                if line is None:
                    break
                if line.strip():
                    self.handle(line)
            except Terminated:
                raise  # SIGTERM, SIGHUP: the partial answer is kept; end the program (128+N)
            except KeyboardInterrupt:
                if not self.interactive:
                    raise  # a script has no prompt to come back to: stop (130)
                interrupted = True
        if self.interactive:  # a piped chat's output is the answers: nothing more there
            self._say_local_stays()
            if saved := self.session.saved_line():
                self.say(saved, "dim")
        return 1 if self.failed and not self.interactive else 0

    def _say_local_stays(self) -> None:
        """Once, on leaving: a local server this chat started goes on running for a while."""
        if not any(p.managed for p in self.session.config.providers.values()):
            return
        from ..local import server as local

        minutes = local.idle_stop_minutes()
        if minutes:
            self.say(f"local model stays up {minutes:g} min; `modelswitch local stop` ends it now", "dim")

    def _greet(self) -> None:
        s = self.session
        n = len(s.conversation.messages)
        resumed = f", resumed with {n} turns" if n else ""
        self.say(f"modelswitch · {s.model.name} ({s.model.full_id}){resumed} · /help for commands, Ctrl-D to quit", "dim")
        servers = [m.name for m in s.config.mcp if m.enabled]
        if s.toolbox is not None and servers:
            # Tools are offered from the first message on: say so before the model first calls one.
            self.say(f"tools on: MCP server{'s' if len(servers) != 1 else ''} {', '.join(servers)} (each call asks"
                     " y/n/a; /tools lists them and turns them on or off)", "dim")

    @staticmethod
    def _read_line() -> str | None:
        line = sys.stdin.readline()
        # CRLF input (a file from Windows): the "\r" is line ending, not part of the message.
        return line.removesuffix("\n").removesuffix("\r") if line else None

    def _prompt_reader(self) -> Callable[[], str | None]:
        from .prompt import make_prompt

        prompt = make_prompt(self)

        def read() -> str | None:
            try:
                return prompt.prompt()
            except Terminated:
                raise
            except KeyboardInterrupt:
                return ""  # Ctrl-C at the prompt clears the line
            except EOFError:
                return None

        return read

    def handle(self, line: str) -> None:
        """One line of input: a command, an @model one-off, or a message."""
        stripped = line.strip()
        try:
            if stripped.startswith("/"):
                commands.dispatch(self, line)
            elif stripped.startswith("@") and " " in stripped:
                # The message after the model's name goes out as typed, like any other message.
                name, _, text = line.lstrip()[1:].partition(" ")
                self.send(commands.prompt_after(text), self.session.resolve(name))
            else:
                self.send(line)
        except errors.ModelSwitchError as exc:
            from ..config.load import MODELS_HINT

            self.fail(exc.message.replace(MODELS_HINT, "see /models"))
        except (BrokenPipeError, StdoutError):
            raise  # the reader of a piped chat left, or stdout is closed or full: end (cliutil)
        except Exception as exc:  # a bug of ours must not end the chat: history is intact, go on
            self.fail(f"internal error: {type(exc).__name__}: {exc}")

    # -- answering -------------------------------------------------------------------------
    def send(self, text: str, model: ModelSpec | None = None) -> None:
        if self.pending_arena is not None:
            from .compare import run_arena

            arena, self.pending_arena = self.pending_arena, None
            run_arena(self, arena, text)
            return
        if self.pending_compare:
            from .compare import run_compare

            models, self.pending_compare = self.pending_compare, ()
            run_compare(self, models, text)
            return
        user = self.session.user_message(text)
        self.stream(user, model)

    def stream(self, user: Message, model: ModelSpec | None = None, *, fallback: bool = True,
               replacing: bool = False) -> None:
        """Stream one answer to the screen and put it into history, whatever happens.

        `replacing` (a /retry): the answer replaces the last exchange only if it succeeds.
        """
        from ..ui.render import make_renderer, stopped_after

        terminal = sys.stdout.isatty()
        renderer = make_renderer(terminal=terminal, reasoning=self.session.think if terminal else "hide",
                                 color=self.color)
        # stopped_after: an error handle() tells (a bug) finds the live region stopped.
        with keep_typeahead(self.interactive), stopped_after(renderer):
            self._stream(user, model, renderer, fallback=fallback, replacing=replacing)

    def _stream(self, user: Message, model: ModelSpec | None, renderer: Renderer, *, fallback: bool,
                replacing: bool) -> None:
        from ..ui.render import draw
        from .window import before_send

        session = self.session
        if not before_send(self, model or session.model, user, replacing=replacing):
            preview = " ".join(user.text.split())[:60]
            self.say(f"not sent: {preview!r}" + (" (Up recalls it)" if self.interactive else ""), "dim")
            return
        answer = session.ask(user, model, fallback=fallback, replacing=replacing)
        if isinstance(answer, ToolAnswer):
            answer.approve = self._approver(renderer, answer)
        failure: errors.ModelSwitchError | None = None
        try:
            renderer.begin(answer.model.name)  # inside: it hides the cursor, abort shows it again
            draw(renderer, answer)
        except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM, SIGHUP: the same ending
            with deferred():  # another Ctrl-C waits until the exchange is saved, the screen restored
                answer.close()
                kept_earlier = replacing and session.keeps_earlier(answer.message)
                message = session.finish(user, answer, replacing=replacing)
                with suppress(OSError):  # SIGHUP: the terminal may be gone; the answer is saved
                    renderer.abort()
            if isinstance(exc, Terminated) or not self.interactive:
                raise
            if kept_earlier:
                self.say("\ninterrupted — the earlier answer is kept; /retry asks again", "yellow")
                return
            self.say(f"\n{interrupted_text(message)}; /retry asks again", "yellow")
            return
        except errors.ModelSwitchError as exc:
            renderer.abort()
            failure = exc
        # Ctrl-C while saving acts once the exchange is saved and the live view closed (its
        # footer drawn), so neither is left half done.
        with deferred():
            kept_earlier = replacing and session.keeps_earlier(answer.message)
            message = session.finish(user, answer, replacing=replacing)
            if failure is None:
                renderer.end(message, session.cost_for(message))
        if failure is not None:
            self.fail(failure.message)
            if kept_earlier:
                self.say("the earlier answer is kept; /retry asks again", "dim")
            elif message.text:
                self.say("the partial answer is kept; /retry asks again", "dim")
            elif isinstance(failure, errors.NoAnswerError):
                # A refusal, a blocked prompt or an empty stream: the reason was a notice above.
                self.say("no answer: this question will not be sent again; /undo removes it from "
                         "history, /retry asks again", "yellow")
            else:
                self.say("/retry asks again (optionally on another model: /retry NAME)", "dim")
            return
        if kept_earlier and message.has_answer:  # cut short (length, a filter...): no better
            self.say("this answer did not finish; the earlier answer is kept (this one is saved as"
                     " an alternate); /retry asks again", "yellow")
        elif kept_earlier:
            self.say("no answer this time; the earlier answer is kept", "yellow")
        elif not message.has_answer:
            # A refusal or a blocked prompt: the provider's reason was shown as a notice above.
            self.say("no answer: this question will not be sent again; /undo removes it from history", "yellow")

    def _approver(self, renderer: Renderer, answer: ToolAnswer) -> Callable[[ToolCall, str], bool | None]:
        # The answer so far stays on screen and the question goes below it; the model goes on after.
        # pause, not abort: the round's reasoning folds to "Thought for …" as every later round's does.
        return self.approver(renderer.pause, lambda: renderer.begin(answer.model.name))

    def approver(self, pause: Callable[[], None], resume: Callable[[], None],
                 who: str = "") -> Callable[[ToolCall, str], bool | None]:
        """Ask about each call: y (run it), n (do not), a (always this tool, this session).
        Piped input never approves: only a user at a terminal can say yes. `who` names the
        model asking when several answer at once (/compare)."""
        from ..ui.render import call_text

        tag = f"[{who}] " if who else ""

        def approve(call: ToolCall, server: str) -> bool | None:
            if call.name in self.session.always:
                return True
            pause()
            if not self.interactive:
                return None  # no one could be asked (not the user's no); the call's own line says how to allow it
            self.say(f"{tag}⚙ {call_text(call, server)}", "bold")
            while True:
                try:
                    reply = input("  run it? [y]es / [N]o / [a]lways this tool (Enter = no): ").strip().lower()
                except EOFError:
                    reply = "n"
                if reply in ("y", "yes", "n", "no", "", "a", "always"):
                    break
                self.say("a command cannot run during a tool question: answer y, n or a first" if reply.startswith("/")
                         else "answer y, n or a", "yellow")
            resume()
            if reply in ("a", "always"):
                self.session.always.add(call.name)
            return reply in ("y", "yes", "a", "always")

        return approve

    # -- the toolbar -----------------------------------------------------------------------
    def toolbar(self, width: int | None = None) -> str:
        """The model, then the states a user must not miss (search, tools, files), then the
        figures; what does not fit `width` (the terminal's) goes: the figures from the end, then
        the model's provider/id."""
        import shutil

        from ..store.export import model_stats, tokens_text

        s = self.session
        _, total = model_stats(s.stats())
        states = [f" {s.model.name} ({s.model.full_id})"]
        if s.searching:
            states.append("search on" if can_search(s.config, s.model) else f"search via {s.search_tool}"
                          if s.search_tool else "search: this model cannot")
        if s.tools_refused():
            states.append("tools off: this model cannot")
        if s.attachments:
            states.append(f"{len(s.attachments)} file(s) attached")
        figures = [f"context {s.fit().meter()}", tokens_text(total)]
        if total.costs:
            figures.append(" + ".join(str(c) for c in total.costs))
        room = width or shutil.get_terminal_size().columns
        while figures and len(" · ".join(states + figures)) > room:
            figures.pop()
        if len(" · ".join(states + figures)) > room:  # the name the user chose says enough
            states[0] = f" {s.model.name}"
        return " · ".join(states + figures)
