"""A worker that only launches, so its DBOS scheduler fires the retention pass; two of them
share a database. TIMESTEP_RETENTION and TIMESTEP_RETENTION_SCHEDULE come from the
environment.

usage: retention_worker.py DATABASE_URL
"""

from __future__ import annotations

import sys
import time

import timestep

timestep.configure_dbos(sys.argv[1])
timestep.ensure_dbos_launched()
print("LAUNCHED", flush=True)
while True:
    time.sleep(1)
