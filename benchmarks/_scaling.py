"""(16) Scaling out: runs per second with one worker process, then two, on one Postgres.

Timestep's runs (``start_agent_run(..., queue=)`` of the 3-turn agent) and bare DBOS
workflows of the same 5 steps (``_overhead.bare_workflow`` on a DBOS queue), each worker
running up to ``IN_FLIGHT`` at once (``_scaling_worker``). This process enqueues every run
and only enqueues (it listens to no queue); a round's time runs from its first enqueue to the
last run's end (its ``updated_at``, so the polling's period does not count). Fresh workers
each round, ready (launched, warmed up, their queue polled) before the clock starts; rounds
interleave T1, B1, T2, B2 so a machine's drift hits all alike, and the figures are medians.

Postgres only: workers on one SQLite file contend for its single writer lock, which measures
the file lock, not the frameworks.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from dbos import DBOS, SetWorkflowID
from rich.progress import Progress, TaskID

import timestep
from timestep._core.runtime import reset_process
from timestep.testing import WorkerProcess

from ._agents import BENCH_AGENT
from ._common import ROOT, ZeroLatencyProvider, sync_engine
from ._overhead import bare_workflow
from ._scaling_worker import IN_FLIGHT, QUEUES, register_queues

CONTENDERS = {"timestep": "Timestep", "bare": "bare DBOS, 5 steps"}
WORKERS = (1, 2)
ENQUEUE_LANES = 16
# The driver's only work while the workers run: one count over DBOS's status table (a few
# thousand rows) every POLL_SECONDS.
POLL_SECONDS = 0.1
_TICKS = os.sysconf("SC_CLK_TCK")
# This database's server processes (Postgres runs a process per connection).
_BACKENDS = sa.text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
_FINISHED = sa.text(
    "SELECT count(*) FILTER (WHERE status NOT IN ('ENQUEUED', 'PENDING')),"
    " count(*) FILTER (WHERE status = 'SUCCESS'), max(updated_at)"
    " FROM dbos.workflow_status WHERE queue_name = :queue AND workflow_uuid LIKE :prefix"
)


def run(
    kind: str, url: str, runs: int, repeats: int, progress: Progress, timeout: float = 600
) -> dict[str, Any]:
    """Postgres only (``kind``): ``repeats`` rounds of each contender at each worker count."""
    assert kind == "postgres", "the scaling benchmark needs Postgres"
    return asyncio.run(_measure(kind, url, runs, repeats, progress, timeout))


async def _measure(
    kind: str, url: str, runs: int, repeats: int, progress: Progress, timeout: float
) -> dict[str, Any]:
    reset_process(destroy=False)
    timestep.set_model_provider(ZeroLatencyProvider())
    timestep.configure_dbos(url, executor_id="bench-scaling-driver", log_level="WARNING")
    DBOS.listen_queues([])  # the workers run every enqueued run, not this process
    timestep.ensure_dbos_launched()
    await register_queues()
    engine = sync_engine(url)
    rounds: list[dict[str, Any]] = []
    task = progress.add_task(
        f"{kind}: (16) scaling, 1 -> 2 workers", total=repeats * len(WORKERS) * 2 * runs
    )
    try:
        for _ in range(repeats):
            for workers in WORKERS:
                for contender in CONTENDERS:
                    rounds.append(
                        await _round(url, engine, contender, workers, runs, progress, task, timeout)
                    )
    finally:
        engine.dispose()
        reset_process()
    return _summary(rounds, runs)


async def _round(
    url: str,
    engine: sa.Engine,
    contender: str,
    workers: int,
    runs: int,
    progress: Progress,
    task: TaskID,
    timeout: float,
) -> dict[str, Any]:
    prefix = f"bench-scaling-{contender}-{workers}-{uuid.uuid4().hex[:8]}"
    queue = QUEUES[contender]
    with contextlib.ExitStack() as stack:
        procs = [
            stack.enter_context(
                WorkerProcess(
                    [sys.executable, "-m", "benchmarks._scaling_worker", url, contender, str(i)],
                    cwd=ROOT,
                )
            )
            for i in range(workers)
        ]
        for proc in procs:
            proc.start()
        for proc in procs:
            await asyncio.to_thread(proc.wait_for_line, "READY", 120)
        pids = [proc.pid for proc in procs if proc.pid is not None]
        with engine.connect() as conn:
            before = _cpu_snapshot(conn, pids)
            started = time.time()  # wall clock: DBOS's updated_at is epoch ms
            await _enqueue(contender, prefix, runs)
            enqueued = time.time()
            ended, done, succeeded, last_ms, shown = started + timeout, 0, 0, None, 0
            while done < runs and time.time() < ended:
                await asyncio.sleep(POLL_SECONDS)
                row = conn.execute(_FINISHED, {"queue": queue, "prefix": f"{prefix}-%"}).one()
                conn.rollback()  # a new snapshot next time
                done, succeeded, last_ms = row
                progress.advance(task, done - shown)
                shown = done
            seen = time.time()
            after = _cpu_snapshot(conn, pids)
        for proc in procs:
            proc.stop(timeout=10)
    if succeeded < runs or last_ms is None:
        raise AssertionError(f"{contender}, {workers} workers: {succeeded} of {runs} succeeded")
    seconds = last_ms / 1000 - started
    return {
        "contender": contender,
        "workers": workers,
        "runs": runs,
        "seconds": seconds,
        "runs_per_s": runs / seconds,
        "enqueue_s": enqueued - started,
        # When the polling saw the last one end: within POLL_SECONDS (and a query) of seconds.
        "seen_s": seen - started,
        **_cpu_used(before, after, runs),
    }


@dataclass
class _CpuSnapshot:
    """CPU seconds used so far: by the workers, this process, each backend of this database
    (by pid), and the machine's busy and total time over all cores."""

    workers: float
    driver: float
    backends: dict[int, float]
    machine_busy: float
    machine_total: float


def _cpu_snapshot(conn: sa.Connection, pids: list[int]) -> _CpuSnapshot:
    backends = {pid: _cpu_seconds(pid) for (pid,) in conn.execute(_BACKENDS)}
    conn.rollback()
    # The first line of /proc/stat: user nice system idle iowait irq softirq steal (ticks).
    ticks = [int(t) for t in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = ticks[3] + ticks[4]
    return _CpuSnapshot(
        workers=sum(_cpu_seconds(pid) or 0.0 for pid in pids),
        driver=time.process_time(),
        backends={pid: cpu for pid, cpu in backends.items() if cpu is not None},
        machine_busy=(sum(ticks) - idle) / _TICKS,
        machine_total=sum(ticks) / _TICKS,
    )


def _cpu_used(before: _CpuSnapshot, after: _CpuSnapshot, runs: int) -> dict[str, float]:
    """CPU ms per run between two snapshots; a backend opened in between counts in full."""
    workers, driver = after.workers - before.workers, after.driver - before.driver
    database = sum(cpu - before.backends.get(pid, 0.0) for pid, cpu in after.backends.items())
    busy, total = (
        after.machine_busy - before.machine_busy,
        after.machine_total - before.machine_total,
    )
    wall = total / (os.cpu_count() or 1)
    return {
        "worker_cpu_ms_per_run": workers / runs * 1000,
        "database_cpu_ms_per_run": database / runs * 1000,
        "driver_cpu_ms_per_run": driver / runs * 1000,
        "machine_busy": busy / total,
        # Cores' worth used by everything else: other tenants, Postgres's own processes.
        "other_cores": max(0.0, busy - workers - database - driver) / wall,
    }


async def _enqueue(contender: str, prefix: str, runs: int) -> None:
    """``runs`` runs on ``contender``'s queue, ``ENQUEUE_LANES`` enqueues at a time."""
    ids = iter(range(runs))

    async def lane() -> None:
        for i in ids:
            workflow_id = f"{prefix}-{i}"
            if contender == "timestep":
                await timestep.start_agent_run(
                    BENCH_AGENT, "go", workflow_id=workflow_id, queue=QUEUES["timestep"]
                )
            else:
                with SetWorkflowID(workflow_id):
                    await DBOS.enqueue_workflow_async(QUEUES["bare"], bare_workflow)

    await asyncio.gather(*(lane() for _ in range(ENQUEUE_LANES)))


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU of process ``pid`` (every thread), from /proc; None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _summary(rounds: list[dict[str, Any]], runs: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "runs": runs,
        "in_flight_per_worker": IN_FLIGHT,
        "cores": os.cpu_count(),
        "rounds": rounds,
    }
    for contender in CONTENDERS:
        figures: dict[str, Any] = {}
        for workers in WORKERS:
            mine = [r for r in rounds if r["contender"] == contender and r["workers"] == workers]
            figures[str(workers)] = {
                key: statistics.median(r[key] for r in mine)
                for key in (
                    "runs_per_s",
                    "seconds",
                    "enqueue_s",
                    "worker_cpu_ms_per_run",
                    "database_cpu_ms_per_run",
                    "driver_cpu_ms_per_run",
                    "machine_busy",
                    "other_cores",
                )
            } | {"rounds": len(mine)}
        figures["ratio"] = figures["2"]["runs_per_s"] / figures["1"]["runs_per_s"]
        out[contender] = figures
    out["timestep_ratio_over_bare_ratio"] = out["timestep"]["ratio"] / out["bare"]["ratio"]
    return out
