#!/usr/bin/env python3
"""CPU seconds to draw a streamed Markdown answer through render.py in a pseudo-terminal.

Each run forks a child on a fresh 24x80 pty; the child builds an answer of N chunks (headings,
paragraphs, lists, code fences, a table, optional reasoning chunks first) and feeds it as fast as
it can through make_renderer(terminal=True). The parent drains the pty and takes the child's
user+sys CPU from wait4. Sizes run interleaved; the median of --repeat runs is reported.

    .venv/bin/python benchmarks/render_bench.py [--sizes 2000 20000] [--reasoning 500] [--repeat 3]

Targets (issue 8): 2,000 chunks <= 2 s CPU; 20,000 chunks <= 12x the 2,000 figure.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import statistics
import struct
import sys
import termios
from dataclasses import dataclass

ROWS, COLS = 24, 80

CHILD = r"""
import re, sys, time
n, reasoning_n, mode, pace = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], float(sys.argv[4])

def section(k):
    return (
        f"## Section {k}\n\n"
        f"Paragraph {k} explains things with **bold**, `inline code` and a "
        f"[link](https://example.com/{k}). It goes on for a while so that it wraps "
        f"across more than one line of an eighty-column terminal, as answers do.\n\n"
        f"- first point about {k}\n- second point with `code`\n  - a nested point\n"
        f"- third point\n\n"
        f"1. step one\n2. step two\n\n"
        f"```python\ndef func_{k}(x: int) -> int:\n    # a comment, not a heading\n\n"
        f"    return x * {k}\n```\n\n"
        f"| key | value |\n|-----|-------|\n| a{k} | {k} |\n\n"
        f"> A quoted remark number {k}.\n\n"
    )

def chunks(count, make):
    out, k = [], 0
    while len(out) < count:
        out += re.findall(r"\s*\S+|\s+", make(k))
        k += 1
    return out[:count]

text_chunks = chunks(n, section)
thoughts = chunks(reasoning_n, lambda k: f"Let me think about part {k} of the question carefully. ")

from modelswitch.conversation import Message, ModelRef, Timing
from modelswitch.events import Usage
from modelswitch.ui.render import make_renderer

start = time.process_time()
r = make_renderer(terminal=True, reasoning=mode)
r.begin("bench")
for t in thoughts:
    r.reasoning(t)
    if pace:
        time.sleep(pace)
for t in text_chunks:
    r.text(t)
    if pace:
        time.sleep(pace)
r.end(Message("assistant", "".join(text_chunks), model=ModelRef("p", "m", "openai", "bench"),
              timing=Timing(0.1, 1.0, 100.0), usage=Usage(10, n + reasoning_n, reasoning_n)), None)
sys.stdout.flush()
sys.stderr.write(f"\nRENDER_CPU {time.process_time() - start:.4f}\n")
"""


@dataclass(frozen=True)
class Run:
    cpu_s: float  # child's user+sys, whole process (interpreter start and imports included)
    render_cpu_s: float  # child's CPU between make_renderer() and end() returning
    max_rss_mib: float
    bytes_out: int


def run_once(n: int, reasoning_n: int, mode: str, pace: float = 0.0) -> Run:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLUMNS", "LINES")}
    env["TERM"] = "xterm-256color"
    pid, master = pty.fork()
    if pid == 0:  # child: size the terminal before rich looks at it
        fcntl.ioctl(1, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
        os.execve(sys.executable, [sys.executable, "-c", CHILD, str(n), str(reasoning_n), mode, str(pace)],
                  env)
    chunks: list[bytes] = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed its side
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    _, status, usage = os.wait4(pid, 0)
    output = b"".join(chunks)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"child failed for n={n}:\n{output[-2000:].decode(errors='replace')}")
    marker = output.rfind(b"RENDER_CPU ")
    render_cpu = float(output[marker + 11 :].split()[0]) if marker >= 0 else float("nan")
    return Run(
        cpu_s=usage.ru_utime + usage.ru_stime,
        render_cpu_s=render_cpu,
        max_rss_mib=usage.ru_maxrss / 1024,
        bytes_out=len(output),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--reasoning", type=int, default=0, help="reasoning chunks before the answer")
    parser.add_argument("--mode", default="collapse", choices=["show", "collapse", "hide"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pace", type=float, default=0.0,
                        help="seconds to sleep after each chunk (0: as fast as possible); a paced "
                        "stream spreads the answer over many live frames")
    args = parser.parse_args()

    baseline = [run_once(0, 0, args.mode) for _ in range(args.repeat)]
    runs: dict[int, list[Run]] = {n: [] for n in args.sizes}
    for _ in range(args.repeat):  # interleaved, so drift in machine load hits every size alike
        for n in args.sizes:
            runs[n].append(run_once(n, args.reasoning, args.mode, args.pace))

    base = statistics.median(r.cpu_s for r in baseline)
    print(f"pty {ROWS}x{COLS}, reasoning chunks {args.reasoning} ({args.mode}), "
          f"pace {args.pace} s/chunk, median of {args.repeat}")
    print(f"{'chunks':>8}  {'cpu s':>7}  {'render s':>8}  {'rss MiB':>7}  {'bytes out':>9}")
    print(f"{0:>8}  {base:>7.3f}  {'':>8}  {statistics.median(r.max_rss_mib for r in baseline):>7.1f}"
          f"  {'':>9}   (interpreter + imports only)")
    medians: dict[int, float] = {}
    for n in args.sizes:
        cpu = statistics.median(r.cpu_s for r in runs[n])
        medians[n] = cpu
        render = statistics.median(r.render_cpu_s for r in runs[n])
        rss = statistics.median(r.max_rss_mib for r in runs[n])
        out = int(statistics.median(r.bytes_out for r in runs[n]))
        print(f"{n:>8}  {cpu:>7.3f}  {render:>8.3f}  {rss:>7.1f}  {out:>9}")
    sizes = sorted(args.sizes)
    for small, large in zip(sizes, sizes[1:]):
        ratio = medians[large] / medians[small]
        net = (medians[large] - base) / max(medians[small] - base, 1e-9)
        print(f"ratio {large}/{small}: {ratio:.2f}x (net of start-up: {net:.2f}x; "
              f"linear would be {large / small:.0f}x)")
    if 2000 in medians:
        print(f"target 2000 chunks <= 2 s CPU: {'met' if medians[2000] <= 2 else 'MISSED'}")
    if 2000 in medians and 20000 in medians:
        ok = medians[20000] <= 12 * medians[2000]
        print(f"target 20000 <= 12x 2000: {'met' if ok else 'MISSED'}")


if __name__ == "__main__":
    main()
