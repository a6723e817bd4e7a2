"""The chaos soak, short: runs with tool calls and approvals over 2 worker processes while a
killer SIGKILLs a random worker every 0.5-2 s and restarts it. Asserts invariants, not speed.

The long variant (200 runs) is ``python -m benchmarks --long``; the soak itself lives in
``benchmarks/_chaos.py`` and the workers in ``tests/workers/chaos_worker.py``.
"""

from __future__ import annotations

import pytest

from benchmarks._chaos import run_soak

RUNS = 24


@pytest.mark.timeout(240)
def test_chaos_soak_keeps_every_invariant(database_url: str):
    report = run_soak(
        database_url,
        runs=RUNS,
        workers=2,
        spread_seconds=8.0,
        kill_interval=(0.5, 2.0),
        max_seconds=30.0,
        settle_seconds=90.0,
    )
    print(report.text())
    problems = report.violations()
    assert not problems, "\n".join([*problems, "worker output (tail):", report.worker_output])
    assert report.kills >= 1, "the killer never struck: the soak proved nothing"
    assert sum(1 for s in report.finished.values() if s == "SUCCESS") == RUNS
    assert report.approvals_sent >= RUNS
