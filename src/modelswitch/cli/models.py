"""`modelswitch models`: the engine's catalog as a table, or JSON."""

from __future__ import annotations

import json
import sys

from ..engine.catalog import TABLE_HEADERS, all_models, as_json, is_default, TABLE_FOLD, TABLE_SHORT_KEY_NOTE, short_key, table_notes, table_rows
from ..engine.choice import load_config
from ..ui.render import print_info, print_table


def show_models(config_path: str | None, *, json_out: bool) -> int:
    config = load_config(config_path)
    models = all_models(config)
    if json_out:
        sys.stdout.write(json.dumps({"models": as_json(config, models)}, ensure_ascii=False, indent=1) + "\n")
        return 0
    from ..store.db import Store
    from ..store.export import HEALTH_COLUMNS, health_columns

    health = health_columns(Store.recent_health(by_alias=True), [(m.alias, m.full_id) for _, m in models])
    rows = [row + cells for row, cells in zip(table_rows(models, lambda m: is_default(config, m)), health)]
    headers = TABLE_HEADERS + HEALTH_COLUMNS
    # The health columns stay out until there is some health to show, and move to a table of
    # their own in a terminal too narrow for them beside the ids.
    health_at = range(len(TABLE_HEADERS), len(headers))
    print_table(headers, rows, fold=TABLE_FOLD, slash=(1,), optional=health_at, hide_blank=health_at,
                terse={4: short_key}, terse_note=TABLE_SHORT_KEY_NOTE)
    for note in table_notes(models):
        print_info(note, style="dim")
    local = [p for p in config.providers.values() if p.local]
    if local:
        print_info(
            "local servers: " + ", ".join(f"{p.name} ({p.base_url})" for p in local)
            + " — name any of their models as provider/model", style="dim",
        )
    return 0
