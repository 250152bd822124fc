"""MCP servers as a `tools.Toolbox`, through the official `mcp` SDK.

The SDK is asyncio; the chat is not. One daemon thread runs an event loop, each server lives in
one task there (the SDK's context managers must open and close in the same task), and calls
cross over with `run_coroutine_threadsafe`, so parallel calls really run at once and Ctrl-C can
cancel them. Nothing here imports `mcp` until a server is started: a config without `[mcp.*]`
tables costs nothing at start-up.

A server that fails to start, or dies later, is one warning line; the chat goes on without it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import tempfile
import threading
from dataclasses import dataclass, field
from typing import Any, TextIO, cast

from ..config.load import McpServerSpec, ToolSettings
from ..conversation import CALL_CANCELLED, ToolResult, ToolSpec
from ..events import ToolCall
from ..notify import Warn, warn as default_warn

# Generous: a server run by uvx or npx may install itself on first start.
START_TIMEOUT_S = 60.0
CANCELLED = CALL_CANCELLED  # one text, so exports and /history know the call was interrupted


@dataclass
class _Server:
    spec: McpServerSpec
    state: str = "not started"  # "not started" | "ready" | "failed" | "off"
    error: str = ""
    tools: list[Any] = field(default_factory=list)  # mcp.types.Tool
    disabled: set[str] = field(default_factory=set)
    session: Any = None
    stop: asyncio.Event | None = None
    errlog: TextIO | None = None
    task: asyncio.Future[None] | None = None
    # False once its process died or a call found it gone: turning it on again must start a
    # fresh process, never reuse the dead session.
    alive: bool = False


@dataclass(frozen=True, slots=True)
class ServerStatus:
    """A server and its tools as `/tools` lists them: (tool name, enabled) pairs."""

    name: str
    state: str
    error: str
    tools: tuple[tuple[str, bool], ...]
    trust: tuple[str, ...]


class McpToolbox:
    """The configured MCP servers' tools, started when first needed."""

    paused = False  # `/tools off` alone: no tool is offered this session

    def __init__(self, servers: tuple[McpServerSpec, ...], settings: ToolSettings = ToolSettings(),
                 warn: Warn = default_warn, start_timeout: float = START_TIMEOUT_S, config_path: str = "") -> None:
        self.settings = settings
        self.config_path = config_path  # named when a server's command cannot run
        self.start_timeout = start_timeout
        self.warn = warn
        self._servers = {s.name: _Server(s, state="not started" if s.enabled else "off") for s in servers}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._inflight: set[concurrent.futures.Future[Any]] = set()
        self._lock = threading.Lock()
        # Held for a whole start: /compare lanes and hedged answers ask for the tools from several
        # threads at once, and each would otherwise start its own process of the same server.
        self._start_lock = threading.Lock()

    # -- the Toolbox protocol ----------------------------------------------------------------
    def specs(self) -> tuple[ToolSpec, ...]:
        if self.paused:
            return ()
        self.start()
        seen: dict[str, str] = {}
        out: list[ToolSpec] = []
        for srv in self._servers.values():
            if srv.state != "ready":
                continue
            for tool in srv.tools:
                if tool.name in srv.disabled or tool.name in seen:
                    continue
                seen[tool.name] = srv.spec.name
                schema = tool.input_schema if isinstance(tool.input_schema, dict) else {"type": "object"}
                out.append(ToolSpec(tool.name, tool.description or "", json.dumps(schema)))
        return tuple(out)

    def server_of(self, name: str) -> str | None:
        if self.paused:
            return None
        for srv in self._servers.values():
            if srv.state == "ready" and name not in srv.disabled and any(t.name == name for t in srv.tools):
                return srv.spec.name
        return None

    def trusted(self, name: str) -> bool:
        server = self.server_of(name)
        return server is not None and name in self._servers[server].spec.trust

    def call(self, call: ToolCall, timeout: float) -> ToolResult:
        server = self.server_of(call.name)
        if server is None:
            return ToolResult(call.id, call.name, f"error: there is no tool named {call.name!r}", is_error=True)
        srv = self._servers[server]
        timeout = srv.spec.timeout or timeout
        try:
            arguments = json.loads(call.arguments or "{}")
        except ValueError:
            return ToolResult(call.id, call.name, "error: the arguments were not valid JSON", is_error=True, server=server)
        if not isinstance(arguments, dict):
            return ToolResult(call.id, call.name, "error: the arguments must be a JSON object", is_error=True, server=server)
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(srv.session.call_tool(call.name, arguments), self._loop)
        with self._lock:
            self._inflight.add(future)
        try:
            result = future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            return ToolResult(call.id, call.name, f"error: the tool did not answer within {timeout:g} s and was stopped",
                              is_error=True, server=server)
        except concurrent.futures.CancelledError:
            return ToolResult(call.id, call.name, CANCELLED, is_error=True, server=server)
        except Exception as exc:  # noqa: BLE001 - a dead server is a failed call, never a crash
            self._lost(srv, exc)
            return ToolResult(call.id, call.name, f"error: the MCP server {server!r} failed: {_one_line(exc)}",
                              is_error=True, server=server)
        finally:
            with self._lock:
                self._inflight.discard(future)
        return ToolResult(call.id, call.name, _result_text(result), is_error=bool(getattr(result, "is_error", False)),
                          server=server)

    def cancel(self) -> None:
        with self._lock:
            for future in list(self._inflight):
                future.cancel()

    # -- servers -------------------------------------------------------------------------------
    def start(self) -> None:
        """Start every enabled server not started yet, at once; a failure is one warning line."""
        with self._start_lock:
            self._start_waiting()

    def _start_waiting(self, quiet: bool = False) -> None:
        waiting = [s for s in self._servers.values() if s.state == "not started"]
        if not waiting:
            return
        loop = self._ensure_loop()
        pending = [(s, asyncio.run_coroutine_threadsafe(self._open(s), loop)) for s in waiting]
        for srv, future in pending:
            try:
                future.result(self.start_timeout)
                srv.state = "ready"
            except Exception as exc:  # noqa: BLE001 - one line, the chat goes on
                future.cancel()
                srv.state, srv.error = "failed", _start_error(srv, exc, self.config_path)
                if not quiet:  # /tools shows the error in its list: once is enough
                    self.warn(f"MCP server {srv.spec.name!r} did not start: {srv.error}")

    def status(self) -> list[ServerStatus]:
        """Every configured server (started first, so its tools are known) and its tools."""
        with self._start_lock:
            self._start_waiting(quiet=True)
        return [
            ServerStatus(s.spec.name, s.state, s.error, tuple((t.name, t.name not in s.disabled) for t in s.tools),
                         s.spec.trust)
            for s in self._servers.values()
        ]

    def set_enabled(self, name: str, on: bool) -> str:
        """`/tools on|off NAME`: a server (by its name) or one of its tools (`server.tool`,
        `server/tool` or the bare tool name). Says what changed; KeyError when nothing has that name."""
        srv = self._servers.get(name)
        if srv is not None:
            if not on:
                srv.state = "off"
            elif srv.state in ("off", "failed"):
                if srv.alive and srv.session is not None:
                    srv.state, srv.error = "ready", ""
                else:
                    self._restart(srv)
            return f"server {name}: {srv.state}" + (f" ({srv.error})" if srv.error else "")
        # A tool's name is known once its server has started: a fresh chat starts them first.
        self.start()
        srv, tool = self.find_tool(name)
        (srv.disabled.discard if on else srv.disabled.add)(tool)
        return f"tool {srv.spec.name}.{tool}: {'on' if on else 'off'}"

    def find_tool(self, name: str) -> tuple[_Server, str]:
        """A tool as the user names it: `server.tool`, `server/tool` or bare `tool`; KeyError if none."""
        for server, srv in self._servers.items():  # by prefix: a server's name may hold a dot itself
            for sep in "./":
                tool = name.removeprefix(server + sep)
                if tool != name and any(t.name == tool for t in srv.tools):
                    return srv, tool
        for srv in self._servers.values():
            if any(t.name == name for t in srv.tools):
                return srv, name
        raise KeyError(name)

    def names(self) -> str:
        """What `/tools on|off NAME` accepts, for an error that says what exists."""
        servers = ", ".join(self._servers) or "none"
        tools = ", ".join(f"{s.spec.name}.{t.name}" for s in self._servers.values() for t in s.tools)
        return f"servers: {servers}" + (f"; tools: {tools}" if tools else "")

    def set_all(self, on: bool) -> str:
        """`/tools off` alone offers no tool at all this session; `/tools on` alone turns every tool
        and every server turned off (or failed) this session back on, as `/help` says. A server
        the config turns off stays off: that is the user's standing choice, not this session's."""
        self.paused = not on
        if not on:
            return "tools off: no tool is offered this session (/tools on turns every tool back on)"
        for srv in self._servers.values():
            srv.disabled.clear()
            if srv.state == "failed" or (srv.state == "off" and srv.spec.enabled):
                self.set_enabled(srv.spec.name, True)
        self.start()
        ready = [s for s in self._servers.values() if s.state == "ready"]
        count = sum(len(s.tools) for s in ready)
        return (f"tools on: {count} tool{'' if count == 1 else 's'} on, from {len(ready)} "
                f"server{'' if len(ready) == 1 else 's'}")

    def _restart(self, srv: _Server) -> None:
        """A dead or failed server starts again as a fresh process; its old task is ended first so
        it cannot report on, or clear, the new session."""
        loop = self._loop
        if loop is not None and srv.task is not None:
            try:
                asyncio.run_coroutine_threadsafe(_end(srv), loop).result(30)
            except Exception:  # noqa: BLE001 - the old process is gone either way
                pass
        srv.session, srv.task, srv.tools = None, None, []
        srv.state, srv.error = "not started", ""
        self.start()

    def close(self) -> None:
        """Stop every server (each closes its session and its child process) and the loop."""
        loop = self._loop
        if loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(30)
        except Exception:  # noqa: BLE001 - closing must not fail the exit
            pass
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None
        for srv in self._servers.values():
            if srv.errlog is not None:
                srv.errlog.close()

    async def _shutdown(self) -> None:
        tasks = [s.task for s in self._servers.values() if s.task is not None and not s.task.done()]
        for srv in self._servers.values():
            if srv.stop is not None:
                srv.stop.set()
        if tasks:
            await asyncio.wait(tasks, timeout=20)

    # -- inside the event loop -----------------------------------------------------------------
    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=loop.run_forever, name="mcp", daemon=True)
            self._thread.start()
            self._loop = loop
        return self._loop

    async def _open(self, srv: _Server) -> None:
        """Start the server in its own task and wait until it has listed its tools."""
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        srv.stop = asyncio.Event()
        srv.task = asyncio.ensure_future(self._serve(srv, ready))
        await ready

    async def _serve(self, srv: _Server, ready: asyncio.Future[None]) -> None:
        from contextlib import AsyncExitStack

        from mcp import ClientSession

        spec = srv.spec
        try:
            async with AsyncExitStack() as stack:
                if spec.url:
                    from mcp.client.streamable_http import streamable_http_client
                    from mcp.shared._httpx_utils import create_mcp_http_client

                    client = create_mcp_http_client(headers=dict(spec.headers))
                    streams = await stack.enter_async_context(streamable_http_client(spec.url, http_client=client))
                else:
                    from mcp.client.stdio import StdioServerParameters, stdio_client

                    # The server's stderr goes to a file, not over the chat; its last line
                    # explains a failed start.
                    if srv.errlog is None:
                        srv.errlog = cast(TextIO, tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace"))
                    params = StdioServerParameters(command=spec.command[0], args=list(spec.command[1:]),
                                                   env=dict(spec.env) or None, cwd=spec.cwd)
                    streams = await stack.enter_async_context(stdio_client(params, errlog=srv.errlog))
                read, write = streams[0], streams[1]
                session = await stack.enter_async_context(ClientSession(read, write))
                await session.initialize()
                srv.tools = await _list_tools(session)
                srv.session, srv.alive = session, True
                ready.set_result(None)
                assert srv.stop is not None
                await srv.stop.wait()
        except BaseException as exc:  # noqa: BLE001 - reported once, below or by start()
            if not ready.done():
                cause = _innermost(exc)
                ready.set_exception(cause if isinstance(cause, Exception) else RuntimeError(_one_line(cause)))
            elif srv.state == "ready":
                self._lost(srv, exc)
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
        finally:
            if srv.task is None or srv.task is asyncio.current_task():  # not a restarted server's
                srv.alive = False
                srv.session = None if srv.state != "ready" else srv.session

    def _lost(self, srv: _Server, exc: BaseException) -> None:
        srv.alive = False
        if srv.state == "failed":
            return
        srv.state, srv.error = "failed", _one_line(exc) or type(exc).__name__
        self.warn(f"MCP server {srv.spec.name!r} stopped: {srv.error}; the chat goes on without its tools "
                  f"(/tools on {srv.spec.name} restarts it)")


async def _end(srv: _Server) -> None:
    """Let a server's task close its session and process; cancel it if it will not."""
    task = srv.task
    if srv.stop is not None:
        srv.stop.set()
    if task is not None and not task.done():
        await asyncio.wait([task], timeout=10)
        if not task.done():
            task.cancel()


async def _list_tools(session: Any) -> list[Any]:
    from mcp.types import PaginatedRequestParams

    tools: list[Any] = []
    cursor: str | None = None
    for _ in range(100):  # a server that pages forever is cut off, not followed forever
        page = await session.list_tools(params=PaginatedRequestParams(cursor=cursor) if cursor else None)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            break
    return tools


def _result_text(result: Any) -> str:
    """What a call gave back, as the text a model reads: text parts joined, other kinds named."""
    parts: list[str] = []
    for item in getattr(result, "content", None) or ():
        kind = getattr(item, "type", "")
        if kind == "text":
            parts.append(item.text)
        else:
            parts.append(f"[{kind or 'unknown'} content not shown to the model]")
    structured = getattr(result, "structured_content", None)
    if not parts and structured is not None:
        parts.append(json.dumps(structured, ensure_ascii=False))
    return "\n".join(parts)


def _start_error(srv: _Server, exc: BaseException, config_path: str = "") -> str:
    said = ""
    if srv.errlog is not None:
        try:
            srv.errlog.seek(0)
            lines = [ln.strip() for ln in srv.errlog.read().splitlines() if ln.strip()]
            said = lines[-1] if lines else ""
        except (OSError, ValueError):
            said = ""
    cause = _innermost(exc)
    if isinstance(cause, OSError) and srv.spec.command and cause.filename is not None:
        # The program itself cannot run: only the config can fix that, so name the line and file.
        where = f" in {config_path}" if config_path else ""
        why = cause.strerror or type(cause).__name__
        return f"cannot run {srv.spec.command[0]!r}: {why} (fix [mcp.{srv.spec.name}] command{where})"
    if isinstance(cause, concurrent.futures.TimeoutError):
        return "no answer in time" + (f" ({said[:200]})" if said else "")
    # What the server wrote to stderr is the reason; the SDK's own words ("Connection closed") follow.
    return f"{said[:200]} ({_one_line(cause)})" if said else _one_line(cause)


def _innermost(exc: BaseException) -> BaseException:
    """The real cause inside the SDK's (nested) task-group exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        real = [e for e in exc.exceptions if not isinstance(e, asyncio.CancelledError)]
        exc = (real or list(exc.exceptions))[0]
    return exc


def _one_line(exc: BaseException) -> str:
    exc = _innermost(exc)
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]
