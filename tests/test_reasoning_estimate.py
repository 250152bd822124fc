"""A reasoning-token count modelswitch estimated from the text (Usage.reasoning_estimated) stays
marked as an estimate: in `ask --json`, in the store across a reload, in exports, and as `~` in
`/cost` and `sessions show --stats`, so it is never mistaken for the provider's count."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from modelswitch.cli.main import app
from modelswitch.config.pricing import Cost
from modelswitch.conversation import Message, ModelRef
from modelswitch.events import Usage
from modelswitch.store import db as store_db
from modelswitch.store.db import SCHEMA_VERSION, Store, Turn
from modelswitch.store.export import from_json, stats_rows, to_json
from tests.loopback import LoopbackServer
from tests.validators import FakeOllama

QWEN = ModelRef("ol", "qwen3:8b", "ollama", "qwen")
R1 = ModelRef("deepseek", "deepseek-reasoner", "openai", "r1")


def test_ask_json_and_sessions_show_stats_mark_an_estimated_reasoning_count(server: LoopbackServer,
                                                                             tmp_path: Path) -> None:
    """Ollama streams thinking without counting it apart: the count is estimated, and says so."""
    fake = FakeOllama()
    server.default = fake
    config = tmp_path / "ms.toml"
    config.write_text(f"""
default = "qwen"
[providers.ol]
type = "ollama"
base_url = "{server.url}"
retries = 0
[providers.ol.models.qwen]
id = "qwen3:8b"
reasoning = true
""", "utf-8")
    result = CliRunner().invoke(app, ["--config", str(config), "ask", "--json", "--session", "est", "why?"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    usage = json.loads(result.stdout)["usage"]
    assert usage["reasoning_tokens"] > 0 and usage["reasoning_tokens_estimated"] is True
    shown = CliRunner().invoke(app, ["--config", str(config), "sessions", "show", "est", "--stats"],
                               catch_exceptions=False)
    assert shown.exit_code == 0, shown.output
    assert f"~{usage['reasoning_tokens']}" in shown.stdout  # read back from the file, still marked


def test_an_older_database_gains_the_mark_and_keeps_its_counts_as_counted(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        for step in range(1, SCHEMA_VERSION):
            for statement in store_db._MIGRATIONS[step]:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION - 1}")
        conn.execute("INSERT INTO sessions (name, created, updated) VALUES ('old', '2026-01-01T00:00:00+00:00', "
                     "'2026-01-01T00:00:00+00:00')")
        conn.execute("INSERT INTO turns (session, idx, role, text, status, created) VALUES "
                     "(1, 0, 'user', 'q', 'complete', '2026-01-01T00:00:00+00:00')")
        conn.execute("INSERT INTO turns (session, idx, role, text, model_id, provider, protocol, model_alias, status,"
                     " input_tokens, output_tokens, reasoning_tokens, cached_tokens, created) VALUES"
                     " (1, 1, 'assistant', 'a', 'deepseek-reasoner', 'deepseek', 'openai', 'r1', 'complete',"
                     " 10, 20, 5, 0, '2026-01-01T00:00:01+00:00')")
    with Store.open(path) as s:
        _, turns = s.transcript("old")
        assert turns[1].message.usage == Usage(10, 20, 5)  # the provider's count, as before
        assert stats_rows(turns)[0][4] == "5"
        guessed = Usage(30, 40, 25, reasoning_estimated=True)
        s.append(1, Message("user", "again"), Turn(Message("assistant", "b", model=QWEN, usage=guessed)))
    with Store.open(path) as s:
        info, turns = s.transcript("old")
        assert turns[-1].message.usage == guessed
        rows = stats_rows(turns)
        assert [r[4] for r in rows] == ["5", "~25", "~30"]  # per model, then the total (partly estimated)
        doc = json.loads(json.dumps(to_json(info, turns)))
        assert doc["turns"][-1]["usage"]["reasoning_tokens_estimated"] is True
        assert doc["turns"][1]["usage"]["reasoning_tokens_estimated"] is False
        _, back = from_json(doc)
        assert back[-1].message.usage == guessed and back[1].message.usage == Usage(10, 20, 5)


def test_an_export_from_before_the_mark_imports_as_counted(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as s:
        sid = s.create_session(name="x").id
        s.append(sid, Message("user", "q"), Turn(Message("assistant", "a", model=R1, usage=Usage(1, 2, 1)), Cost(0.1, "USD")))
        info, turns = s.transcript("x")
    doc = json.loads(json.dumps(to_json(info, turns)))
    del doc["turns"][1]["usage"]["reasoning_tokens_estimated"]
    _, back = from_json(doc)
    assert back[1].message.usage == Usage(1, 2, 1)
