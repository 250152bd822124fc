"""Sessions and their turns in SQLite: the only module that speaks SQL.

One file, `$XDG_DATA_HOME/modelswitch/modelswitch.db` (mode 0600), in WAL mode so readers never
block the writer and two terminals can append at once. Every write is one IMMEDIATE transaction:
an exchange lands whole or not at all, and a turn's index is allocated under the write lock, so
concurrent appends to one session never collide. A database that is corrupt or from a newer
modelswitch raises StoreError and is never written to, "repaired" or replaced.
"""

from __future__ import annotations

import builtins
import json
import math
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from .. import paths
from ..conversation import Attachment, Conversation, Message, ModelRef
from ..errors import StoreError, UsageError
from ..events import Usage
from ..config.pricing import Cost
from .records import (
    SESSION_COLUMNS, TURN_COLUMNS, VOTE_OUTCOMES, AttachmentRow, ModelHealth, SessionInfo,
    SessionNotFoundError, SessionSummary, Turn, Vote, attachment_rows, check_name, iso, now_iso,
    redacted, row_attachment, row_session, row_turn, turn_row, with_attachments,
)

__all__ = [
    "SCHEMA_VERSION", "ModelHealth", "SessionInfo", "SessionNotFoundError", "SessionSummary", "Store", "Turn",
    "Vote", "check_name", "default_path",
]

SCHEMA_VERSION = 8
BUSY_TIMEOUT_S = 10.0
DB_NAME = "modelswitch.db"

# Forward migrations: _MIGRATIONS[v] takes a database from version v-1 to v. Never edit a step
# that has shipped; add the next one.
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE sessions (
            id      INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: '#7' always means one chat
            name    TEXT UNIQUE,
            created TEXT NOT NULL,
            updated TEXT NOT NULL,
            model   TEXT,
            system  TEXT
        )""",
        "CREATE INDEX sessions_by_updated ON sessions (updated)",
        """CREATE TABLE turns (
            session INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
            idx     INTEGER NOT NULL,
            role    TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
            text    TEXT NOT NULL,
            reasoning TEXT NOT NULL DEFAULT '',
            model_alias TEXT, model_id TEXT, provider TEXT, protocol TEXT,
            status  TEXT NOT NULL CHECK (status IN ('complete', 'interrupted', 'error')),
            input_tokens INTEGER, output_tokens INTEGER, reasoning_tokens INTEGER, cached_tokens INTEGER,
            cost_amount REAL, cost_currency TEXT,
            ttft_s REAL, total_s REAL, tokens_per_s REAL,
            finish_reason TEXT, fallback_from TEXT, error TEXT,
            replay  TEXT NOT NULL DEFAULT '[]',          -- JSON list of events.ReplayState
            alternate INTEGER NOT NULL DEFAULT 0,        -- a compare answer not kept, an undone turn
            created TEXT NOT NULL,
            PRIMARY KEY (session, idx)
        )""",
    ),
    # Cache writes (Anthropic), priced above input: the usage a stored cost was derived from.
    2: (
        "ALTER TABLE turns ADD COLUMN cache_write_tokens INTEGER",
        "ALTER TABLE turns ADD COLUMN cache_write_1h_tokens INTEGER",
    ),
    # The sources of a searched answer (JSON list of events.Citation). A column of its own, not
    # inside `replay`: replay is provider state sent back to one model only, sources go to all.
    3: (
        "ALTER TABLE turns ADD COLUMN citations TEXT NOT NULL DEFAULT '[]'",
    ),
    # Attachments: each distinct content stored once (by sha256), named per turn. A screenshot
    # attached in three sessions, or a file kept across a retry, is one row in `blobs`.
    4: (
        """CREATE TABLE blobs (
            digest  TEXT PRIMARY KEY,                  -- sha256 of data, hex
            media_type TEXT NOT NULL,
            data    BLOB NOT NULL
        )""",
        """CREATE TABLE turn_attachments (
            session  INTEGER NOT NULL,
            idx      INTEGER NOT NULL,
            position INTEGER NOT NULL,
            name     TEXT NOT NULL,
            kind     TEXT NOT NULL,
            note     TEXT NOT NULL DEFAULT '',
            digest   TEXT NOT NULL REFERENCES blobs (digest),
            PRIMARY KEY (session, idx, position),
            FOREIGN KEY (session, idx) REFERENCES turns (session, idx) ON DELETE CASCADE
        )""",
    ),
    # Branches (/fork, /edit N): the session a branch came from and the turn it forked at.
    # Existing sessions keep every row and become roots (NULL parent).
    5: (
        "ALTER TABLE sessions ADD COLUMN parent INTEGER REFERENCES sessions (id) ON DELETE SET NULL",
        "ALTER TABLE sessions ADD COLUMN fork_at INTEGER",
        "CREATE INDEX sessions_by_parent ON sessions (parent)",
    ),
    # Tool use: the rounds of calls and results (with approvals) before an answer's text, as JSON.
    6: (
        "ALTER TABLE turns ADD COLUMN tools TEXT NOT NULL DEFAULT '[]'",
    ),
    # Blind-arena votes (the leaderboard), and an index so `stats --days N` reads only its days.
    # A vote outlives its chat: deleting the session keeps the verdict, without the link.
    7: (
        """CREATE TABLE votes (
            id      INTEGER PRIMARY KEY AUTOINCREMENT,
            session INTEGER REFERENCES sessions (id) ON DELETE SET NULL,
            created TEXT NOT NULL,
            tag     TEXT,
            models  TEXT NOT NULL,                 -- JSON list of model names, in lane order
            outcome TEXT NOT NULL CHECK (outcome IN ('win', 'tie', 'none')),
            winner  TEXT
        )""",
        "CREATE INDEX votes_by_tag ON votes (tag)",
        "CREATE INDEX turns_by_created ON turns (created)",
    ),
    # reasoning_tokens estimated from the text (Usage.reasoning_estimated): a reloaded session
    # must still say `~`, not pass the guess off as the provider's count. Older rows: counted.
    8: (
        "ALTER TABLE turns ADD COLUMN reasoning_estimated INTEGER NOT NULL DEFAULT 0",
    ),
}
assert max(_MIGRATIONS) == SCHEMA_VERSION

_S = ", ".join(SESSION_COLUMNS)
_INSERT_TURN = (
    f"INSERT INTO turns (session, {', '.join(TURN_COLUMNS)})"
    f" VALUES ({', '.join('?' * (len(TURN_COLUMNS) + 1))})"
)


def default_path() -> Path:
    return paths.data_dir() / DB_NAME


def conversation_of(info: SessionInfo, kept: Sequence[Turn]) -> Conversation:
    return Conversation(system=info.system, messages=tuple(t.message for t in kept))


class Store:
    """A connection to the session database. Safe to share between threads of one process."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self._lock = threading.RLock()

    @classmethod
    def open(cls, path: Path | None = None) -> Store:
        """Open (creating if absent) and migrate the database; StoreError if it cannot be used."""
        path = path or default_path()
        try:
            _create_private(path)
        except OSError as exc:
            raise StoreError(f"cannot create session database {path}: {exc.strerror or exc}") from None
        try:
            conn = sqlite3.connect(
                str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise _store_error(path, exc) from None
        try:
            # Only reads until _check has passed: a file we cannot use must stay byte for byte.
            # One read transaction: another process creating the file at the same moment commits
            # its tables and their version together, and the check must not see one without the other.
            conn.execute("BEGIN")
            try:
                version = _check(conn, path)
            finally:
                conn.execute("COMMIT")
            _use_wal(conn)
            # FULL: a committed exchange survives power loss too, not only a killed process;
            # one fsync per exchange is nothing next to a model's answer.
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            if version < SCHEMA_VERSION:
                _migrate(conn, path)
            _restrict_mode(path)
        except sqlite3.Error as exc:
            conn.close()
            raise _store_error(path, exc) from None
        except BaseException:
            conn.close()
            raise
        return cls(conn, path)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- sessions ------------------------------------------------------------------------------

    def create_session(
        self, *, name: str | None = None, model: str | None = None, system: str | None = None
    ) -> SessionInfo:
        name = check_name(name) if name is not None else None
        with self._write() as conn:
            self._check_free(conn, name)
            return self._insert_session(conn, name, model, system)

    def find_or_create(self, name: str, *, model: str | None = None, system: str | None = None) -> SessionInfo:
        """The session named `name`, made now if there is none.

        Looked up and created under one write lock: two processes starting the same new
        `--session NAME` both end up in one session, not one of them unsaved.
        """
        name = check_name(name)
        with self._write() as conn:
            row = conn.execute(f"SELECT {_S} FROM sessions WHERE name = ?", (redacted(name),)).fetchone()
            if row is not None:
                return row_session(row)
            return self._insert_session(conn, name, model, system)

    def _insert_session(
        self, conn: sqlite3.Connection, name: str | None, model: str | None, system: str | None
    ) -> SessionInfo:
        now = now_iso()
        cur = conn.execute(
            "INSERT INTO sessions (name, created, updated, model, system) VALUES (?, ?, ?, ?, ?)",
            (redacted(name), now, now, redacted(model), redacted(system or None)),
        )
        return self._resolve(conn, cur.lastrowid or 0)

    def fork(self, ref: str | int, at: int, name: str | None = None) -> SessionInfo:
        """A new session (a branch of `ref`) holding copies of its first `at` kept turns.

        The original stays as it is; the branch records its parent and fork point.
        """
        name = check_name(name) if name is not None else None
        with self._write() as conn:
            self._check_free(conn, name)
            info = self._resolve(conn, ref)
            rows = conn.execute(
                f"SELECT {', '.join(TURN_COLUMNS)} FROM turns WHERE session = ? AND NOT alternate ORDER BY idx",
                (info.id,),
            ).fetchall()
            if not 0 <= at <= len(rows):
                raise UsageError(f"{info.label} has {len(rows)} turns; fork at 0-{len(rows)}")
            now = now_iso()
            cur = conn.execute(
                "INSERT INTO sessions (name, created, updated, model, system, parent, fork_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (redacted(name), now, now, info.model, info.system, info.id, at),
            )
            new_id = cur.lastrowid or 0
            conn.executemany(_INSERT_TURN, [(new_id, i, *row[1:]) for i, row in enumerate(rows[:at])])
            return self._resolve(conn, new_id)

    def tree(self, ref: str | int) -> builtins.list[tuple[int, SessionInfo, int]]:
        """The whole family of `ref` from its root: (depth, session, kept turns), parents first."""
        with self._read() as conn:
            info = self._resolve(conn, ref)
            seen = {info.id}
            while info.parent is not None:
                row = conn.execute(f"SELECT {_S} FROM sessions WHERE id = ?", (info.parent,)).fetchone()
                if row is None or row[0] in seen:  # a cycle cannot be made by us; stop rather than loop
                    break
                info = row_session(row)
                seen.add(info.id)
            out: builtins.list[tuple[int, SessionInfo, int]] = []
            stack = [(0, info)]
            visited: set[int] = set()
            while stack:
                depth, node = stack.pop()
                if node.id in visited:
                    continue
                visited.add(node.id)
                turns = conn.execute(
                    "SELECT count(*) FROM turns WHERE session = ? AND NOT alternate", (node.id,)
                ).fetchone()[0]
                out.append((depth, node, turns))
                kids = [row_session(r) for r in conn.execute(
                    f"SELECT {_S} FROM sessions WHERE parent = ? ORDER BY id DESC", (node.id,))]
                stack.extend((depth + 1, k) for k in kids)
        return out

    def find(self, name: str) -> SessionInfo | None:
        """The session with this name, or None."""
        with self._read() as conn:
            row = conn.execute(f"SELECT {_S} FROM sessions WHERE name = ?", (name.strip(),)).fetchone()
        return row_session(row) if row else None

    def get(self, ref: str | int) -> SessionInfo:
        """A session by name, id or `#id`; SessionNotFoundError if there is none."""
        with self._read() as conn:
            return self._resolve(conn, ref)

    def latest(self) -> SessionInfo | None:
        """The most recently updated session (what `chat -c` continues)."""
        with self._read() as conn:
            row = conn.execute(
                f"SELECT {_S} FROM sessions ORDER BY updated DESC, id DESC LIMIT 1"
            ).fetchone()
        return row_session(row) if row else None

    def names(self) -> builtins.list[str]:
        """Every session name, most recently used first (for Tab completion)."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT name FROM sessions WHERE name IS NOT NULL ORDER BY updated DESC, id DESC"
            ).fetchall()
        return [r[0] for r in rows]

    def set_name(self, session_id: int, name: str | None) -> SessionInfo:
        """Name (or, with None, unname) a session; UsageError if another session has that name."""
        name = check_name(name) if name is not None else None
        with self._write() as conn:
            self._check_free(conn, name, besides=session_id)
            self._update(conn, session_id, "name", redacted(name))
            return self._resolve(conn, session_id)

    def rename(self, old: str, new: str) -> SessionInfo:
        """Rename the session named (or numbered) `old`."""
        new = check_name(new)
        with self._write() as conn:
            session_id = self._resolve(conn, old).id
            self._check_free(conn, new, besides=session_id)
            self._update(conn, session_id, "name", redacted(new))
            return self._resolve(conn, session_id)

    def set_system(self, session_id: int, system: str | None) -> None:
        with self._write() as conn:
            self._update(conn, session_id, "system", redacted(system or None))

    def set_model(self, session_id: int, model: str | None) -> None:
        with self._write() as conn:
            self._update(conn, session_id, "model", redacted(model))

    def delete(self, ref: str | int) -> SessionInfo:
        """Delete a session and all its turns; returns what was deleted."""
        with self._write() as conn:
            info = self._resolve(conn, ref)
            conn.execute("DELETE FROM turn_attachments WHERE session = ?", (info.id,))
            conn.execute("DELETE FROM turns WHERE session = ?", (info.id,))
            conn.execute("DELETE FROM sessions WHERE id = ?", (info.id,))
            # Contents no other turn names go with the session: a deleted screenshot is gone.
            conn.execute("DELETE FROM blobs WHERE digest NOT IN (SELECT digest FROM turn_attachments)")
        return info

    # -- turns ---------------------------------------------------------------------------------

    def append(self, session_id: int, *turns: Turn | Message) -> tuple[int, ...]:
        """Write turns (typically one exchange) in one transaction; returns their indices."""
        # Redact and encode before taking the write lock: the other terminal waits less.
        now = now_iso()
        rows = [turn_row(t if isinstance(t, Turn) else Turn(t), now) for t in turns]
        attached = [attachment_rows(t.message if isinstance(t, Turn) else t) for t in turns]
        if not rows:
            return ()
        with self._write() as conn:
            self._update(conn, session_id, None)
            start: int = conn.execute(
                "SELECT coalesce(max(idx) + 1, 0) FROM turns WHERE session = ?", (session_id,)
            ).fetchone()[0]
            conn.executemany(_INSERT_TURN, [(session_id, start + i, *row) for i, row in enumerate(rows)])
            _write_attachments(conn, session_id, start, attached)
        return tuple(range(start, start + len(rows)))

    def set_alternate(self, session_id: int, idx: int, alternate: bool = True) -> None:
        """Mark a stored answer as not kept (a compare loser, a retried answer), or kept again."""
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE turns SET alternate = ? WHERE session = ? AND idx = ?",
                (int(alternate), session_id, idx),
            )
            if cur.rowcount == 0:
                raise UsageError(f"session #{session_id} has no turn {idx}")
            self._update(conn, session_id, None)

    def hide_turns(self, session_id: int, indices: Sequence[int]) -> tuple[int, ...]:
        """`/undo`, `/retry`: these turns become alternates, in one transaction; they stay on record.

        The caller names the turns: with two terminals on one session, "the last exchange" in
        the table may be the other terminal's. Returns the indices that were kept until now.
        """
        with self._write() as conn:
            hidden = [
                idx for idx in sorted(set(indices))
                if conn.execute(
                    "UPDATE turns SET alternate = 1 WHERE session = ? AND idx = ? AND NOT alternate",
                    (session_id, idx),
                ).rowcount
            ]
            self._update(conn, session_id, None)
        return tuple(hidden)

    def transcript(self, ref: str | int) -> tuple[SessionInfo, tuple[Turn, ...]]:
        """A session and every stored turn in order, alternates included."""
        with self._read() as conn:
            info = self._resolve(conn, ref)
            rows = conn.execute(
                f"SELECT {', '.join(TURN_COLUMNS)} FROM turns WHERE session = ? ORDER BY idx",
                (info.id,),
            ).fetchall()
            files = _read_attachments(conn, info.id)
        return info, tuple(with_attachments(row_turn(row), files.get(row[0], ())) for row in rows)

    def kept(self, ref: str | int) -> tuple[SessionInfo, tuple[Turn, ...]]:
        """A session and the turns that make its conversation (alternates left out), in order."""
        info, turns = self.transcript(ref)
        return info, tuple(t for t in turns if not t.alternate)

    def load(self, ref: str | int) -> tuple[SessionInfo, Conversation]:
        """A session as a Conversation to continue: the kept turns, with the session's system prompt."""
        info, turns = self.kept(ref)
        return info, conversation_of(info, turns)

    def import_session(
        self, info: SessionInfo, turns: Sequence[Turn], *, name: str | None = None
    ) -> SessionInfo:
        """Write an exported session back as a new session (new id), keeping its timestamps."""
        name = name if name is not None else info.name
        name = check_name(name) if name is not None else None
        rows = [turn_row(t, iso(t.created) if t.created else now_iso()) for t in turns]
        with self._write() as conn:
            self._check_free(conn, name)
            cur = conn.execute(
                "INSERT INTO sessions (name, created, updated, model, system) VALUES (?, ?, ?, ?, ?)",
                (redacted(name), iso(info.created), iso(info.updated), redacted(info.model),
                 redacted(info.system or None)),
            )
            session_id = cur.lastrowid or 0
            conn.executemany(_INSERT_TURN, [(session_id, i, *row) for i, row in enumerate(rows)])
            _write_attachments(conn, session_id, 0, [attachment_rows(t.message) for t in turns])
            return self._resolve(conn, session_id)

    def list(self, limit: int = 50) -> builtins.list[SessionSummary]:
        """The most recently updated sessions, newest first, with their totals."""
        with self._read() as conn:
            sessions = [
                row_session(r) for r in conn.execute(
                    f"SELECT {_S} FROM sessions ORDER BY updated DESC, id DESC LIMIT ?", (limit,)
                )
            ]
            ids = tuple(s.id for s in sessions)
            # One row per (session, model chosen, currency); folded into per-session totals below.
            # The alias is part of the choice: `sonnet` and `sonnet-think` share one model id.
            rows = conn.execute(
                "SELECT session, provider, model_id, protocol, model_alias, cost_currency,"
                " min(idx) AS first, sum(NOT alternate), sum(alternate AND role = 'assistant'), total(input_tokens), total(output_tokens),"
                " total(reasoning_tokens), total(cached_tokens), total(cost_amount) FROM turns"
                f" WHERE session IN ({', '.join('?' * len(ids))})"
                " GROUP BY session, provider, model_id, model_alias, cost_currency ORDER BY session, first",
                ids,
            ).fetchall()
        totals: dict[int, tuple[int, Usage, dict[ModelRef, None], dict[str, float]]] = {
            s.id: (0, Usage(), {}, {}) for s in sessions
        }
        aside: dict[int, int] = {}  # answers on record but not in the conversation
        for sid, provider, model_id, protocol, alias, currency, _, kept, alternates, *tokens, amount in rows:
            aside[sid] = aside.get(sid, 0) + int(alternates)
            n, usage, models, costs = totals[sid]
            if model_id is not None:
                models[ModelRef(provider, model_id, protocol or "", alias)] = None
            if currency:
                costs[currency] = costs.get(currency, 0.0) + amount
            inp, out, rsn, cached = (int(t) for t in tokens)  # named: Usage ends in a bool now
            totals[sid] = (n + int(kept), usage + Usage(inp, out, rsn, cached), models, costs)
        return [
            SessionSummary(
                s, totals[s.id][0], tuple(totals[s.id][2]), totals[s.id][1],
                tuple(Cost(round(a, 8), c) for c, a in sorted(totals[s.id][3].items())), aside.get(s.id, 0),
            )
            for s in sessions
        ]

    # -- votes and health ----------------------------------------------------------------------

    def add_vote(self, vote: Vote) -> None:
        """Record one arena verdict; UsageError for a verdict that does not fit its models."""
        if vote.outcome not in VOTE_OUTCOMES or len(vote.models) < 2:
            raise UsageError(f"a vote needs two or more models and one of {', '.join(VOTE_OUTCOMES)}")
        if (vote.outcome == "win") != (vote.winner is not None) or (
            vote.winner is not None and vote.winner not in vote.models
        ):
            raise UsageError("a winning vote names one of its models, a tie or none names none")
        models = json.dumps([redacted(m) for m in vote.models], ensure_ascii=False)
        with self._write() as conn:
            conn.execute(
                "INSERT INTO votes (session, created, tag, models, outcome, winner) VALUES (?, ?, ?, ?, ?, ?)",
                (vote.session, iso(vote.created) if vote.created else now_iso(), redacted(vote.tag),
                 models, vote.outcome, redacted(vote.winner)),
            )

    def votes(self, tag: str | None = None) -> builtins.list[Vote]:
        """Every vote (with `tag`, only those), oldest first."""
        sql = "SELECT models, outcome, winner, tag, session, created FROM votes"
        args: tuple[object, ...] = ()
        if tag is not None:
            sql, args = sql + " WHERE tag = ?", (tag,)
        with self._read() as conn:
            rows = conn.execute(sql + " ORDER BY id", args).fetchall()
        return [
            Vote(tuple(json.loads(models)), outcome, winner, t, session, datetime.fromisoformat(created))
            for models, outcome, winner, t, session, created in rows
        ]

    def health(self, since: datetime | None = None, *, by_alias: bool = False) -> builtins.list[ModelHealth]:
        """Per upstream model (provider/id), over every stored answer since `since`: counts,
        median and 95th-percentile time to first token, median tokens/s, cost per currency.
        `by_alias`: per model the user chose instead (the alias recorded with the answer and the
        id it named, else provider/id), as session stats group: `v3` and `r1` are one model id
        with thinking off and on, and each has its own figures (its one alias in `aliases`).

        All in SQL: percentiles by ranking each model's times with a window function and taking
        the nearest-rank row (the ceil(p·n)-th), so 50,000 turns never come into Python.
        """
        where = "role = 'assistant' AND model_id IS NOT NULL"
        args: tuple[object, ...] = ()
        if since is not None:
            where, args = where + " AND created >= ?", (iso(since),)
        key = "coalesce(provider, '') || '/' || model_id"
        if by_alias:  # the unit separator cannot be in an alias or an id; split again below
            key = f"coalesce(model_alias, '') || char(31) || {key}"
        with self._read() as conn:
            counts = conn.execute(
                f"SELECT {key} AS k, group_concat(DISTINCT model_alias), count(*),"
                " sum(status = 'error'), sum(status = 'interrupted'), sum(fallback_from IS NOT NULL),"
                f" total(output_tokens) FROM turns WHERE {where} GROUP BY k ORDER BY count(*) DESC, k",
                args,
            ).fetchall()
            ttft = self._percentiles(conn, key, "ttft_s", where, args, (0.5, 0.95))
            tps = self._percentiles(conn, key, "tokens_per_s", where, args, (0.5,))
            costs = conn.execute(
                f"SELECT {key} AS k, cost_currency, total(cost_amount) FROM turns"
                f" WHERE {where} AND cost_currency IS NOT NULL GROUP BY k, cost_currency ORDER BY k, cost_currency",
                args,
            ).fetchall()
            # A request that fell back is stored under the model that answered; fallback_from
            # holds the name it was asked by (an alias, or provider/id).
            fell = dict(conn.execute(
                f"SELECT fallback_from, count(*) FROM turns WHERE {where} AND fallback_from IS NOT NULL"
                " GROUP BY fallback_from", args,
            ).fetchall())
        by_cost: dict[str, builtins.list[Cost]] = {}
        for k, currency, amount in costs:
            by_cost.setdefault(k, []).append(Cost(round(amount, 8), currency))
        out = []
        for k, aliases, n, errs, stopped, fallbacks, out_tokens in counts:
            names = tuple(sorted(set((aliases or "").split(",")) - {""}))
            model = k.partition("\x1f")[2] if by_alias else k
            asked = (*names,) if by_alias and names else (model, *names)
            t = ttft.get(k, {})
            out.append(ModelHealth(
                model=model, aliases=names, answers=n, errors=int(errs), interrupted=int(stopped),
                fallbacks=int(fallbacks), fell_back=sum(fell.get(a, 0) for a in asked),
                ttft_median=t.get(0.5), ttft_p95=t.get(0.95), tokens_per_s=tps.get(k, {}).get(0.5),
                output_tokens=int(out_tokens), costs=tuple(by_cost.get(k, ())),
            ))
        return out

    @classmethod
    def recent_health(cls, days: int = 30, *, by_alias: bool = False) -> builtins.list[ModelHealth]:
        """`health` over the last days from the default database; empty if it cannot be read
        (a table of models must not fail because the history is unavailable)."""
        from datetime import UTC, timedelta

        if not default_path().exists():
            return []  # looking at models must not create the database
        try:
            with cls.open() as store:
                return store.health(datetime.now(UTC) - timedelta(days=days), by_alias=by_alias)
        except StoreError:
            return []

    @staticmethod
    def _percentiles(
        conn: sqlite3.Connection, key: str, column: str, where: str, args: tuple[object, ...],
        ps: tuple[float, ...],
    ) -> dict[str, dict[float, float]]:
        """{model: {p: value}} by nearest rank: the smallest value with at least p·n at or below it."""
        # ceil() without SQLite's optional math functions: the same double Python's ceil sees.
        picks = " OR ".join(
            f"rn = max(1, CAST({p} * n AS INTEGER) + ({p} * n > CAST({p} * n AS INTEGER)))" for p in ps
        )
        rows = conn.execute(
            f"SELECT k, rn, n, v FROM (SELECT {key} AS k, {column} AS v,"
            f" row_number() OVER (PARTITION BY {key} ORDER BY {column}) AS rn,"
            f" count(*) OVER (PARTITION BY {key}) AS n"
            f" FROM turns WHERE {where} AND {column} IS NOT NULL) WHERE {picks}",
            args,
        ).fetchall()
        found: dict[str, dict[float, float]] = {}
        for k, rn, n, v in rows:
            for p in ps:
                if rn == max(1, math.ceil(p * n)):
                    found.setdefault(k, {})[p] = v
        return found

    # -- plumbing ------------------------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot for a few SELECTs."""
        with self._lock, self._errors():
            self._conn.execute("BEGIN")
            try:
                yield self._conn
            finally:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock up front (waiting up to the busy timeout), so the
        # SELECT max(idx) and the INSERT that follows see no other writer in between.
        with self._lock, self._errors():
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise _store_error(self.path, exc) from None

    def _resolve(self, conn: sqlite3.Connection, ref: str | int) -> SessionInfo:
        row = None
        key = ref.strip() if isinstance(ref, str) else ref
        if isinstance(key, str):
            row = conn.execute(f"SELECT {_S} FROM sessions WHERE name = ?", (key,)).fetchone()
            if row is None and key.lstrip("#").isdigit():
                key = int(key.lstrip("#"))
        if row is None and isinstance(key, int):
            row = conn.execute(f"SELECT {_S} FROM sessions WHERE id = ?", (key,)).fetchone()
        if row is None:
            what = f"#{key}" if isinstance(key, int) else f"named '{key}'"
            raise SessionNotFoundError(f"no session {what} — see `modelswitch sessions list`")
        return row_session(row)

    def _update(
        self, conn: sqlite3.Connection, session_id: int, column: str | None, value: object = None
    ) -> None:
        """Touch `updated` (and set one column); SessionNotFoundError if the session is gone."""
        sql = f"UPDATE sessions SET updated = ?{f', {column} = ?' if column else ''} WHERE id = ?"
        args = (now_iso(), value, session_id) if column else (now_iso(), session_id)
        if conn.execute(sql, args).rowcount == 0:
            raise SessionNotFoundError(f"no session #{session_id} (deleted by another process?)")

    def _check_free(
        self, conn: sqlite3.Connection, name: str | None, besides: int | None = None
    ) -> None:
        if name is None:
            return
        row = conn.execute("SELECT id FROM sessions WHERE name = ?", (redacted(name),)).fetchone()
        if row and row[0] != besides:
            raise UsageError(f"a session named '{name}' already exists")


# -- opening -----------------------------------------------------------------------------------


def _write_attachments(conn: sqlite3.Connection, session_id: int, start: int,
                       per_turn: Sequence[Sequence[AttachmentRow]]) -> None:
    """Each turn's attachments, their contents written once (INSERT OR IGNORE by digest)."""
    for i, attached in enumerate(per_turn):
        for position, row in enumerate(attached):
            conn.execute("INSERT OR IGNORE INTO blobs (digest, media_type, data) VALUES (?, ?, ?)",
                         (row.digest, row.media_type, row.data))
            conn.execute(
                "INSERT INTO turn_attachments (session, idx, position, name, kind, note, digest)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (session_id, start + i, position, row.name, row.kind, row.note, row.digest),
            )


def _read_attachments(conn: sqlite3.Connection, session_id: int) -> dict[int, tuple[Attachment, ...]]:
    found: dict[int, list[Attachment]] = {}
    for idx, name, kind, note, media_type, data in conn.execute(
        "SELECT a.idx, a.name, a.kind, a.note, b.media_type, b.data FROM turn_attachments a"
        " JOIN blobs b ON b.digest = a.digest WHERE a.session = ? ORDER BY a.idx, a.position",
        (session_id,),
    ):
        found.setdefault(idx, []).append(row_attachment(name, kind, note, media_type, data))
    return {idx: tuple(a) for idx, a in found.items()}


def _create_private(path: Path) -> None:
    """Create the file 0600 ourselves: sqlite would create it with the umask's mode.

    SQLite gives the -wal and -shm files the main file's mode, so they stay private too.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def _restrict_mode(path: Path) -> None:
    """A database created by an older build or by hand may be world-readable; it holds chats."""
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            if p.stat().st_mode & 0o077:
                p.chmod(0o600)
        except FileNotFoundError:
            pass


def _use_wal(conn: sqlite3.Connection) -> None:
    """Switch a new file to WAL (it stays so: one switch per file, ever). The switch needs the file
    to itself, and SQLite answers BUSY at once instead of waiting when another process holds it
    (several first runs at the same moment): wait for it as for any other lock."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        try:
            conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorname", "") != "SQLITE_BUSY" or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _check(conn: sqlite3.Connection, path: Path) -> int:
    """Refuse a file we must not write to; its schema version if usable. Reads only."""
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"session database {path} is from a newer modelswitch (schema {version}, this one"
            f" knows up to {SCHEMA_VERSION}); upgrade modelswitch — the file was left untouched"
        )
    if version == 0 and tables - {"sqlite_sequence"}:
        raise StoreError(f"{path} is not a modelswitch session database; move it aside")
    if version > 0 and not {"sessions", "turns"} <= tables:
        raise StoreError(f"session database {path} is damaged (tables missing); move it aside")
    return version


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Read again under the write lock: another process may have migrated meanwhile.
        version: int = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            _check(conn, path)
        for step in range(version + 1, SCHEMA_VERSION + 1):
            for statement in _MIGRATIONS[step]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {step}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _store_error(path: Path, exc: sqlite3.Error) -> StoreError:
    """One line a person can act on, for any sqlite failure."""
    code = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc)
    if code.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")) or "malformed" in text or "not a database" in text:
        return StoreError(
            f"session database {path} is corrupt ({text}); it was left as is — move it aside to start afresh"
        )
    if code.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in text:
        return StoreError(
            f"session database {path} is locked by another process (waited {BUSY_TIMEOUT_S:.0f} s)"
        )
    if code.startswith("SQLITE_FULL"):
        return StoreError(f"session database {path}: the disk is full")
    return StoreError(f"session database {path}: {text}")
