"""A real MCP server over stdio for the tests, written with the SDK's MCPServer (FastMCP in mcp 1.x).

Tools: add (two integers), shout (text), slow (sleeps, for timeouts and Ctrl-C), big (a long
result), die (the process exits mid-call), fail (a tool error). Started as
`python tests/mcp_servers/calc.py` (stdio) or with `--http PORT` (streamable HTTP).
"""

from __future__ import annotations

import os
import sys
import time

from mcp.server.mcpserver import MCPServer

server = MCPServer("calc")


@server.tool()
def add(a: int, b: int) -> str:
    """Add two integers."""
    return str(a + b)


@server.tool()
def shout(text: str) -> str:
    """The text in capitals, with the server's CALC_SUFFIX environment variable appended."""
    return text.upper() + os.environ.get("CALC_SUFFIX", "")


@server.tool()
def slow(seconds: float) -> str:
    """Sleep, then say so."""
    time.sleep(seconds)
    return f"slept {seconds}"


@server.tool()
def big(n: int) -> str:
    """n characters of x."""
    return "x" * n


@server.tool()
def die() -> str:
    """The server process exits while answering."""
    os._exit(3)


@server.tool()
def fail() -> str:
    """A tool error."""
    raise ValueError("the tool failed on purpose")


if __name__ == "__main__":
    if "--crash" in sys.argv:
        print("calc: cannot start, --crash given", file=sys.stderr)
        sys.exit(2)
    if "--http" in sys.argv:  # streamable HTTP on 127.0.0.1:PORT/mcp
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[sys.argv.index("--http") + 1]))
    else:
        server.run("stdio")
