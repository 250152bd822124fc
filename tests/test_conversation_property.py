"""One conversation, three views that must agree, whatever the user does.

Hypothesis drives random sequences of messages, `/model`, `@model`, `/retry`, `/undo`,
`/compare`, `/keep`, `/clear`, `/save`, `/load` and provider failures through the REPL's own
command handling, against validating loopback fakes of all four protocols (tests/validators.py).
After every step it checks that:

- each request a provider received carries exactly the conversation the user sees (`/history`)
  up to the new question: no failed turn resent, no kept answer missing, text byte for byte;
- the session in the store holds the same turns, in the same order, as the chat in memory;
- `/history` lists those turns;
- `/cost` equals the stored per-model statistics (`sessions show --stats`): one record of money.
"""

from __future__ import annotations

import json
import os
import tempfile
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from modelswitch.config import load as config_mod
from modelswitch.store.chatlog import ChatLog
from modelswitch.conversation import Message
from modelswitch.repl.loop import Repl
from modelswitch.engine.session import ChatSession
from modelswitch.store.export import stats_rows
from tests.loopback import LoopbackServer, Received, Reply
from tests.validators import FakeAnthropic, FakeDeepSeek, FakeGemini, FakeOllama, Problem

KEYS = {"DS_KEY": "sk-ds-test", "ANT_KEY": "sk-ant-test", "GM_KEY": "gm-test"}
MODELS = ("ds", "r1", "cl", "gm", "ol")
NAMES = ("alpha", "beta")
# Text a user may type: newlines, indentation, runs of spaces, CJK, an emoji, a key lookalike.
TEXT = st.lists(
    st.sampled_from(["hello", "  indented", "\n", "  ", "代码", "😀", "x = 1", ".sk-folding-cube", "?"]),
    min_size=1, max_size=5,
).map("".join).filter(lambda s: bool(s.strip()) and not s.lstrip().startswith(("/", "@")))


def _config(url: str) -> config_mod.Config:
    return config_mod.build(tomllib.loads(f"""
default = "ds"
[providers.deep]
base_url = "{url}/v1"
api_key_env = "DS_KEY"
retries = 0
[providers.deep.models.ds]
id = "deepseek-chat"
[providers.deep.models.r1]
id = "deepseek-reasoner"
[providers.claude]
type = "anthropic"
base_url = "{url}"
api_key_env = "ANT_KEY"
retries = 0
[providers.claude.models.cl]
id = "claude-haiku-4-5"
reasoning = true
[providers.google]
type = "gemini"
base_url = "{url}"
api_key_env = "GM_KEY"
retries = 0
[providers.google.models.gm]
id = "gemini-2.5-flash"
reasoning = "low"
[providers.llama]
type = "ollama"
base_url = "{url}"
retries = 0
[providers.llama.models.ol]
id = "qwen3:8b"
reasoning = true
"""), Path("property.toml"), presets={})


class Providers:
    """All four validating APIs on one loopback server. `fail` makes the next requests fail as
    `failure` says: "busy" (the protocol's own 503) or "cut" (the stream drops mid-answer)."""

    def __init__(self, server: LoopbackServer) -> None:
        self.apis = [FakeDeepSeek(), FakeAnthropic(), FakeGemini(), FakeOllama()]
        self.fail = 0
        self.failure = "busy"
        self.received: list[tuple[str, dict]] = []  # (protocol, body) of every chat request
        server.default = self

    def __call__(self, rec: Received) -> Reply:
        for api, protocol in zip(self.apis, ("openai", "anthropic", "gemini", "ollama")):
            if api.matches(rec):
                self.received.append((protocol, json.loads(rec.raw)))
                if self.fail and self.failure == "busy":
                    self.fail -= 1
                    return api.error_reply(Problem(503, "server busy, try again later", "overloaded_error"))
                reply = api(rec)
                assert not api.rejected, api.rejected  # every request we send must be well-formed
                if self.fail:
                    self.fail -= 1
                    reply.drop_after = max(1, len(reply.chunks) - 2)
                return reply
        return Reply.json(404, {"error": f"nothing serves {rec.path}"})


def sent_turns(protocol: str, body: dict) -> list[tuple[str, str]]:
    """(role, text) of each turn in a request, whatever the protocol's shape; reasoning left out."""
    if protocol == "anthropic":
        return [(m["role"], "\n\n".join(b["text"] for b in m["content"] if b["type"] == "text"))
                for m in body["messages"]]
    if protocol == "gemini":
        return [("assistant" if c["role"] == "model" else "user",
                 "".join(p["text"] for p in c["parts"] if "text" in p and not p.get("thought")))
                for c in body["contents"]]
    return [(m["role"], m["content"]) for m in body["messages"] if m["role"] != "system"]


def expected_turns(messages: tuple[Message, ...] | list[Message], protocol: str) -> list[tuple[str, str]]:
    """What a request should carry for these turns: neighbours of one role merged, as APIs need
    (Gemini's merged turns are parts of one content, read back here joined with nothing)."""
    sep = "" if protocol == "gemini" else "\n\n"
    out: list[tuple[str, str]] = []
    for m in messages:
        if out and out[-1][0] == m.role:
            out[-1] = (m.role, out[-1][1] + sep + m.text)
        else:
            out.append((m.role, m.text))
    return out


class ConversationMachine(RuleBasedStateMachine):
    server: LoopbackServer

    def __init__(self) -> None:
        super().__init__()
        self._data = tempfile.TemporaryDirectory()
        os.environ["XDG_DATA_HOME"] = self._data.name
        self.providers = Providers(self.server)
        config = _config(self.server.url)
        log = ChatLog.open_for(None, False, model="ds", system=None)
        assert log is not None
        self.session = ChatSession(config, config.resolve("ds"), log=log)
        self.repl = Repl(self.session, color=False, interactive=False)
        self.saved: set[str] = set()
        self.compared = False

    def teardown(self) -> None:
        if self.session.log is not None:
            self.session.log.store.close()
        self._data.cleanup()

    # -- what a user does ------------------------------------------------------------------

    def _send(self, line: str, history_before: tuple[Message, ...], user_text: str) -> None:
        before = len(self.providers.received)
        self.repl.handle(line)
        new = self.providers.received[before:]
        assert len(new) == 1, new
        protocol, body = new[0]
        expected = expected_turns([*_sent_view(history_before), Message("user", user_text)], protocol)
        assert sent_turns(protocol, body) == expected

    @rule(text=TEXT)
    def message(self, text: str) -> None:
        self.compared = False
        self._send(text, self.session.conversation.messages, text)

    @rule(model=st.sampled_from(MODELS), text=TEXT)
    def one_off(self, model: str, text: str) -> None:
        self.compared = False
        self._send(f"@{model} {text}", self.session.conversation.messages, _after_name(text))

    @rule(model=st.sampled_from(MODELS))
    def switch(self, model: str) -> None:
        self.repl.handle(f"/model {model}")
        assert self.session.model.alias == model

    @rule(n=st.integers(1, 2), failure=st.sampled_from(["busy", "cut"]))
    def fail_next(self, n: int, failure: str) -> None:
        self.providers.fail, self.providers.failure = n, failure

    @precondition(lambda self: self.session.last_exchange() is not None and not self.compared)
    @rule(model=st.sampled_from((None, *MODELS)))
    def retry(self, model: str | None) -> None:
        msgs = self.session.conversation.messages
        question = msgs[-2]
        self._send("/retry" + (f" {model}" if model else ""), msgs[:-2], question.text)
        after = self.session.conversation.messages
        # Replaced when the new answer is good; otherwise the earlier answer is kept.
        assert after[:-1] == msgs[:-1] and after[-2].text == question.text

    @rule()
    def undo(self) -> None:
        self.compared = False
        self.repl.handle("/undo")

    @rule(models=st.lists(st.sampled_from(MODELS), min_size=2, max_size=3, unique=True), text=TEXT)
    def compare(self, models: list[str], text: str) -> None:
        history = self.session.conversation.messages
        before = len(self.providers.received)
        self.repl.handle(f"/compare {' '.join(models)} {text}")
        new = self.providers.received[before:]
        assert len(new) == len(models)
        turns = [*_sent_view(history), Message("user", _after_name(text))]
        for protocol, body in new:
            assert sent_turns(protocol, body) == expected_turns(turns, protocol)
        self.compared = True

    @rule(n=st.integers(1, 3))
    def keep(self, n: int) -> None:
        self.repl.handle(f"/keep {n}")
        self.compared = False

    def _leaving(self) -> tuple[ChatLog, list[list[str]], bool]:
        """The chat about to be left (/clear, /load), its /cost rows, and whether it paid for any."""
        log = self.session.log
        assert log is not None
        billed = any(t.cost is not None or t.message.usage is not None for t in self.session.stats())
        return log, stats_rows(self.session.stats()), billed

    @staticmethod
    def _left(left: tuple[ChatLog, list[list[str]], bool]) -> None:
        """A chat left behind keeps every answer it paid for (compared answers not kept too)."""
        log, rows, billed = left
        if billed:
            assert log.session_id is not None
            assert stats_rows(log.store.transcript(log.session_id)[1]) == rows

    @rule()
    def clear(self) -> None:
        left = self._leaving()
        self.repl.handle("/clear")
        self.compared = False
        assert self.session.conversation.messages == ()
        self._left(left)

    @rule(name=st.sampled_from(NAMES))
    def save(self, name: str) -> None:
        self.repl.handle(f"/save {name}")
        if self.session.log is not None and self.session.log.name == name:
            self.saved.add(name)

    @precondition(lambda self: bool(self.saved))
    @rule(data=st.data())
    def load(self, data: st.DataObject) -> None:
        left = self._leaving()
        self.repl.handle(f"/load {data.draw(st.sampled_from(sorted(self.saved)))}")
        if self.session.log is not left[0]:  # a name /save kept for a chat never saved loads nothing
            self.compared = False
            self._left(left)

    # -- what must always hold -------------------------------------------------------------

    @invariant()
    def store_holds_the_same_conversation(self) -> None:
        log = self.session.log
        assert log is not None
        if log.session_id is None:
            # Only exchanges that never started: not worth a session until one answer arrives.
            assert all(m.status != "complete" and not m.text
                       for m in self.session.conversation.messages if m.role == "assistant")
            return
        _, stored = log.store.load(log.session_id)
        assert _view(stored.messages) == _view(self.session.conversation.messages)

    @invariant()
    def history_lists_every_turn(self) -> None:
        lines = _said(self.repl, "/history")
        turns = self.session.conversation.messages
        if not turns:
            return
        numbered = [ln for ln in lines if ln.lstrip()[:1].isdigit()]
        assert len(numbered) == len(turns)
        for line, m in zip(numbered, turns):
            assert " ".join(m.text.split())[:40] in line

    @invariant()
    def cost_is_the_stored_record(self) -> None:
        log = self.session.log
        assert log is not None
        if log.session_id is None:
            # Every billed answer is in the store: with no session yet, nothing was billed (a
            # compared answer is saved at once, kept or not).
            assert all(t.cost is None and t.message.usage is None for t in self.session.stats())
            return
        _, turns = log.store.transcript(log.session_id)
        assert stats_rows(self.session.stats()) == stats_rows(turns)


def _after_name(text: str) -> str:
    """The prompt after `@model ` or `/compare A B `: as typed, less the blanks (and one line
    break) that separate it from the model's name."""
    text = text.lstrip(" \t")
    return text[1:] if text.startswith("\n") else text


def _view(messages: tuple[Message, ...]) -> list[tuple[str, str, str]]:
    return [(m.role, m.text, m.status) for m in messages]


def _sent_view(messages: tuple[Message, ...]) -> list[Message]:
    """The turns a request should carry, by the rule stated here rather than the code's own: an
    exchange whose answer has no text (failed, refused, blocked) is history, not context, and its
    question goes with it; an interrupted answer with text was seen, so it is sent."""
    out: list[Message] = []
    for m in messages:
        if m.role == "assistant" and not m.text:
            if out and out[-1].role == "user":
                out.pop()
            continue
        out.append(m)
    return out


def _said(repl: Repl, line: str) -> list[str]:
    """What a command printed (the REPL says things on stderr when it is not interactive)."""
    import contextlib
    import io

    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        repl.handle(line)
    return (out.getvalue() + err.getvalue()).splitlines()


@pytest.mark.parametrize("seed", [0])
def test_what_is_sent_stored_shown_and_billed_agree(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    for k, v in KEYS.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("XDG_DATA_HOME", os.environ["XDG_DATA_HOME"])  # restored after the test
    ConversationMachine.server = server
    machine = ConversationMachine.TestCase
    machine.settings = settings(
        max_examples=100, stateful_step_count=30, deadline=None, derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    machine().runTest()
