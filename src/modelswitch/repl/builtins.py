"""The REPL's slash commands, declared into BUILTINS; the REPL registers them with commands.py, which
dispatches, helps and completes."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from typing import TYPE_CHECKING

from .commands import Command, declare, help_rows
from ..errors import UsageError
from ..vocab import REASONING_VIEWS, SETTINGS

if TYPE_CHECKING:
    from ..engine.session import ChatSession
    from .commands import Repl

BUILTINS: list[Command] = []
command = declare(BUILTINS)


@command("model", "/model [NAME]", "switch model (history goes along); bare: show the current one",
         aliases=("m",), args="model")
def _model(repl: Repl, arg: str) -> None:
    s = repl.session
    if not arg:
        repl.say(f"{s.model.name} ({s.model.full_id}); context {s.fit().meter()}")
        return
    from .window import make_room

    spec = s.resolve(arg)
    if not make_room(repl, spec, lambda conv: s.fit(spec, conversation=conv), verb="switch"):
        repl.say(f"staying on {s.model.name}", "dim")
        return
    repl.say(s.switch(arg), "green")
    offer_search_tool(repl)


@command("models", "/models", "list every model and whether its key is set")
def _models(repl: Repl, arg: str) -> None:
    from ..engine.catalog import TABLE_HEADERS, all_models, TABLE_FOLD, TABLE_SHORT_KEY_NOTE, short_key, table_notes, table_rows
    from ..ui.render import print_table

    from ..store.db import Store
    from ..store.export import HEALTH_COLUMNS, health_columns

    current = repl.session.model
    models = all_models(repl.session.config)
    health = health_columns(Store.recent_health(by_alias=True), [(m.alias, m.full_id) for _, m in models])
    rows = [row + cells for row, cells in zip(table_rows(models, lambda m: m == current), health)]
    headers = TABLE_HEADERS + HEALTH_COLUMNS
    # The health columns stay out until there is some health to show, and move to a table of
    # their own in a terminal too narrow for them beside the ids.
    health_at = range(len(TABLE_HEADERS), len(headers))
    print_table(headers, rows, fold=TABLE_FOLD, slash=(1,), optional=health_at, hide_blank=health_at,
                terse={4: short_key}, terse_note=TABLE_SHORT_KEY_NOTE)
    for note in table_notes(models):
        repl.say(note, "dim")


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


@command("search", "/search on|off", "let the provider search the web and cite its sources; bare: show the setting",
         args="text")
def _search(repl: Repl, arg: str) -> None:
    s = repl.session
    word = arg.strip().lower()
    if word not in ("on", "off"):
        if word:
            raise UsageError(f"/search takes on or off, not {arg.strip()[:40]!r}")
        repl.say(f"web search is {'on' if s.searching else 'off'} (/search on|off)")
        return
    said = s.set_search(word == "on")
    if not offer_search_tool(repl):  # its question says "cannot search" itself: once is enough
        repl.say(said, "dim")


def offer_search_tool(repl: Repl) -> bool:
    """Search is on for a model that cannot search: the MCP tool the config names as a web search
    is offered instead, once a session. Yes turns its server and the tool on; each call of it
    is still approved (y/n/a) unless the server trusts it. True when the offer was made."""
    from ..engine.catalog import can_search, mcp_search_tool
    from ..engine.mcpclient import McpToolbox

    s = repl.session
    found = mcp_search_tool(s.config)
    box = s.toolbox
    if (found is None or not isinstance(box, McpToolbox) or not s.searching or s.search_tool or s.search_offered
            or can_search(s.config, s.model)):
        return False
    s.search_offered = True
    server, tool = found
    if not repl.confirm(f"{s.model.name} cannot search the web itself; use the MCP tool {server}.{tool} instead?"):
        # A no (or Ctrl-C) still leaves search on: say so, or it looks like nothing happened.
        repl.say(f"not taken; search stays on ({s.model.name} cannot search; /search off turns it off)", "dim")
        return True
    try:
        taken = s.take_search_tool()
    except UsageError as exc:
        repl.say(exc.message, "yellow")
        return True
    repl.say(f"{s.model.name} is offered {taken} to search the web; each call asks y/n/a unless trusted", "green")
    return True


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


@command("undo", "/undo", "forget the last question and answer (right after /compact or /trim: undo that)")
def _undo(repl: Repl, arg: str) -> None:
    restored = repl.session.undo_replacement()
    if restored is not None:
        repl.say(restored, "dim")
        return
    user = repl.session.pop_last_exchange()
    preview = user.text.strip().splitlines()[0][:60] if user.text.strip() else ""
    repl.say(f"undone: {preview!r}", "dim")


@command("clear", "/clear", "start a new conversation (the old one stays saved)")
def _clear(repl: Repl, arg: str) -> None:
    # A comparison still open (answers awaiting /keep, or models awaiting the next message) ends
    # with the conversation it belonged to: /keep after /clear has nothing to put anywhere.
    ended = repl.session.held is not None or bool(repl.pending_compare) or repl.pending_arena is not None
    repl.session.clear()
    repl.pending_compare = ()
    repl.pending_arena = None
    repl.say("new conversation" + ("; the comparison is closed" if ended else ""), "dim")


@command("history", "/history", "every turn so far, with the model that wrote it and its tokens "
         "(~: estimated for the current model)")
def _history(repl: Repl, arg: str) -> None:
    from ..ui.base import result_line

    s = repl.session
    if not s.conversation.messages:
        repl.say("no turns yet" + _aside(s))
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
        # A turn that stopped at its tool calls has no final text: what it said before them.
        text = " ".join((m.text or next((r.text for r in reversed(m.rounds) if r.text.strip()), "")).split())
        text = text or ("(tool calls, no text)" if m.rounds else "")
        n, reported = s.meter.counted(m, s.model)
        size = f"{n:,} tokens" if reported else f"~{n:,} tokens"
        repl.say(f"{i:>3}. {who}{flag}: {text[:200]}{'…' if len(text) > 200 else ''}  ({size})")
        for call, result in ((c, r) for rnd in m.rounds for c, r in zip(rnd.calls, rnd.results)):
            repl.say(f"       {result_line(call, result)}", "dim")
        for a in m.attachments:
            repl.say(f"       + {a.summary}", "dim")


def _aside(s: ChatSession) -> str:
    """What a chat with no turns has all the same: compared answers awaiting /keep, or answers
    on record that were never kept (a resumed chat that only compared)."""
    from ..store.export import aside_count

    if s.held is not None:
        return f"; {len(s.held[1])} compared answers await /keep"
    aside = len(s.stats())  # no turns: every answer paid for was set aside
    where = " (`modelswitch sessions show` lists them)" if s.log is not None and s.log.session_id else ""
    return f"; {aside_count(aside)}{where}" if aside else ""


@command("set", "/set KEY VALUE", "temperature, max_tokens or reasoning for this chat", args="setting")
def _set(repl: Repl, arg: str) -> None:
    key, _, value = arg.partition(" ")
    if not key or not value.strip():
        raise UsageError(f"usage: /set {'|'.join(SETTINGS)} VALUE")
    repl.say(repl.session.set(key, value.strip()), "dim")


@command("file", "/file PATH…", "attach files, images, directories, URLs or !command output to your next message",
         args="path")
def _file(repl: Repl, arg: str) -> None:
    if not arg:
        raise UsageError("usage: /file PATH… (a file, image, directory, http(s) URL, or !command)")
    if arg.startswith("!"):
        sources = [arg]  # the rest of the line is the command, spaces and pipes included
    elif os.path.exists(os.path.expanduser(arg)):
        sources = [arg]  # one path with spaces in it, typed without quotes
    else:
        try:
            sources = shlex.split(arg)
        except ValueError:
            sources = [arg]
    for source in sources:
        repl.say(repl.session.attach(source, confirm=lambda cmd: repl.confirm(
            f"run `{cmd}` in {os.getcwd()} and attach its output?")), "dim")


@command("edit", "/edit [N]", "write the next message in $EDITOR; /edit N: edit your turn N "
         "(see /history) and ask again from there, as a new branch")
def _edit(repl: Repl, arg: str) -> None:
    if arg.strip().isdigit():
        _edit_turn(repl, int(arg.strip()))
        return
    text = _in_editor(arg)
    if not text:
        repl.say("empty message; nothing sent", "dim")
        return
    repl.send(text)


def _edit_turn(repl: Repl, n: int) -> None:
    """Edit an earlier question in $EDITOR; the chat branches before it and asks the new text."""
    s = repl.session
    msgs = s.conversation.messages
    if not 1 <= n <= len(msgs) or msgs[n - 1].role != "user":
        users = [str(i) for i, m in enumerate(msgs, 1) if m.role == "user"]
        raise UsageError(f"turn {n} is not one of your messages (yours: {', '.join(users) or 'none yet'})")
    text = _in_editor(msgs[n - 1].text)
    if not text:
        repl.say("empty message; nothing changed", "dim")
        return
    repl.say(s.fork(n - 1), "green")
    repl.send(text)


def _in_editor(initial: str) -> str:
    """The text the user saved in $VISUAL/$EDITOR, starting from `initial`; "" if empty."""
    if not sys.stdin.isatty():
        # A piped chat has no terminal for the editor: it would hang or read the pipe's lines.
        raise UsageError("/edit needs a terminal (stdin is not one); type the message instead")
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    with tempfile.NamedTemporaryFile("w+", suffix=".md", delete=False, encoding="utf-8") as f:
        f.write(initial)
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
    return text


@command("fork", "/fork [N] [NAME]", "branch this chat at turn N (default: now) into a new saved session, "
         "and go on there; the original stays")
def _fork(repl: Repl, arg: str) -> None:
    s = repl.session
    words = arg.split(maxsplit=1)
    at = len(s.conversation.messages)
    if words and words[0].isdigit():
        at = int(words.pop(0))
    repl.say(s.fork(at, words[0].strip() if words else None), "green")


@command("compact", "/compact [MODEL]", "replace the older turns by a summary (default: the cheapest "
         "configured model writes it); /undo restores them", args="model")
def _compact(repl: Repl, arg: str) -> None:
    from .window import compact

    s = repl.session
    compact(repl, s.resolve(arg) if arg else s.summariser())


@command("trim", "/trim N", "keep the system prompt and the last N exchanges; /undo restores the rest")
def _trim(repl: Repl, arg: str) -> None:
    if not arg.strip().isdigit():
        raise UsageError("usage: /trim N (the number of recent exchanges to keep)")
    keep = int(arg)
    dropped = repl.session.trim_to(keep)
    repl.say(f"dropped {dropped} turns; now {repl.session.fit().meter()}" if dropped
             else "nothing to trim", "dim")


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
    from ..store.export import local, turns_cell

    log = repl.session.log
    if log is None:
        raise UsageError("sessions are not available (see the warning at start-up)")
    items = log.store.list(limit=20)
    if not items:
        repl.say("no saved sessions yet")
        return
    print_table(
        ["session", "turns", "models", "updated"],
        [[i.info.label, turns_cell(i.turns, i.alternates), ", ".join(m.name for m in i.models), local(i.info.updated)]
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


@command("arena", "/arena [--tag T] A B [...] [PROMPT]",
         "a blind /compare: numbered answers in random order; /vote picks the best", args="model",
         verbatim=True)
def _arena(repl: Repl, arg: str) -> None:
    from .compare import parse_arena_args, run_arena

    arena, prompt = parse_arena_args(repl, arg)
    if prompt:
        run_arena(repl, arena, prompt)
        return
    repl.pending_arena = arena
    repl.say(f"your next message goes blind to {len(arena.lanes)} models", "dim")


@command("vote", "/vote N|tie|none", "after /arena: your verdict; names are revealed, the winner kept")
def _vote(repl: Repl, arg: str) -> None:
    from ..ui.base import footer_text

    verdict = repl.session.vote(arg)
    for i, (spec, message, cost) in enumerate(verdict.lanes, 1):
        mark = "★ " if verdict.vote.winner == spec.name else "  "
        repl.say(f"{mark}{i} was {footer_text(message, cost)}", "green" if mark.strip() else None)
        if message.error:
            repl.say(f"    error: {message.error}", "red")
    if verdict.kept is not None:
        repl.say(f"kept the answer from {verdict.vote.winner}", "green")
    else:
        repl.say(f"recorded a {verdict.vote.outcome}; /keep N still puts one answer into the conversation", "dim")
    if not verdict.saved:
        repl.say("the vote could not be saved (sessions are unavailable)", "yellow")


@command("leaderboard", "/leaderboard [TAG]", "your ratings from /arena votes (Bradley-Terry, 95% intervals)")
def _leaderboard(repl: Repl, arg: str) -> None:
    from ..engine.ratings import LEADERBOARD_HEADERS, leaderboard, leaderboard_rows
    from ..ui.render import print_table

    log = repl.session.log
    if log is None:
        raise UsageError("votes are not available (see the warning at start-up)")
    standings = leaderboard(log.store.votes(arg or None))
    if not standings:
        repl.say("no votes yet" + (f" tagged '{arg}'" if arg else "") + " — try /arena A B, then /vote")
        return
    print_table(LEADERBOARD_HEADERS, leaderboard_rows(standings))


@command("keep", "/keep N|MODEL", "put one compared answer into the conversation")
def _keep(repl: Repl, arg: str) -> None:
    from ..conversation import CALL_CANCELLED, CALL_NOT_STARTED

    if not arg:
        raise UsageError("usage: /keep N (or /keep MODEL)")
    chosen = repl.session.keep(arg)
    said = f"kept the answer from {chosen.model.name if chosen.model else arg}"
    if not chosen.text:  # a lane stopped in its tool round: say what goes into the conversation
        results = [r for rnd in chosen.rounds for r in rnd.results]
        n, cut = len(results), sum(r.content in (CALL_CANCELLED, CALL_NOT_STARTED) for r in results)
        said += (f": no text, only its tool call{'s' if n != 1 else ''}"
                 + (f" ({cut} cancelled)" if cut else "") + "; your next message goes on from there")
    repl.say(said, "green")


@command("cost", "/cost", "tokens, cost and speed of this chat, per model")
def _cost(repl: Repl, arg: str) -> None:
    from ..ui.render import print_table
    from ..store.export import STATS_HEADERS, stats_rows

    rows = stats_rows(repl.session.stats())
    if not rows:
        repl.say("no answers yet")
        return
    print_table(STATS_HEADERS, rows)


TOOLS_USAGE = ("/tools lists the MCP servers and tools; /tools on|off NAME: NAME is a server or a tool "
               "(server.tool); /tools on|off alone: every tool, this session")


@command("tools", "/tools [on|off [NAME]]", "MCP servers and their tools; turn a server or a tool (server.tool) "
         "on or off; without NAME: every tool, this session", args="text")
def _tools(repl: Repl, arg: str) -> None:
    from ..engine.mcpclient import McpToolbox

    box = repl.session.toolbox
    if not isinstance(box, McpToolbox):
        repl.say("no MCP servers configured: add an [mcp.NAME] table (command = [...] or url = ...) to the config")
        return
    words = arg.split()
    if words and words[0] in ("on", "off") and len(words) <= 2:
        on = words[0] == "on"
        if len(words) == 1:
            repl.say(box.set_all(on), "green")
            return
        try:
            repl.say(box.set_enabled(words[1], on), "green")
        except KeyError:
            raise UsageError(f"no MCP server or tool named {words[1]!r} ({box.names()})") from None
        if on and box.paused:
            repl.say("every tool is still off this session: /tools on turns every tool back on", "yellow")
        return
    if words:
        raise UsageError(f"{TOOLS_USAGE} ({box.names()})")
    if box.paused:
        repl.say("every tool is off this session (/tools on turns every tool back on)", "yellow")
    searches = {m.name: m.search for m in repl.session.config.mcp}
    statuses = box.status()
    for status in statuses:
        why = f": {status.error}" if status.error else ""
        fix = f" — /tools on {status.name} restarts it" if status.state == "failed" else ""
        repl.say(f"{status.name} ({status.state}{why}){fix}", "bold")
        for name, enabled in status.tools:
            marks = [] if enabled else ["off"]
            if name in status.trust:
                marks.append("trusted")
            if searches.get(status.name) == name:
                marks.append("web search")
            elif "search" in name.lower() and not searches.get(status.name):
                # Only a suggestion: a name is no proof, so the config must say it.
                marks.append(f'a web search? search = "{name}" in [mcp.{status.name}] offers it to models that cannot')
            if name in repl.session.always:
                marks.append("always this session")
            repl.say(f"  {name}" + (f" ({', '.join(marks)})" if marks else ""))
    if any(status.tools for status in statuses):
        repl.say("/tools off server.tool turns one tool off, /tools off server a server, /tools off every tool", "dim")
    if repl.session.tools_refused():
        from ..engine.catalog import no_tools_line

        repl.say(no_tools_line(repl.session.model), "yellow")


@command("help", "/help", "this list; @NAME TEXT sends one message to another model")
def _help(repl: Repl, arg: str) -> None:
    from ..ui.render import print_table

    print_table(["command", "what it does"], help_rows() + [["@NAME TEXT", "one turn on another model; the current model stays"],
                                                          ["Alt+Enter", "new line; Enter sends; Ctrl-C stops an answer; Ctrl-D quits"],
                                                          ["y / n / a", "a tool call's question: run it, do not, always this tool "
                                                           "this session; Ctrl-C cancels a running tool"]])


@command("exit", "/exit", "quit", aliases=("quit", "q"))
def _exit(repl: Repl, arg: str) -> None:
    repl.running = False
