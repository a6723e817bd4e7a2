"""(7) Recovery: N runs in flight in a worker, SIGKILL, restart, time until all have finished.

Timestep's runs (model call, tool, model call) and, for DBOS's own cost of recovering the
same work, bare DBOS workflows of the same three steps, one after the other on one database.
A recovered run is the SDK's run again (its loop replays from the checkpoints), so the floor is
DBOS's cost plus the SDK's own: the same N runs through plain ``Runner`` all at once in a fresh
process, without a database. (The SDK's tool-configuration guard compares every run of an
agent with the others in flight on it: at 1,000 runs of one agent it costs about as much as the
rest of the SDK's run.)
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from typing import Any

import sqlalchemy as sa
from rich.progress import Progress

from timestep.testing import WorkerProcess

from ._common import ROOT, dbos_table, sync_engine


def _finished(engine: sa.Engine, table: str, prefix: str) -> tuple[int, int]:
    query = sa.text(
        f"SELECT status, count(*) FROM {table} WHERE workflow_uuid LIKE :p GROUP BY status"
    )
    with engine.connect() as conn:
        counts = dict(conn.execute(query, {"p": f"{prefix}-%"}).all())
    return counts.get("SUCCESS", 0), sum(counts.values())


def run(kind: str, url: str, n: int, progress: Progress, timeout: float = 300) -> dict[str, Any]:
    bare = _recover(kind, url, n, "dbos", progress, timeout)
    out = _recover(kind, url, n, "timestep", progress, timeout)
    out["bare_dbos"] = bare
    out["plain_runner"] = _plain(n)
    out["timestep_over_bare_dbos"] = (
        out["restart_to_all_finished_s"] / bare["restart_to_all_finished_s"]
    )
    floor = bare["launched_to_all_finished_s"] + out["plain_runner"]["wall_s"]
    out["timestep_over_bare_dbos_plus_plain"] = out["launched_to_all_finished_s"] / floor
    return out


def _plain(n: int) -> dict[str, Any]:
    """The SDK's own time for the same runs, all at once (``_recovery_worker`` ``plain``)."""
    command = [sys.executable, "-m", "benchmarks._recovery_worker", "-", "plain", str(n), "-"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300)
    line = next(x for x in done.stdout.splitlines() if x.startswith("PLAIN "))
    wall, cpu = (float(x) for x in line.split()[1:])
    return {"runs": n, "wall_s": wall, "cpu_s": cpu}


def _recover(
    kind: str, url: str, n: int, contender: str, progress: Progress, timeout: float
) -> dict[str, Any]:
    prefix = f"bench-recovery-{contender}-{uuid.uuid4().hex[:8]}"
    env = {"TIMESTEP_APPLICATION_VERSION": f"bench-recovery-{prefix}"}
    label = "Timestep" if contender == "timestep" else "bare DBOS"
    task = progress.add_task(f"{kind}: (7) recovery of {n} runs, {label}", total=n)
    engine = sync_engine(url)
    table = dbos_table(url, "workflow_status")
    command = [
        sys.executable,
        "-m",
        "benchmarks._recovery_worker",
        url,
        "hold",
        str(n),
        prefix,
        contender,
    ]
    try:
        with WorkerProcess(command, env=env, cwd=ROOT) as worker:
            worker.start()
            worker.wait_for_line("INFLIGHT", timeout=timeout)
            worker.kill()
            worker.wait(timeout=30)
            done, total = _finished(engine, table, prefix)
            assert total == n and done == 0, (done, total)
            worker.command[4] = "recover"
            restarted = time.perf_counter()
            worker.start()
            worker.wait_for_line("LAUNCHED", timeout=60)
            launched = time.perf_counter()
            deadline = restarted + timeout
            while done < n and time.perf_counter() < deadline:
                time.sleep(0.02)
                done, _ = _finished(engine, table, prefix)
                progress.update(task, completed=done)
            finished = time.perf_counter()
    finally:
        engine.dispose()
    if done < n:
        raise AssertionError(f"only {done} of {n} runs recovered within {timeout}s")
    return {
        "runs": n,
        "restart_to_all_finished_s": finished - restarted,
        "launched_to_all_finished_s": finished - launched,
        "process_start_to_launched_s": launched - restarted,
    }
