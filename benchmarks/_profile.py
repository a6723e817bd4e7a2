"""Where Timestep's time goes: pyinstrument on the (3) case, summed per function.

pyinstrument's tree is split wherever a task switches; here every frame's time is summed per
``file:function`` (outermost occurrence only, so recursion is not counted twice) and divided
by the number of runs. ``[await]`` frames under ``asyncio.to_thread`` are the time a step
spends waiting on its database write in DBOS's thread pool.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from typing import Any

from pyinstrument import Profiler
from rich.progress import Progress

from ._common import RESULTS, ROOT, new_id
from ._overhead import STEPS_PER_RUN, timestep_run

PACKAGES = ("timestep", "steps", "workflows", "providers")  # Timestep's own code
# Library frames worth naming in the breakdown (inclusive time).
LIBRARY = {
    "dbos/_dbos.py:run_step_async",
    "dbos/_dbos.py:start_workflow_async",
    "dbos/_core.py:run_async",
    "asyncio/threads.py:to_thread",
    "agents/run.py:run",
    "sqlalchemy/ext/asyncio/engine.py:begin",
    "sqlalchemy/ext/asyncio/engine.py:execute",
}


def _key(frame: Any) -> str:
    path = str(frame.file_path or "")
    root = f"{ROOT}/"
    if path.startswith(root) and path[len(root) :].split("/", 1)[0] in PACKAGES:
        return f"{path[len(root) :]}:{frame.function}"
    return f"{frame.file_path_short}:{frame.function}"


def _ours(key: str) -> bool:
    return key.split("/", 1)[0] in PACKAGES


def _walk(frame: Any, seen: frozenset[str], totals: dict[str, float], self_t: dict) -> None:
    key = _key(frame)
    if key not in seen:
        totals[key] += frame.time
    self_t[key] += frame.total_self_time
    for child in frame.children:
        _walk(child, seen | {key}, totals, self_t)


def breakdown(profiler: Profiler, runs: int) -> dict[str, Any]:
    session = profiler.last_session
    assert session is not None
    root = session.root_frame()
    totals: dict[str, float] = defaultdict(float)
    self_t: dict[str, float] = defaultdict(float)
    if root is not None:
        _walk(root, frozenset(), totals, self_t)

    def ms(value: float) -> float:
        return value / runs * 1000

    ours = {
        k: ms(v)
        for k, v in sorted(totals.items(), key=lambda kv: -kv[1])
        if _ours(k) or any(k.endswith(lib) for lib in LIBRARY)
    }
    top_self = {k: ms(v) for k, v in sorted(self_t.items(), key=lambda kv: -kv[1])[:15]}
    return {
        "inclusive_ms_per_run": dict(list(ours.items())[:25]),
        "top_self_ms_per_run": top_self,
        "profiled_ms_per_run": ms(session.duration),
        "cpu_ms_per_run": ms(session.cpu_time),
    }


async def run(kind: str, runs: int, progress: Progress) -> dict[str, Any]:
    for _ in range(20):
        await timestep_run()
    task = progress.add_task(f"{kind}: profile of (3)", total=runs)
    profiler = Profiler(interval=0.0005, async_mode="enabled")
    started = time.perf_counter()
    profiler.start()
    for _ in range(runs):
        await timestep_run()
        progress.advance(task)
    profiler.stop()
    elapsed = time.perf_counter() - started
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"profile-{kind}.html").write_text(profiler.output_html())
    out = breakdown(profiler, runs)
    out["runs"] = runs
    out["steps_per_run"] = STEPS_PER_RUN
    out["wall_ms_per_run_profiled"] = elapsed / runs * 1000
    out["ablations"] = await ablations(kind, runs, progress)
    return out


async def _p50(runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await timestep_run()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


async def _direct_run() -> None:
    """The run as the workflow function awaited in this task (no ``start_workflow_async``
    task, no handle), with the request ``start_agent_run`` would build."""
    from dbos import SetWorkflowID

    from timestep.workflows import agent_run_workflow

    from ._agents import BENCH_AGENT

    request: Any = {
        "agent": BENCH_AGENT.name,
        "agent_ref": None,
        "input": "go",
        "session_id": None,
        "max_turns": None,
        "stream": False,
        "approvals": {"wait": False, "timeout_seconds": None, "on_timeout": "reject"},
    }
    with SetWorkflowID(new_id("bench-direct")):
        summary = await agent_run_workflow(request)
    assert summary["final_output"] == "done"


async def ablations(kind: str, runs: int, progress: Progress) -> dict[str, float]:
    """Timestep's p50 with one of its own costs switched off at a time (monkeypatched here,
    in this process only), against the unchanged run measured alternately."""
    import timestep.workflows._agent_run as agent_run

    def no_record(*args: Any, **kwargs: Any) -> Any:
        return {"usage": [], "tool_calls": []}

    task = progress.add_task(f"{kind}: ablations of (3)", total=3)
    out: dict[str, float] = {"baseline_p50_ms": await _p50(runs)}
    original = agent_run.record_run
    agent_run.record_run = no_record  # type: ignore[assignment]
    try:
        out["without_record_run_p50_ms"] = await _p50(runs)
    finally:
        agent_run.record_run = original
    progress.advance(task)
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await _direct_run()
        samples.append((time.perf_counter() - started) * 1000)
    out["workflow_awaited_directly_p50_ms"] = statistics.median(samples)
    progress.advance(task)
    out["baseline_again_p50_ms"] = await _p50(runs)
    progress.advance(task)
    return out
