"""The leaderboard's Bradley-Terry fit, checked against fits done by hand."""

from __future__ import annotations

import math

import pytest

from modelswitch.engine.ratings import ELO_SCALE, leaderboard, pairwise
from modelswitch.store.records import Vote


def win(a: str, b: str, winner: str, tag: str | None = None) -> Vote:
    return Vote((a, b), "win", winner, tag)


def test_three_models_match_the_hand_fit_without_prior() -> None:
    # Votes: A beats B twice, B beats A once; A beats C twice, C beats A once;
    # B and C: one win each and one tie (a tie is half a win to each).
    # Pairwise wins: W_A = 4, W_B = 1 + 1.5 = 2.5, W_C = 2.5; games n_AB = n_AC = n_BC = 3.
    # By symmetry p_B = p_C = q. The likelihood equation for A (W_A = sum n_Aj p_A/(p_A+p_j)):
    #   4 = 6a/(a+q)  =>  4a + 4q = 6a  =>  a = 2q.
    # Check B: 3·q/(3q) + 3·q/(2q) = 1 + 1.5 = 2.5 = W_B.
    # Geometric mean 1: a·q·q = 1 => 2q³ = 1 => q = 2^(-1/3), a = 2^(2/3).
    # Elo: 1000 + 400·log10(2^(2/3)) = 1080.27;  B, C: 1000 - 400/3·log10 2 = 959.86.
    votes = [win("A", "B", "A"), win("A", "B", "A"), win("A", "B", "B"),
             win("A", "C", "A"), win("A", "C", "A"), win("A", "C", "C"),
             win("B", "C", "B"), win("B", "C", "C"), Vote(("B", "C"), "tie")]
    board = leaderboard(votes, prior_ties=0.0)
    assert [s.model for s in board] == ["A", "B", "C"]
    a, b, c = board
    assert a.rating == pytest.approx(1000 + 400 * math.log10(2 ** (2 / 3)), abs=1e-6)
    assert a.rating == pytest.approx(1080.27, abs=0.01)
    assert b.rating == pytest.approx(959.86, abs=0.01)
    assert c.rating == pytest.approx(b.rating, abs=1e-6)
    assert (a.games, a.wins, a.ties) == (6, 4, 0)
    assert (b.games, b.wins, b.ties) == (6, 2, 1)
    assert b.win_rate == pytest.approx(2.5 / 6)


def test_two_models_interval_from_fisher_information() -> None:
    # A beats B 3 times, B beats A once, plus the default prior of one virtual tie:
    # 3.5 - 1.5, so p_A/p_B = 7/3 and rating difference 400·log10(7/3) = 147.19.
    # Fisher information of θ: n π (1-π) with n = 5, π = 0.7: 5·0.21 = 1.05;
    # I = 1.05·[[1, -1], [-1, 1]], pseudo-inverse = [[1, -1], [-1, 1]] / (4·1.05),
    # so SE(θ_A) = sqrt(1/4.2) = 0.48795, half-width 1.96·0.48795·173.72 = 166.14 Elo points.
    votes = [win("A", "B", "A")] * 3 + [win("A", "B", "B")]
    a, b = leaderboard(votes)
    assert a.rating - b.rating == pytest.approx(400 * math.log10(7 / 3), abs=1e-6)
    assert a.rating + b.rating == pytest.approx(2000, abs=1e-6)
    half = 1.959964 * math.sqrt(1 / 4.2) * ELO_SCALE
    assert half == pytest.approx(166.14, abs=0.01)
    assert a.high is not None and a.low is not None
    assert a.high - a.rating == pytest.approx(half, abs=1e-4)
    assert a.rating - a.low == pytest.approx(half, abs=1e-4)


def test_an_undefeated_model_stays_finite_and_disconnected_parts_have_no_interval() -> None:
    board = leaderboard([win("A", "B", "A")] * 5)
    assert all(math.isfinite(s.rating) for s in board)
    # 5.5 - 0.5: ratio 11.
    assert board[0].rating - board[1].rating == pytest.approx(400 * math.log10(11), abs=1e-6)
    split = leaderboard([win("A", "B", "A"), win("C", "D", "D")])
    assert all(s.low is None for s in split)


def test_multi_model_votes_become_pairwise_games() -> None:
    games = pairwise([Vote(("A", "B", "C"), "win", "B"), Vote(("A", "B", "C"), "none")])
    at = {m: i for i, m in enumerate(games.models)}
    assert games.wins[at["B"]][at["A"]] == 1.5 and games.wins[at["A"]][at["B"]] == 0.5
    assert games.wins[at["A"]][at["C"]] == 0.5 and games.wins[at["C"]][at["A"]] == 0.5
