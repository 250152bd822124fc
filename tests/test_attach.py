"""`/file PATH`: what is attached is a regular text file, its size known before a byte is read.

Each refusal runs in a child process with its address space capped and a safety timeout, so the
code before the fix (which read /dev/zero until memory ran out and blocked on a FIFO for ever)
fails these tests instead of taking the machine down with it.
"""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
from pathlib import Path

import pytest

CHILD = """
import sys
from modelswitch import errors
from modelswitch.engine.session import ChatSession
chat = ChatSession(None, None)  # attach() needs neither a config nor a model
try:
    print("OK", chat.attach(sys.argv[1]))
except errors.UsageError as exc:
    print("REFUSED", exc.message)
"""


def attach_in_child(path: str) -> str:
    def cap() -> None:
        limit = 1 << 30  # far above what a 2 MB attachment needs, far below /dev/zero read whole
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    try:
        proc = subprocess.run([sys.executable, "-c", CHILD, path], capture_output=True, text=True,
                              timeout=60, preexec_fn=cap, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail(f"attaching {path} did not return (blocked reading it)")
    assert proc.returncode == 0, proc.stderr[-500:]
    assert "Traceback" not in proc.stderr
    return proc.stdout.strip()


def test_dev_zero_is_refused_as_a_device() -> None:
    out = attach_in_child("/dev/zero")
    assert out == "REFUSED /dev/zero is a device; only regular text files can be attached"


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert attach_in_child(str(fifo)) == f"REFUSED {fifo} is a FIFO; only regular text files can be attached"


def test_an_empty_directory_and_a_socket_are_refused(tmp_path: Path) -> None:
    # A directory is an attachment now (its text files); one with none is refused.
    assert attach_in_child(str(tmp_path)) == f"REFUSED {tmp_path} has no text files to attach"
    path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))
        assert attach_in_child(str(path)) == f"REFUSED {path} is a socket; only regular text files can be attached"


def test_a_huge_file_is_refused_by_its_size_before_reading(tmp_path: Path) -> None:
    # Sparse: 4 GB long, no disk used. Read whole it would not even fit under the child's cap.
    big = tmp_path / "big.txt"
    with big.open("wb") as f:
        f.truncate(4 << 30)
    assert attach_in_child(str(big)) == f"REFUSED {big} is 4295.0 MB; attach at most 2 MB"


def test_a_text_file_under_the_limit_still_attaches(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("x" * 2_000_000)
    assert attach_in_child(str(notes)) == "OK attached notes.txt (2,000,000 bytes) to your next message"
    notes.write_text("x" * 2_000_001)
    assert attach_in_child(str(notes)) == f"REFUSED {notes} is 2.0 MB; attach at most 2 MB"
