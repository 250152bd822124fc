"""A real HTTP/1.1 server on 127.0.0.1 that plays scripted replies byte for byte.

Tests queue `Reply` objects; each request takes the first queued reply whose path matches (or the
default responder). Bodies go out with chunked transfer encoding, one HTTP chunk per scripted
chunk, with optional pauses, a connection dropped mid-stream, or a hang before the headers.
Every request is recorded (method, path, headers, parsed JSON body) for assertions.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"


@dataclass
class Reply:
    status: int = 200
    chunks: list[bytes] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "text/event-stream"
    delay: float = 0.0  # seconds between chunks
    drop_after: int | None = None  # close the socket after this many chunks, mid-stream
    hang: float = 0.0  # seconds to wait before sending anything
    chunked: bool = True
    path: str | None = None  # only requests whose path contains this take the reply

    @classmethod
    def from_bytes(cls, body: bytes, size: int | None = None, **kw: object) -> Reply:
        """Split `body` into chunks of `size` bytes (whole body when None)."""
        if size is None:
            chunks = [body]
        else:
            chunks = [body[i : i + size] for i in range(0, len(body), size)]
        return cls(chunks=chunks, **kw)  # type: ignore[arg-type]

    @classmethod
    def fixture(cls, name: str, size: int | None = None, **kw: object) -> Reply:
        return cls.from_bytes((FIXTURES / name).read_bytes(), size, **kw)

    @classmethod
    def sse(cls, *payloads: object, done: bool = True, **kw: object) -> Reply:
        """One `data:` event per payload (dicts are JSON-encoded), then `data: [DONE]`."""
        chunks = []
        for p in payloads:
            text = p if isinstance(p, str) else json.dumps(p)
            chunks.append(f"data: {text}\n\n".encode())
        if done:
            chunks.append(b"data: [DONE]\n\n")
        return cls(chunks=chunks, **kw)  # type: ignore[arg-type]

    @classmethod
    def say(cls, text: str, *, usage: tuple[int, int] = (10, 4), **kw: object) -> Reply:
        """An OpenAI-style stream answering `text` in one chunk, then stop with (prompt, completion) usage."""
        return cls.sse(
            {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]},
            {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
             "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1]}},
            **kw,
        )

    @classmethod
    def json(cls, status: int, body: object, **kw: object) -> Reply:
        raw = body if isinstance(body, (bytes, str)) else json.dumps(body)
        raw = raw.encode() if isinstance(raw, str) else raw
        return cls(status=status, chunks=[raw], content_type="application/json", chunked=False, **kw)  # type: ignore[arg-type]


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    raw: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.raw)


def command_env(config: Path, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment for running the installed command on `config`, as in a colour terminal:
    no real keys, private XDG folders, and no terminal queries pexpect cannot answer."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "NO_COLOR"}
    env.update({
        "MODELSWITCH_CONFIG": str(config), "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
        "XDG_DATA_HOME": str(tmp_path / "data"), "TERM": "xterm-256color", "PROMPT_TOOLKIT_NO_CPR": "1",
        **extra,
    })
    return env


class _QuietServer(ThreadingHTTPServer):
    """A client that hangs up mid-request (Ctrl-C, a cancelled route, a timeout under test) is
    normal here: socketserver's traceback for it would land in the stderr a test is reading."""

    def handle_error(self, request: object, client_address: object) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class LoopbackServer:
    def __init__(self, host: str = "127.0.0.1") -> None:  # any of 127.0.0.0/8
        self.replies: list[Reply] = []
        self.requests: list[Received] = []
        self.default: Callable[[Received], Reply] | None = None
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                rec = Received(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, raw)
                reply = server._take(rec)
                server._play(self, reply)

            do_GET = do_POST = _handle

        self.httpd = _QuietServer((host, 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def add(self, *replies: Reply) -> LoopbackServer:
        with self._lock:
            self.replies.extend(replies)
        return self

    def _take(self, rec: Received) -> Reply:
        with self._lock:
            self.requests.append(rec)
            for i, r in enumerate(self.replies):
                if r.path is None or r.path in rec.path:
                    return self.replies.pop(i)
        if self.default is not None:
            return self.default(rec)
        return Reply.json(500, {"error": {"message": f"loopback: no reply scripted for {rec.path}"}})

    @staticmethod
    def _play(h: BaseHTTPRequestHandler, r: Reply) -> None:
        if r.hang:
            time.sleep(r.hang)
        try:
            h.send_response(r.status)
            h.send_header("Content-Type", r.content_type)
            for k, v in r.headers.items():
                h.send_header(k, v)
            if r.chunked:
                h.send_header("Transfer-Encoding", "chunked")
            else:
                h.send_header("Content-Length", str(sum(len(c) for c in r.chunks)))
            h.end_headers()
            h.wfile.flush()
            for i, chunk in enumerate(r.chunks):
                if r.drop_after is not None and i >= r.drop_after:
                    h.wfile.flush()
                    h.connection.shutdown(socket.SHUT_RDWR)
                    h.close_connection = True
                    return
                if r.chunked:
                    if chunk:
                        h.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                else:
                    h.wfile.write(chunk)
                h.wfile.flush()
                if r.delay:
                    time.sleep(r.delay)
            if r.drop_after is not None:
                h.connection.shutdown(socket.SHUT_RDWR)
                h.close_connection = True
                return
            if r.chunked:
                h.wfile.write(b"0\r\n\r\n")
            h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            h.close_connection = True

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
