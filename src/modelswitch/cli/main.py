"""Typer app: parses options, builds objects, calls in. Thin by design; heavy imports are lazy."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated, Optional

import typer

from .. import __version__
from ..errors import StdoutError
from .keys import app as keys_app
from .local import app as local_app
from .sessions import app as sessions_app
from .util import StdStreams, exit_interrupted, run_guarded

app = typer.Typer(
    add_completion=True,  # --install-completion, --show-completion (Typer's; shells from $SHELL)
    pretty_exceptions_enable=False,
    no_args_is_help=False,
    rich_markup_mode=None,
    help="One conversation, many models. Run with no command to start chatting.",
    context_settings={"help_option_names": ["-h", "--help"]},
)
config_app = typer.Typer(help="Write, locate, show and check the config file.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(sessions_app, name="sessions")
app.add_typer(local_app, name="local")
app.add_typer(keys_app, name="keys")


class Globals:
    def __init__(self, config: str | None, color: bool, debug: bool) -> None:
        self.config = config
        self.color = color
        self.debug = debug


def _globals(ctx: typer.Context) -> Globals:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, Globals) else Globals(None, True, False)


def guarded(ctx: typer.Context, fn: Callable[[], int | None]) -> None:
    """Run a command: our errors become one line and an exit code, Ctrl-C 130 (SIGTERM 143...)."""
    run_guarded(fn, debug=_globals(ctx).debug)


def _version(value: bool) -> None:
    if value:
        print(f"modelswitch {__version__}")
        raise typer.Exit(0)


@app.callback(invoke_without_command=True)
def root(
    ctx: typer.Context,
    config: Annotated[Optional[str], typer.Option("--config", help="Config file (env MODELSWITCH_CONFIG).")] = None,
    no_color: Annotated[bool, typer.Option("--no-color", help="No colours (also NO_COLOR).")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and request logs (keys redacted).")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")] = False,
    # Bare `modelswitch` is `chat` (README, DESIGN), so it takes chat's options too.
    model: Annotated[Optional[str], typer.Option("-m", "--model", help="chat: alias or provider/model-id.")] = None,
    system: Annotated[Optional[str], typer.Option("--system", "-s", help="chat: system prompt.")] = None,
    cont: Annotated[bool, typer.Option("-c", "--continue", help="chat: continue the most recent session.")] = False,
    session: Annotated[Optional[str], typer.Option("--session", help="chat: continue (or create) a named session.")] = None,
) -> None:
    import os

    if no_color:
        os.environ["NO_COLOR"] = "1"  # prompt_toolkit and every console honour it, child editors too
    ctx.obj = Globals(config, color=not no_color and not os.environ.get("NO_COLOR"), debug=debug)
    chat_options = model is not None or system is not None or cont or session is not None
    if ctx.invoked_subcommand is None:
        chat(ctx, model=model, system=system, cont=cont, session=session)
    elif chat_options:  # `modelswitch -m r1 ask hi` would silently ask the default model
        from ..errors import UsageError

        def refuse() -> None:
            raise UsageError(f"-m, --system, -c and --session before a command are chat's; "
                             f"put them after '{ctx.invoked_subcommand}'")

        guarded(ctx, refuse)


ReasoningOpt = Annotated[
    Optional[str],
    typer.Option("--reasoning", help="show | hide | stderr (default: shown in a terminal, hidden when piped)."),
]


@app.command()
def ask(
    ctx: typer.Context,
    prompt: Annotated[Optional[list[str]], typer.Argument(help="The prompt; piped stdin is added before it.")] = None,
    model: Annotated[Optional[str], typer.Option("-m", "--model", help="Alias or provider/model-id.")] = None,
    system: Annotated[Optional[str], typer.Option("--system", "-s", help="System prompt.")] = None,
    reasoning: ReasoningOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object at the end.")] = False,
    jsonl: Annotated[bool, typer.Option("--jsonl", help="Print one JSON event per line as it streams.")] = False,
    no_fallback: Annotated[bool, typer.Option("--no-fallback", help="Do not try the model's fallbacks.")] = False,
    cont: Annotated[bool, typer.Option("-c", "--continue", help="Continue the most recent session.")] = False,
    session: Annotated[Optional[str], typer.Option("--session", help="Continue (or create) a named session.")] = None,
    search: Annotated[Optional[bool], typer.Option(
        "--search/--no-search", help="Let the provider search the web and cite its sources (default: the model's `search`).",
    )] = None,
    files: Annotated[Optional[list[str]], typer.Option(
        "-f", "--file", help="Attach a file, image, directory, http(s) URL or '!command' (repeatable).")] = None,
    run_commands: Annotated[bool, typer.Option("--run", help="Allow -f '!command' to run the command.")] = False,
    tools: Annotated[bool, typer.Option("-T", "--tools", help="Offer the tools of the configured MCP servers.")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="With --tools: run every tool call without asking.")] = False,
) -> None:
    """Ask one question and stream the answer (pipes cleanly)."""
    g = _globals(ctx)

    def run() -> int:
        from .ask import AskOptions, run_ask

        return run_ask(
            AskOptions(
                prompt=" ".join(prompt or []), model=model, system=system, reasoning=reasoning,
                json=json_out, jsonl=jsonl, fallback=not no_fallback, cont=cont, session=session,
                config_path=g.config, color=g.color, debug=g.debug, search=search,
                files=tuple(files or ()), run_commands=run_commands, tools=tools, yes=yes,
            )
        )

    guarded(ctx, run)


@app.command()
def chat(
    ctx: typer.Context,
    model: Annotated[Optional[str], typer.Option("-m", "--model", help="Alias or provider/model-id.")] = None,
    system: Annotated[Optional[str], typer.Option("--system", "-s", help="System prompt.")] = None,
    cont: Annotated[bool, typer.Option("-c", "--continue", help="Continue the most recent session.")] = False,
    session: Annotated[Optional[str], typer.Option("--session", help="Continue (or create) a named session.")] = None,
) -> None:
    """Chat in the terminal (the default command). Reads one message per line when piped."""
    g = _globals(ctx)

    def run() -> int:
        from ..repl.loop import ChatOptions, run_chat

        return run_chat(
            ChatOptions(model=model, system=system, cont=cont, session=session, config_path=g.config, color=g.color,
                        debug=g.debug)
        )

    guarded(ctx, run)


@app.command()
def models(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable list.")] = False,
) -> None:
    """Every model: alias, provider, reasoning, whether its key is present, price."""
    g = _globals(ctx)

    def run() -> int:
        from .models import show_models

        return show_models(g.config, json_out=json_out)

    guarded(ctx, run)


@app.command()
def compare(
    ctx: typer.Context,
    prompt: Annotated[Optional[list[str]], typer.Argument(help="The prompt; piped stdin is added before it.")] = None,
    model: Annotated[Optional[list[str]], typer.Option("-m", "--model", help="A model to compare (give 2 or more).")] = None,
    system: Annotated[Optional[str], typer.Option("--system", "-s", help="System prompt.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help='Print {"results": [...]} at the end.')] = False,
    tools: Annotated[bool, typer.Option("-T", "--tools", help="Offer the tools of the configured MCP servers.")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="With --tools: run every tool call without asking.")] = False,
    search: Annotated[Optional[bool], typer.Option("--search/--no-search", help="Search the web with each provider's own search (as ask --search).")] = None,
) -> None:
    """The same prompt to several models at once: tokens, cost and speed side by side."""
    g = _globals(ctx)

    def run() -> int:
        from .compare import run_compare_cli

        return run_compare_cli(g.config, model or [], " ".join(prompt or []), system=system,
                               json_out=json_out, color=g.color, debug=g.debug, tools=tools, yes=yes,
                               search=search)

    guarded(ctx, run)


@app.command()
def arena(
    ctx: typer.Context,
    prompt: Annotated[Optional[list[str]], typer.Argument(help="The prompt; piped stdin is added before it.")] = None,
    model: Annotated[Optional[list[str]], typer.Option("-m", "--model", help="A model in the arena (give 2 or more).")] = None,
    system: Annotated[Optional[str], typer.Option("--system", "-s", help="System prompt.")] = None,
    tag: Annotated[Optional[str], typer.Option("--tag", help="Tag the vote (the leaderboard can show one tag).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help='Print {"results": [...]} at the end (no vote).')] = False,
) -> None:
    """A blind comparison: numbered answers in random order, your vote, then the names."""
    g = _globals(ctx)

    def run() -> int:
        from .compare import run_arena_cli

        return run_arena_cli(g.config, model or [], " ".join(prompt or []), system=system, tag=tag,
                             json_out=json_out, color=g.color, debug=g.debug)

    guarded(ctx, run)


@app.command()
def stats(
    ctx: typer.Context,
    days: Annotated[Optional[int], typer.Option("--days", help="Only the last N days.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable figures.")] = False,
) -> None:
    """How each model served you: answers, time to first token, speed, errors, fallbacks, cost."""

    def run() -> int:
        from .stats import run_stats

        return run_stats(days, json_out=json_out)

    guarded(ctx, run)


@app.command()
def leaderboard(
    ctx: typer.Context,
    tag: Annotated[Optional[str], typer.Option("--tag", help="Only the votes with this tag.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable ratings.")] = False,
) -> None:
    """Your own ratings from blind-arena votes (Bradley-Terry, with 95% intervals)."""

    def run() -> int:
        from .stats import run_leaderboard

        return run_leaderboard(tag, json_out=json_out)

    guarded(ctx, run)


@config_app.command("init")
def config_init(
    ctx: typer.Context, force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False
) -> None:
    """Write a starter config.toml (never overwrites without --force)."""
    from .config import init

    guarded(ctx, lambda: init(_globals(ctx).config, force=force))


@config_app.command("path")
def config_path(ctx: typer.Context) -> None:
    """Print where the config file is read from."""
    from .config import path

    guarded(ctx, lambda: path(_globals(ctx).config))


@config_app.command("show")
def config_show(ctx: typer.Context) -> None:
    """Print the config file with keys redacted, and what it resolves to."""
    from .config import show

    guarded(ctx, lambda: show(_globals(ctx).config))


@config_app.command("validate")
def config_validate(ctx: typer.Context) -> None:
    """Check the config file; points at the bad key or line (exit 2)."""
    from .config import validate

    guarded(ctx, lambda: validate(_globals(ctx).config))


def main() -> None:
    """Console-script entry point."""
    from ..interrupts import install

    install()  # SIGTERM and SIGHUP stop an answer as Ctrl-C does: partial kept, terminal restored
    streams = StdStreams()
    code: int | str | None = 0
    try:
        app()  # standalone: always ends in SystemExit
    except SystemExit as exc:
        code = exc.code
    except KeyboardInterrupt as exc:  # before a command body runs (run_guarded handles the rest)
        code = exit_interrupted(exc)
    except StdoutError:
        code = 1  # outside a command (--help): finish() says what was lost
    sys.exit(streams.finish(code))
