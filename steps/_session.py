"""Conversation memory in Timestep's database, safe to use inside durable workflows.

Inside a workflow every session call is a DBOS step: a replay reads the history the first
attempt read, and writes are keyed by ``<workflow id>:<step id>:<index>`` so an attempt that
crashed after committing but before checkpointing inserts nothing twice.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import sqlalchemy as sa
from agents.items import TResponseInputItem
from agents.memory.session import SessionABC
from dbos import DBOS
from sqlalchemy.ext.asyncio import AsyncEngine

from timestep._core.process import process_state
from timestep._core.runtime import current_database
from timestep._core.tables import insert_ignoring_duplicates, session_items_table, utcnow

__all__ = ["TimestepSession"]

_t = session_items_table


class TimestepSession(SessionABC):
    """An SDK ``Session`` stored in Timestep's database (Postgres or SQLite).

    >>> session = TimestepSession()            # a new conversation
    >>> session = TimestepSession("user-42")   # continue an existing one
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
        return self.session_id

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        items: list[TResponseInputItem] = await self._durably(
            "session:get_items", self._get_items, limit
        )
        return items

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        if items:
            await self._durably("session:add_items", self._add_items, items)

    async def pop_item(self) -> TResponseInputItem | None:
        item: TResponseInputItem | None = await self._durably("session:pop_item", self._pop_item)
        return item

    async def clear_session(self) -> None:
        await self._durably("session:clear", self._clear)

    async def _durably(self, name: str, func: Any, *args: Any) -> Any:
        if DBOS.workflow_id is None:
            return await func(*args)
        return await DBOS.run_step_async({"name": name}, func, *args)

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
