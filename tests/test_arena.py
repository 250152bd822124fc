"""The arena's rules in the engine: random lanes, what a vote needs, what it keeps."""

from __future__ import annotations

import random
import tomllib
from pathlib import Path

import pytest

from modelswitch.config import load as config_mod
from modelswitch.conversation import Message, ModelRef
from modelswitch.engine.session import ChatSession, blind
from modelswitch.errors import UsageError

TOML = """
[providers.p]
base_url = "http://127.0.0.1:9/v1"
api_key = "sk-test-0123456789"
[providers.p.models.a]
id = "ma"
[providers.p.models.b]
id = "mb"
[providers.p.models.c]
id = "mc"
"""


@pytest.fixture
def session() -> ChatSession:
    cfg = config_mod.build(tomllib.loads(TOML), Path("t.toml"), presets={})
    return ChatSession(cfg, cfg.resolve("a"))


def answer(name: str, text: str) -> Message:
    return Message("assistant", text, model=ModelRef("p", f"m{name}", "openai", name))


def test_lanes_are_shuffled_and_models_must_differ(session: ChatSession) -> None:
    specs = [session.resolve(n) for n in "abc"]
    orders = {tuple(s.name for s in blind(specs, rng=random.Random(seed)).lanes) for seed in range(30)}
    assert len(orders) > 1 and all(sorted(o) == ["a", "b", "c"] for o in orders)
    with pytest.raises(UsageError, match="different models"):
        blind([specs[0], specs[0]])


def test_a_vote_reveals_and_keeps_the_winner_and_ends_the_arena(session: ChatSession) -> None:
    arena = blind([session.resolve("a"), session.resolve("b"), session.resolve("c")], "code")
    user = Message("user", "q")
    names = [s.name for s in arena.lanes]
    texts = {names[0]: "first", names[1]: "", names[2]: "third"}  # lane 2 failed: empty
    session.hold_compare(user, [(answer(n, texts[n]), None) for n in names], arena)
    with pytest.raises(UsageError, match="answer 2 is empty"):
        session.vote("2")
    with pytest.raises(UsageError, match="usage: /vote 1-3"):
        session.vote("4")
    verdict = session.vote("3")
    assert verdict.vote.winner == names[2] and verdict.vote.tag == "code" and not verdict.saved
    assert [s.name for s, _, _ in verdict.lanes] == names
    assert session.conversation.messages[-1].text == "third"
    with pytest.raises(UsageError, match="nothing to vote on"):
        session.vote("1")


def test_a_tie_keeps_nothing_but_keep_still_works_and_a_compare_takes_no_vote(session: ChatSession) -> None:
    arena = blind([session.resolve("a"), session.resolve("b")])
    session.hold_compare(Message("user", "q"), [(answer(s.name, s.name * 3), None) for s in arena.lanes], arena)
    assert session.vote("tie").kept is None and session.conversation.messages == ()
    session.keep("1")
    assert len(session.conversation.messages) == 2
    session.hold_compare(Message("user", "q2"), [(answer("a", "x"), None), (answer("b", "y"), None)])
    with pytest.raises(UsageError, match="nothing to vote on"):
        session.vote("1")
