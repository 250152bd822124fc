#!/usr/bin/env python3
"""modelswitch against two floors (curl, a bare httpx client) on one loopback stream, interleaved.

    python benchmarks/run.py [--sizes 2000,20000] [--repeat 3] [--reasoning] [--peer "llm -m x"]

A server process streams N OpenAI-style SSE chunks (Markdown with headings, lists and code
fences) as fast as it can, so the client is the bottleneck. For each client it prints median CPU
seconds (user+sys of the child, from wait4), wall seconds, peak RSS, and how long after the
server's first byte the first answer byte reached the client's stdout (a pipe or a pty).
Two floors: curl (bytes to stdout, no parsing) and benchmarks/floor.py (httpx, SSE lines decoded,
content deltas written: the least any Python client does); CPU/py is the ratio to the second.
--peer CMD runs another client against the same server; its command gets OPENAI_BASE_URL and
OPENAI_API_KEY in the environment and the prompt as its last argument.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import pty
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXE = shutil.which("modelswitch", path=str(Path(sys.executable).parent)) or shutil.which("modelswitch")

MARKDOWN = [
    "## Section {i}\n\n", "Some **bold** text and `code` in ", "a paragraph that goes on ", "for a while.\n\n",
    "- first item\n", "- second item with *emphasis*\n", "- third item\n\n",
    "```python\n", "def f{i}(x):\n", "    return x * {i}\n", "```\n\n",
]


def body(n: int, reasoning: int) -> bytes:
    """One HTTP/1.1 chunked response: `reasoning` reasoning chunks, then n content chunks."""
    parts = []
    for i in range(reasoning):
        ev = {"choices": [{"index": 0, "delta": {"reasoning_content": f"thinking {i} "}, "finish_reason": None}]}
        parts.append(f"data: {json.dumps(ev)}\n\n".encode())
    for i in range(n):
        text = MARKDOWN[i % len(MARKDOWN)].format(i=i // len(MARKDOWN))
        ev = {"id": "bench", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
        parts.append(f"data: {json.dumps(ev)}\n\n".encode())
    fin = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
           "usage": {"prompt_tokens": 10, "completion_tokens": n, "total_tokens": n + 10}}
    parts += [f"data: {json.dumps(fin)}\n\n".encode(), b"data: [DONE]\n\n"]
    out = bytearray(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
                    b"Connection: close\r\n\r\n")
    for p in parts:
        out += b"%x\r\n%s\r\n" % (len(p), p)
    out += b"0\r\n\r\n"
    return bytes(out)


def serve(sock: socket.socket, bodies: dict[int, bytes], stamps: str) -> None:
    """Serve /N/... with the N-chunk body; log the monotonic time of each response's first byte."""
    while True:
        conn, _ = sock.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            head, _, rest = data.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            while len(rest) < length:
                rest += conn.recv(65536)
            path = head.split(b" ")[1].decode()
            n = int(path.strip("/").split("/")[0])
            with open(stamps, "a") as f:
                f.write(f"{time.monotonic()}\n")
            conn.sendall(bodies[n])


@dataclass
class Run:
    cpu: float
    wall: float
    rss_mib: float
    first_byte_after_server: float | None


def last_stamp(stamps: str) -> float | None:
    lines = Path(stamps).read_text().split()
    return float(lines[-1]) if lines else None


PY_FLOOR = "python httpx (floor)"
GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


def measure(cmd: list[str], env: dict[str, str], stamps: str, *, tty: bool) -> Run:
    """Run one client; CPU from wait4, peak RSS from GNU time when present.

    wait4's ru_maxrss is useless here: Linux carries the spawning process's high-water mark across
    exec, so every child would report at least this script's own size. GNU time forks a fresh
    process for the command and reports that one's peak.
    """
    Path(stamps).write_text("")
    rss_file = stamps + ".rss"
    if GNU_TIME:
        cmd = [GNU_TIME, "-f", "%M", "-o", rss_file, *cmd]
    start = time.monotonic()
    first: float | None = None
    if tty:
        master, slave = pty.openpty()
        os.set_blocking(master, True)
        proc = subprocess.Popen(cmd, env={**env, "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "40"},
                                stdin=slave, stdout=slave, stderr=slave, close_fds=True)
        os.close(slave)
        fd = master
    else:
        proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: the pty's other side closed
            break
        if not data:
            break
        if first is None and (not tty or b"Section" in data):
            first = time.monotonic()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    if tty:
        os.close(master)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{cmd[0]} failed (exit {os.waitstatus_to_exitcode(status)})")
    served = last_stamp(stamps)
    after = (first - served) if (first is not None and served is not None) else None
    rss_kib = int(Path(rss_file).read_text().split()[-1]) if GNU_TIME else usage.ru_maxrss
    return Run(usage.ru_utime + usage.ru_stime, wall, rss_kib / 1024, after)


def repl_gap(env: dict[str, str], rounds: int = 5) -> list[float]:
    """Seconds from an answer's footer reaching the terminal to the next prompt being drawn."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([EXE, "chat"], env={**env, "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "40",
                                               "PROMPT_TOOLKIT_NO_CPR": "1"},
                            stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    gaps: list[float] = []
    buf = b""

    def wait_for(token: bytes, start: int) -> tuple[float, int]:
        nonlocal buf
        while True:
            at = buf.find(token, start)
            if at >= 0:
                return time.monotonic(), at + len(token)
            buf += os.read(master, 65536)

    _, pos = wait_for("m \u203a".encode(), 0)
    for _ in range(rounds):
        os.write(master, b"go\r")
        t_footer, pos = wait_for(b"tokens", pos)
        t_prompt, pos = wait_for("m \u203a".encode(), pos)
        gaps.append(t_prompt - t_footer)
    os.write(master, b"/exit\r")
    proc.wait(timeout=30)
    os.close(master)
    return gaps


def fmt(runs: list[Run]) -> tuple[float, float, float, float | None]:
    cpu = statistics.median(r.cpu for r in runs)
    wall = statistics.median(r.wall for r in runs)
    rss = max(r.rss_mib for r in runs)
    fb = [r.first_byte_after_server for r in runs if r.first_byte_after_server is not None]
    return cpu, wall, rss, (statistics.median(fb) if fb else None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="2000,20000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--reasoning", action="store_true", help="add 200 reasoning chunks before the answer")
    ap.add_argument("--peer", action="append", default=[], help="another client command to measure")
    ap.add_argument("--no-pty", action="store_true", help="skip the rendered-in-a-terminal runs")
    args = ap.parse_args()
    if EXE is None:
        raise SystemExit("modelswitch is not installed in this environment (pip install -e .)")
    sizes = [int(s) for s in args.sizes.split(",")]
    bodies = {n: body(n, 200 if args.reasoning else 0) for n in sizes}
    sock = socket.create_server(("127.0.0.1", 0), backlog=16)
    port = sock.getsockname()[1]
    tmp = tempfile.mkdtemp(prefix="msbench-")
    stamps = os.path.join(tmp, "stamps")
    server = multiprocessing.Process(target=serve, args=(sock, bodies, stamps), daemon=True)
    server.start()

    cfg = Path(tmp) / "config.toml"
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update({"XDG_DATA_HOME": os.path.join(tmp, "data"), "XDG_CONFIG_HOME": os.path.join(tmp, "cfg"),
                "MODELSWITCH_CONFIG": str(cfg), "BENCH_KEY": "sk-bench-0000000000"})
    results: dict[tuple[str, int], tuple[float, float, float, float | None]] = {}
    curl = shutil.which("curl")
    req = json.dumps({"model": "m", "stream": True, "messages": [{"role": "user", "content": "go"}]})

    for n in sizes:
        cfg.write_text(f'default = "m"\n[providers.bench]\nbase_url = "http://127.0.0.1:{port}/{n}/v1"\n'
                       f'api_key_env = "BENCH_KEY"\n[providers.bench.models.m]\nid = "bench"\n')
        clients: dict[str, tuple[list[str], bool]] = {
            "modelswitch ask | pipe": ([EXE, "ask", "go"], False),
        }
        if not args.no_pty:
            clients["modelswitch ask (pty)"] = ([EXE, "ask", "go"], True)
        if curl:
            clients = {"curl (floor)": ([curl, "-sN", "-H", "Content-Type: application/json", "-d", req,
                                         f"http://127.0.0.1:{port}/{n}/v1/chat/completions"], False), **clients}
        clients = {PY_FLOOR: ([sys.executable, str(HERE / "floor.py"),
                               f"http://127.0.0.1:{port}/{n}/v1/chat/completions"], False), **clients}
        for peer in args.peer:
            clients[f"peer: {peer}"] = ([*shlex.split(peer), "go"], False)
        runs: dict[str, list[Run]] = {name: [] for name in clients}
        peer_env = {**env, "OPENAI_BASE_URL": f"http://127.0.0.1:{port}/{n}/v1", "OPENAI_API_KEY": "sk-bench"}
        for _ in range(args.repeat):  # interleaved, so drift in machine load hits every client alike
            for name, (cmd, tty) in clients.items():
                runs[name].append(measure(cmd, peer_env if name.startswith("peer") else env, stamps, tty=tty))
        for name, rs in runs.items():
            results[(name, n)] = fmt(rs)

    gaps = [] if args.no_pty else repl_gap(env)
    starts = {}
    for flag in ("--version", "--help"):
        rs = [measure([EXE, flag], env, stamps, tty=False) for _ in range(max(3, args.repeat))]
        starts[flag] = fmt(rs)
    server.terminate()

    print(f"\nmodelswitch benchmark · {os.cpu_count()} cores · median of {args.repeat} · "
          f"{'with 200 reasoning chunks · ' if args.reasoning else ''}{time.strftime('%Y-%m-%d')}\n")
    print(f"{'client':<28} {'chunks':>7} {'CPU s':>8} {'wall s':>8} {'peak RSS':>9} {'1st byte':>10} {'CPU/floor':>10} {'CPU/py':>7}")
    for (name, n), (cpu, wall, rss, fb) in results.items():
        floor = results.get(("curl (floor)", n))
        ratio = f"{cpu / floor[0]:.0f}x" if floor and floor[0] > 0 and not name.startswith("curl") else ""
        py = results.get((PY_FLOOR, n))
        py_ratio = f"{cpu / py[0]:.2f}x" if py and py[0] > 0 and not name.endswith("(floor)") else ""
        fbs = f"+{fb * 1000:.1f} ms" if fb is not None else "—"
        print(f"{name:<28} {n:>7} {cpu:>8.3f} {wall:>8.3f} {rss:>6.0f} MiB {fbs:>10} {ratio:>10} {py_ratio:>7}")
    for flag, (cpu, wall, rss, _) in starts.items():
        print(f"{'modelswitch ' + flag:<28} {'':>7} {cpu:>8.3f} {wall:>8.3f} {rss:>6.0f} MiB")
    if gaps:
        print(f"REPL: next prompt drawn {statistics.median(gaps) * 1000:.0f} ms (median; max "
              f"{max(gaps) * 1000:.0f} ms) after an answer's footer ({sizes[-1]}-chunk answers)")
    if len(sizes) >= 2:
        a, b = sizes[0], sizes[-1]
        print()
        for name in {k[0] for k in results}:
            if (name, a) in results and (name, b) in results and results[(name, a)][0] > 0:
                print(f"{name}: {b} vs {a} chunks = {results[(name, b)][0] / results[(name, a)][0]:.1f}x CPU "
                      f"(input {b / a:.0f}x)")
    print("\n'1st byte' is how long after the server sent its first byte the first answer byte reached the "
          "client's stdout.")


if __name__ == "__main__":
    main()
