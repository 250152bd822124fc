"""The layer rules hold: ARCHITECTURE.md's drawing, checked by import-linter and by what a run loads."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = shutil.which("lint-imports", path=str(Path(sys.executable).parent))


@pytest.mark.skipif(LINT is None, reason="import-linter is not installed (pip install -e '.[test]')")
def test_every_import_contract_is_kept() -> None:
    assert LINT is not None
    done = subprocess.run([LINT, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


# What a piped `ask` may load is what it uses: no REPL, no terminal drawing, no local-setup code.
# click is installed here (import-linter and the MCP SDK's uvicorn bring it), as for most users:
# httpx would then import its own CLI and rich with it, unless modelswitch keeps that out.
PIPED_ASK = """
import atexit, sys
out = sys.argv[1]
atexit.register(lambda: open(out, "w").write("\\n".join(sorted(sys.modules))))
sys.argv = ["modelswitch", "ask", "hi"]
from modelswitch.cli.main import main
main()
"""


def test_piped_ask_loads_no_repl_no_rich_no_local_setup(tmp_path: Path) -> None:
    from tests.loopback import LoopbackServer, Reply, command_env

    server = LoopbackServer()
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'default = "m"\n[providers.p]\nbase_url = "{server.url}/v1"\napi_key_env = "P_KEY"\n'
                   '[providers.p.models.m]\nid = "m1"\n')
    loaded = tmp_path / "modules.txt"
    try:
        server.add(Reply.say("piped"))
        done = subprocess.run([sys.executable, "-c", PIPED_ASK, str(loaded)], capture_output=True, text=True,
                              env=command_env(cfg, tmp_path, P_KEY="sk-p-0123456789"), stdin=subprocess.DEVNULL,
                              timeout=60)
    finally:
        server.close()
    assert done.returncode == 0, done.stderr
    assert done.stdout == "piped\n"
    modules = set(loaded.read_text().split())
    assert "modelswitch.store.db" in modules  # every ask is saved (`ask -c` continues it)
    unwanted = {"rich", "pygments", "click", "prompt_toolkit", "modelswitch.repl.loop", "modelswitch.ui.live", "modelswitch.ui.compare",
                "modelswitch.local.setup", "modelswitch.engine.session", "modelswitch.engine.compare"}
    assert not unwanted & modules
