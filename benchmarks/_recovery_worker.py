"""The recovery benchmark's worker::

    python -m benchmarks._recovery_worker URL PHASE N PREFIX [timestep|dbos]

PHASE ``hold`` starts N runs whose tool blocks forever and prints ``INFLIGHT`` once all N are
inside it (the parent then SIGKILLs this process). PHASE ``recover`` only launches DBOS, which
recovers the dead executor's runs, and idles while they finish (the tool no longer blocks).
PHASE ``plain`` runs the same N runs of the agent with the SDK's own ``Runner``, all at once,
without DBOS, and prints ``PLAIN <wall s> <cpu s>``: the SDK's own share of a recovery.

A run is Timestep's (``run_agent_workflow`` of a model call, the holding tool, a model call)
or, for DBOS's own cost, a bare DBOS workflow of the same three steps.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

from agents import Runner
from dbos import DBOS, SetWorkflowID

import timestep

from . import _agents
from ._common import ZeroLatencyProvider


@DBOS.step(name="bench.recovery.model")
async def _model_step() -> str:
    return "x"


@DBOS.step(name="bench.recovery.hold")
async def _hold_step() -> str:
    return await _agents.hold_in_flight()


@DBOS.workflow(name="bench.recovery.bare_hold")
async def bare_hold() -> str:
    """The Timestep run's three steps, as a bare DBOS workflow."""
    await _model_step()
    await _hold_step()
    return await _model_step()


async def _start(contender: str, workflow_id: str) -> None:
    if contender == "dbos":
        with SetWorkflowID(workflow_id):
            await DBOS.start_workflow_async(bare_hold)
    else:
        await timestep.start_agent_run(_agents.HOLD_AGENT, "go", workflow_id=workflow_id)


async def _plain(n: int) -> None:
    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(Runner.run(_agents.HOLD_AGENT, "go") for _ in range(n)))
    print(f"PLAIN {time.perf_counter() - started} {time.process_time() - cpu}", flush=True)


async def main(url: str, phase: str, n: int, prefix: str, contender: str) -> None:
    if phase == "plain":
        await _plain(n)
        return
    timestep.set_model_provider(ZeroLatencyProvider())
    timestep.configure_dbos(url, executor_id="bench-recovery", log_level="WARNING")
    timestep.ensure_dbos_launched()
    print("LAUNCHED", flush=True)
    if phase == "hold":
        batch = 100
        for first in range(0, n, batch):
            await asyncio.gather(
                *(_start(contender, f"{prefix}-{i}") for i in range(first, min(n, first + batch)))
            )
        while n > _agents.HOLD_STARTED:
            await asyncio.sleep(0.01)
        print("INFLIGHT", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    os.environ["BENCH_HOLD"] = "1" if sys.argv[2] == "hold" else "0"
    contender = sys.argv[5] if len(sys.argv) > 5 else "timestep"
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], contender))
