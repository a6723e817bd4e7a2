"""A worker whose run waits durably for an approval: a test kills it while it waits, or
approves through the HTTP API of another process.

usage: approval_worker.py DATABASE_URL MODEL_BASE_URL STATE_DIR WORKFLOW_ID [--stream]

Prints ``WAITING`` once the run waits for its decision, then ``RESULT <json>``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from agents import Agent, OpenAIProvider, function_tool, set_tracing_disabled

import timestep

DATABASE_URL, MODEL_BASE_URL, STATE_DIR, WORKFLOW_ID = sys.argv[1:5]
STREAM = "--stream" in sys.argv[5:]
set_tracing_disabled(True)


@function_tool(needs_approval=True)
def refund(order_id: str) -> str:
    """Refund an order (a human must approve)."""
    with open(Path(STATE_DIR) / "refunds.log", "a") as f:
        f.write(order_id + "\n")
    return f"refunded {order_id}"


agent = Agent(name="approval-worker-agent", instructions="Help.", tools=[refund])
timestep.register_agent(agent)


async def main() -> None:
    timestep.configure_dbos(DATABASE_URL)
    timestep.set_model_provider(OpenAIProvider(base_url=MODEL_BASE_URL, api_key="test-key"))
    timestep.ensure_dbos_launched()
    handle = await timestep.start_agent_run(
        agent, "refund the order", workflow_id=WORKFLOW_ID, wait_for_approvals=True, stream=STREAM
    )
    while not await timestep.get_pending_approvals(WORKFLOW_ID):
        if await handle.status() != "PENDING":
            break
        await asyncio.sleep(0.02)
    else:
        print("WAITING", flush=True)
    result = await handle.result()
    print("RESULT " + json.dumps({"final_output": result.final_output}), flush=True)


asyncio.run(main())
