"""Usage and tool-call rows, written off the run's path by one writer thread per process.

A finished run hands its rows to the recorder and returns at once; the writer commits what
has gathered in one transaction (group commit), so no run waits for a write and busy
processes share one per batch. Nothing is lost to a crash: the rows are also part of the run's
workflow output, which DBOS has recorded, and every commit moves this executor's mark (the
rows of every run it completed before the mark are written). At launch, the runs this
executor completed after its mark are written again from their outputs; every write is
idempotent, so writing a run twice changes nothing.

In-process readers (``get_usage``, ``list_pending_approvals``) call ``flush_records`` first;
other processes see a run's rows once its worker's writer has committed them (within
``TIMESTEP_RECORDS_FLUSH_INTERVAL_SEC`` plus a write, by default).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from dbos import DBOS

from .protocol import AGENT_RUN_WORKFLOW, RunRecords
from .tables import (
    insert_ignoring_duplicates_statement,
    recorder_marks_table,
    tool_calls_table,
    upsert_statement,
    usage_table,
)

__all__ = ["Recorder"]

logger = logging.getLogger("timestep")

# DBOS stamps completed_at with the database's clock (whole seconds on SQLite before 3.42 or
# Python 3.12); reconciling a little before the mark covers that and modest clock skew.
_RECONCILE_MARGIN_MS = 30_000
_MAX_RETRY_SECONDS = 30.0


class Recorder:
    """Gathers runs' rows and writes them in batches from a daemon thread."""

    def __init__(self, sync_engine: Callable[[str], sa.Engine]) -> None:
        self._sync_engine = sync_engine
        self._cond = threading.Condition()
        self._pending: list[tuple[str, RunRecords]] = []
        self._reconcile: list[tuple[str, str, int]] = []  # (url, executor id, since ms)
        self._submitted = 0
        self._written = 0
        self._urgent = False
        self._thread: threading.Thread | None = None
        self.flush_interval = 0.05

    def submit(self, url: str, records: RunRecords) -> None:
        """Queue a run's rows for the next batch (returns at once)."""
        if not records["usage"] and not records["tool_calls"]:
            return
        self._add((url, records))

    def reconcile(self, url: str, executor_id: str, since_ms: int) -> None:
        """Rewrite, in the next batch, the rows of this executor's runs completed after
        ``since_ms`` (from their recorded workflow outputs)."""
        self._add((url, executor_id, since_ms), reconcile=True)

    def _add(self, entry: Any, *, reconcile: bool = False) -> None:
        with self._cond:  # the writer swaps the lists under this lock: pick one inside it
            (self._reconcile if reconcile else self._pending).append(entry)
            self._submitted += 1
            self._start()
            self._cond.notify()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything submitted so far is written; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            target = self._submitted
            if self._written >= target:
                return True
            self._urgent = True
            self._cond.notify_all()
            while self._written < target:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    @property
    def outstanding(self) -> int:
        return self._submitted - self._written

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self._loop, name="timestep-recorder", daemon=True
            )
            self._thread.start()

    def _loop(self) -> None:
        failures = 0
        while True:
            with self._cond:
                while not self._pending and not self._reconcile:
                    self._cond.wait()
                # Gather more runs unless a reader is waiting for these.
                gather_until = time.monotonic() + self.flush_interval
                while not self._urgent and (left := gather_until - time.monotonic()) > 0:
                    self._cond.wait(left)
                self._urgent = False
                # Every run completed before this instant submitted its rows before it, so
                # they are in this batch or an earlier one: the executor's mark after commit.
                taken_ms = int(time.time() * 1000)
                batch, self._pending = self._pending, []
                reconcile, self._reconcile = self._reconcile, []
            try:
                done = self._write(batch, reconcile, taken_ms)
            except Exception:
                failures += 1
                delay = _backoff(failures)
                logger.warning(
                    "could not write the usage and tool-call rows of %d runs; retrying in %.0f s",
                    len(batch),
                    delay,
                    exc_info=failures == 1,
                )
                with self._cond:
                    self._pending[:0] = batch
                    self._reconcile[:0] = reconcile
                time.sleep(delay)
                continue
            with self._cond:
                self._written += len(batch) + done
                self._reconcile[:0] = reconcile[done:]
                self._cond.notify_all()
            if done < len(reconcile):
                failures += 1
                time.sleep(_backoff(failures))
            else:
                failures = 0

    def _write(
        self,
        batch: list[tuple[str, RunRecords]],
        reconcile: list[tuple[str, str, int]],
        taken_ms: int,
    ) -> int:
        return _write_batch(self._sync_engine, batch, reconcile, taken_ms)

    def start_reconciliation(self, url: str, launched_at_ms: int) -> None:
        """At launch: write again the runs this executor completed after its mark (a crash
        may have taken their batch), and give a new executor its first mark."""
        executor_id = DBOS.executor_id
        with self._sync_engine(url).begin() as conn:
            t = recorder_marks_table
            mark = conn.execute(
                sa.select(t.c.recorded_through_ms).where(t.c.executor_id == executor_id)
            ).scalar()
            if mark is None:
                # Nothing of this executor's was ever recorded: every run it completes from
                # now on is after this mark.
                conn.execute(
                    insert_ignoring_duplicates_statement(conn.dialect.name, t),
                    {"executor_id": executor_id, "recorded_through_ms": launched_at_ms},
                )
                return
        self.reconcile(url, executor_id, mark - _RECONCILE_MARGIN_MS)

    def discard(self) -> int:
        """Forget everything not yet written (for runtime resets); how many entries."""
        with self._cond:
            dropped = len(self._pending) + len(self._reconcile)
            self._written += dropped
            self._pending, self._reconcile = [], []
            self._cond.notify_all()
            return dropped


def _backoff(failures: int) -> float:
    return min(_MAX_RETRY_SECONDS, 0.5 * 2.0**failures)


def _write_batch(
    sync_engine: Callable[[str], sa.Engine],
    batch: list[tuple[str, RunRecords]],
    reconcile: list[tuple[str, str, int]],
    taken_ms: int,
) -> int:
    """Write a batch (and the runs to reconcile) and move the mark; how many of
    ``reconcile`` were done. The mark stays put while a reconciliation is left undone."""
    runs = list(batch)
    done = 0
    for url, executor_id, since_ms in reconcile:
        try:
            runs += [(url, records) for records in _recorded_outputs(executor_id, since_ms)]
        except Exception:
            logger.warning("could not list finished runs to reconcile; will retry", exc_info=True)
            break
        done += 1
    move_mark = done == len(reconcile)
    by_url: dict[str, RunRecords] = defaultdict(lambda: {"usage": [], "tool_calls": []})
    for url, records in runs:
        by_url[url]["usage"] += records["usage"]
        by_url[url]["tool_calls"] += records["tool_calls"]
    executor_id = DBOS.executor_id
    for url, records in by_url.items():
        with sync_engine(url).begin() as conn:
            dialect = conn.dialect.name
            if records["usage"]:
                statement = insert_ignoring_duplicates_statement(dialect, usage_table)
                # Runs recorded before schema 6 have no tags key; every row needs the same keys.
                conn.execute(statement, [{"tags": "", **row} for row in records["usage"]])
            if records["tool_calls"]:
                statement = upsert_statement(
                    dialect, tool_calls_table, ["workflow_id", "call_id"], ["status"]
                )
                conn.execute(statement, records["tool_calls"])
            if move_mark:
                conn.execute(
                    upsert_statement(
                        dialect, recorder_marks_table, ["executor_id"], ["recorded_through_ms"]
                    ),
                    {"executor_id": executor_id, "recorded_through_ms": taken_ms},
                )
    return done


def _recorded_outputs(executor_id: str, since_ms: int) -> list[RunRecords]:
    statuses = DBOS.list_workflows(
        name=AGENT_RUN_WORKFLOW,
        status="SUCCESS",
        executor_id=executor_id,
        completed_after=datetime.fromtimestamp(since_ms / 1000, UTC).isoformat(),
        load_input=False,
    )
    out = []
    for status in statuses:
        output = status.output
        records = output.get("records") if isinstance(output, dict) else None
        if records:
            out.append(records)
    return out
