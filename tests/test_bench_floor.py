"""benchmarks/floor.py, the Python floor the benchmark measures modelswitch against, streams what
modelswitch would: the answer's content deltas and nothing else."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.loopback import LoopbackServer, Reply

FLOOR = Path(__file__).resolve().parent.parent / "benchmarks" / "floor.py"


def test_python_floor_writes_the_content_deltas() -> None:
    server = LoopbackServer()
    try:
        server.add(Reply.say("Hello from the floor"))
        done = subprocess.run([sys.executable, str(FLOOR), f"{server.url}/v1/chat/completions"],
                              capture_output=True, text=True, timeout=60)
    finally:
        server.close()
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Hello from the floor"
    assert server.requests[0].json["stream"] is True
