"""Cron-scheduled agents on DBOS 3's schedules.

>>> schedule_agent("daily-digest", agent, "Summarise today's news.", "0 0 8 * * *")  # doctest: +SKIP

Cron expressions have six fields, seconds first (DBOS's format). Schedules declared before
launch are applied at launch with ``DBOS.apply_schedules`` (create or replace), so a redeploy
never duplicates them; after launch ``schedule_agent`` creates the schedule at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from agents import Agent
from croniter import croniter
from dbos import DBOS

from timestep._core.process import process_state
from timestep._core.protocol import SCHEDULED_RUN_WORKFLOW, ScheduleContext
from timestep.errors import ScheduleError
from timestep.steps import TimestepSession
from timestep.workflows import scheduled_agent_run

from .system import system

__all__ = [
    "ScheduleInfo",
    "backfill_schedule",
    "delete_schedule",
    "get_schedule",
    "list_schedules",
    "pause_schedule",
    "resume_schedule",
    "schedule_agent",
    "trigger_schedule",
]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")


@dataclass(frozen=True)
class ScheduleInfo:
    """An agent schedule, as ``list_schedules`` and ``get_schedule`` give it.

    Attributes:
        name: The schedule's name.
        cron: Its cron expression (six fields, seconds first).
        status: DBOS's status: ``"ACTIVE"`` or ``"PAUSED"``.
        agent: The name of the agent it runs.
        session: ``"fresh"`` (a conversation per fire) or ``"shared"`` (one for all fires).
        timezone: The cron's time zone (None: UTC).
        missed: ``"skip"`` or ``"backfill"``: what happens to fires missed while no worker ran.
        last_fired_at: When it last fired, or None.
    """

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

    Args:
        name: The schedule's name: 1-128 letters, digits, ``_``, ``.``, ``:`` or ``-``.
        agent: The agent to run (registered with ``register_agent`` as well).
        input_items: Each fire's input: a string or input items.
        cron: When to fire: six fields, seconds first (``"0 */5 * * * *"``).
        session: ``"fresh"``, ``"shared"`` or a ``Session`` every fire continues.
        timezone: The cron's time zone, e.g. ``"Europe/Paris"`` (default UTC).
        missed: ``"skip"`` or ``"backfill"``.
        max_turns: Each fire's turn limit (default: the SDK's).

    Raises:
        ScheduleError: The name, cron, ``session`` or ``missed`` is invalid, or a schedule
            has this name already.
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
    process = process_state()
    entry = process.agents.register(agent)
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
    spec: dict[str, Any] = {
        "schedule_name": name,
        "workflow_fn": scheduled_agent_run,
        "schedule": cron,
        "context": context,
        "automatic_backfill": missed == "backfill",
        "cron_timezone": timezone,
    }
    with process.lock:
        if not process.launched:
            if name in process.schedules:
                raise ScheduleError(f"a schedule named {name!r} is already declared")
            process.schedules[name] = spec  # applied by the launch
            return
    if DBOS.get_schedule(name) is not None:
        raise ScheduleError(f"a schedule named {name!r} already exists")
    try:
        DBOS.create_schedule(**spec)
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
    """Every agent schedule, from any process.

    Returns:
        The schedules.
    """
    return [_info(s) for s in system().list_schedules(workflow_name=SCHEDULED_RUN_WORKFLOW)]


def get_schedule(name: str) -> ScheduleInfo:
    """A schedule by name, from any process.

    Args:
        name: The schedule's name.

    Returns:
        The schedule.

    Raises:
        ScheduleError: No schedule has this name.
    """
    schedule = system().get_schedule(name)
    if schedule is None:
        raise ScheduleError(f"no schedule named {name!r}")
    return _info(schedule)


def pause_schedule(name: str) -> None:
    """Stop a schedule firing until ``resume_schedule``.

    Args:
        name: The schedule's name.

    Raises:
        ScheduleError: No schedule has this name.
    """
    get_schedule(name)
    system().pause_schedule(name)


def resume_schedule(name: str) -> None:
    """Let a paused schedule fire again.

    Args:
        name: The schedule's name.

    Raises:
        ScheduleError: No schedule has this name.
    """
    get_schedule(name)
    system().resume_schedule(name)


def delete_schedule(name: str) -> None:
    """Delete a schedule (its past fires stay).

    Args:
        name: The schedule's name.

    Raises:
        ScheduleError: No schedule has this name.
    """
    get_schedule(name)
    system().delete_schedule(name)


def trigger_schedule(name: str) -> str:
    """Fire a schedule now.

    Args:
        name: The schedule's name.

    Returns:
        The fire's workflow id.

    Raises:
        ScheduleError: No schedule has this name.
    """
    get_schedule(name)
    return str(system().trigger_schedule(name).get_workflow_id())


def backfill_schedule(name: str, start: datetime, end: datetime) -> list[str]:
    """Fire every time of the schedule in (start, end) that has not fired yet; returns the
    fires' workflow ids (times already run are skipped by their deterministic ids).

    Args:
        name: The schedule's name.
        start: The start of the interval (excluded).
        end: The end of the interval (excluded).

    Returns:
        The workflow ids of the fires enqueued.

    Raises:
        ScheduleError: No schedule has this name.
    """
    get_schedule(name)
    return [h.get_workflow_id() for h in system().backfill_schedule(name, start, end)]
