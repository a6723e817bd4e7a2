"""The scaling benchmark's worker::

    python -m benchmarks._scaling_worker URL CONTENDER INDEX

Launches DBOS through Timestep (as every benchmark does), listens only to CONTENDER's queue
(``timestep`` or ``bare``), warms up with a few runs of its own, and prints ``READY`` once the
queue's worker thread polls; then it runs whatever the driver enqueues until it is stopped.

The queues are registered here and in the driver by the same ``register_queues``: Timestep's
with ``declare_queue`` (what ``start_agent_run(..., queue=)`` takes), the bare one with
``DBOS.register_queue_async`` at Timestep's polling interval, both letting each worker run
``IN_FLIGHT`` at once.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time

from dbos import DBOS

import timestep
from timestep._core.process import process_state

from ._agents import BENCH_AGENT
from ._common import ZeroLatencyProvider, new_id
from ._overhead import bare_workflow

IN_FLIGHT = 32  # per worker
QUEUES = {"timestep": "bench.scaling.timestep", "bare": "bench.scaling.bare"}
WARM_UP_RUNS = 8


async def register_queues() -> None:
    """Both contenders' queues, alike in every process; DBOS must be launched."""
    timestep.declare_queue(QUEUES["timestep"], worker_concurrency=IN_FLIGHT)
    await DBOS.register_queue_async(
        QUEUES["bare"],
        worker_concurrency=IN_FLIGHT,
        polling_interval_sec=process_state().settings.queue_polling_interval_sec,
        on_conflict="always_update",
    )


async def _one_run(contender: str) -> None:
    if contender == "timestep":
        result = await timestep.run_agent_workflow(BENCH_AGENT, "go", workflow_id=new_id("warm"))
        assert result.final_output == "done"
    else:
        assert await bare_workflow() == "done"


def _polling(queue: str) -> bool:
    """Whether DBOS's queue manager runs a worker thread for ``queue`` here (it looks for new
    queues once a second)."""
    name = f"queue-worker-{queue}"
    return any(t.name == name and t.is_alive() for t in threading.enumerate())


async def main(url: str, contender: str, index: int) -> None:
    timestep.set_model_provider(ZeroLatencyProvider())
    timestep.configure_dbos(url, executor_id=f"bench-scaling-{index}", log_level="WARNING")
    DBOS.listen_queues([QUEUES[contender]])
    timestep.ensure_dbos_launched()
    await register_queues()
    # A fresh process's first runs pay lazy imports and new pooled connections.
    await asyncio.gather(*(_one_run(contender) for _ in range(WARM_UP_RUNS)))
    deadline = time.monotonic() + 30
    while not _polling(QUEUES[contender]):
        if time.monotonic() > deadline:
            raise SystemExit(f"no worker thread for queue {QUEUES[contender]} after 30 s")
        await asyncio.sleep(0.05)
    print("READY", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
