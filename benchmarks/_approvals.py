"""(5) Approval decision to resumed tool: from ``approve()`` being called to the approved
tool's body starting inside the waiting workflow."""

from __future__ import annotations

import time
from typing import Any

from dbos import DBOS
from rich.progress import Progress

import timestep
from timestep._core.protocol import APPROVALS_EVENT

from ._agents import APPROVAL_AGENT, APPROVED_TOOL_STARTED
from ._common import new_id, summary


async def _one() -> tuple[float, float]:
    workflow_id = new_id("bench-approval")
    handle = await timestep.start_agent_run(
        APPROVAL_AGENT, "go", workflow_id=workflow_id, wait_for_approvals=True
    )
    # Wait (outside the timed span) until the run has published its pending approval.
    while not await DBOS.get_event_async(workflow_id, APPROVALS_EVENT, timeout_seconds=5):
        pass
    decided = time.perf_counter()
    await timestep.approve(workflow_id, "call_0")
    result = await handle.result()
    finished = time.perf_counter()
    assert result.final_output == "done", result.final_output
    started = APPROVED_TOOL_STARTED.pop(workflow_id)
    return (started - decided) * 1000, (finished - decided) * 1000


async def run(kind: str, runs: int, progress: Progress) -> dict[str, Any]:
    for _ in range(3):
        await _one()
    to_tool, to_end = [], []
    task = progress.add_task(f"{kind}: (5) approval -> resumed tool", total=runs)
    for _ in range(runs):
        a, b = await _one()
        to_tool.append(a)
        to_end.append(b)
        progress.advance(task)
    return {"decision_to_tool": summary(to_tool), "decision_to_result": summary(to_end)}
