"""`modelswitch stats` (how each model served, from the saved history) and `modelswitch leaderboard`
(the user's blind-arena votes as ratings). Both read the session database only: no config needed."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta

from .. import errors


def run_stats(days: int | None, *, json_out: bool) -> int:
    from ..store.db import Store
    from ..store.export import HEALTH_HEADERS, health_json, health_rows
    from ..ui.render import print_info, print_table

    if days is not None and days <= 0:
        raise errors.UsageError("--days must be 1 or more")
    since = datetime.now(UTC) - timedelta(days=days) if days is not None else None
    with Store.open() as store:
        rows = store.health(since)
    if json_out:
        doc = {"days": days, "models": [health_json(h) for h in rows]}
        sys.stdout.write(json.dumps(doc, ensure_ascii=False, indent=1) + "\n")
        return 0
    if not rows:
        print_info("no answers saved" + (f" in the last {days} days" if days else " yet"))
        return 0
    print_table(HEALTH_HEADERS, health_rows(rows))
    print_info("ttft: time to first token; errors: of its answers; fell back: of the requests to it, "
               "the share another model answered", style="dim")
    return 0


def run_leaderboard(tag: str | None, *, json_out: bool) -> int:
    from ..engine.ratings import LEADERBOARD_HEADERS, leaderboard, leaderboard_json, leaderboard_rows
    from ..store.db import Store
    from ..ui.render import print_info, print_table

    with Store.open() as store:
        votes = store.votes(tag)
    standings = leaderboard(votes)
    if json_out:
        doc = {"tag": tag, "votes": len(votes), "method": "bradley-terry (MM), 95% CI from Fisher information",
               "models": leaderboard_json(standings)}
        sys.stdout.write(json.dumps(doc, ensure_ascii=False, indent=1) + "\n")
        return 0
    if not standings:
        print_info("no votes yet" + (f" tagged '{tag}'" if tag else "") + " — run /arena A B in a chat, then /vote")
        return 0
    print_table(LEADERBOARD_HEADERS, leaderboard_rows(standings))
    print_info(f"{len(votes)} vote{'s' if len(votes) != 1 else ''}{f' tagged {tag!r}' if tag else ''}; "
               "Bradley-Terry ratings (Elo scale), 95% intervals from the Fisher information", style="dim")
    return 0
