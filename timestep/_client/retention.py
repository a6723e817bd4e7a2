"""Retention by hand: ``collect_garbage`` (``timestep gc``), from any process.

The same pass the scheduled retention workflow makes (``TIMESTEP_RETENTION``), through
``system()``: DBOS where this process launched it, else a ``DBOSClient`` (which deletes
workflows but never executes one).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from timestep._core.process import process_state
from timestep._core.retention import GcReport, Progress
from timestep._core.retention import collect_garbage as _collect
from timestep._core.retention_policy import RetentionPolicy, parse_duration, parse_retention
from timestep._core.runtime import dbos_schema, flush_records, tables_engine
from timestep.errors import ConfigurationError

from .system import system

__all__ = ["GcReport", "RetentionPolicy", "collect_garbage"]


async def collect_garbage(
    older_than: str | timedelta | None = None,
    *,
    policy: RetentionPolicy | str | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
    batch_size: int | None = None,
    progress: Progress | None = None,
) -> GcReport:
    """Delete ended runs (and idle sessions) the policy says are expired; returns what went.

    ``older_than`` (``"30d"``) applies to every ended run, whatever its status; otherwise
    ``policy`` or ``TIMESTEP_RETENTION``. ``dry_run`` counts without deleting. ``now`` is
    the time the ages count back from (default: now).

    Args:
        older_than: One age for every ended run: a duration (``"30d"``) or a ``timedelta``.
        policy: A policy, or its text (``"finished=30d,failed=90d"``); default
            ``TIMESTEP_RETENTION``.
        dry_run: Count what would go, delete nothing.
        now: The time ages count back from (default: now).
        batch_size: Runs deleted per batch (default ``TIMESTEP_RETENTION_BATCH_SIZE``).
        progress: Told after each batch: the part (``finished``, ``failed``, ``cancelled``,
            ``sessions``) and the batch's counts.

    Returns:
        What was deleted (or, dry, would be).

    Raises:
        ConfigurationError: The policy text is invalid, or there is no policy at all.
    """
    if older_than is not None:
        age = parse_duration(older_than) if isinstance(older_than, str) else older_than
        chosen = RetentionPolicy.for_all(age)
    elif isinstance(policy, str):
        chosen = _parsed(policy)
    else:
        chosen = policy or process_state().settings.retention_policy or _missing()
    await flush_records()  # this process's finished runs' rows, so none is written after
    return await _collect(
        system(),  # DBOS or a DBOSClient: both have these calls
        await tables_engine(),
        chosen,
        now=now,
        batch_size=batch_size or process_state().settings.retention_batch_size,
        dry_run=dry_run,
        dbos_schema=dbos_schema(),
        progress=progress,
    )


def _parsed(text: str) -> RetentionPolicy:
    try:
        return parse_retention(text)
    except ValueError as exc:
        raise ConfigurationError(f"invalid retention policy: {exc}") from None


def _missing() -> RetentionPolicy:
    raise ConfigurationError(
        "no retention policy: set TIMESTEP_RETENTION (e.g. finished=30d,failed=90d) "
        "or pass older_than"
    )
