"""Votes in the session database: a new schema step that keeps every existing session."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from modelswitch.errors import UsageError
from modelswitch.store import db as store
from modelswitch.store.db import Store, Vote


def test_a_database_from_before_votes_keeps_its_sessions_and_takes_votes(tmp_path: Path) -> None:
    db = tmp_path / "modelswitch.db"
    raw = sqlite3.connect(db)
    for step in range(1, store.SCHEMA_VERSION):  # every step before the one that added votes
        for statement in store._MIGRATIONS[step]:
            raw.execute(statement)
    raw.execute("INSERT INTO sessions (name, created, updated) VALUES ('old', '2026-01-01T00:00:00+00:00',"
                " '2026-01-01T00:00:00+00:00')")
    raw.execute("INSERT INTO turns (session, idx, role, text, status, created) VALUES"
                " (1, 0, 'user', 'kept', 'complete', '2026-01-01T00:00:00+00:00')")
    raw.execute(f"PRAGMA user_version = {store.SCHEMA_VERSION - 1}")
    raw.commit()
    raw.close()
    with Store.open(db) as s:
        assert [t.message.text for t in s.transcript("old")[1]] == ["kept"]
        s.add_vote(Vote(("r1", "sonnet"), "win", "sonnet", tag="code", session=1))
        s.add_vote(Vote(("r1", "sonnet", "gpt"), "tie"))
        assert [(v.models, v.outcome, v.winner, v.tag, v.session) for v in s.votes()] == [
            (("r1", "sonnet"), "win", "sonnet", "code", 1), (("r1", "sonnet", "gpt"), "tie", None, None, None)]
        assert [v.tag for v in s.votes("code")] == ["code"]
        s.delete("old")  # the verdict outlives its chat
        assert [v.session for v in s.votes()] == [None, None]


@pytest.mark.parametrize("vote", [
    Vote(("r1",), "win", "r1"), Vote(("r1", "hy"), "win", None), Vote(("r1", "hy"), "win", "gpt"),
    Vote(("r1", "hy"), "tie", "r1"), Vote(("r1", "hy"), "maybe"),
])
def test_a_vote_that_does_not_fit_is_refused(tmp_path: Path, vote: Vote) -> None:
    with Store.open(tmp_path / "m.db") as s:
        with pytest.raises(UsageError):
            s.add_vote(vote)
        assert s.votes() == []
