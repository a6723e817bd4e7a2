"""A traced worker: one run with a tool, an approval and a rate-limited provider, inside a
caller's span, its spans
written to a file as each ends (the OpenTelemetry SDK's console exporter, one JSON per line).

usage: tracing_worker.py DATABASE_URL MODEL_BASE_URL SPANS_FILE WORKFLOW_ID

Prints ``WAITING`` once the run waits for its approval, then ``RESULT <json>``. Killed while it
waits and started again with the same arguments, it recovers the run at launch.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from agents import Agent, OpenAIProvider, function_tool, set_tracing_disabled
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

import timestep

DATABASE_URL, MODEL_BASE_URL, SPANS_FILE, WORKFLOW_ID = sys.argv[1:5]
set_tracing_disabled(True)  # the SDK's own traces would go to OpenAI's servers


def as_line(span: ReadableSpan) -> str:
    record = json.loads(span.to_json(indent=None))
    record["pid"] = os.getpid()
    return json.dumps(record) + "\n"


spans = open(SPANS_FILE, "a", buffering=1)  # noqa: SIM115 (open for the process's life)
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=spans, formatter=as_line)))
trace.set_tracer_provider(provider)


@function_tool
def lookup(order_id: str) -> str:
    """Look an order up."""
    return f"order {order_id}: paid"


@function_tool(needs_approval=True)
def refund(order_id: str) -> str:
    """Refund an order (a human must approve)."""
    return f"refunded {order_id}"


# A named model and a limited provider: each call waits its turn for a permit (queue wait).
agent = Agent(
    name="traced-agent", instructions="Help.", model="gpt-5.6-luna", tools=[lookup, refund]
)
timestep.register_agent(agent)
timestep.limit_provider("openai", concurrency=4)


async def main() -> None:
    timestep.configure_dbos(DATABASE_URL)
    timestep.set_model_provider(OpenAIProvider(base_url=MODEL_BASE_URL, api_key="test-key"))
    timestep.ensure_dbos_launched()  # recovers the run if a previous worker was killed
    with trace.get_tracer("caller").start_as_current_span("POST /refunds"):
        handle = await timestep.start_agent_run(
            agent, "refund order 7", workflow_id=WORKFLOW_ID, wait_for_approvals=True
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
