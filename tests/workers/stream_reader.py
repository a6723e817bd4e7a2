"""Reads a run's events from another process, as a client would: a DBOSClient on the run's
database (no DBOS launch here), with the same agents; prints the event signatures as JSON.

usage: stream_reader.py DATABASE_URL WORKFLOW_ID
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: tests.*

import timestep
from tests import stream_scenario as sc

DATABASE_URL, WORKFLOW_ID = sys.argv[1:3]


async def main() -> None:
    timestep.configure_dbos(DATABASE_URL)  # configured, never launched: reads go through a client
    events = [sc.signature(e) async for e in timestep.stream_run_events(WORKFLOW_ID, sc.triage)]
    print(json.dumps(events))


asyncio.run(main())
