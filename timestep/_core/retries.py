"""How many times a step was retried, for the run's timeline.

DBOS retries a step (a tool given ``max_attempts``, an MCP server still connecting) inside one
step record, and a model client retries a 429 or a 5xx inside one execution of the model
step's body; neither leaves a count in DBOS's tables. A step's executions are counted while
its body runs (``attempting``, a ContextVar per execution, so concurrent steps keep apart);
each retry adds one to the step's row in ``timestep_step_retries``, written when the retry
starts. A step that succeeds first time, which is nearly every step, writes nothing.

What is counted: the retries of the executions the step's processes ran. A process killed
during a step restarts it in the next one; that restart is not a retry (the step's own count
starts again there, and only its retries add to the row).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import sqlalchemy as sa

from .runtime import tables_engine
from .tables import step_retries_table, utcnow

__all__ = ["StepAttempts", "attempting", "note_client_retry", "retries_of"]


@dataclass
class StepAttempts:
    """One step's executions in this process: its run, its id, how many began."""

    workflow_id: str
    step_id: int
    began: int = 0

    async def begin(self) -> None:
        """An execution of the step's body begins; one after the first is a retry."""
        self.began += 1
        if self.began > 1:
            await _add_retry(self)


_current: ContextVar[StepAttempts | None] = ContextVar("timestep_step_attempts", default=None)


@contextmanager
def attempting(attempts: StepAttempts) -> Iterator[None]:
    """While the step's body runs: the step a model client's retries belong to."""
    token = _current.set(attempts)
    try:
        yield
    finally:
        _current.reset(token)


async def note_client_retry() -> None:
    """A model client sends a request again (its own retry, inside one execution of the
    step): counted as a retry of the step under way, if any."""
    attempts = _current.get()
    if attempts is not None:
        await _add_retry(attempts)


async def _add_retry(attempts: StepAttempts) -> None:
    t = step_retries_table
    engine = await tables_engine()
    async with engine.begin() as conn:
        # Insert-or-increment, written the portable way (SQLite and Postgres): a step is
        # retried by one process at a time, so the two statements never race for a key.
        done = await conn.execute(
            sa.update(t)
            .where(t.c.workflow_id == attempts.workflow_id, t.c.step_id == attempts.step_id)
            .values(retries=t.c.retries + 1, updated_at=utcnow())
        )
        if done.rowcount == 0:
            await conn.execute(
                sa.insert(t).values(
                    workflow_id=attempts.workflow_id,
                    step_id=attempts.step_id,
                    retries=1,
                )
            )


async def retries_of(workflow_id: str) -> dict[int, int]:
    """The retries of each of a run's steps that had any, by step id."""
    t = step_retries_table
    engine = await tables_engine()
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(t.c.step_id, t.c.retries).where(t.c.workflow_id == workflow_id)
        )
        return {int(row.step_id): int(row.retries) for row in rows}
