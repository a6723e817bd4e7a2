"""Decide one pending tool call many times at once, from this process: a contender in the
first-wins race of ``tests/test_approvals.py``.

usage: decider.py DATABASE_URL WORKFLOW_ID CALL_ID approve|reject COUNT START_AT

Waits until the wall-clock time START_AT (so that the contending processes decide together),
sends COUNT decisions concurrently through a DBOSClient (this process never launches DBOS),
then prints one ``OUTCOME <json>`` line: each attempt's ``won`` or the winner it was told.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import timestep
from timestep.errors import DecisionConflictError

DATABASE_URL, WORKFLOW_ID, CALL_ID, DECISION, COUNT, START_AT = sys.argv[1:7]


async def attempt(index: int) -> dict[str, object]:
    by = f"{DECISION}-{index}"
    try:
        if DECISION == "approve":
            await timestep.approve(WORKFLOW_ID, CALL_ID, by=by)
        else:
            await timestep.reject(WORKFLOW_ID, CALL_ID, "no", by=by)
    except DecisionConflictError as exc:
        return {"by": by, "won": False, "winner": exc.decision, "winner_by": exc.winner["by"]}
    return {"by": by, "won": True}


async def main() -> None:
    timestep.configure_dbos(DATABASE_URL)
    await timestep.get_pending_approvals(WORKFLOW_ID)  # connect before the start
    await asyncio.sleep(max(0.0, float(START_AT) - time.time()))
    outcomes = await asyncio.gather(*(attempt(i) for i in range(int(COUNT))))
    print("OUTCOME " + json.dumps(outcomes), flush=True)


asyncio.run(main())
