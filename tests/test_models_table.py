"""`modelswitch models` in a real terminal at 80 and 120 columns: one short key cell a model, the
way to set a key said once underneath, nothing cut."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest

from modelswitch.config.load import load
from modelswitch.engine.catalog import all_models
from tests.loopback import command_env

pexpect = pytest.importorskip("pexpect")
EXE = shutil.which("modelswitch", path=str(Path(sys.executable).parent))
pytestmark = [pytest.mark.pty, pytest.mark.skipif(EXE is None, reason="the modelswitch console script is not installed")]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def models_on_screen(tmp_path: Path, columns: int) -> list[str]:
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
        assert p.api_key_env and p.api_key_env in text.split()  # every variable whole, on one line
        assert m.full_id in flat
    if columns == 120:  # one line a model, the id whole on it
        for p, m in models:
            [row] = [line for line in lines if re.match(rf"{re.escape(m.alias or '')}\s+{re.escape(m.full_id)}\s", line)]
            assert f"needs {p.api_key_env}" in row
