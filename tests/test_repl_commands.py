"""Slash commands are registered explicitly: importing the built-in commands declares them, and only
`commands.register` (which the REPL calls) makes them dispatchable."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
from modelswitch.repl import builtins, commands
assert commands.names() == [], commands.names()
assert {c.name for c in builtins.BUILTINS} >= {"model", "set", "compare", "help", "exit"}
commands.register(builtins.BUILTINS)
assert "/model" in commands.names() and "/m" in commands.names()
assert commands.lookup("/m").name == "model"
print("ok")
"""


def test_importing_the_builtins_registers_nothing_until_register() -> None:
    # A fresh interpreter: the registry is process state, and other tests run REPLs.
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ok\n"
