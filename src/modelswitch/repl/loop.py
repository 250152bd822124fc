"""The interactive loop: prompt_toolkit input, slash commands, streamed answers, Ctrl-C that keeps.

When stdin is not a terminal the same loop reads one message per line and prints plain answers,
so scripts can drive a conversation (`printf 'hi\\n/model r1\\nand you?\\n' | modelswitch chat`).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass

from .. import errors
from ..config.load import ModelSpec
from ..conversation import Message
from ..engine.session import ChatSession
from ..engine.choice import choose_for_session, first_run_local, load_config
from ..ui.progress import setup_with_progress
from . import builtins, commands


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

    config = first_run_local(load_config(opts.config_path), opts.model, setup=setup_with_progress)
    log = ChatLog.open_for(opts.session, opts.cont, model=opts.model, system=opts.system)
    spec = choose_for_session(config, opts.model, log.resumed_model if log else None)
    conversation = log.conversation if log else None
    session = ChatSession(config, spec, conversation=conversation, log=log, debug=opts.debug)
    if opts.system:
        session.set_system(opts.system)
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    return Repl(session, color=opts.color, interactive=interactive).run()


class Repl:
    def __init__(self, session: ChatSession, *, color: bool, interactive: bool) -> None:
        commands.register(builtins.BUILTINS)
        self.session = session
        self.color = color
        self.interactive = interactive
        self.running = True
        self.pending_compare: tuple[ModelSpec, ...] = ()

    # -- output ----------------------------------------------------------------------------
    def say(self, text: str, style: str | None = None) -> None:
        from ..ui.render import print_info

        # Piped chats keep stdout for answers only; everything else goes to stderr.
        out = None if self.interactive else sys.stderr
        print_info(text, style=style if self.color else None, out=out)

    def fail(self, message: str) -> None:
        from ..ui.render import print_error

        print_error(message)

    # -- the loop --------------------------------------------------------------------------
    def run(self) -> int:
        if self.interactive:
            self._greet()
            reader = self._prompt_reader()
        else:
            reader = self._line_reader()
        for line in reader:
            self.handle(line)
            if not self.running:
                break
        return 0

    def _greet(self) -> None:
        s = self.session
        n = len(s.conversation.messages)
        resumed = f", resumed with {n} turns" if n else ""
        self.say(f"modelswitch · {s.model.name} ({s.model.full_id}){resumed} · /help for commands, Ctrl-D to quit", "dim")

    def _line_reader(self) -> Iterator[str]:
        for line in sys.stdin:
            line = line.rstrip("\n")
            if line.strip():
                yield line

    def _prompt_reader(self) -> Iterator[str]:
        from .prompt import make_prompt

        prompt = make_prompt(self)
        while self.running:
            try:
                text = prompt.prompt()
            except KeyboardInterrupt:
                continue  # Ctrl-C at the prompt clears the line
            except EOFError:
                return
            if text.strip():
                yield text

    def handle(self, line: str) -> None:
        """One line of input: a command, an @model one-off, or a message."""
        stripped = line.strip()
        try:
            if stripped.startswith("/"):
                commands.dispatch(self, stripped)
            elif stripped.startswith("@") and " " in stripped:
                name, _, text = stripped[1:].partition(" ")
                self.send(text.strip(), self.session.resolve(name))
            else:
                self.send(line)
        except errors.ModelSwitchError as exc:
            self.fail(exc.message)
        except BrokenPipeError:
            raise  # the reader of a piped chat left: end quietly (cliutil)
        except Exception as exc:  # a bug of ours must not end the chat: history is intact, go on
            self.fail(f"internal error: {type(exc).__name__}: {exc}")

    # -- answering -------------------------------------------------------------------------
    def send(self, text: str, model: ModelSpec | None = None) -> None:
        if self.pending_compare:
            from .compare import run_compare

            models, self.pending_compare = self.pending_compare, ()
            run_compare(self, models, text)
            return
        user = self.session.user_message(text)
        self.stream(user, model)

    def stream(self, user: Message, model: ModelSpec | None = None, *, fallback: bool = True) -> None:
        """Stream one answer to the screen and put it into history, whatever happens."""
        from ..ui.render import draw, make_renderer

        session = self.session
        answer = session.ask(user, model, fallback=fallback)
        renderer = make_renderer(
            terminal=sys.stdout.isatty(), reasoning=session.think if sys.stdout.isatty() else "hide",
            color=self.color,
        )
        renderer.begin(answer.model.name)
        failure: errors.ModelSwitchError | None = None
        try:
            draw(renderer, answer)
        except KeyboardInterrupt:
            answer.close()
            renderer.abort()
            message = session.finish(user, answer)
            kept = "partial answer kept" if message.text else "nothing arrived"
            self.say(f"\ninterrupted — {kept}; /retry asks again", "yellow")
            return
        except errors.ModelSwitchError as exc:
            renderer.abort()
            failure = exc
        message = session.finish(user, answer)
        if failure is not None:
            self.fail(failure.message)
            if message.text:
                self.say("the partial answer is kept; /retry asks again", "dim")
            else:
                self.say("/retry asks again (optionally on another model: /retry NAME)", "dim")
            return
        renderer.end(message, session.cost_for(message))

    # -- the toolbar -----------------------------------------------------------------------
    def toolbar(self) -> str:
        from ..store.export import model_stats

        s = self.session
        _, total = model_stats(s.stats())
        used = total.usage
        parts = [f" {s.model.name} ({s.model.full_id})", f"{used.input_tokens + used.output_tokens:,} tokens"]
        if total.costs:
            parts.append(" + ".join(str(c) for c in total.costs))
        if s.attachments:
            parts.append(f"{len(s.attachments)} file(s) attached")
        return " · ".join(parts)
