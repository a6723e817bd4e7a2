"""A worker for the durable-MCP crash tests: one durable run of an agent whose tools come from a
real MCP server (``mcp_shop_server.py``) plus one function tool.

usage: mcp_worker.py DATABASE_URL MODEL_BASE_URL STATE_DIR WORKFLOW_ID TRANSPORT TARGET [approval]

TRANSPORT "http": TARGET is the server's URL; "stdio": TARGET is the server's log path (the
worker spawns the server). The function tool appends to STATE_DIR/calls.log. The worker never
connects the server itself: Timestep connects it when a live step needs it. Prints
``RESULT {...}`` or ``ERROR <class> <message>``. With ``approval``, the server's ``charge``
needs an approval and the run waits for it durably (``wait_for_approvals``).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from agents import Agent, OpenAIProvider, function_tool, set_tracing_disabled
from agents.mcp import MCPServerStdio, MCPServerStreamableHttp

import timestep

DATABASE_URL, MODEL_BASE_URL, STATE_DIR, WORKFLOW_ID, TRANSPORT, TARGET = sys.argv[1:7]
APPROVAL = sys.argv[7:8] == ["approval"]
approvals: dict[str, object] = (
    {"require_approval": {"always": {"tool_names": ["charge"]}}} if APPROVAL else {}
)
state_dir = Path(STATE_DIR)
set_tracing_disabled(True)
SHOP_SERVER = Path(__file__).with_name("mcp_shop_server.py")


@function_tool
def lookup(item: str) -> str:
    """Look an item up in the catalogue."""
    with open(state_dir / "calls.log", "a") as f:
        f.write(f"lookup {item} {timestep.tool_idempotency_key()}\n")
    return f"{item}: in stock"


if TRANSPORT == "http":
    shop = MCPServerStreamableHttp(
        name="shop", params={"url": TARGET}, cache_tools_list=True, **approvals
    )
else:
    shop = MCPServerStdio(
        name="shop",
        params={"command": sys.executable, "args": [str(SHOP_SERVER), TARGET, "stdio"]},
        cache_tools_list=True,
        **approvals,
    )
timestep.declare_mcp_server(shop, max_attempts=3, interval_seconds=0.2, backoff_rate=1.5)

agent = Agent(
    name="mcp-shop-agent",
    instructions="Use the shop's tools.",
    tools=[lookup],
    mcp_servers=[shop],
)
timestep.register_agent(agent)


async def main() -> None:
    timestep.configure_dbos(DATABASE_URL)
    timestep.set_model_provider(OpenAIProvider(base_url=MODEL_BASE_URL, api_key="test-key"))
    timestep.ensure_dbos_launched()  # recovers the run if a previous worker was killed
    print("LAUNCHED", flush=True)
    try:
        result = await timestep.run_agent_workflow(
            agent, "go", workflow_id=WORKFLOW_ID, wait_for_approvals=APPROVAL
        )
    except Exception as exc:
        print(f"ERROR {type(exc).__name__} {exc}", flush=True)
        return
    print("RESULT " + json.dumps({"final_output": result.final_output}), flush=True)


asyncio.run(main())
