"""The REPL's slash commands, declared into BUILTINS; the REPL registers them with commands.py, which
dispatches, helps and completes."""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from typing import TYPE_CHECKING

from .commands import Command, declare, help_rows
from ..errors import UsageError
from ..vocab import REASONING_VIEWS, SETTINGS

if TYPE_CHECKING:
    from .commands import Repl

BUILTINS: list[Command] = []
command = declare(BUILTINS)


@command("model", "/model [NAME]", "switch model (history goes along); bare: show the current one",
         aliases=("m",), args="model")
def _model(repl: Repl, arg: str) -> None:
    s = repl.session
    if not arg:
        repl.say(f"{s.model.name} ({s.model.full_id})")
        return
    repl.say(s.switch(arg), "green")


@command("models", "/models", "list every model and whether its key is set")
def _models(repl: Repl, arg: str) -> None:
    from ..engine.catalog import TABLE_HEADERS, all_models, table_rows
    from ..ui.render import print_table

    current = repl.session.model
    print_table(TABLE_HEADERS, table_rows(all_models(repl.session.config), lambda m: m == current))


@command("think", "/think show|hide|collapse", "how reasoning is shown: kept, never, or folded to one line",
         args="think")
def _think(repl: Repl, arg: str) -> None:
    if not arg:
        repl.say(f"reasoning is shown as: {repl.session.think} (/think show|hide|collapse)")
        return
    if arg not in REASONING_VIEWS:
        raise UsageError(f"unknown reasoning view '{arg}': use /think {'|'.join(REASONING_VIEWS)}")
    repl.session.think = arg
    repl.say(f"reasoning: {arg}", "dim")


@command("system", "/system [TEXT]", "set the system prompt; bare: show it; /system off clears it", args="text")
def _system(repl: Repl, arg: str) -> None:
    s = repl.session
    if not arg:
        repl.say(f"system prompt: {s.conversation.system!r}" if s.conversation.system else "no system prompt")
        return
    s.set_system(None if arg in ("off", "none", "clear") else arg)
    repl.say("system prompt cleared" if arg in ("off", "none", "clear") else "system prompt set", "dim")


@command("retry", "/retry [MODEL]",
         "ask the last question (or an unkept /compare's) again, optionally on another model", args="model")
def _retry(repl: Repl, arg: str) -> None:
    s = repl.session
    spec = s.resolve(arg) if arg else None
    user, replacing = s.retry_target()
    if not replacing:
        preview = " ".join(user.text.split())[:60]
        repl.say(f"retrying the compared prompt {preview!r} on {(spec or s.model).name}", "dim")
    repl.stream(user, spec, replacing=replacing)


@command("undo", "/undo", "forget the last question and answer")
def _undo(repl: Repl, arg: str) -> None:
    user = repl.session.pop_last_exchange()
    preview = user.text.strip().splitlines()[0][:60] if user.text.strip() else ""
    repl.say(f"undone: {preview!r}", "dim")


@command("clear", "/clear", "start a new conversation (the old one stays saved)")
def _clear(repl: Repl, arg: str) -> None:
    # A comparison still open (answers awaiting /keep, or models awaiting the next message) ends
    # with the conversation it belonged to: /keep after /clear has nothing to put anywhere.
    ended = repl.session.held is not None or bool(repl.pending_compare)
    repl.session.clear()
    repl.pending_compare = ()
    repl.say("new conversation" + ("; the comparison is closed" if ended else ""), "dim")


@command("history", "/history", "every turn so far, with the model that wrote it")
def _history(repl: Repl, arg: str) -> None:
    s = repl.session
    if not s.conversation.messages:
        repl.say("no turns yet")
        return
    if s.conversation.system:
        repl.say(f"system: {s.conversation.system}", "dim")
    for i, m in enumerate(s.conversation.messages, 1):
        who = "you" if m.role == "user" else (m.model.name if m.model else "assistant")
        flag = "" if m.status == "complete" else f" [{m.status}]"
        if m.role == "assistant" and not m.has_answer:
            if m.finish_reason in ("content_filter", "refusal"):
                flag = " [refused]"
            elif m.status == "complete":
                flag = " [no answer]"
        text = " ".join(m.text.split())
        repl.say(f"{i:>3}. {who}{flag}: {text[:200]}{'…' if len(text) > 200 else ''}")


@command("set", "/set KEY VALUE", "temperature, max_tokens or reasoning for this chat", args="setting")
def _set(repl: Repl, arg: str) -> None:
    key, _, value = arg.partition(" ")
    if not key or not value.strip():
        raise UsageError(f"usage: /set {'|'.join(SETTINGS)} VALUE")
    repl.say(repl.session.set(key, value.strip()), "dim")


@command("file", "/file PATH", "attach a text file to your next message", args="path")
def _file(repl: Repl, arg: str) -> None:
    if not arg:
        raise UsageError("usage: /file PATH")
    repl.say(repl.session.attach(arg), "dim")


@command("edit", "/edit", "write the next message in $EDITOR, then send it")
def _edit(repl: Repl, arg: str) -> None:
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    with tempfile.NamedTemporaryFile("w+", suffix=".md", delete=False, encoding="utf-8") as f:
        f.write(arg)
        path = f.name
    try:
        done = subprocess.run([*shlex.split(editor), path])
        if done.returncode != 0:
            raise UsageError(f"{editor} exited with {done.returncode}; nothing sent")
        with open(path, encoding="utf-8") as f:
            text = f.read().strip()
    except FileNotFoundError:
        raise UsageError(f"editor not found: {editor} (set $EDITOR)") from None
    finally:
        os.unlink(path)
    if not text:
        repl.say("empty message; nothing sent", "dim")
        return
    repl.send(text)


@command("save", "/save NAME", "name this conversation so /load and --session find it", args="text")
def _save(repl: Repl, arg: str) -> None:
    log = repl.session.log
    if log is None:
        raise UsageError("sessions cannot be saved right now (see the warning at start-up)")
    if not arg:
        raise UsageError("usage: /save NAME")
    log.save_as(arg)
    repl.say(f"saved as '{arg}'", "dim")


@command("load", "/load NAME", "resume a saved conversation", args="session")
def _load(repl: Repl, arg: str) -> None:
    s = repl.session
    if s.log is None:
        raise UsageError("sessions cannot be loaded right now (see the warning at start-up)")
    if not arg:
        raise UsageError("usage: /load NAME")
    log = s.log.load(arg)
    s.resume(log)
    note = ""
    if log.model:
        try:
            s.model = s.resolve(log.model)
        except UsageError as exc:
            note = f" (its model is unavailable: {exc.message}; staying on {s.model.name})"
    repl.say(f"loaded '{arg}': {len(s.conversation.messages)} turns on {s.model.name}{note}", "green")


@command("sessions", "/sessions", "recent saved conversations")
def _sessions(repl: Repl, arg: str) -> None:
    from ..ui.render import print_table
    from ..store.export import local

    log = repl.session.log
    if log is None:
        raise UsageError("sessions are not available (see the warning at start-up)")
    items = log.store.list(limit=20)
    if not items:
        repl.say("no saved sessions yet")
        return
    print_table(
        ["session", "turns", "models", "updated"],
        [[i.info.label, str(i.turns), ", ".join(m.name for m in i.models), local(i.info.updated)]
         for i in items],
    )


@command("compare", "/compare A B [...] [PROMPT]",
         "the same prompt to several models at once; without PROMPT, your next message", args="model",
         verbatim=True)
def _compare(repl: Repl, arg: str) -> None:
    from .compare import parse_compare_args, run_compare

    specs, prompt = parse_compare_args(repl, arg)
    if prompt:
        run_compare(repl, specs, prompt)
        return
    repl.pending_compare = tuple(specs)
    repl.say(f"your next message goes to {', '.join(s.name for s in specs)}", "dim")


@command("keep", "/keep N|MODEL", "put one compared answer into the conversation")
def _keep(repl: Repl, arg: str) -> None:
    if not arg:
        raise UsageError("usage: /keep N (or /keep MODEL)")
    chosen = repl.session.keep(arg)
    repl.say(f"kept the answer from {chosen.model.name if chosen.model else arg}", "green")


@command("cost", "/cost", "tokens, cost and speed of this chat, per model")
def _cost(repl: Repl, arg: str) -> None:
    from ..ui.render import print_table
    from ..store.export import STATS_HEADERS, stats_rows

    rows = stats_rows(repl.session.stats())
    if not rows:
        repl.say("no answers yet")
        return
    print_table(STATS_HEADERS, rows)


@command("help", "/help", "this list; @NAME TEXT sends one message to another model")
def _help(repl: Repl, arg: str) -> None:
    from ..ui.render import print_table

    print_table(["command", "what it does"], help_rows() + [["@NAME TEXT", "one turn on another model; the current model stays"],
                                                          ["Alt+Enter", "new line; Enter sends; Ctrl-C stops an answer; Ctrl-D quits"]])


@command("exit", "/exit", "quit", aliases=("quit", "q"))
def _exit(repl: Repl, arg: str) -> None:
    repl.running = False
