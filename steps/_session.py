"""Sessions in durable runs: any SDK ``Session``, and Timestep's own.

A durable run makes its session's reads and writes DBOS steps (``make_session_durable``, on
the session object itself, so the SDK's checks of its type still hold): a replay reads the
history the first attempt read and writes nothing twice.

``TimestepSession`` keeps the conversation in Timestep's database (Postgres or SQLite) and
goes further: its writes are keyed by ``<workflow id>:<step id>:<index>``, so even an attempt
that crashed after committing but before its step's checkpoint inserts nothing twice. Other
sessions cannot offer that (a crash inside their write step may write it again on recovery).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa
from agents.items import TResponseInputItem
from agents.memory.session import Session, SessionABC
from dbos import DBOS, StepOptions
from sqlalchemy.ext.asyncio import AsyncEngine

from timestep._core.process import process_state
from timestep._core.runtime import current_database
from timestep._core.tables import insert_ignoring_duplicates, session_items_table, utcnow
from timestep.errors import ConfigurationError

from ._current_run import durable_run

__all__ = ["SESSION_STEP_PREFIX", "TimestepSession", "make_session_durable"]

SESSION_STEP_PREFIX = "session:"
_DURABLE_MARK = "__timestep_durable_session__"
# A session's methods that touch its store, and their step names.
_STEPS = (
    ("get_items", "get_items"),
    ("add_items", "add_items"),
    ("pop_item", "pop_item"),
    ("clear_session", "clear"),
    ("run_compaction", "run_compaction"),
)

_t = session_items_table


class TimestepSession(SessionABC):
    """An SDK ``Session`` stored in Timestep's database (Postgres or SQLite).

    >>> session = TimestepSession()            # a new conversation
    >>> session = TimestepSession("user-42")   # continue an existing one

    Args:
        session_id: The conversation's id (default: a new ``session_<uuid>``).
        database_url: The database holding it (default: ``configure_dbos``'s).

    Attributes:
        session_id: The conversation's id.
    """

    def __init__(self, session_id: str | None = None, *, database_url: str | None = None) -> None:
        self.session_id = session_id or f"session_{uuid.uuid4().hex}"
        self._database_url = database_url

    def __repr__(self) -> str:
        return f"TimestepSession({self.session_id!r})"

    async def _get_session_id(self) -> str:
        """The session id (the seeds' name for it)."""
        return self.session_id

    async def get_session_id(self) -> str:
        """The session's id.

        Returns:
            ``session_id``.
        """
        return self.session_id

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        """The conversation's items, oldest first.

        Args:
            limit: Only the newest ``limit`` items (still oldest first); None for all.

        Returns:
            The items.
        """
        return await self._get_items(limit)

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        """Append items; in a durable run a retried write adds nothing twice.

        Args:
            items: The items, in order.
        """
        if items:
            await self._add_items(items)

    async def pop_item(self) -> TResponseInputItem | None:
        """Remove the newest item.

        Returns:
            The item removed, or None if the session is empty.
        """
        return await self._pop_item()

    async def clear_session(self) -> None:
        """Delete every item of the session."""
        await self._clear()

    async def _engine(self) -> AsyncEngine:
        if self._database_url is None:
            self._database_url = current_database().url
        return await process_state().engines.get(self._database_url)

    async def _get_items(self, limit: int | None) -> list[TResponseInputItem]:
        engine = await self._engine()
        query = sa.select(_t.c.item).where(_t.c.session_id == self.session_id)
        if limit is None:
            query = query.order_by(_t.c.id)
        else:
            query = query.order_by(_t.c.id.desc()).limit(limit)
        async with engine.connect() as conn:
            rows = (await conn.execute(query)).scalars().all()
        if limit is not None:
            rows = list(reversed(rows))
        return [json.loads(row) for row in rows]

    async def _add_items(self, items: list[TResponseInputItem]) -> None:
        workflow_id, step_id = DBOS.workflow_id, DBOS.step_id
        now = utcnow()
        rows = [
            {
                "session_id": self.session_id,
                "item": json.dumps(item, separators=(",", ":")),
                "item_key": f"{workflow_id}:{step_id}:{i}" if workflow_id else None,
                "created_at": now,
            }
            for i, item in enumerate(items)
        ]
        engine = await self._engine()
        async with engine.begin() as conn:
            await insert_ignoring_duplicates(conn, _t, rows)

    async def _pop_item(self) -> TResponseInputItem | None:
        engine = await self._engine()
        async with engine.begin() as conn:
            row = (
                await conn.execute(
                    sa.select(_t.c.id, _t.c.item)
                    .where(_t.c.session_id == self.session_id)
                    .order_by(_t.c.id.desc())
                    .limit(1)
                )
            ).first()
            if row is None:
                return None
            await conn.execute(sa.delete(_t).where(_t.c.id == row.id))
        item: TResponseInputItem = json.loads(row.item)
        return item

    async def _clear(self) -> None:
        engine = await self._engine()
        async with engine.begin() as conn:
            await conn.execute(sa.delete(_t).where(_t.c.session_id == self.session_id))


def make_session_durable(session: Session) -> Session:
    """Make ``session``'s reads and writes steps in durable runs, on the session itself
    (idempotent); everywhere else it behaves as before."""
    if getattr(session, _DURABLE_MARK, False):
        return session
    for method, step in _STEPS:
        original = getattr(session, method, None)
        if original is None:
            continue
        try:
            setattr(session, method, _durable_method(original, f"{SESSION_STEP_PREFIX}{step}"))
        except (AttributeError, TypeError) as exc:
            raise ConfigurationError(
                f"the session {type(session).__name__} cannot be made durable in place ({exc})"
            ) from exc
    setattr(session, _DURABLE_MARK, True)
    return session


def _durable_method(
    original: Callable[..., Awaitable[Any]], step_name: str
) -> Callable[..., Awaitable[Any]]:
    options: StepOptions = {"name": step_name}

    async def call(*args: Any, **kwargs: Any) -> Any:
        if durable_run() is None:
            return await original(*args, **kwargs)
        return await DBOS.run_step_async(options, original, *args, **kwargs)

    return call
