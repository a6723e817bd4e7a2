"""DBOS as this process can reach it: DBOS itself where this process launched it, else a
``DBOSClient`` on the same database, which reads and sends but never recovers or executes a
run. Written once, so every caller (approvals, results, streams, the CLI, the HTTP API) can
work from a process that is not a worker.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
from dbos import DBOS, DBOSClient, WorkflowHandleAsync, WorkflowStatus
from sqlalchemy.engine import make_url

from timestep._core.database import connect_timeout_url, unreachable
from timestep._core.process import process_state
from timestep._core.runtime import current_database, is_dbos_launched
from timestep._core.serializer import TimestepSerializer
from timestep._core.settings import redact_url
from timestep.errors import DatabaseNotInitializedError

__all__ = ["DurableSystem", "stream_polling_interval", "system"]


class DurableSystem(Protocol):
    """The DBOS operations Timestep's client layer uses; ``DBOS`` and ``DBOSClient`` both
    provide them."""

    async def send_async(
        self,
        destination_id: str,
        message: Any,
        topic: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> None: ...

    async def get_event_async(
        self, workflow_id: str, key: str, timeout_seconds: float = 60
    ) -> Any: ...

    def read_stream_async(
        self,
        workflow_id: str,
        key: str,
        *,
        offset: int = 0,
        polling_interval_sec: float | None = None,
    ) -> AsyncIterator[Any]: ...

    async def list_workflows_async(self, **filters: Any) -> list[WorkflowStatus]: ...

    async def list_workflow_steps_async(self, workflow_id: str) -> list[Any]: ...

    async def cancel_workflow_async(self, workflow_id: str) -> None: ...

    async def delete_workflows_async(
        self, workflow_ids: list[str], *, delete_children: bool = False
    ) -> None: ...

    async def resume_workflow_async(self, workflow_id: str) -> WorkflowHandleAsync[Any]: ...

    async def rewind_workflow_async(
        self, workflow_id: str, *, start_step: int | None = None
    ) -> WorkflowHandleAsync[Any]: ...

    async def fork_workflow_async(
        self, workflow_id: str, start_step: int
    ) -> WorkflowHandleAsync[Any]: ...

    async def retrieve_workflow_async(self, workflow_id: str) -> WorkflowHandleAsync[Any]: ...

    def list_schedules(self, *, workflow_name: str | None = None) -> list[Any]: ...

    def get_schedule(self, name: str) -> Any: ...

    def pause_schedule(self, name: str) -> None: ...

    def resume_schedule(self, name: str) -> None: ...

    def delete_schedule(self, name: str) -> None: ...

    def trigger_schedule(self, schedule_name: str) -> Any: ...

    def backfill_schedule(self, schedule_name: str, start: datetime, end: datetime) -> Any: ...


def system() -> DurableSystem:
    """DBOS if this process launched it, else the process's ``DBOSClient`` (made once)."""
    process = process_state()
    if process.launched:
        return DBOS  # type: ignore[return-value]  # its classmethods are the protocol's
    with process.lock:
        if process.dbos_client is None:
            url = current_database().url
            timeout = process.settings.db_connect_timeout_sec
            _require_initialized(url)
            try:
                # It connects at once; a database that does not answer fails within the
                # connect timeout (TIMESTEP_DB_CONNECT_TIMEOUT_SEC) as a typed error.
                process.dbos_client = DBOSClient(
                    system_database_url=connect_timeout_url(url, timeout),
                    serializer=TimestepSerializer(),
                )
            except sa.exc.OperationalError as exc:
                if "does not exist" in str(exc):  # Postgres answers: no such database
                    raise DatabaseNotInitializedError(redact_url(url)) from exc
                raise unreachable(url, exc) from exc
        return process.dbos_client  # type: ignore[return-value]


def _require_initialized(url: str) -> None:
    """A SQLite file nothing has created yet is not opened (that would make an empty file,
    and DBOS's client never creates its tables): the typed error says what to do."""
    if url.startswith("sqlite"):
        path = make_url(url).database
        if path and path != ":memory:" and not Path(path).exists():
            raise DatabaseNotInitializedError(redact_url(url))


def stream_polling_interval() -> float | None:
    """How often a stream reader polls when nothing wakes it: SQLite has no notifications, and
    DBOS's client (how a process that did not launch DBOS reads) listens for none, so these
    poll as often as Timestep polls SQLite (DBOS's default is once a second: a remote reader
    would see the end of a stream half a second late on average). A process that launched
    DBOS on Postgres waits for notifications."""
    if current_database().is_sqlite or not is_dbos_launched():
        return process_state().settings.sqlite_polling_interval_sec
    return None
