"""Stops a managed server that a chat or `ask` started once nobody has used it for a while.

Run as its own small process (`python -m modelswitch.local.idle ROOT CACHE PID MINUTES`), in its
own session, so it outlives the chat that started the server, as the server does. "Used" is the
newest of: the server's log (llama-server writes a line per request), the state file, and the
`last-used` file every answer touches through `ensure_running`.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path

from .server import LocalError, LocalPaths, read_state, stop


def last_activity(paths: LocalPaths) -> float:
    times = []
    for f in (paths.server_log, paths.last_used, paths.state):
        with contextlib.suppress(OSError):
            times.append(f.stat().st_mtime)
    return max(times, default=0.0)


def watch(paths: LocalPaths, server_pid: int, minutes: float) -> None:
    idle_s = minutes * 60
    interval = max(0.05, min(30.0, idle_s / 10))
    tmp = paths.idle_marker.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), "server_pid": server_pid, "minutes": minutes}), "utf-8")
    os.replace(tmp, paths.idle_marker)
    try:
        while True:
            time.sleep(interval)
            state, _ = read_state(paths)
            if state is None or state.pid != server_pid:
                return  # stopped, or replaced by a server someone else watches
            if time.time() - last_activity(paths) >= idle_s:
                with contextlib.suppress(LocalError):
                    stop(paths)
                return
    finally:
        with contextlib.suppress(OSError, ValueError):
            if json.loads(paths.idle_marker.read_text("utf-8")).get("pid") == os.getpid():
                paths.idle_marker.unlink()


def main(argv: list[str]) -> int:
    root, cache, pid, minutes = argv
    watch(LocalPaths(root=Path(root), cache=Path(cache)), int(pid), float(minutes))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
