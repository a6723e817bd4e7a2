"""A real MCP server for the durable-MCP tests, built with the official ``mcp`` package.

usage: mcp_shop_server.py LOG_PATH (stdio | http PORT) [TOOLSET]

Every call appends ``<tool> <argument> <idempotency key from _meta>`` to LOG_PATH, so a test
counts executions across worker restarts. TOOLSET "v2" adds a tool (``gift_wrap``), for the
tests where the server's tool list changes between a crash and the recovery.
"""

from __future__ import annotations

import sys
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

LOG_PATH, TRANSPORT = sys.argv[1], sys.argv[2]
PORT = int(sys.argv[3]) if TRANSPORT == "http" else 0
TOOLSET = sys.argv[4] if TRANSPORT == "http" and len(sys.argv) > 4 else "v1"
if TRANSPORT == "stdio" and len(sys.argv) > 3:
    TOOLSET = sys.argv[3]

shop = MCPServer("shop")


def _key(ctx: Context) -> str:
    meta: Any = ctx.request_context.meta
    if meta is None:
        return "-"
    if not isinstance(meta, dict):
        meta = meta.model_dump() if hasattr(meta, "model_dump") else dict(meta)
    return str(meta.get("timestep/idempotency_key", "-"))


def _log(tool: str, argument: Any, ctx: Context) -> None:
    with open(LOG_PATH, "a") as f:
        f.write(f"{tool} {argument} {_key(ctx)}\n")


@shop.tool()
def charge(amount: int, ctx: Context) -> str:
    """Charge the customer's card."""
    _log("charge", amount, ctx)
    return f"charged {amount} EUR"


@shop.tool()
def ship(item: str, ctx: Context) -> dict[str, Any]:
    """Ship an item; answers with structured content."""
    _log("ship", item, ctx)
    return {"item": item, "tracking": f"TRK-{item.upper()}"}


@shop.tool()
def refund(order: str, ctx: Context) -> str:
    """Refund an order (always fails: the server answers isError)."""
    _log("refund", order, ctx)
    raise ToolError(f"order {order} cannot be refunded")


if TOOLSET == "v2":

    @shop.tool()
    def gift_wrap(item: str, ctx: Context) -> str:
        """Gift-wrap an item."""
        _log("gift_wrap", item, ctx)
        return f"{item} wrapped"


if __name__ == "__main__":
    if TRANSPORT == "stdio":
        shop.run("stdio")
    else:
        print("READY", flush=True)
        shop.run("streamable-http", host="127.0.0.1", port=PORT, stateless_http=False)
