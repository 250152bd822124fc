"""A real MCP server over stdio that offers a `web_search` tool with fixed results, for the tests
of search through MCP (a model whose provider cannot search is offered it). Started as
`python tests/mcp_servers/websearch.py`."""

from __future__ import annotations

import json

from mcp.server.mcpserver import MCPServer

server = MCPServer("websearch")

RESULTS = [
    {"title": "Pelican - Wikipedia", "url": "https://en.wikipedia.org/wiki/Pelican",
     "snippet": "Pelicans are a genus of large water birds."},
    {"title": "Brown pelican | Audubon", "url": "https://www.audubon.org/field-guide/bird/brown-pelican",
     "snippet": "The Brown Pelican is found along the coasts."},
]


@server.tool()
def web_search(query: str) -> str:
    """Search the web; the results as JSON (title, url, snippet)."""
    return json.dumps({"query": query, "results": RESULTS})


if __name__ == "__main__":
    server.run("stdio")
