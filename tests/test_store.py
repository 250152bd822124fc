"""The session store: round trips, atomic exchanges, concurrent writers, kill -9, refusals."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from modelswitch import redaction as secrets
from modelswitch.store import db as store
from modelswitch.conversation import Message, ModelRef, Timing
from modelswitch.errors import StoreError, UsageError
from modelswitch.events import ReplayState, Usage
from modelswitch.config.pricing import Cost
from modelswitch.store.db import SessionNotFoundError, Store, Turn

R1 = ModelRef("deepseek", "deepseek-reasoner", "openai", "r1")
OPUS = ModelRef("anthropic", "claude-opus-4-6", "anthropic", None)


def full_answer() -> Message:
    """An assistant message with every field set to something distinguishable."""
    return Message(
        role="assistant",
        text="The answer is 42.\n\n```py\nprint(42)\n```",
        reasoning="Let me think… 6×7.",
        model=OPUS,
        status="complete",
        replay=(
            ReplayState("anthropic", "claude-opus-4-6", '{"signature": "EqQBCkYIBxgCKkA+/="}'),
            ReplayState("gemini", "gemini-2.5-pro", '{"thoughtSignature": "CiQB0e2Kb"}'),
        ),
        usage=Usage(input_tokens=12, output_tokens=340, reasoning_tokens=210, cached_tokens=4),
        timing=Timing(ttft_s=0.41, total_s=6.2, tokens_per_s=58.1),
        finish_reason="stop",
        fallback_from="r1",
        error=None,
    )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "data" / "modelswitch" / "modelswitch.db"


@pytest.fixture
def st(db: Path) -> Iterator[Store]:
    s = Store.open(db)
    yield s
    s.close()


def all_bytes(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))


# -- round trips ---------------------------------------------------------------------------------


def test_default_path_is_under_xdg_data_home(isolated_env: Path) -> None:
    with Store.open() as s:
        assert s.path == isolated_env / "data" / "modelswitch" / "modelswitch.db"
        assert s.path.exists()


def test_round_trip_of_every_field(st: Store) -> None:
    info = st.create_session(name="work", model="r1", system="Be brief.")
    question = Message("user", "What is 6×7? 🤔")
    answer = full_answer()
    assert st.append(info.id, question, Turn(answer, cost=Cost(0.005488, "CNY"))) == (0, 1)

    loaded, conv = st.load("work")
    assert loaded.id == info.id and loaded.model == "r1" and loaded.system == "Be brief."
    assert conv.system == "Be brief."
    assert conv.messages == (question, answer)
    assert conv.messages[1].replay_for("anthropic", "claude-opus-4-6") == answer.replay[:1]

    _, turns = st.transcript(info.id)
    assert [t.idx for t in turns] == [0, 1]
    assert turns[1].cost == Cost(0.005488, "CNY") and turns[0].cost is None
    assert all(isinstance(t.created, datetime) and t.created.tzinfo for t in turns)
    assert st.load(f"#{info.id}")[1] == conv and st.load(str(info.id))[1] == conv


def test_interrupted_and_failed_answers_keep_partial_text_and_status(st: Store) -> None:
    sid = st.create_session().id
    partial = Message("assistant", "Once upon a ti", reasoning="a story…", model=R1,
                      status="interrupted", finish_reason=None)
    failed = Message("assistant", "", model=R1, status="error",
                     error="deepseek/deepseek-reasoner: stream dropped after 3 s")
    st.append(sid, Message("user", "tell a story"), partial)
    st.append(sid, Message("user", "again"), failed)
    _, conv = st.load(sid)
    assert conv.messages[1] == partial and conv.messages[1].status == "interrupted"
    assert conv.messages[3].status == "error" and conv.messages[3].error == failed.error
    # The partial answer is context (the user saw it); the failed exchange is history only.
    assert [m.text for m in conv.for_request()] == ["tell a story", "Once upon a ti"]


def test_alternates_are_kept_but_not_loaded_as_context(st: Store) -> None:
    sid = st.create_session(name="cmp").id
    a = Message("assistant", "A says", model=R1)
    b = Message("assistant", "B says", model=OPUS)
    idx = st.append(sid, Message("user", "q"), Turn(a, alternate=True), Turn(b, alternate=True))
    st.set_alternate(sid, idx[2], False)  # /keep 2
    assert [m.text for m in st.load(sid)[1].messages] == ["q", "B says"]
    assert [t.alternate for t in st.transcript(sid)[1]] == [False, True, False]
    with pytest.raises(UsageError):
        st.set_alternate(sid, 99)


def test_an_exchange_lands_whole_or_not_at_all(st: Store) -> None:
    sid = st.create_session().id
    bad = Message("system", "not a role we store")  # type: ignore[arg-type]
    with pytest.raises(StoreError):
        st.append(sid, Message("user", "lost with its answer"), bad)
    assert st.transcript(sid)[1] == ()
    assert st.append(sid, Message("user", "q")) == (0,)


def test_append_to_a_deleted_session_writes_nothing(st: Store) -> None:
    sid = st.create_session(name="gone").id
    st.delete("gone")
    with pytest.raises(SessionNotFoundError) as exc:
        st.append(sid, Message("user", "q"))
    assert exc.value.exit_code == 2


# -- sessions ------------------------------------------------------------------------------------


def test_names_find_latest_rename_delete(st: Store) -> None:
    assert st.latest() is None and st.names() == [] and st.list() == []
    a = st.create_session(name="alpha")
    b = st.create_session()
    assert st.latest() == b and b.label == f"#{b.id}"
    st.append(a.id, Message("user", "hi"))
    assert st.latest().id == a.id and st.names() == ["alpha"]
    assert st.find("alpha").id == a.id and st.find("nope") is None
    st.set_name(b.id, "beta")
    assert st.rename("alpha", "gamma").name == "gamma"
    assert set(st.names()) == {"gamma", "beta"}
    with pytest.raises(UsageError, match="already exists"):
        st.rename("gamma", "beta")
    with pytest.raises(UsageError, match="already exists"):
        st.create_session(name="beta")
    st.set_system(a.id, "terse")
    st.set_model(a.id, "hy")
    assert (st.get("gamma").system, st.get("gamma").model) == ("terse", "hy")
    assert st.delete("gamma").id == a.id
    with pytest.raises(SessionNotFoundError, match="no session named 'gamma'"):
        st.load("gamma")
    with pytest.raises(SessionNotFoundError, match="no session #999"):
        st.load(999)


@pytest.mark.parametrize("bad", ["", "   ", "12", "#3", "a\nb", "x" * 101])
def test_names_that_cannot_be_used(st: Store, bad: str) -> None:
    with pytest.raises(UsageError):
        st.create_session(name=bad)


def test_list_totals_tokens_cost_and_models(st: Store) -> None:
    sid = st.create_session(name="mix").id
    hy = ModelRef("hunyuan", "hunyuan-turbos-latest", "openai", "hy")
    st.append(sid, Message("user", "1"),
              Turn(Message("assistant", "a", model=R1, usage=Usage(10, 100, 50, 0)), Cost(0.5, "CNY")))
    st.append(sid, Message("user", "2"),
              Turn(Message("assistant", "b", model=OPUS, usage=Usage(20, 200, 0, 5)), Cost(0.25, "USD")))
    st.append(sid, Message("user", "3"),
              Turn(Message("assistant", "c", model=R1, usage=Usage(1, 1, 0, 0)), Cost(0.25, "CNY")),
              Turn(Message("assistant", "d", model=hy), alternate=True))
    other = st.create_session().id
    (mix, empty) = sorted(st.list(), key=lambda s: s.info.id)
    assert empty.info.id == other and empty.turns == 0 and empty.models == ()
    assert mix.turns == 6  # the alternate is not a turn of the conversation
    assert [m.name for m in mix.models] == ["r1", "anthropic/claude-opus-4-6", "hy"]
    assert mix.usage == Usage(31, 301, 50, 5)
    assert mix.costs == (Cost(0.75, "CNY"), Cost(0.25, "USD"))
    assert len(st.list(limit=1)) == 1


# -- the file ------------------------------------------------------------------------------------


def test_file_is_private_and_in_wal_mode(db: Path) -> None:
    with Store.open(db) as s:
        s.append(s.create_session().id, Message("user", "hi"))
        for p in db.parent.glob(db.name + "*"):
            assert p.stat().st_mode & 0o777 == 0o600, p
        raw = sqlite3.connect(db)
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION
        raw.close()


def test_a_world_readable_database_is_made_private(db: Path) -> None:
    Store.open(db).close()
    db.chmod(0o644)
    Store.open(db).close()
    assert db.stat().st_mode & 0o777 == 0o600


def test_opening_twice_migrates_once(db: Path) -> None:
    with Store.open(db) as s:
        s.create_session(name="kept")
    with Store.open(db) as s:
        assert s.names() == ["kept"]


def test_forward_migration_keeps_every_turn(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Store.open(db) as s:
        s.append(s.create_session(name="old").id, Message("user", "kept"), full_answer())
        before = s.transcript("old")
    step = ("ALTER TABLE sessions ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0",)
    monkeypatch.setattr(store, "_MIGRATIONS", {**store._MIGRATIONS, store.SCHEMA_VERSION + 1: step})
    monkeypatch.setattr(store, "SCHEMA_VERSION", store.SCHEMA_VERSION + 1)
    with Store.open(db) as s:
        assert s.transcript("old") == before
    raw = sqlite3.connect(db)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION
    assert raw.execute("SELECT pinned FROM sessions").fetchall() == [(0,)]
    raw.close()


def test_keys_never_reach_the_file(db: Path) -> None:
    resolved = secrets.remember("zq7-resolved-key-material-31337")
    shaped = "sk-live0123456789abcdefghij"  # key-shaped, but no key of ours: the user's own text
    leak = f"key {resolved} and {shaped}"
    with Store.open(db) as s:
        sid = s.create_session(name="leaky", model=leak, system=leak).id
        s.set_system(sid, "system " + leak)
        msg = Message(
            "assistant", leak, reasoning=leak, model=ModelRef("p", leak, "openai", leak),
            replay=(ReplayState("anthropic", "m", f'{{"sig": "{resolved}"}}'),
                    ReplayState("anthropic", "m", '{"sig": "clean"}')),
            finish_reason=leak, fallback_from=leak, error=leak, status="error",
        )
        s.append(sid, Message("user", leak), msg)
        _, conv = s.load(sid)
        # A state that would need masking is dropped whole rather than stored corrupted.
        assert [r.data for r in conv.messages[1].replay] == ['{"sig": "clean"}']
        assert conv.messages[0].text == f"key {secrets.mask(resolved)} and {shaped}"
        data = all_bytes(db)  # WAL and all, before any checkpoint
    data += all_bytes(db)
    assert resolved.encode() not in data
    assert "…1337".encode() in data  # the masked form is what was written


# -- refusals: corrupt, newer, foreign, locked ---------------------------------------------------


def assert_refused(db: Path, match: str) -> StoreError:
    before = db.read_bytes()
    siblings = sorted(p.name for p in db.parent.iterdir())
    with pytest.raises(StoreError, match=match) as exc:
        with Store.open(db) as s:
            s.list()
    assert "\n" not in str(exc.value)
    assert db.read_bytes() == before
    assert sorted(p.name for p in db.parent.iterdir()) == siblings
    return exc.value


def test_garbage_file_is_reported_and_left_untouched(db: Path) -> None:
    db.parent.mkdir(parents=True)
    db.write_bytes(b"this is not a database\n" * 300)
    err = assert_refused(db, "corrupt")
    assert str(db) in str(err) and err.exit_code == 1


def test_truncated_database_is_reported_and_left_untouched(db: Path) -> None:
    with Store.open(db) as s:
        sid = s.create_session(name="big").id
        for i in range(60):
            s.append(sid, Message("user", f"{i} " + "x" * 3000))
    raw = sqlite3.connect(db)
    raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw.close()
    for p in db.parent.glob(db.name + "-*"):
        p.unlink()
    db.write_bytes(db.read_bytes()[: db.stat().st_size // 2])
    assert_refused(db, "corrupt|malformed")


def test_newer_schema_is_reported_and_left_untouched(db: Path) -> None:
    db.parent.mkdir(parents=True)
    raw = sqlite3.connect(db)
    raw.execute("CREATE TABLE sessions (id INTEGER PRIMARY KEY, future TEXT)")
    raw.execute(f"PRAGMA user_version = {store.SCHEMA_VERSION + 1}")
    raw.commit()
    raw.close()
    assert_refused(db, "newer modelswitch")


def test_someone_elses_database_is_not_touched(db: Path) -> None:
    db.parent.mkdir(parents=True)
    raw = sqlite3.connect(db)
    raw.execute("CREATE TABLE accounts (id INTEGER)")
    raw.commit()
    raw.close()
    assert_refused(db, "not a modelswitch session database")


def test_a_write_lock_held_too_long_is_a_store_error(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "BUSY_TIMEOUT_S", 0.05)
    with Store.open(db) as s:
        sid = s.create_session().id
        other = sqlite3.connect(db, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StoreError, match="locked by another process"):
                s.append(sid, Message("user", "q"))
            assert s.load(sid)[1].messages == ()  # WAL: reading while another process writes
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert s.append(sid, Message("user", "q")) == (0,)


# -- other processes -----------------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from modelswitch.conversation import Message, ModelRef
    from modelswitch.store.db import Store

    db, sid, tag, count = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    model = ModelRef("deepseek", "deepseek-chat", "openai", "v3")
    with Store.open(db) as s:
        print("ready", flush=True)
        sys.stdin.readline()  # start together, so the writers really interleave
        i = 0
        while count < 0 or i < count:
            s.append(sid, Message("user", f"{tag} q{i}"), Message("assistant", f"{tag} a{i}", model=model))
            print(i, flush=True)  # printed only after the commit returned
            i += 1
            # A chat pauses between exchanges; without a pause the writer that got in first
            # would re-take the lock before sqlite's busy handler wakes the other one.
            time.sleep(0.002)
    """
)


def spawn(db: Path, sid: int, tag: str, count: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db), str(sid), tag, str(count)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def start(*procs: subprocess.Popen[str]) -> None:
    """Release writers once all of them have the database open."""
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready", p.stderr
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()


def finish(*procs: subprocess.Popen[str]) -> None:
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err


def check_exchanges(s: Store, sid: int, tags: dict[str, int]) -> None:
    """Indices 0..n-1, each question directly followed by its answer, each writer in order."""
    turns = s.transcript(sid)[1]
    assert [t.idx for t in turns] == list(range(2 * sum(tags.values())))
    seen: dict[str, list[int]] = {tag: [] for tag in tags}
    for q, a in zip(turns[::2], turns[1::2], strict=True):
        tag, n = q.message.text.split(" q")
        assert (q.message.role, a.message.role) == ("user", "assistant")
        assert a.message.text == f"{tag} a{n}" and a.message.model.alias == "v3"
        seen[tag].append(int(n))
    assert seen == {tag: list(range(n)) for tag, n in tags.items()}


def test_two_processes_appending_to_one_session_lose_nothing(st: Store) -> None:
    sid = st.create_session(name="shared").id
    procs = [spawn(st.path, sid, tag, 200) for tag in ("A", "B")]
    start(*procs)
    finish(*procs)
    check_exchanges(st, sid, {"A": 200, "B": 200})


def test_two_processes_appending_to_two_sessions_lose_nothing(st: Store) -> None:
    sids = {tag: st.create_session(name=tag).id for tag in ("A", "B")}
    procs = [spawn(st.path, sid, tag, 200) for tag, sid in sids.items()]
    start(*procs)
    finish(*procs)
    for tag, sid in sids.items():
        check_exchanges(st, sid, {tag: 200})


def test_kill_9_between_appends_keeps_every_committed_exchange(st: Store) -> None:
    sid = st.create_session(name="victim").id
    p = spawn(st.path, sid, "K", -1)
    start(p)
    assert p.stdout is not None
    committed = -1
    while committed < 30:
        committed = int(p.stdout.readline())
    p.send_signal(signal.SIGKILL)
    p.wait()
    with Store.open(st.path) as fresh:
        n = len(fresh.transcript(sid)[1]) // 2
        assert n >= committed + 1
        check_exchanges(fresh, sid, {"K": n})


STALLER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from modelswitch.conversation import Message
    from modelswitch.store.db import Store

    class StallAfterInsert:
        # Delegates to the real connection but freezes once the rows are inserted, before COMMIT.
        def __init__(self, conn):
            self._c = conn
        def __getattr__(self, name):
            return getattr(self._c, name)
        def executemany(self, sql, rows):
            result = self._c.executemany(sql, rows)
            print("mid-transaction", flush=True)
            time.sleep(600)
            return result

    s = Store.open(Path(sys.argv[1]))
    sid = int(sys.argv[2])
    for i in range(5):
        s.append(sid, Message("user", f"q{i}"), Message("assistant", f"a{i}"))
    s._conn = StallAfterInsert(s._conn)
    s.append(sid, Message("user", "in flight"), Message("assistant", "never committed"))
    """
)


def test_kill_9_mid_transaction_leaves_earlier_turns_intact(st: Store) -> None:
    sid = st.create_session(name="victim").id
    p = subprocess.Popen([sys.executable, "-c", STALLER, str(st.path), str(sid)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None
        assert p.stdout.readline().strip() == "mid-transaction", p.stderr.read() if p.stderr else ""
        # The writer holds the lock with rows inserted; a reader still sees the committed past.
        assert len(st.transcript(sid)[1]) == 10
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    with Store.open(st.path) as fresh:
        texts = [m.text for m in fresh.load(sid)[1].messages]
        assert texts == [t for i in range(5) for t in (f"q{i}", f"a{i}")]
        assert fresh.append(sid, Message("user", "after")) == (10,)


def test_timestamps_are_utc(st: Store) -> None:
    before = datetime.now(UTC)
    info = st.create_session()
    assert before <= info.created <= datetime.now(UTC)


def test_hide_turns_hides_exactly_the_named_turns(st: Store) -> None:
    sid = st.create_session().id
    st.append(sid, Message("user", "q1"), Message("assistant", "a1", model=R1))
    st.append(sid, Message("user", "q2"), Message("assistant", "a2", model=R1))
    assert st.hide_turns(sid, [0, 1]) == (0, 1)  # not the last two: the caller says which
    assert [m.text for m in st.load(sid)[1].messages] == ["q2", "a2"]
    assert [t.idx for t in st.kept(sid)[1]] == [2, 3]
    assert st.hide_turns(sid, [1, 3]) == (3,)  # 1 was already hidden
    assert st.hide_turns(sid, []) == ()
    assert len(st.transcript(sid)[1]) == 4  # all still on record


def test_a_schema_1_database_keeps_every_session_and_gains_cache_writes(db: Path) -> None:
    # A file exactly as the first released schema wrote it, with one exchange in it.
    db.parent.mkdir(parents=True)
    raw = sqlite3.connect(db)
    for statement in store._MIGRATIONS[1]:
        raw.execute(statement)
    raw.execute("INSERT INTO sessions (name, created, updated, model) VALUES ('v1', '2026-01-01T00:00:00+00:00',"
                " '2026-01-01T00:00:00+00:00', 'r1')")
    raw.execute("INSERT INTO turns (session, idx, role, text, status, created) VALUES"
                " (1, 0, 'user', 'old question', 'complete', '2026-01-01T00:00:00+00:00')")
    raw.execute("INSERT INTO turns (session, idx, role, text, model_id, provider, protocol, model_alias, status,"
                " input_tokens, output_tokens, reasoning_tokens, cached_tokens, cost_amount, cost_currency, created)"
                " VALUES (1, 1, 'assistant', 'old answer', 'deepseek-reasoner', 'deepseek', 'openai', 'r1',"
                " 'complete', 10, 20, 5, 2, 0.5, 'CNY', '2026-01-01T00:00:01+00:00')")
    raw.execute("PRAGMA user_version = 1")
    raw.commit()
    raw.close()
    with Store.open(db) as s:
        _, turns = s.transcript("v1")
        assert [t.message.text for t in turns] == ["old question", "old answer"]
        assert turns[1].message.usage == Usage(10, 20, 5, 2) and turns[1].cost == Cost(0.5, "CNY")
        # New answers keep what their cost was derived from, cache writes included.
        written = Message("assistant", "new", model=OPUS, usage=Usage(3100, 40, 0, 0, 2000, 1000))
        s.append(1, Message("user", "again"), Turn(written, Cost(0.0141, "USD")))
        assert s.transcript("v1")[1][-1].message.usage == Usage(3100, 40, 0, 0, 2000, 1000)


def test_cache_writes_survive_export_and_import(st: Store) -> None:
    from modelswitch.store.export import from_json, to_json

    sid = st.create_session(name="cached").id
    usage = Usage(3100, 40, 0, 100, cache_write_tokens=2000, cache_write_1h_tokens=1000)
    st.append(sid, Message("user", "q"), Turn(Message("assistant", "a", model=OPUS, usage=usage), Cost(0.01, "USD")))
    info, turns = from_json(to_json(*st.transcript("cached")))
    assert turns[1].message.usage == usage
    old = to_json(*st.transcript("cached"))
    for t in old["turns"]:
        if t["usage"]:
            del t["usage"]["cache_write_tokens"], t["usage"]["cache_write_1h_tokens"]
    assert from_json(old)[1][1].message.usage == Usage(3100, 40, 0, 100)  # an export from before


def test_processes_creating_the_database_at_once_all_open_it(tmp_path: Path) -> None:
    """Three `ask --session` runs on a new machine create the database at the same moment. One
    migrates while another checks the file: the check must see the file before or after the
    migration, never half of each (it said "not a modelswitch session database; move it aside"
    of a healthy file, and that chat was not saved). Separate connections race as processes do."""
    import threading

    failures: list[str] = []
    for round_ in range(200):
        path = tmp_path / f"race{round_}" / "sessions.db"
        barrier = threading.Barrier(6)

        def open_it() -> None:
            barrier.wait()
            try:
                Store.open(path).close()
            except StoreError as exc:
                failures.append(exc.message)

        threads = [threading.Thread(target=open_it) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert failures == []
