"""`modelswitch stats`: per-model health computed in SQL, checked against the same figures
computed in Python over a generated database of 50,000 turns (benchmarks/stats_bench.py times it)."""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
import subprocess
import sys
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from modelswitch.conversation import Message, ModelRef, Timing
from modelswitch.store.db import Store, Turn
from modelswitch.store.records import ModelHealth

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "stats_bench.py"


def _bench() -> Any:
    spec = importlib.util.spec_from_file_location("stats_bench", BENCH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def nearest_rank(values: list[float], p: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[max(1, math.ceil(p * len(values))) - 1]


def expected(answers: list[Turn]) -> dict[str, dict[str, Any]]:
    """The figures by hand (well, by Python), one model at a time."""
    groups: dict[str, list[Turn]] = defaultdict(list)
    for t in answers:
        ref = t.message.model
        assert ref is not None
        groups[ref.full_id].append(t)
    fell: dict[str, int] = defaultdict(int)
    for t in answers:
        if t.message.fallback_from:
            fell[t.message.fallback_from] += 1
    out = {}
    for key, turns in groups.items():
        aliases = sorted({t.message.model.alias for t in turns if t.message.model and t.message.model.alias})
        ttft = [t.message.timing.ttft_s for t in turns if t.message.timing and t.message.timing.ttft_s is not None]
        tps = [t.message.timing.tokens_per_s for t in turns
               if t.message.timing and t.message.timing.tokens_per_s is not None]
        costs: dict[str, float] = defaultdict(float)
        for t in turns:
            if t.cost:
                costs[t.cost.currency] += t.cost.amount
        out[key] = {
            "aliases": aliases, "answers": len(turns),
            "errors": sum(t.message.status == "error" for t in turns),
            "interrupted": sum(t.message.status == "interrupted" for t in turns),
            "fallbacks": sum(t.message.fallback_from is not None for t in turns),
            "fell_back": sum(fell[a] for a in [key, *aliases]),
            "ttft50": nearest_rank(ttft, 0.5), "ttft95": nearest_rank(ttft, 0.95),
            "tps50": nearest_rank(tps, 0.5),
            "costs": {c: round(a, 8) for c, a in costs.items()},
        }
    return out


def check(rows: list[ModelHealth], want: dict[str, dict[str, Any]]) -> None:
    assert {h.model for h in rows} == set(want)
    for h in rows:
        w = want[h.model]
        assert list(h.aliases) == w["aliases"]
        assert (h.answers, h.errors, h.interrupted, h.fallbacks, h.fell_back) == (
            w["answers"], w["errors"], w["interrupted"], w["fallbacks"], w["fell_back"])
        assert h.ttft_median == w["ttft50"] and h.ttft_p95 == w["ttft95"]
        assert h.tokens_per_s == w["tps50"]
        assert {c.currency: pytest.approx(c.amount, abs=1e-6) for c in h.costs} == w["costs"]


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Turn]]:
    path = tmp_path_factory.mktemp("stats") / "modelswitch" / "modelswitch.db"
    with Store.open(path) as store:
        answers = _bench().populate(store, 50_000)
    return path, answers


def test_health_on_50000_turns_matches_a_python_count(big: tuple[Path, list[Turn]]) -> None:
    path, answers = big
    assert len(answers) == 25_000
    with Store.open(path) as store:
        rows = store.health()
        # sonnet and sonnet-think are one upstream model: one row with both names.
        assert any(h.aliases == ("sonnet", "sonnet-think") for h in rows)
        # r1 fell back to sf-r1 some of the time; the generator put that on the record.
        r1 = next(h for h in rows if h.model == "deepseek/deepseek-reasoner")
        assert r1.fell_back > 0 and 0 < r1.fallback_rate < 1
        check(rows, expected(answers))
        cut = max(t.created for t in answers if t.created) - timedelta(days=3)
        check(store.health(cut), expected([t for t in answers if t.created and t.created >= cut]))


def test_stats_command_json_and_table(big: tuple[Path, list[Turn]], tmp_path: Path) -> None:
    path, answers = big
    xdg = tmp_path / "xdg"
    (xdg / "modelswitch").mkdir(parents=True)
    (xdg / "modelswitch" / "modelswitch.db").write_bytes(path.read_bytes())
    env = {"XDG_DATA_HOME": str(xdg), "PATH": "/usr/bin:/bin", "COLUMNS": "200"}
    exe = shutil.which("modelswitch", path=str(Path(sys.executable).parent))
    assert exe is not None
    run = [exe]
    done = subprocess.run([*run, "stats", "--json"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    by = {m["model"]: m for m in doc["models"]}
    want = expected(answers)
    assert {k: v["answers"] for k, v in by.items()} == {k: v["answers"] for k, v in want.items()}
    assert by["openai/gpt-5"]["ttft_p95_s"] == want["openai/gpt-5"]["ttft95"]
    table = subprocess.run([*run, "stats"], env=env, capture_output=True, text=True)
    assert table.returncode == 0 and "deepseek/deepseek-reasoner (r1)" in table.stdout
    bad = subprocess.run([*run, "stats", "--days", "0"], env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "--days" in bad.stderr and "Traceback" not in bad.stderr


def test_stats_with_no_history(tmp_path: Path) -> None:
    with Store.open(tmp_path / "m.db") as store:
        assert store.health() == []
        sid = store.create_session().id
        store.append(sid, Message(role="user", text="q"),
                     Message(role="assistant", text="a", model=ModelRef("p", "m", "openai", None),
                             timing=Timing(None, 1.0, None)))
        (h,) = store.health()
        assert (h.model, h.answers, h.ttft_median, h.tokens_per_s, h.costs) == ("p/m", 1, None, None, ())


def models_command(tmp_path: Path, models: str) -> tuple[str, dict[str, str]]:
    """The installed command and its environment, on provider `p` with `models` (TOML tables)."""
    exe = shutil.which("modelswitch", path=str(Path(sys.executable).parent))
    assert exe is not None
    cfg = tmp_path / "config.toml"
    cfg.write_text('[providers.p]\nbase_url = "http://127.0.0.1:9/v1"\napi_key = "sk-x-0123456789"\n' + models)
    env = {"XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
           "MODELSWITCH_CONFIG": str(cfg), "PATH": "/usr/bin:/bin", "COLUMNS": "200"}
    return exe, env


def test_models_table_gains_health_columns_and_creates_no_database(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    exe, env = models_command(tmp_path, '[providers.p.models.fast]\nid = "m1"\n[providers.p.models.idle]\nid = "m2"\n')
    db = tmp_path / "data" / "modelswitch" / "modelswitch.db"
    first = subprocess.run([exe, "models"], env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert "ttft p50" not in first.stdout and not db.exists()  # no history yet: no health columns
    with Store.open(db) as store:
        sid = store.create_session().id
        ref = ModelRef("p", "m1", "openai", "fast")
        for ttft, status in ((0.5, "complete"), (0.7, "complete"), (0.9, "error")):
            store.append(sid, Message("user", "q"), Turn(Message("assistant", "a", model=ref, status=status,  # type: ignore[arg-type]
                                                                 timing=Timing(ttft, 2.0, 30.0)),
                                                         created=datetime.now(UTC)))
    done = subprocess.run([exe, "models"], env=env, capture_output=True, text=True)
    line = next(ln for ln in done.stdout.splitlines() if "p/m1" in ln)
    assert "0.70 s" in line and "33%" in line and line.rstrip().endswith("3")
    idle = next(ln for ln in done.stdout.splitlines() if "p/m2" in ln)
    assert " s " not in idle + " " and "%" not in idle


def test_models_health_is_per_alias_when_two_aliases_name_one_model(tmp_path: Path) -> None:
    """v3 and r1 name one model id (thinking off and on): each row shows its own answers' figures,
    as session stats group them, not the two added together."""
    from datetime import UTC, datetime

    exe, env = models_command(tmp_path, '[providers.p.models.v3]\nid = "flash"\n[providers.p.models.r1]\nid = "flash"\n')
    with Store.open(tmp_path / "data" / "modelswitch" / "modelswitch.db") as store:
        sid = store.create_session().id
        for alias, ttft, status in (("v3", 0.25, "complete"), ("r1", 3.5, "complete"), ("r1", 4.5, "error")):
            ref = ModelRef("p", "flash", "openai", alias)
            store.append(sid, Message("user", "q"), Turn(Message("assistant", "a", model=ref, status=status,  # type: ignore[arg-type]
                                                                 timing=Timing(ttft, 5.0, 30.0)),
                                                         created=datetime.now(UTC)))
        unaliased = ModelRef("p", "flash", "openai", None)
        store.append(sid, Message("user", "q"), Message("assistant", "a", model=unaliased, timing=Timing(9.0, 9.5, 1.0)))
        assert {h.model for h in store.health()} == {"p/flash"}  # `stats` still one row a model id
    done = subprocess.run([exe, "models"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    v3 = next(ln for ln in done.stdout.splitlines() if ln.startswith("v3"))
    r1 = next(ln for ln in done.stdout.splitlines() if ln.startswith("r1"))
    assert v3.split()[-4:] == ["0.25", "s", "0%", "1"]
    assert r1.split()[-4:] == ["3.50", "s", "50%", "2"]
