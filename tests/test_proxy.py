"""Proxies from the environment: SOCKS works, a bad setting is a config error, this machine goes direct,
and a dead proxy is reported as the proxy's failure (issue "Trust at the edges", item 13)."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelswitch.cli.main import app
from tests.loopback import LoopbackServer, Reply

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture(autouse=True)
def no_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.lower(), raising=False)


class Socks5Server:
    """A SOCKS5 proxy (RFC 1928: no authentication, CONNECT only) on 127.0.0.1 that relays bytes.

    Host names are resolved through `hosts`, so a test can give the provider a name that is not
    loopback (and therefore must go through the proxy) and still reach a loopback server.
    """

    def __init__(self, hosts: dict[str, str]) -> None:
        self.hosts = hosts
        self.connects: list[tuple[str, int]] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._client, args=(conn,), daemon=True).start()

    def _client(self, conn: socket.socket) -> None:
        with conn:
            _, n_methods = _read(conn, 2)
            _read(conn, n_methods)
            conn.sendall(b"\x05\x00")  # version 5, no authentication
            _, command, _, atyp = _read(conn, 4)
            if atyp == 1:
                host = socket.inet_ntoa(_read(conn, 4))
            elif atyp == 3:
                host = _read(conn, _read(conn, 1)[0]).decode()
            else:
                host = socket.inet_ntop(socket.AF_INET6, _read(conn, 16))
            (port,) = struct.unpack("!H", _read(conn, 2))
            self.connects.append((host, port))
            try:
                assert command == 1
                upstream = socket.create_connection((self.hosts.get(host, host), port))
            except (OSError, AssertionError):
                conn.sendall(b"\x05\x05\x00\x01" + bytes(6))  # connection refused
                return
            with upstream:
                conn.sendall(b"\x05\x00\x00\x01" + bytes(6))  # succeeded
                pump = threading.Thread(target=_relay, args=(upstream, conn), daemon=True)
                pump.start()
                _relay(conn, upstream)
                pump.join()

    def close(self) -> None:
        self.sock.close()


def _read(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def _relay(src: socket.socket, dst: socket.socket) -> None:
    try:
        while chunk := src.recv(65536):
            dst.sendall(chunk)
    except OSError:
        pass
    try:
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


@pytest.fixture
def socks(server: LoopbackServer) -> Iterator[Socks5Server]:
    proxy = Socks5Server({"provider.test": "127.0.0.1"})
    yield proxy
    proxy.close()


def _config(tmp_path: Path, base_url: str) -> Path:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[providers.x]\nbase_url = "{base_url}/v1"\napi_key_env = "X_KEY"\nretries = 0\n'
                   '[providers.x.models.m]\nid = "m"\n')
    return cfg


def _ask(cfg: Path, monkeypatch: pytest.MonkeyPatch, **env: str) -> object:
    monkeypatch.setenv("X_KEY", "sk-x-0123456789")
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    return CliRunner().invoke(app, ["--config", str(cfg), "ask", "-m", "m", "hi"])


@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
def test_requests_go_through_a_socks_proxy(tmp_path: Path, server: LoopbackServer, socks: Socks5Server,
                                           monkeypatch: pytest.MonkeyPatch, scheme: str) -> None:
    server.add(Reply.say("via socks"))
    cfg = _config(tmp_path, f"http://provider.test:{server.port}")
    result = _ask(cfg, monkeypatch, ALL_PROXY=f"{scheme}://127.0.0.1:{socks.port}")
    assert result.exit_code == 0, result.output
    assert result.stdout == "via socks\n"
    assert socks.connects == [("provider.test", server.port)]  # the proxy resolved the name
    assert server.requests[0].headers["host"] == f"provider.test:{server.port}"


def test_socks_support_is_a_declared_dependency() -> None:
    import importlib.metadata
    import importlib.util

    # Without socksio, httpx fails every request under ALL_PROXY=socks5://... (an ImportError).
    requires = [r.replace(" ", "") for r in importlib.metadata.requires("modelswitch") or []]
    assert any(r.startswith("httpx[socks]") for r in requires), requires
    assert importlib.util.find_spec("socksio") is not None


@pytest.mark.parametrize("var", ["HTTP_PROXY", "https_proxy", "ALL_PROXY"])
def test_an_unusable_proxy_setting_is_exit_2_naming_the_variable(
        tmp_path: Path, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch, var: str) -> None:
    cfg = _config(tmp_path, "http://provider.test:9")
    result = _ask(cfg, monkeypatch, **{var: "ftp://user:hunter2@proxy.example:21"})
    assert result.exit_code == 2, result.output
    assert var in result.stderr and "ftp://" in result.stderr
    assert "hunter2" not in result.output and "Traceback" not in result.output and "internal error" not in result.output


def _dead_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as s:
        return s.getsockname()[1]  # closed on return: nothing listens there any more


@pytest.mark.parametrize("scheme", ["http", "socks5"])
def test_a_dead_proxy_is_reported_as_the_proxys_failure(
        tmp_path: Path, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch, scheme: str) -> None:
    port = _dead_port()
    cfg = _config(tmp_path, "http://provider.test:9")
    result = _ask(cfg, monkeypatch, HTTP_PROXY=f"{scheme}://me:hunter2@127.0.0.1:{port}")
    assert result.exit_code == 1, result.output
    assert f"the proxy {scheme}://***@127.0.0.1:{port} (from HTTP_PROXY) failed: connection refused" in result.stderr
    error = result.stderr[result.stderr.index("error: "):]
    assert "hunter2" not in result.output and "provider.test" not in error  # not the provider's failure


def test_all_of_127_slash_8_bypasses_the_proxy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    second = LoopbackServer(host="127.0.0.2")
    try:
        second.add(Reply.say("direct"))
        cfg = _config(tmp_path, second.url)
        result = _ask(cfg, monkeypatch, HTTP_PROXY=f"http://127.0.0.1:{_dead_port()}",
                      ALL_PROXY=f"socks5://127.0.0.1:{_dead_port()}")
        assert result.exit_code == 0, result.output
        assert result.stdout == "direct\n"
    finally:
        second.close()


def test_no_proxy_is_honoured(tmp_path: Path, server: LoopbackServer, socks: Socks5Server,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    from modelswitch.providers.proxy import bypasses

    assert bypasses("api.example.com", ("example.com",)) and bypasses("10.1.2.3", ("10.0.0.0/8",))
    assert bypasses("::1") and bypasses("127.9.9.9") and not bypasses("api.example.com", ("other.com",))
    server.add(Reply.say("through"))
    cfg = _config(tmp_path, f"http://provider.test:{server.port}")
    result = _ask(cfg, monkeypatch, ALL_PROXY=f"socks5h://127.0.0.1:{socks.port}", NO_PROXY="other.test")
    assert result.exit_code == 0 and socks.connects, result.output
