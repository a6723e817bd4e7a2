"""A recovered run's objects, rebuilt from its recorded request in this process.

The process that started a run hands the workflow the caller's own objects
(``timestep._core.live``). A run recovered anywhere else has only its ``RunRequest``: its
agent comes from the registry (by name, checked against the recorded fingerprint), and its
context, hooks, RunConfig, error handlers and session from their portable forms
(``timestep._core.portable``). What cannot be rebuilt fails the run with a
``RecoveryError`` that names it, never a run that silently goes on without it.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from agents import RunConfig, SQLiteSession
from agents.memory.session import Session

from timestep._core.live import RunObjects
from timestep._core.portable import rebuild, rebuild_fields
from timestep._core.process import process_state
from timestep._core.protocol import RunRequest
from timestep._core.runtime import dbos_table, tables_engine
from timestep.errors import AgentDefinitionChangedError, RecoveryError
from timestep.steps import TimestepSession

__all__ = ["forked_at_ns", "rebuild_forkable_run_objects", "rebuild_run_objects", "rebuild_session"]

logger = logging.getLogger("timestep")


async def rebuild_forkable_run_objects(request: RunRequest, workflow_id: str) -> RunObjects:
    """``rebuild_run_objects``, except that a fork of a run (``timestep runs fork``) goes on
    with its agent's current definition: forking is how a run is moved onto a new one. The
    fork is looked up only when the definition changed, so other runs pay nothing."""
    try:
        return rebuild_run_objects(request)
    except AgentDefinitionChangedError as exc:
        if not await _is_fork(workflow_id):
            raise
        logger.info("forked run %s goes on with the new definition (%s)", workflow_id, exc)
        return rebuild_run_objects(request, check_definition=False)


async def _is_fork(workflow_id: str) -> bool:
    """Whether DBOS made ``workflow_id`` by forking another workflow (its status row says so,
    and never changes, so every execution of the run reads the same)."""
    return await forked_at_ns(workflow_id) is not None


async def forked_at_ns(workflow_id: str) -> int | None:
    """When a worker began the run DBOS forked as ``workflow_id`` from another workflow
    (epoch ns), None if it is no fork: a fork replays its origin's request, so the request's
    start is the origin's. (A fork waits in DBOS's internal queue and is started when taken
    from it; DBOS records that in ms on Postgres, in whole seconds on SQLite.)"""
    status = dbos_table(
        "workflow_status",
        "workflow_uuid",
        "forked_from",
        integer=("created_at", "started_at_epoch_ms"),
    )
    async with (await tables_engine()).connect() as conn:
        row = (
            await conn.execute(
                sa.select(
                    status.c.forked_from, status.c.created_at, status.c.started_at_epoch_ms
                ).where(status.c.workflow_uuid == workflow_id)
            )
        ).one_or_none()
    if row is None or row.forked_from is None:
        return None
    return int(row.started_at_epoch_ms or row.created_at) * 1_000_000


def rebuild_run_objects(request: RunRequest, *, check_definition: bool = True) -> RunObjects:
    process = process_state()
    codecs = process.type_codecs
    context = rebuild(request.get("context"), "context", codecs)
    agent = process.agents.resolve(
        request["agent"],
        request.get("agent_ref"),
        context=context,
        recorded=request.get("agent_fingerprint") if check_definition else None,
    )
    config_fields = request.get("run_config") or {}
    run_config = (
        RunConfig(**rebuild_fields(config_fields, "run_config", codecs)) if config_fields else None
    )
    handlers = request.get("error_handlers") or {}
    return RunObjects(
        agent=agent,
        context=context,
        hooks=rebuild(request.get("hooks"), "hooks", codecs),
        run_config=run_config,
        error_handlers=rebuild_fields(handlers, "error_handlers", codecs) or None,
        session=rebuild_session(request),
    )


def rebuild_session(request: RunRequest) -> Session | None:
    form: dict[str, Any] | None = request.get("session")
    if form is None:
        session_id = request.get("session_id")
        return TimestepSession(session_id) if session_id else None
    if "sqlite" in form:
        return SQLiteSession(**form["sqlite"])
    session = rebuild(form, "session", process_state().type_codecs)
    if not hasattr(session, "get_items"):
        raise RecoveryError("session", f"its rebuilt value is a {type(session).__name__}")
    return session  # type: ignore[no-any-return]
