"""`modelswitch sessions list|show|tree|export|import|rename|delete`, a Typer sub-app cli.py mounts.

Importing this module must stay cheap (it is loaded for every `modelswitch --help`): the store,
the formatters and rich are imported inside the commands.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from .util import run_guarded

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..store.db import SessionSummary, Store, Turn

app = typer.Typer(
    help="List, show, export, import, rename and delete saved chat sessions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="Session name, or #id as `sessions list` shows.")]


class Format(str, Enum):
    md = "md"
    json = "json"


def _run(fn: Callable[[], int | None]) -> None:
    run_guarded(fn)


def _open() -> Store:
    from ..store.db import Store

    return Store.open()


def _stdin_is_tty() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


@app.command("list")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array of sessions.")] = False,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many, most recent first.")] = 50,
) -> None:
    """Recent sessions: name, turns, models used, last update, cost."""

    def run() -> None:
        from ..ui.render import print_info, print_table
        from ..store.export import costs_text, local, turns_cell

        with _open() as store:
            items = store.list(limit)
        if as_json:
            import json

            typer.echo(json.dumps([_summary_json(i) for i in items], ensure_ascii=False, indent=2))
        elif not items:
            print_info("no saved sessions yet")
        else:
            print_table(
                ["session", "turns", "models", "updated", "cost"],
                [[i.info.label, turns_cell(i.turns, i.alternates), ", ".join(m.name for m in i.models) or "-",
                  local(i.info.updated), costs_text(i.costs)] for i in items],
            )

    _run(run)


def _summary_json(i: SessionSummary) -> dict[str, object]:
    return {
        "id": i.info.id, "name": i.info.name, "turns": i.turns, "alternates": i.alternates,
        "models": [{"alias": m.alias, "model": m.full_id} for m in i.models],
        "created": i.info.created.isoformat(), "updated": i.info.updated.isoformat(),
        "usage": {"input_tokens": i.usage.input_tokens, "output_tokens": i.usage.output_tokens,
                  "reasoning_tokens": i.usage.reasoning_tokens, "cached_tokens": i.usage.cached_tokens},
        "cost": [{"amount": c.amount, "currency": c.currency} for c in i.costs],
    }


@app.command()
def show(
    name: Annotated[Optional[str], typer.Argument(
        metavar="[NAME]", help="Session name, or #id as `sessions list` shows; default: the most recent.")] = None,
    reasoning: Annotated[bool, typer.Option("--reasoning", help="Include each answer's reasoning.")] = False,
    stats: Annotated[bool, typer.Option("--stats", help="Per-model totals instead of the turns.")] = False,
) -> None:
    """Every turn with the model that wrote it."""

    def run() -> None:
        from ..errors import UsageError
        from ..ui.render import print_markdown
        from ..store.export import to_markdown

        with _open() as store:
            ref: str | int | None = name
            if ref is None:  # as `chat -c`: the most recent one
                latest = store.latest()
                if latest is None:
                    raise UsageError("no saved sessions yet: `sessions show N` takes N from `sessions list`")
                ref = latest.id
            info, turns = store.transcript(ref)
        if stats:
            _print_stats(info.label, turns)
        else:
            print_markdown(to_markdown(info, turns, reasoning=reasoning, details=True))

    _run(run)


def _print_stats(label: str, turns: Sequence[Turn]) -> None:
    from ..ui.render import print_info, print_table
    from ..store.export import STATS_HEADERS, model_stats, stats_rows

    per_model, total = model_stats(turns)
    print_info(f"{label}: {total.turns} answers from {len(per_model)} models")
    if per_model:
        print_table(STATS_HEADERS, stats_rows(turns))


@app.command()
def export(
    name: NameArg,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="md reads well; json round-trips.")] = Format.md,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
    reasoning: Annotated[bool, typer.Option("--reasoning", help="Markdown: include reasoning.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
) -> None:
    """Markdown to read or share, or JSON that `sessions import` reads back."""
    if as_json:
        fmt = Format.json

    def run() -> None:
        from ..store.export import to_json, to_markdown, turn_count

        with _open() as store:
            info, turns = store.transcript(name)
        if fmt is Format.json:
            import json

            from ..safetext import json_escaped

            text = json_escaped(json.dumps(to_json(info, turns), ensure_ascii=False, indent=2)) + "\n"
        else:
            text = to_markdown(info, turns, reasoning=reasoning)
        if output is None:
            if fmt is Format.md and sys.stdout.isatty():
                from ..safetext import visible

                text = visible(text)  # to read, not to keep: a file or a pipe gets the bytes as saved
            sys.stdout.write(text)
            sys.stdout.flush()
            return
        _write_private(output, text)
        from ..ui.render import print_info

        print_info(f"exported {info.label} ({turn_count(turns)}) to {output}", out=sys.stderr)

    _run(run)


def _write_private(path: Path, text: str) -> None:
    """Whole or not at all, and 0600 like the database it came from."""
    from ..errors import UsageError

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None


@app.command("import")
def import_(
    file: Annotated[str, typer.Argument(metavar="FILE", help="A `sessions export --format json` file, or - for stdin.")],
    name: Annotated[Optional[str], typer.Option("--name", help="Save under this name instead.")] = None,
) -> None:
    """Read a JSON export back in as a new session."""

    def run() -> None:
        import json

        from ..errors import UsageError
        from ..ui.render import print_info
        from ..store.export import from_json, turn_count

        try:
            text = sys.stdin.read() if file == "-" else Path(file).read_text("utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read {file}: {getattr(exc, 'strerror', None) or exc}") from None
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{file}: not JSON (line {exc.lineno}, column {exc.colno})") from None
        except RecursionError:
            raise UsageError(f"{file}: nested too deeply to be a session export") from None
        except ValueError:  # the only other one: an integer of more than 4300 digits
            raise UsageError(f"{file}: not a modelswitch session export: a number with too many digits") from None
        info, turns = from_json(doc)
        from ..engine.choice import remember_keys

        remember_keys()
        with _open() as store:
            try:
                made = store.import_session(info, turns, name=name)
            except UsageError as exc:
                if "already exists" not in exc.message:
                    raise
                raise UsageError(f"{exc.message}: import it under another name with "
                                 f"`modelswitch sessions import {file} --name NEW`") from None
        print_info(f"imported {made.label} ({turn_count(turns)})")

    _run(run)


@app.command()
def tree(name: NameArg) -> None:
    """The branches of a session (made by /fork and /edit N), from its root; /load opens any."""

    def run() -> None:
        from ..store.export import local
        from ..ui.render import print_info

        with _open() as store:
            target = store.get(name)
            family = store.tree(target.id)
        for depth, info, turns in family:
            lead = "   " * (depth - 1) + "└─ " if depth else ""
            fork = f" · from turn {info.fork_at} of its parent" if info.parent is not None else ""
            here = "  ◀" if info.id == target.id else ""
            print_info(f"{lead}{info.label} · {turns} turns{fork} · {local(info.updated)}{here}")

    _run(run)


@app.command()
def rename(
    old: Annotated[str, typer.Argument(metavar="OLD", help="Current name, or #id.")],
    new: Annotated[str, typer.Argument(metavar="NEW", help="The new name.")],
) -> None:
    """Give a session a new name."""

    def run() -> None:
        from ..ui.render import print_info

        with _open() as store:
            info = store.rename(old, new)
        print_info(f"renamed to {info.label}")

    _run(run)


@app.command()
def delete(
    name: NameArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a session and all its turns (asks first unless --yes)."""

    def run() -> int:
        from ..errors import UsageError
        from ..ui.render import print_info

        with _open() as store:
            info, turns = store.transcript(name)
            if not yes:
                if not _stdin_is_tty():
                    raise UsageError(f"not deleting {info.label} without --yes (stdin is not a terminal)")
                if not typer.confirm(f"Delete session {info.label} ({len(turns)} turns)?", default=False):
                    print_info("not deleted")
                    return 0
            store.delete(info.id)
        print_info(f"deleted {info.label}")
        return 0

    _run(run)
