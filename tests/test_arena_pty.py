"""/arena and /vote in a real pseudo-terminal: numbered lanes, nothing named until the vote, the
winner kept in the conversation, the vote in the database and on the leaderboard."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from modelswitch.store.db import Store
from tests.loopback import LoopbackServer, Reply
from tests.test_repl_pty import EXE, anthropic_text, chat_env, oa_chunk, oa_finish, pexpect, spawn

__all__ = ["chat_env"]  # the fixture, used by name
pytestmark = [pytest.mark.pty, pytest.mark.skipif(EXE is None, reason="no console script")]
TEXTS = {"r1": "Deep says forty-two.", "hy": "Yes, that was right."}


def both(server: LoopbackServer) -> None:
    server.add(Reply.sse(oa_chunk(content=TEXTS["r1"]), oa_finish(), path="/deep/"))
    server.add(anthropic_text(TEXTS["hy"]))


def test_arena_vote_reveals_keeps_and_rates(chat_env: dict[str, str], server: LoopbackServer, tmp_path) -> None:  # noqa: ANN001
    both(server)
    child = spawn(chat_env)
    child.send("/arena r1 hy which is best?\r")
    child.expect(r"/vote 1-2, /vote tie or /vote none")
    shown = child.before
    assert TEXTS["r1"] in shown and TEXTS["hy"] in shown
    # Nothing says which model is which: no footer, no price, no model id.
    for hidden in ("r1 ·", "hy ·", "deepseek-reasoner", "claude-haiku", "tok/s", "to first token"):
        assert hidden not in shown
    child.expect("r1 ›")

    child.send("/vote 1\r")
    child.expect(r"★ 1 was (r1|hy) ·")
    winner = child.match.group(1)
    loser = "hy" if winner == "r1" else "r1"
    child.expect(rf"2 was {loser} ·")
    child.expect(f"kept the answer from {winner}")
    child.expect("r1 ›")
    child.send("/history\r")
    child.expect(rf"{winner}: {re.escape(TEXTS[winner])}")
    child.expect("r1 ›")
    child.send("/vote 2\r")  # the arena is over
    child.expect("nothing to vote on")
    child.expect("r1 ›")

    # Without a prompt the next message goes to the arena; a tag goes with the vote.
    both(server)
    child.send("/arena --tag code r1 hy\r")
    child.expect("your next message goes blind to 2 models")
    child.expect("r1 ›")
    child.send("and now?\r")
    child.expect("/vote 1-2")
    child.expect("r1 ›")
    child.send("/vote tie\r")
    child.expect("recorded a tie")
    child.expect("r1 ›")
    child.send("/leaderboard\r")
    child.expect(winner)
    child.expect("r1 ›")
    child.send("/exit\r")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0

    with Store.open(tmp_path / "data" / "modelswitch" / "modelswitch.db") as store:
        votes = store.votes()
        assert [(v.outcome, v.winner, v.tag) for v in votes] == [("win", winner, None), ("tie", None, "code")]
        assert set(votes[0].models) == {"r1", "hy"} and votes[0].session is not None
        _, kept = store.kept(votes[0].session)
        assert [t.message.text for t in kept][:2] == ["which is best?", TEXTS[winner]]
    done = subprocess.run([EXE, "leaderboard", "--json"], env=chat_env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    board = json.loads(done.stdout)
    assert board["votes"] == 2 and board["models"][0]["model"] == winner
    assert {m["model"]: (m["games"], m["wins"], m["ties"]) for m in board["models"]} == {
        winner: (2, 1, 1), loser: (2, 0, 1)}
    tagged = subprocess.run([EXE, "leaderboard", "--json", "--tag", "code"], env=chat_env,
                            capture_output=True, text=True)
    assert json.loads(tagged.stdout)["votes"] == 1


def test_arena_command_asks_for_a_vote_in_a_terminal(chat_env: dict[str, str], server: LoopbackServer,
                                                     tmp_path) -> None:  # noqa: ANN001
    both(server)
    child = pexpect.spawn(EXE, ["arena", "-m", "r1", "-m", "hy", "--tag", "cli", "which?"], env=chat_env,
                          encoding="utf-8", dimensions=(40, 100), timeout=20)
    child.expect(r"your vote \(1-2, tie, none; Enter: no vote\): ")
    shown = child.before
    assert TEXTS["r1"] in shown and TEXTS["hy"] in shown and "r1 ·" not in shown and "hy ·" not in shown
    child.send("7\r")
    child.expect("not a choice")
    child.send("2\r")
    child.expect(r"★ 2 was (r1|hy) ·")
    winner = child.match.group(1)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    with Store.open(tmp_path / "data" / "modelswitch" / "modelswitch.db") as store:
        assert [(v.outcome, v.winner, v.tag, v.session) for v in store.votes()] == [("win", winner, "cli", None)]


def test_arena_command_piped_reveals_without_a_vote(chat_env: dict[str, str], server: LoopbackServer) -> None:
    both(server)
    done = subprocess.run([EXE, "arena", "-m", "r1", "-m", "hy", "which?"], env=chat_env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=30)
    assert done.returncode == 0, done.stderr
    assert "== 1 ==" in done.stdout and "== 2 ==" in done.stdout and "r1" not in done.stdout
    assert re.search(r"1 was (r1|hy) ·", done.stderr) and "no vote" in done.stderr
    same = subprocess.run([EXE, "arena", "-m", "r1", "-m", "r1", "x"], env=chat_env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=30)
    assert same.returncode == 2 and "two or more different models" in same.stderr and "Traceback" not in same.stderr
