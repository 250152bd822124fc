"""`modelswitch models` in a real terminal at 80 and 120 columns: one short key cell a model, the
way to set a key said once underneath, nothing cut."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest

from modelswitch.config.load import load
from modelswitch.engine.catalog import TABLE_SHORT_KEY_NOTE, all_models
from tests.loopback import command_env

pexpect = pytest.importorskip("pexpect")
EXE = shutil.which("modelswitch", path=str(Path(sys.executable).parent))
pytestmark = [pytest.mark.pty, pytest.mark.skipif(EXE is None, reason="the modelswitch console script is not installed")]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def models_on_screen(tmp_path: Path, columns: int) -> list[str]:
    """The `models` output read off a terminal `columns` wide, in the user's database if any."""
    cfg = tmp_path / "none.toml"  # the built-in presets only, and no key set
    cfg.write_text("", "utf-8")
    env = command_env(cfg, tmp_path, COLUMNS=str(columns), LINES="60", NO_COLOR="1")
    child = pexpect.spawn(EXE, ["models"], env=env, encoding="utf-8", dimensions=(60, columns), timeout=120)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    return [ANSI.sub("", line).rstrip() for line in (child.before or "").replace("\r", "").split("\n")]


@pytest.mark.parametrize("columns", [80, 120])
def test_models_fits_the_terminal_and_says_how_to_set_a_key_once(tmp_path: Path, columns: int) -> None:
    lines = models_on_screen(tmp_path, columns)
    text = "\n".join(lines)
    assert all(len(line) <= columns for line in lines)
    assert "…" not in text  # nothing is cut
    assert "(or `modelswitch keys set" not in text  # the key cell is short...
    assert [line for line in lines if "keys set" in line] == [
        "set a key: modelswitch keys set PROVIDER, or the environment variable named"]  # ...said once
    assert "tools: blank = not declared, offered and the API decides" in lines
    assert "ttft p50" not in text  # no history: no health columns taking the room
    models = all_models(load(tmp_path / "none.toml"))
    header = next(line for line in lines if "provider/model" in line)
    start, end = header.index("provider/model"), header.index("reasoning")
    # The model column read top to bottom: a folded id is whole again.
    flat = "".join(line[start:end].strip() for line in lines[lines.index(header) + 2:])
    for p, m in models:
        # every variable whole, on one line; at 80 columns only `needs`, and where to see the name
        assert p.api_key_env and (p.api_key_env in text.split()) == (columns > 80)
        assert m.full_id in flat
    assert (TABLE_SHORT_KEY_NOTE in lines) == (columns == 80)
    if columns == 120:  # one line a model, the id whole on it
        for p, m in models:
            [row] = [line for line in lines if re.match(rf"{re.escape(m.alias or '')}\s+{re.escape(m.full_id)}\s", line)]
            assert f"needs {p.api_key_env}" in row


def record_answers(tmp_path: Path) -> None:
    """History for v3 and r1 (one model id, thinking off and on): health columns to show."""
    from datetime import UTC, datetime

    from modelswitch.conversation import Message, ModelRef, Timing
    from modelswitch.store.db import Store, Turn

    with Store.open(tmp_path / "data" / "modelswitch" / "modelswitch.db") as store:
        sid = store.create_session().id
        for alias, ttft in (("v3", 0.25), ("r1", 3.5), ("r1", 4.5)):
            ref = ModelRef("deepseek", "deepseek-flash", "openai", alias)
            answer = Message("assistant", "a", model=ref, timing=Timing(ttft, 5.0, 30.0))
            store.append(sid, Message("user", "q"), Turn(answer, created=datetime.now(UTC)))


def cell_below(lines: list[str], row: int, start: int, end: int) -> list[str]:
    """A cell's text line by line: its row, then the lines under it until the next row."""
    out = [lines[row][start:end].strip()]
    for line in lines[row + 1:]:
        if not line.strip() or line[:start].strip():
            break
        out.append(line[start:end].strip())
    return [part for part in out if part]


@pytest.mark.parametrize("history", [False, True], ids=["no-history", "history"])
@pytest.mark.parametrize("columns", [80, 100, 120])
def test_no_alias_id_or_header_is_broken(tmp_path: Path, columns: int, history: bool) -> None:
    if history:
        record_answers(tmp_path)
    lines = models_on_screen(tmp_path, columns)
    assert all(len(line) <= columns for line in lines)
    rule = next(i for i, line in enumerate(lines) if line.startswith("────"))
    head = lines[:rule]
    header_words = " ".join(head).split()
    for word in "alias provider/model reasoning tools key price in/out per 1M".split():
        assert word in header_words  # each header word whole on one line
    start, end = head[-1].index("provider/model"), head[-1].index("reasoning")
    table_end = lines.index("", rule)
    for _, m in all_models(load(tmp_path / "none.toml")):
        [row] = [i for i, line in enumerate(lines[:table_end]) if line.split()[:1] == [m.alias]]  # the alias whole
        pieces = cell_below(lines, row, start, end)
        assert "".join(pieces) == m.full_id  # the id whole, or folded only after a slash
        assert all(p.endswith("/") for p in pieces[:-1])
        assert len(pieces) == 1 or len(m.full_id) > end - start - 2  # folded only when it cannot fit
    text = "\n".join(lines)
    if not history:
        assert "ttft" not in text and "answers" not in header_words
        return
    words = " ".join(lines[rule:]).split()  # health beside the table or in a table of its own
    for word in "ttft p50 errors answers".split():
        assert word in words or word in header_words
    v3 = [line for line in lines if line.split()[:1] == ["v3"]]
    r1 = [line for line in lines if line.split()[:1] == ["r1"]]
    assert any("0.25 s" in line and line.rstrip().endswith(" 1") for line in v3)  # its own figures
    assert any("4.50 s" in line or "3.50 s" in line for line in r1)
    assert any(line.rstrip().endswith(" 2") for line in r1)
