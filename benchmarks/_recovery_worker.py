"""The recovery benchmark's worker: ``python -m benchmarks._recovery_worker URL PHASE N PREFIX``.

PHASE ``hold`` starts N runs whose tool blocks forever and prints ``INFLIGHT`` once all N are
inside it (the parent then SIGKILLs this process). PHASE ``recover`` only launches DBOS, which
recovers the dead executor's runs, and idles while they finish (the tool no longer blocks).
"""

from __future__ import annotations

import asyncio
import os
import sys

import timestep

from . import _agents
from ._common import ZeroLatencyProvider


async def main(url: str, phase: str, n: int, prefix: str) -> None:
    timestep.set_model_provider(ZeroLatencyProvider())
    timestep.configure_dbos(url, executor_id="bench-recovery", log_level="WARNING")
    timestep.ensure_dbos_launched()
    print("LAUNCHED", flush=True)
    if phase == "hold":
        batch = 100
        for first in range(0, n, batch):
            await asyncio.gather(
                *(
                    timestep.start_agent_run(_agents.HOLD_AGENT, "go", workflow_id=f"{prefix}-{i}")
                    for i in range(first, min(n, first + batch))
                )
            )
        while n > _agents.HOLD_STARTED:
            await asyncio.sleep(0.01)
        print("INFLIGHT", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    os.environ["BENCH_HOLD"] = "1" if sys.argv[2] == "hold" else "0"
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]))
