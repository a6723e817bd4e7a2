"""(11) Retention: the cost of one gc pass per 10,000 deleted runs, and table sizes bounded.

``runs`` durable runs (zero-latency model, each in its own ``Session``) fill DBOS's and
Timestep's tables; one ``collect_garbage`` pass (``finished=1d``, counted from two days later)
deletes them in batches of ``TIMESTEP_RETENTION_BATCH_SIZE``. Figures: the pass's wall time,
scaled to 10,000 deleted runs; rows and payload bytes freed; the rows of each table before and
after (after: only the daily usage sums and the sessions, which ``sessions=`` would delete
separately); and a second pass with nothing to delete (the steady-state cost per period).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from agents import Agent
from rich.progress import Progress

import timestep

from ._common import dbos_table, launched, new_id, sync_engine

_TABLES = (
    "workflow_status",
    "operation_outputs",
    "workflow_input",
    "workflow_output",
    "streams",
)
_TIMESTEP_TABLES = ("timestep_usage", "timestep_usage_daily", "timestep_session_items")


def _sizes(url: str) -> dict[str, int]:
    engine = sync_engine(url)
    try:
        with engine.connect() as conn:
            sizes = {
                name: int(
                    conn.execute(
                        sa.text(f"SELECT count(*) FROM {dbos_table(url, name)}")
                    ).scalar_one()
                )
                for name in _TABLES
            }
            for name in _TIMESTEP_TABLES:
                sizes[name] = int(
                    conn.execute(sa.text(f"SELECT count(*) FROM {name}")).scalar_one()
                )
    finally:
        engine.dispose()
    return sizes


async def run(kind: str, url: str, runs: int, progress: Progress) -> dict[str, Any]:
    async with launched(url):  # a database of its own: the pass deletes every ended run
        return await _measure(kind, url, runs, progress)


async def _measure(kind: str, url: str, runs: int, progress: Progress) -> dict[str, Any]:
    agent = Agent(name="retention-bench", instructions="Answer.")
    task = progress.add_task(f"{kind}: retention, {runs} runs", total=runs)
    for _ in range(runs):
        await timestep.run_agent(
            agent, "hi", timestep.Session(new_id("gc")), workflow_id=new_id("gc")
        )
        progress.advance(task)
    await timestep.flush_records()
    before = _sizes(url)
    later = datetime.now(UTC) + timedelta(days=2)
    started = time.perf_counter()
    report = await timestep.collect_garbage(policy="finished=1d", now=later)
    seconds = time.perf_counter() - started
    after = _sizes(url)
    started = time.perf_counter()
    empty = await timestep.collect_garbage(policy="finished=1d", now=later)
    idle_seconds = time.perf_counter() - started
    assert report.runs == runs and empty.runs == 0, (report.runs, empty.runs)
    return {
        "runs": runs,
        "gc_seconds": round(seconds, 2),
        "gc_seconds_per_10k_runs": round(seconds * 10_000 / runs, 1),
        "rows_freed": sum(report.rows.values()),
        "bytes_freed": report.bytes,
        "rows_before": before,
        "rows_after": after,
        "idle_pass_seconds": round(idle_seconds, 3),
    }
