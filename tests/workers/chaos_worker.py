"""A chaos-soak worker: submits its share of the soak's runs, executes whatever DBOS gives it.

usage: chaos_worker.py DATABASE_URL MODEL_BASE_URL STATE_DIR INDEX WORKERS RUNS PREFIX T0 SPACING

Run ``i`` (workflow ``PREFIX-iiii``, session of the same id) belongs to worker ``i % WORKERS``
and is due at epoch ``T0 + i * SPACING``; a restarted worker submits its due runs that do not
exist yet, and DBOS recovers those of its executor (``chaos-INDEX``) that were in flight. Every
worker defines the same agent, so either can run a run the other started.

Each tool body logs ``start``/``done`` with its step key to ``STATE_DIR/tools-INDEX.log``, and
before doing anything checks that its step has no checkpoint yet: a finished step that runs
again is logged as ``repeat`` (the soak fails on it).
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path

import sqlalchemy as sa
from agents import Agent, OpenAIProvider, function_tool, set_tracing_disabled
from dbos import DBOS

import timestep

URL, MODEL_BASE_URL, STATE_DIR, INDEX, WORKERS, RUNS, PREFIX, T0, SPACING = sys.argv[1:10]
INDEX_, WORKERS_, RUNS_ = int(INDEX), int(WORKERS), int(RUNS)
set_tracing_disabled(True)
_log_path = Path(STATE_DIR) / f"tools-{INDEX}.log"
_steps_table = "operation_outputs" if URL.startswith("sqlite") else "dbos.operation_outputs"
_engine = sa.create_engine(
    URL.replace("postgresql://", "postgresql+psycopg://", 1), poolclass=sa.pool.NullPool
)


def _log(line: str) -> None:
    with open(_log_path, "a") as f:
        f.write(line + "\n")


def _checkpointed(workflow_id: str, step_id: int) -> bool:
    query = sa.text(f"SELECT 1 FROM {_steps_table} WHERE workflow_uuid = :w AND function_id = :s")
    with _engine.connect() as conn:
        return conn.execute(query, {"w": workflow_id, "s": step_id}).first() is not None


async def _tool_body(name: str) -> str:
    workflow_id, step_id = DBOS.workflow_id, DBOS.step_id
    assert workflow_id is not None and step_id is not None
    key = f"{workflow_id}:{step_id}"
    if await asyncio.to_thread(_checkpointed, workflow_id, step_id):
        _log(f"repeat {name} {key}")
    _log(f"start {name} {key}")
    await asyncio.sleep(0.02)  # a window for a kill to land inside the tool
    _log(f"done {name} {key}")
    return f"{name} ok"


@function_tool
async def lookup(item: str) -> str:
    """Look an item up."""
    return await _tool_body("lookup")


@function_tool(needs_approval=True)
async def refund(item: str) -> str:
    """Refund an item (a human must approve)."""
    return await _tool_body("refund")


agent = Agent(name="chaos-agent", instructions="Look up, then refund.", tools=[lookup, refund])
timestep.register_agent(agent)


async def submit_my_runs() -> None:
    mine = [i for i in range(RUNS_) if i % WORKERS_ == INDEX_]
    for i in mine:
        delay = float(T0) + i * float(SPACING) - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        workflow_id = f"{PREFIX}-{i:04d}"
        if await DBOS.get_workflow_status_async(workflow_id) is not None:
            continue  # submitted by an earlier incarnation: DBOS recovers it if needed
        await timestep.start_agent_run(
            agent,
            f"chaos run {workflow_id}",
            timestep.Session(workflow_id),
            workflow_id=workflow_id,
            wait_for_approvals=True,
        )
        print(f"SUBMITTED {workflow_id}", flush=True)
    print("ALL_SUBMITTED", flush=True)


async def main() -> None:
    # SIGTERM ends the soak gracefully: the process exits normally with its recorder's last
    # rows written (the killer's SIGKILLs leave them to this executor's next launch).
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    timestep.configure_dbos(URL, executor_id=f"chaos-{INDEX}", log_level="WARNING")
    timestep.set_model_provider(OpenAIProvider(base_url=MODEL_BASE_URL, api_key="test-key"))
    timestep.ensure_dbos_launched()  # recovers this executor's runs that were in flight
    print("LAUNCHED", flush=True)
    submitting = asyncio.create_task(submit_my_runs())
    await stop.wait()
    submitting.cancel()


asyncio.run(main())
