"""The context window: the meter, the presets' figures, the check before a request, compaction,
trimming and branches — against loopback providers with tiny windows that answer as the real
ones do when a request is too long."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelswitch import errors
from modelswitch.cli.main import app
from modelswitch.config.load import ModelSpec, build, load_presets
from modelswitch.conversation import Conversation, Message, ModelRef
from modelswitch.engine.context import Fit, Meter, estimate_text, short, trim
from modelswitch.events import Usage
from modelswitch.store import db as store_db
from modelswitch.store.db import SCHEMA_VERSION, Store
from tests.loopback import LoopbackServer, Reply

PRESETS = Path(__file__).parents[1] / "src" / "modelswitch" / "config" / "presets.toml"

# -- the meter --------------------------------------------------------------------------------


def test_estimate_is_script_aware() -> None:
    assert estimate_text("") == 0
    assert estimate_text("a" * 400) == 100  # Latin: four characters a token
    assert estimate_text("你好世界" * 25) == 100  # CJK: a token a character
    assert estimate_text("日本語" + "x" * 8) == 3 + 2


def test_meter_is_calibrated_by_the_last_reported_input_tokens() -> None:
    spec = ModelSpec("p", "m", alias="m", context_window=64000)
    ref = ModelRef("p", "m", "openai", "m")
    sent = Conversation().add(Message("user", "x" * 4000))  # estimate: 1000 + 4
    answer = Message("assistant", "ok", model=ref, usage=Usage(input_tokens=2008, output_tokens=1))
    meter = Meter()
    before = meter.size(sent, spec)
    meter.calibrate("p/m", sent, answer)
    assert meter.size(sent, spec) == pytest.approx(2 * before, rel=0.01)
    # Another model's count is not changed by this one's usage.
    other = ModelSpec("q", "n", alias="n")
    assert Meter().size(sent, other) == meter.size(sent, other)


def test_meter_uses_reported_output_tokens_for_answers_of_that_model() -> None:
    spec = ModelSpec("p", "m", alias="m")
    ref = ModelRef("p", "m", "openai", "m")
    conv = Conversation().add(Message("user", "hi")).add(
        Message("assistant", "short text", model=ref, usage=Usage(input_tokens=5, output_tokens=900, reasoning_tokens=400)))
    # 500 answer tokens reported (reasoning is not sent back) + 4, and the question's estimate.
    assert Meter().size(conv, spec) == (1 + 4) + (500 + 4)


def test_learn_calibrates_from_a_stored_conversation() -> None:
    ref = ModelRef("p", "m", "openai", "m")
    conv = Conversation().add(Message("user", "x" * 400)).add(
        Message("assistant", "y", model=ref, usage=Usage(input_tokens=312, output_tokens=1)))
    assert Meter().learn(conv).factors["p/m"] == pytest.approx(312 / 104)


def test_the_toolbar_meter_reads_like_12_3k_of_64k() -> None:
    assert Fit(12300, 0, 64000, "v3").meter() == "12.3k/64k"
    assert Fit(812, 0, None, "x").meter() == "812 tokens"
    assert short(1048576) == "1M" and short(200000) == "200k" and short(65536) == "65.5k"


def test_trim_keeps_the_system_prompt_and_the_last_exchanges() -> None:
    conv = Conversation("be brief")
    for i in range(4):
        conv = conv.add(Message("user", f"q{i}")).add(Message("assistant", f"a{i}"))
    kept = trim(conv, 2)
    assert kept.system == "be brief"
    assert [m.text for m in kept.messages] == ["q2", "a2", "q3", "a3"]


# -- the presets' figures ---------------------------------------------------------------------


def test_every_preset_window_has_its_date_and_source() -> None:
    lines = [ln for ln in PRESETS.read_text("utf-8").splitlines() if ln.startswith("context_window")]
    assert len(lines) >= 10
    for ln in lines:
        assert re.search(r"# .*\d{4}-\d\d-\d\d.*(https?://|\.com/|#\d+)", ln), ln
    config = build({}, Path("x.toml"), presets=load_presets())
    windows = {m.name: m.context_window for m in config.models()}
    assert windows["v3"] == windows["ds-pro"] == 1000000 and windows["haiku"] == 200000 and windows["gemini-pro"] == 1048576


def test_compact_at_is_validated(tmp_path: Path) -> None:
    assert build({"compact_at": 0.8}, tmp_path / "c.toml").compact_at == 0.8
    with pytest.raises(errors.ConfigError, match="compact_at"):
        build({"compact_at": 1.5}, tmp_path / "c.toml")
    with pytest.raises(errors.ConfigError, match="compact_at"):
        build({"compact_at": True}, tmp_path / "c.toml")


# -- loopback providers with tiny windows -----------------------------------------------------

WINDOW = 300  # tokens, as the fake providers count them


def _count(body: dict) -> int:
    """The fake provider's tokenizer: four characters of every string in the request a token."""
    def strings(x: object) -> int:
        if isinstance(x, str):
            return len(x)
        if isinstance(x, dict):
            return sum(strings(v) for k, v in x.items() if k != "model")
        if isinstance(x, list):
            return sum(strings(v) for v in x)
        return 0
    return strings(body) // 4


def too_long(path: str, n: int) -> Reply:
    """Each vendor's own answer to a prompt over the window, as recorded in public reports:
    OpenAI-compatible (pkdone/paul-genai-test-tools-ts openai-error-patterns.ts, Groq's body in
    vasistacv/Omnimind_AI), Anthropic (anthropics/claude-code#12186), Gemini (the Vertex/Gemini
    message in pkdone/paul-genai-test-tools-ts, in the envelope of fixtures/gemini_404_not_found.json)."""
    if "/oa/" in path:
        return Reply.json(400, {"error": {
            "message": f"This model's maximum context length is {WINDOW} tokens. However, your messages resulted "
                       f"in {n} tokens. Please reduce the length of the messages.",
            "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}})
    if "/anth/" in path:
        return Reply.json(400, {"type": "error", "error": {
            "type": "invalid_request_error", "message": f"prompt is too long: {n} tokens > {WINDOW} maximum"}})
    return Reply.json(400, {"error": {
        "code": 400, "message": f"The input token count ({n}) exceeds the maximum number of tokens allowed ({WINDOW}).",
        "status": "INVALID_ARGUMENT"}})


def answer(path: str) -> Reply:
    if "/anth/" in path:
        return Reply.fixture("anthropic_stream_text_haiku45.sse")
    if "/gem/" in path:
        return Reply.fixture("gemini20flash_sse_stream_plain_CRLF.sse")
    return Reply.say("fine", usage=(40, 2))


class Guard:
    """The responder of a provider with a WINDOW-token window: it answers requests that fit and
    refuses the others with that vendor's error; it remembers the largest request it saw."""

    def __init__(self) -> None:
        self.largest = 0
        self.refused = 0

    def __call__(self, rec) -> Reply:  # noqa: ANN001
        n = _count(rec.json)
        self.largest = max(self.largest, n)
        if n > WINDOW and "/big/" not in rec.path:
            self.refused += 1
            return too_long(rec.path, n)
        return answer(rec.path)


def tiny_config(tmp_path: Path, url: str, *, windows: bool = True) -> Path:
    """Three providers, one per protocol, each with one model of a WINDOW-token window."""
    cw = f"context_window = {WINDOW}" if windows else ""
    blocks = ['default = "oa"']
    for provider, kind, path, alias, model_id in [("o", "openai", "oa/v1", "oa", "tiny-chat"),
                                                  ("a", "anthropic", "anth", "an", "claude-haiku-4-5"),
                                                  ("g", "gemini", "gem", "ge", "gemini-2.0-flash")]:
        blocks.append(f"""
[providers.{provider}]
type = "{kind}"
base_url = "{url}/{path}"
api_key_env = "T_KEY"
retries = 0
[providers.{provider}.models.{alias}]
id = "{model_id}"
max_tokens = 50
{cw}
""")
    p = tmp_path / "tiny.toml"
    p.write_text("\n".join(blocks), "utf-8")
    return p


def long_session(name: str = "long") -> None:
    """A saved chat of about 600 tokens: twice the tiny window."""
    with Store.open() as store:
        info = store.create_session(name=name, model="oa")
        ref = ModelRef("o", "tiny-chat", "openai", "oa")
        for i in range(6):
            store.append(info.id, Message("user", f"question {i} " + "q" * 180),
                         Message("assistant", f"answer {i} " + "a" * 180, model=ref))


@pytest.fixture
def tiny(tmp_path: Path, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> Guard:
    monkeypatch.setenv("T_KEY", "sk-tiny-0123456789abcdef")
    monkeypatch.setenv("MODELSWITCH_CONFIG", str(tiny_config(tmp_path, server.url)))
    guard = Guard()
    server.default = guard
    return guard


def add_big(tmp_path: Path, url: str, models: str, *, top: str = "") -> None:
    """A provider at /big/ (the guard never refuses it) with `models`, added to the tiny config."""
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(top + cfg.read_text("utf-8") + f"""
[providers.big]
type = "openai"
base_url = "{url}/big/v1"
api_key_env = "T_KEY"
retries = 0
{models}""", "utf-8")


def ask(*args: str):  # noqa: ANN201
    return CliRunner().invoke(app, ["ask", *args], catch_exceptions=False)


@pytest.mark.parametrize("model", ["oa", "an", "ge"])
def test_ask_refuses_a_conversation_over_the_window_and_sends_nothing(
        tiny: Guard, server: LoopbackServer, model: str) -> None:
    long_session()
    result = ask("--session", "long", "-m", model, "and next?")
    assert result.exit_code == 2
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1
    assert "does not fit" in err and f"{model}'s 300-token window" in err and "nothing was sent" in err
    assert server.requests == []  # the provider never saw it
    # The session is as it was: the refused question was not recorded.
    with Store.open() as store:
        assert len(store.kept("long")[1]) == 12


@pytest.mark.parametrize("model", ["oa", "an", "ge"])
def test_ask_sends_what_fits(tiny: Guard, server: LoopbackServer, model: str) -> None:
    result = ask("-m", model, "a short question")
    assert result.exit_code == 0, result.stderr
    assert len(server.requests) == 1 and tiny.refused == 0


@pytest.mark.parametrize(("model", "said"), [
    ("oa", "maximum context length is 300 tokens"),
    ("an", "prompt is too long"),
    ("ge", "exceeds the maximum number of tokens allowed"),
])
def test_without_a_known_window_the_provider_refuses_as_the_real_one_does(
        tmp_path: Path, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch, model: str, said: str) -> None:
    # The same providers with no context_window configured: the request goes out and the fake
    # refuses it with the vendor's error, so the guard above is what a real provider would do.
    monkeypatch.setenv("T_KEY", "sk-tiny-0123456789abcdef")
    monkeypatch.setenv("MODELSWITCH_CONFIG", str(tiny_config(tmp_path, server.url, windows=False)))
    guard = Guard()
    server.default = guard
    long_session()
    result = ask("--session", "long", "-m", model, "and next?")
    assert result.exit_code == 1
    assert said in result.stderr
    assert guard.refused == 1


def test_a_piped_chat_does_not_switch_to_a_model_too_small(tiny: Guard, server: LoopbackServer,
                                                           tmp_path: Path) -> None:
    long_session()
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(cfg.read_text("utf-8").replace('default = "oa"', 'default = "big"') + """
[providers.o.models.big]
id = "big-chat"
""", "utf-8")
    result = CliRunner().invoke(app, ["chat", "--session", "long", "-m", "big"],
                                input="/model oa\n/model\n", catch_exceptions=False)
    assert "does not fit oa's 300-token window" in result.stderr
    assert "staying on big" in result.stderr
    assert server.requests == []


def test_a_piped_chat_does_not_send_over_the_window(tiny: Guard, server: LoopbackServer) -> None:
    long_session()
    result = CliRunner().invoke(app, ["chat", "--session", "long"], input="and next?\n", catch_exceptions=False)
    assert result.exit_code == 1
    assert "does not fit" in result.stderr and "not sent" in result.stderr
    assert server.requests == []


# -- the store: branches and the schema step --------------------------------------------------


def _v2_database(path: Path) -> None:
    """A database as the current release makes it: the shipped steps 1 and 2, with a chat in it."""
    conn = sqlite3.connect(path)
    for step in (1, 2):
        for statement in store_db._MIGRATIONS[step]:
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 2")
    conn.execute("INSERT INTO sessions (name, created, updated, model, system) VALUES"
                 " ('old', '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00', 'r1', 'sys')")
    for i, (role, text) in enumerate([("user", "hello"), ("assistant", "hi there")]):
        conn.execute("INSERT INTO turns (session, idx, role, text, status, created) VALUES"
                     " (1, ?, ?, ?, 'complete', '2026-01-01T00:00:00+00:00')", (i, role, text))
    conn.commit()
    conn.close()


def test_migration_keeps_every_existing_session(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _v2_database(path)
    with Store.open(path) as store:
        info, conv = store.load("old")
        assert (info.model, info.system, info.parent, info.fork_at) == ("r1", "sys", None, None)
        assert [m.text for m in conv.messages] == ["hello", "hi there"]
        branch = store.fork("old", 1, "old-b")
        assert branch.parent == info.id and branch.fork_at == 1
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_fork_copies_the_turns_before_the_fork_and_tree_draws_the_family() -> None:
    with Store.open() as store:
        root = store.create_session(name="root")
        store.append(root.id, Message("user", "q1"), Message("assistant", "a1"),
                     Message("user", "q2"), Message("assistant", "a2"))
        b1 = store.fork("root", 2, "root@2")
        b2 = store.fork("root@2", 1, "deeper")
        assert [m.text for m in store.load(b1.id)[1].messages] == ["q1", "a1"]
        assert [m.text for m in store.load("root")[1].messages] == ["q1", "a1", "q2", "a2"]
        family = store.tree("deeper")
        assert [(d, i.label, n) for d, i, n in family] == [(0, "root", 4), (1, "root@2", 2), (2, "deeper", 1)]
        assert b2.parent == b1.id
        with pytest.raises(errors.UsageError, match="fork at 0-4"):
            store.fork("root", 9)
    result = CliRunner().invoke(app, ["sessions", "tree", "root@2"], catch_exceptions=False)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("root · 4 turns")
    assert lines[1].startswith("└─ root@2 · 2 turns · from turn 2 of its parent") and lines[1].endswith("◀")
    assert lines[2].startswith("   └─ deeper · 1 turns · from turn 1")


def test_a_deleted_parent_leaves_its_branches() -> None:
    with Store.open() as store:
        root = store.create_session(name="p")
        store.append(root.id, Message("user", "q"), Message("assistant", "a"))
        store.fork("p", 2, "child")
        store.delete("p")
        assert store.get("child").parent is None
        assert len(store.kept("child")[1]) == 2


def _chat(model: str = "oa"):  # noqa: ANN202
    from modelswitch.engine.choice import load_config
    from modelswitch.engine.session import ChatSession
    from modelswitch.store.chatlog import ChatLog

    config = load_config(None)
    log = ChatLog.open_for("long", False, model=None, system=None)
    assert log is not None
    return ChatSession(config, config.resolve(model), conversation=log.conversation, log=log)


def test_a_summariser_too_small_for_the_older_turns_is_refused_before_sending(
        tiny: Guard, server: LoopbackServer) -> None:
    long_session()
    s = _chat()
    with pytest.raises(errors.UsageError, match="cannot summarise on oa"):
        s.compaction(s.config.resolve("oa"), keep=1)
    assert server.requests == []


def test_compaction_puts_a_marked_summary_in_the_session_and_undo_brings_the_turns_back(
        tiny: Guard, server: LoopbackServer, tmp_path: Path) -> None:
    from modelswitch.store.export import to_markdown

    long_session()
    add_big(tmp_path, server.url, '[providers.big.models.big]\nid = "big-chat"\ncontext_window = 100000\n')
    s = _chat()
    assert not s.fit().ok
    job = s.compaction(s.config.resolve("big"), keep=1)
    assert job is not None
    answer_, count = job
    assert count == 10
    list(answer_)
    s.apply_compaction(answer_, keep=1)
    texts = [m.text for m in s.conversation.messages]
    assert texts[0].startswith("[summary] The 10 earlier turns") and texts[1] == "fine"
    assert texts[2].startswith("question 5") and len(texts) == 4
    assert s.fit().ok
    # The summariser got the older turns, and only them.
    sent = server.requests[0].json["messages"][0]["content"]
    assert "question 0" in sent and "question 4" in sent and "question 5" not in sent
    with Store.open() as store:
        info, turns = store.kept("long")
        assert [t.message.text for t in turns] == texts
        assert "[summary] The 10 earlier turns" in to_markdown(info, store.transcript("long")[1])
    assert s.undo_replacement() is not None
    assert len(s.conversation.messages) == 12
    with Store.open() as store:
        assert [t.message.text[:10] for t in store.kept("long")[1]] == [m.text[:10] for m in s.conversation.messages]


def test_trim_is_undoable_in_the_store_too(tiny: Guard) -> None:
    long_session()
    s = _chat()
    assert s.trim_to(1) == 10
    with Store.open() as store:
        assert len(store.kept("long")[1]) == 2
    s.undo_replacement()
    with Store.open() as store:
        assert len(store.kept("long")[1]) == 12


def test_the_toolbar_shows_the_conversation_against_the_current_models_window(tiny: Guard) -> None:
    from modelswitch.repl.loop import Repl

    long_session()
    s = _chat()
    bar = Repl(s, color=False, interactive=False).toolbar(200)
    assert re.search(r"context (\d+)/300", bar), bar
    used = int(re.search(r"context (\d+)/300", bar).group(1))
    assert used == s.fit().used and used > 300


@pytest.mark.parametrize("line", ["@oa and next?", "/retry oa", "/compare big oa and next?"])
def test_one_off_retry_and_compare_are_checked_against_the_target_window(
        tiny: Guard, server: LoopbackServer, tmp_path: Path, line: str) -> None:
    long_session()
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(cfg.read_text("utf-8") + """
[providers.o.models.big]
id = "big-chat"
""", "utf-8")
    result = CliRunner().invoke(app, ["chat", "--session", "long", "-m", "big"], input=line + "\n",
                                catch_exceptions=False)
    assert "does not fit oa's 300-token window" in result.stderr
    assert result.exit_code == 1
    assert server.requests == []  # not even the compare's other model: nothing went out


def test_compact_at_compacts_before_the_send_that_crosses_it(
        tiny: Guard, server: LoopbackServer, tmp_path: Path) -> None:
    long_session()
    add_big(tmp_path, server.url, '[providers.big.models.mid]\nid = "mid-chat"\ncontext_window = 1000\nmax_tokens = 50\n',
            top="compact_at = 0.5\n")
    result = CliRunner().invoke(app, ["chat", "--session", "long", "-m", "mid"], input="and next?\n",
                                catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    assert "(compact_at = 0.5); compacting the older turns" in result.stderr
    summarise, send = server.requests
    assert "question 0" in summarise.json["messages"][0]["content"]
    texts = [m["content"] for m in send.json["messages"]]
    assert texts[0].startswith("[summary] The 10 earlier turns") and texts[1] == "fine"
    assert texts[2].startswith("question 5") and texts[-1] == "and next?" and len(texts) == 5


def test_the_default_summariser_is_the_cheapest_model_with_a_key(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from modelswitch.engine.session import ChatSession

    monkeypatch.setenv("HAS_KEY", "sk-has-0123456789")
    monkeypatch.delenv("NO_KEY", raising=False)
    doc = {"providers": {
        "a": {"type": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key_env": "HAS_KEY", "models": {
            "dear": {"id": "dear", "price": {"input": 10.0, "output": 30.0, "currency": "USD"}},
            "cheap": {"id": "cheap", "price": {"input": 0.1, "output": 0.4, "currency": "USD"}},
            "yuan": {"id": "yuan", "price": {"input": 0.01, "output": 0.01, "currency": "CNY"}}}},
        "b": {"type": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key_env": "NO_KEY", "models": {
            "keyless": {"id": "keyless", "price": {"input": 0.0, "output": 0.0, "currency": "USD"}}}},
    }}
    config = build(doc, tmp_path / "c.toml")
    assert ChatSession(config, config.resolve("dear")).summariser().name == "cheap"
    # No price on the current model: nothing to compare with, the current model summarises.
    config2 = build({"providers": {"a": {**doc["providers"]["a"], "models": {"plain": {"id": "plain"}}}}},
                    tmp_path / "c.toml")
    assert ChatSession(config2, config2.resolve("plain")).summariser().name == "plain"


def test_a_fallback_whose_window_is_too_small_is_skipped_not_sent(
        tiny: Guard, server: LoopbackServer, tmp_path: Path) -> None:
    long_session()
    add_big(tmp_path, server.url, '[providers.big.models.busy]\nid = "busy-chat"\nfallback = ["oa"]\n')
    server.add(Reply.fixture("openrouter_429_provider_rate_limited.json", status=429,
                             content_type="application/json", chunked=False, path="/big/"))
    result = ask("--session", "long", "-m", "busy", "and next?")
    assert result.exit_code == 1
    assert "fallback oa skipped" in result.stderr and "300-token window" in result.stderr
    assert [r.path for r in server.requests] == ["/big/v1/chat/completions"]  # nothing went to oa


def test_history_shows_each_turns_tokens_reported_or_estimated(tiny: Guard, server: LoopbackServer) -> None:
    result = CliRunner().invoke(app, ["chat", "-m", "oa"], input="x" * 400 + "\n/history\n",
                                catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.lstrip()[:2] in ("1.", "2.")]
    # The question: estimated (400 Latin characters: 100 + 4), then calibrated by the 40 input
    # tokens the provider reported for exactly that request.
    assert lines[0].endswith("(~40 tokens)")
    assert lines[1].endswith("(6 tokens)")  # the answer: the 2 output tokens reported, + 4
