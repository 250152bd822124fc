"""Messages to a terminal wrap between words at its width (a terminal on its own cuts `anthropic`
into `anthropi` / `c`); the same message to a pipe stays one line, as is."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.loopback import command_env

pexpect = pytest.importorskip("pexpect")
pyte = pytest.importorskip("pyte")
EXE = shutil.which("modelswitch", path=str(Path(sys.executable).parent))
pytestmark = pytest.mark.skipif(EXE is None, reason="the modelswitch console script is not installed")
PROVIDERS = ("deepseek hunyuan openai anthropic gemini openrouter qwen moonshot doubao zhipu siliconflow"
             " groq mistral xai perplexity").split()


def _env(tmp_path: Path) -> dict[str, str]:
    cfg = tmp_path / "none.toml"  # the built-in presets only
    cfg.write_text("", "utf-8")
    return command_env(cfg, tmp_path, COLUMNS="80", LINES="24", NO_COLOR="1")


@pytest.mark.pty
def test_an_error_wraps_between_words_at_80_columns(tmp_path: Path) -> None:
    child = pexpect.spawn(EXE, ["keys", "set", "bogus"], env=_env(tmp_path), encoding="utf-8",
                          dimensions=(24, 80), timeout=60)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2
    screen = pyte.Screen(80, 24)
    pyte.Stream(screen).feed((child.before or "").replace("\r\n", "\n").replace("\n", "\r\n"))
    lines = [row.rstrip() for row in screen.display if row.strip()]
    assert len(lines) > 1 and lines[0].startswith("error: unknown provider 'bogus'")
    words = " ".join(lines).replace(",", " ").split()
    for name in PROVIDERS:
        assert name in words  # every provider whole on one line of the screen


def test_piped_the_error_stays_one_line(tmp_path: Path) -> None:
    done = subprocess.run([EXE, "keys", "set", "bogus"], env=_env(tmp_path), capture_output=True,
                          text=True, stdin=subprocess.DEVNULL)
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith("error: unknown provider 'bogus'; providers that take a key: deepseek,")
    assert line.endswith(", ".join(PROVIDERS[-3:]))
