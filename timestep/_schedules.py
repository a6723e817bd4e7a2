"""Cron-scheduled agents on DBOS 3's schedules.

>>> schedule_agent("daily-digest", agent, "Summarise today's news.", "0 0 8 * * *")  # doctest: +SKIP

Cron expressions have six fields, seconds first (DBOS's format). Schedules declared before
launch are applied at launch with ``DBOS.apply_schedules`` (create or replace), so a redeploy
never duplicates them; after launch ``schedule_agent`` creates the schedule at once.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from agents import Agent
from croniter import croniter
from dbos import DBOS

from ._registry import register_agent
from ._runtime import is_dbos_launched
from ._sessions import TimestepSession
from .errors import ScheduleError
from .workflows import SCHEDULED_RUN_WORKFLOW, ScheduleContext, scheduled_agent_run

__all__ = [
    "ScheduleInfo",
    "schedule_agent",
    "list_schedules",
    "get_schedule",
    "pause_schedule",
    "resume_schedule",
    "delete_schedule",
    "trigger_schedule",
    "backfill_schedule",
]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
_declared: dict[str, dict[str, Any]] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class ScheduleInfo:
    name: str
    cron: str
    status: str
    agent: str
    session: str
    timezone: str | None
    missed: str
    last_fired_at: str | None


def schedule_agent(
    name: str,
    agent: Agent[Any],
    input_items: str | list[Any],
    cron: str,
    *,
    session: Literal["fresh", "shared"] | TimestepSession = "fresh",
    timezone: str | None = None,
    missed: Literal["skip", "backfill"] = "skip",
    max_turns: int | None = None,
) -> None:
    """Run ``agent`` on ``input_items`` at every ``cron`` time.

    ``session``: ``"fresh"`` gives each fire its own conversation; ``"shared"`` (or a
    ``Session``) makes every fire continue one conversation. ``missed``: fires missed while no
    worker ran are skipped, or run on the next launch (``"backfill"``).
    """
    if not _NAME.match(name):
        raise ScheduleError(
            f"invalid schedule name {name!r}: use 1-128 letters, digits, '_', '.', ':' or '-'"
        )
    if not croniter.is_valid(cron, second_at_beginning=True):
        raise ScheduleError(
            f"invalid cron expression {cron!r} (six fields, seconds first: '0 */5 * * * *')"
        )
    if missed not in ("skip", "backfill"):
        raise ScheduleError(f"missed must be 'skip' or 'backfill', got {missed!r}")
    entry = register_agent(agent)
    shared_id: str | None = None
    if isinstance(session, TimestepSession):
        shared_id, session = session.session_id, "shared"
    elif session == "shared":
        shared_id = f"schedule:{name}"
    elif session != "fresh":
        raise ScheduleError(f"session must be 'fresh', 'shared' or a Session, got {session!r}")
    context: ScheduleContext = {
        "agent": agent.name,
        "agent_ref": entry.ref,
        "input": input_items,
        "session": session,
        "session_id": shared_id,
        "max_turns": max_turns,
    }
    spec = {
        "schedule_name": name,
        "workflow_fn": scheduled_agent_run,
        "schedule": cron,
        "context": context,
        "automatic_backfill": missed == "backfill",
        "cron_timezone": timezone,
    }
    with _lock:
        if not is_dbos_launched():
            if name in _declared:
                raise ScheduleError(f"a schedule named {name!r} is already declared")
            _declared[name] = spec
            return
    if DBOS.get_schedule(name) is not None:
        raise ScheduleError(f"a schedule named {name!r} already exists")
    try:
        DBOS.create_schedule(**spec)
    except Exception as exc:
        raise ScheduleError(str(exc)) from exc


def apply_declared_schedules() -> None:
    """Create or replace the schedules declared before launch (called by the launch)."""
    with _lock:
        specs = list(_declared.values())
        _declared.clear()
    if specs:
        try:
            DBOS.apply_schedules(specs)  # type: ignore[arg-type]
        except Exception as exc:
            raise ScheduleError(str(exc)) from exc


def _info(schedule: Any) -> ScheduleInfo:
    context = schedule["context"] or {}
    return ScheduleInfo(
        name=schedule["schedule_name"],
        cron=schedule["schedule"],
        status=schedule["status"],
        agent=context.get("agent", ""),
        session=context.get("session", "fresh"),
        timezone=schedule["cron_timezone"],
        missed="backfill" if schedule["automatic_backfill"] else "skip",
        last_fired_at=schedule["last_fired_at"],
    )


def list_schedules() -> list[ScheduleInfo]:
    return [_info(s) for s in DBOS.list_schedules(workflow_name=SCHEDULED_RUN_WORKFLOW)]


def get_schedule(name: str) -> ScheduleInfo:
    schedule = DBOS.get_schedule(name)
    if schedule is None:
        raise ScheduleError(f"no schedule named {name!r}")
    return _info(schedule)


def pause_schedule(name: str) -> None:
    get_schedule(name)
    DBOS.pause_schedule(name)


def resume_schedule(name: str) -> None:
    get_schedule(name)
    DBOS.resume_schedule(name)


def delete_schedule(name: str) -> None:
    get_schedule(name)
    DBOS.delete_schedule(name)


def trigger_schedule(name: str) -> str:
    """Fire a schedule now; returns the fire's workflow id."""
    get_schedule(name)
    return DBOS.trigger_schedule(name).get_workflow_id()


def backfill_schedule(name: str, start: datetime, end: datetime) -> list[str]:
    """Fire every time of the schedule in (start, end) that has not fired yet; returns the
    fires' workflow ids (times already run are skipped by their deterministic ids)."""
    get_schedule(name)
    return [h.get_workflow_id() for h in DBOS.backfill_schedule(name, start, end)]
