"""The retention policy: how long ended runs and idle sessions are kept.

``TIMESTEP_RETENTION="finished=30d,failed=90d,cancelled=30d,sessions=180d"``: each key is
how long after it ended a run in that state is kept (``finished``: SUCCESS; ``failed``: ERROR
and MAX_RECOVERY_ATTEMPTS_EXCEEDED; ``cancelled``: CANCELLED), and ``sessions`` how long a
session's items are kept after its last activity. A key left out is kept forever. Durations
are a number and a unit: ``s``, ``m``, ``h``, ``d`` or ``w``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import timedelta
from types import MappingProxyType
from typing import Any

__all__ = ["STATUS_GROUPS", "RetentionPolicy", "parse_duration", "parse_retention"]

STATUS_GROUPS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "finished": ("SUCCESS",),
        "failed": ("ERROR", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"),
        "cancelled": ("CANCELLED",),
    }
)
"""The DBOS statuses each policy key covers: ended ones only (never PENDING, ENQUEUED...)."""

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS: Mapping[str, int] = MappingProxyType(
    {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
)


def parse_duration(text: str) -> timedelta:
    """``"30d"`` -> 30 days; ``ValueError`` for anything else."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration (a number and s, m, h, d or w: '30d')")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


@dataclass(frozen=True)
class RetentionPolicy:
    """How long ended runs, by status, and idle sessions are kept; None keeps them forever.

    Attributes:
        finished: How long after it ended a successful run is kept.
        failed: How long after it ended a failed run (``ERROR``,
            ``MAX_RECOVERY_ATTEMPTS_EXCEEDED``) is kept.
        cancelled: How long after it ended a cancelled run is kept.
        sessions: How long after its last activity a session's items are kept.
    """

    finished: timedelta | None = None
    failed: timedelta | None = None
    cancelled: timedelta | None = None
    sessions: timedelta | None = None

    @classmethod
    def for_all(cls, age: timedelta) -> RetentionPolicy:
        """Every ended run older than ``age`` (``timestep gc --older-than``); sessions kept.

        Args:
            age: How long after it ended any run is kept.

        Returns:
            The policy.
        """
        return cls(finished=age, failed=age, cancelled=age)

    def to_json(self) -> dict[str, float | None]:
        """The policy as JSON.

        Returns:
            Each field in seconds, or None.
        """
        return {
            f.name: (v.total_seconds() if (v := getattr(self, f.name)) is not None else None)
            for f in fields(self)
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RetentionPolicy:
        """The policy ``to_json`` gave.

        Args:
            data: Each field in seconds, or None (a missing field is None).

        Returns:
            The policy.
        """
        return cls(
            **{
                f.name: timedelta(seconds=data[f.name]) if data.get(f.name) is not None else None
                for f in fields(cls)
            }
        )


def parse_retention(text: str) -> RetentionPolicy:
    """``"finished=30d,failed=90d"`` -> a policy; ``ValueError`` naming the bad part."""
    known = {f.name for f in fields(RetentionPolicy)}
    values: dict[str, timedelta] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in known:
            raise ValueError(
                f"{part!r}: expected KEY=DURATION with KEY one of {', '.join(sorted(known))}"
            )
        values[key] = parse_duration(value)
    return RetentionPolicy(**values)
