#!/usr/bin/env python3
"""`modelswitch stats` on a generated database of 50,000 turns: how long the SQL takes.

    python benchmarks/stats_bench.py [--turns 50000] [--repeat 5] [--keep PATH]

Writes a database of `--turns` turns (half questions, half answers from six models with
errors, interruptions, fallbacks and two currencies), then times Store.health() over all of it
and over the last 7 days, and the whole `modelswitch stats` command. Prints figures; asserts
nothing (tests/test_stats.py checks the numbers are right on the same kind of database).
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from modelswitch.config.pricing import Cost
from modelswitch.conversation import Message, ModelRef, Timing
from modelswitch.events import Usage
from modelswitch.store.db import SessionInfo, Store, Turn

MODELS = [
    (ModelRef("deepseek", "deepseek-reasoner", "openai", "r1"), "CNY"),
    (ModelRef("siliconflow", "deepseek-ai/DeepSeek-R1", "openai", "sf-r1"), "CNY"),
    (ModelRef("anthropic", "claude-sonnet-4-5", "anthropic", "sonnet"), "USD"),
    (ModelRef("anthropic", "claude-sonnet-4-5", "anthropic", "sonnet-think"), "USD"),
    (ModelRef("openai", "gpt-5", "openai", None), "USD"),
    (ModelRef("local", "smollm2", "openai", "local"), None),
]
SESSION_TURNS = 200
START = datetime(2026, 1, 1, tzinfo=UTC)


def answer(rng: random.Random) -> tuple[Message, Cost | None]:
    ref, currency = rng.choice(MODELS)
    roll = rng.random()
    status = "error" if roll < 0.05 else "interrupted" if roll < 0.08 else "complete"
    started = status != "error" or rng.random() < 0.3
    ttft = round(rng.lognormvariate(0, 0.8), 4) if started else None
    tps = round(rng.uniform(10, 120), 3) if status == "complete" else None
    out = rng.randint(20, 2000)
    return (
        Message(
            role="assistant", text="x" * 20 if started else "", model=ref, status=status,
            usage=Usage(rng.randint(10, 5000), out) if started else None,
            timing=Timing(ttft, round((ttft or 0) + out / 50, 4), tps),
            fallback_from="r1" if ref.alias == "sf-r1" and rng.random() < 0.2 else None,
            error="503 server busy" if status == "error" else None,
        ),
        Cost(round(out * 1e-6, 8), currency) if currency and started else None,
    )


def populate(store: Store, turns: int, seed: int = 19) -> list[Turn]:
    """`turns` turns (questions and answers alternating) spread over the year, in sessions of
    SESSION_TURNS. Returns the answers as written (with their `created`)."""
    rng = random.Random(seed)
    answers: list[Turn] = []
    for first in range(0, turns, SESSION_TURNS):
        batch: list[Turn] = []
        day = START + timedelta(minutes=first)  # 50,000 turns: about 35 days
        for k in range(min(SESSION_TURNS, turns - first)):
            when = day + timedelta(seconds=k)
            if k % 2 == 0:
                batch.append(Turn(Message(role="user", text="q"), created=when))
            else:
                message, cost = answer(rng)
                batch.append(Turn(message, cost, alternate=rng.random() < 0.1, created=when))
        info = SessionInfo(0, None, day, day)
        store.import_session(info, batch)
        answers += [t for t in batch if t.message.role == "assistant"]
    return answers


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--turns", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--keep", type=Path, help="write the database here and leave it")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ms-stats-"))
    path = args.keep or tmp / "modelswitch.db"
    try:
        t0 = time.perf_counter()
        with Store.open(path) as store:
            populate(store, args.turns)
        print(f"generated {args.turns:,} turns in {time.perf_counter() - t0:.2f} s ({path.stat().st_size / 1e6:.1f} MB)")
        with Store.open(path) as store:
            last = START + timedelta(days=40)
            for label, since in (("all", None), ("last 7 days", last - timedelta(days=7))):
                times = []
                for _ in range(args.repeat):
                    t = time.perf_counter()
                    rows = store.health(since)
                    times.append(time.perf_counter() - t)
                print(f"Store.health ({label}): median {statistics.median(times) * 1000:.1f} ms, "
                      f"min {min(times) * 1000:.1f} ms over {args.repeat} runs; {len(rows)} models")
        exe = shutil.which("modelswitch", path=str(Path(sys.executable).parent))
        if exe:
            env = {"XDG_DATA_HOME": str(tmp / "xdg"), "PATH": "/usr/bin:/bin"}
            (tmp / "xdg" / "modelswitch").mkdir(parents=True)
            shutil.copy(path, tmp / "xdg" / "modelswitch" / "modelswitch.db")
            times = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                subprocess.run([exe, "stats", "--json"], env=env, check=True, capture_output=True)
                times.append(time.perf_counter() - t)
            print(f"`modelswitch stats --json` (process, start-up included): median "
                  f"{statistics.median(times) * 1000:.0f} ms")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
