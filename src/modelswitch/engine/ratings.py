"""The personal leaderboard: a Bradley-Terry fit of blind-arena votes, in plain Python.

Each vote among k models is k-1 pairwise games for a win (the winner beats each other model) or
k(k-1)/2 ties; a tie counts half a win to each side, and `/vote none` ("both bad") counts as a tie,
as Chatbot Arena does. The strengths p maximise the likelihood of those games under
P(i beats j) = p_i / (p_i + p_j), found by Hunter's MM iteration (2004):

    p_i <- W_i / sum_j n_ij / (p_i + p_j)

with W_i the (half-)wins of i and n_ij the games between i and j, rescaled each round to a
geometric mean of 1. A model that never lost would run off to infinity, so by default every pair
that met also gets PRIOR_TIES virtual tied games (a pseudo-count: with few votes, ratings stay near
each other). Ratings are shown on the Elo scale: 1000 + 400·log10(p).

Confidence intervals come from the Fisher information of θ = ln p at the fit:
I_ii = sum_j n_ij π_ij π_ji, I_ij = -n_ij π_ij π_ji. I is singular (adding a constant to every θ
changes nothing), so the covariance of θ under the constraint sum θ = 0 is its pseudo-inverse,
(I + J/n)^-1 - J/n for a connected comparison graph (J all ones). 95% interval: θ ± 1.96·SE.
When the graph is not connected the scale between its parts is unknown and no interval is given.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..store.records import Vote

PRIOR_TIES = 1.0
ELO_BASE = 1000.0
ELO_SCALE = 400.0 / math.log(10.0)  # θ (natural log) to Elo points
Z95 = 1.959963984540054
MAX_ROUNDS = 10_000
TOLERANCE = 1e-10


@dataclass(frozen=True, slots=True)
class Standing:
    """One model's row of the leaderboard."""

    model: str
    rating: float
    low: float | None  # 95% interval on the same scale; None when it cannot be told
    high: float | None
    games: int  # arenas it was in
    wins: int
    ties: int  # ties and "none" verdicts

    @property
    def win_rate(self) -> float:
        """(wins + ties/2) / games."""
        return (self.wins + self.ties / 2) / self.games if self.games else 0.0


@dataclass(frozen=True, slots=True)
class Games:
    """Pairwise results: wins[i][j] = (half-)games i won against j."""

    models: tuple[str, ...]
    wins: tuple[tuple[float, ...], ...]


def pairwise(votes: Sequence[Vote]) -> Games:
    models = sorted({m for v in votes for m in v.models})
    at = {m: i for i, m in enumerate(models)}
    w = [[0.0] * len(models) for _ in models]
    for v in votes:
        players = list(dict.fromkeys(v.models))
        for a in players:
            for b in players:
                if a == b:
                    continue
                if v.outcome == "win":
                    w[at[a]][at[b]] += 1.0 if a == v.winner else 0.0
                else:
                    w[at[a]][at[b]] += 0.5
    return Games(tuple(models), tuple(tuple(r) for r in w))


def fit(games: Games, prior_ties: float = PRIOR_TIES) -> list[float]:
    """θ = ln p for each model (sum θ = 0), by MM iterations."""
    n = len(games.models)
    w = [list(r) for r in games.wins]
    for i in range(n):
        for j in range(n):
            if i != j and w[i][j] + w[j][i] > 0:
                w[i][j] += prior_ties / 2
    played = [[w[i][j] + w[j][i] for j in range(n)] for i in range(n)]
    won = [sum(r) for r in w]
    p = [1.0] * n
    for _ in range(MAX_ROUNDS):
        new = []
        for i in range(n):
            denom = sum(played[i][j] / (p[i] + p[j]) for j in range(n) if j != i and played[i][j])
            # A model that never won (possible only without the prior) sinks towards 0, not below.
            new.append(max(won[i] / denom, 1e-300) if denom else p[i])
        scale = math.exp(sum(math.log(x) for x in new) / n) if n else 1.0
        new = [x / scale for x in new]
        done = max((abs(math.log(a) - math.log(b)) for a, b in zip(new, p)), default=0.0) < TOLERANCE
        p = new
        if done:
            break
    return [math.log(x) for x in p]


def standard_errors(games: Games, theta: Sequence[float], prior_ties: float = PRIOR_TIES) -> list[float] | None:
    """SE of each θ from the Fisher information; None when the comparison graph is not connected."""
    n = len(theta)
    if n < 2 or not _connected(games):
        return None
    info = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            played = games.wins[i][j] + games.wins[j][i]
            if played:
                played += prior_ties
            pi = 1.0 / (1.0 + math.exp(theta[j] - theta[i]))
            info[i][j] = -played * pi * (1 - pi)
            info[i][i] += played * pi * (1 - pi)
    shifted = [[info[i][j] + 1.0 / n for j in range(n)] for i in range(n)]
    inverse = _inverse(shifted)
    if inverse is None:
        return None
    return [math.sqrt(max(0.0, inverse[i][i] - 1.0 / n)) for i in range(n)]


def leaderboard(votes: Sequence[Vote], prior_ties: float = PRIOR_TIES) -> list[Standing]:
    """Every model that was voted on, best first."""
    games = pairwise(votes)
    if not games.models:
        return []
    theta = fit(games, prior_ties)
    se = standard_errors(games, theta, prior_ties)
    count = {m: [0, 0, 0] for m in games.models}
    for v in votes:
        for m in dict.fromkeys(v.models):
            count[m][0] += 1
            if v.outcome == "win" and v.winner == m:
                count[m][1] += 1
            elif v.outcome != "win":
                count[m][2] += 1
    out = []
    for i, m in enumerate(games.models):
        rating = ELO_BASE + ELO_SCALE * theta[i]
        half = None if se is None else Z95 * ELO_SCALE * se[i]
        out.append(Standing(m, rating, None if half is None else rating - half,
                            None if half is None else rating + half, *count[m]))
    return sorted(out, key=lambda s: (-s.rating, s.model))


LEADERBOARD_HEADERS = ["#", "model", "rating", "95% interval", "games", "wins", "ties", "win rate"]


def leaderboard_rows(standings: Sequence[Standing]) -> list[list[str]]:
    return [
        [str(k), s.model, f"{s.rating:.0f}",
         "-" if s.low is None or s.high is None else f"{s.low:.0f} – {s.high:.0f}",
         str(s.games), str(s.wins), str(s.ties), f"{s.win_rate:.0%}"]
        for k, s in enumerate(standings, 1)
    ]


def leaderboard_json(standings: Sequence[Standing]) -> list[dict[str, object]]:
    return [
        {"model": s.model, "rating": round(s.rating, 2),
         "ci95": None if s.low is None or s.high is None else [round(s.low, 2), round(s.high, 2)],
         "games": s.games, "wins": s.wins, "ties": s.ties, "win_rate": round(s.win_rate, 4)}
        for s in standings
    ]


def _connected(games: Games) -> bool:
    n = len(games.models)
    seen, todo = {0}, [0]
    while todo:
        i = todo.pop()
        for j in range(n):
            if j not in seen and games.wins[i][j] + games.wins[j][i] > 0:
                seen.add(j)
                todo.append(j)
    return len(seen) == n


def _inverse(m: list[list[float]]) -> list[list[float]] | None:
    """Gauss-Jordan with partial pivoting; None if singular."""
    n = len(m)
    a = [row[:] + [1.0 if i == j else 0.0 for j in range(n)] for i, row in enumerate(m)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(a[r][col]))
        if abs(a[pivot][col]) < 1e-12:
            return None
        a[col], a[pivot] = a[pivot], a[col]
        lead = a[col][col]
        a[col] = [x / lead for x in a[col]]
        for r in range(n):
            if r != col and a[r][col]:
                f = a[r][col]
                a[r] = [x - f * y for x, y in zip(a[r], a[col])]
    return [row[n:] for row in a]
