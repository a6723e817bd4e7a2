"""``RunStateStore``: a session's RunState snapshots in Postgres or SQLite.

>>> store = RunStateStore(agent=agent, session_id=await session._get_session_id())
>>> await store.save(result.to_state())          # doctest: +SKIP
>>> state = await store.load()                   # the newest snapshot of the session
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from agents import Agent, RunState
from agents.run_state import CURRENT_SCHEMA_VERSION, SUPPORTED_SCHEMA_VERSIONS
from sqlalchemy.ext.asyncio import AsyncEngine

from timestep._core.process import get_settings, process_state
from timestep._core.registry import agent_graph
from timestep._core.runtime import current_database
from timestep._core.secrets import redact
from timestep._core.state_rows import stored_forms
from timestep._core.tables import agents_table, run_states_table, upsert, utcnow
from timestep.errors import (
    MalformedStateError,
    StateAgentMismatchError,
    StateNotFoundError,
    StateTooLargeError,
    UnsupportedSchemaVersionError,
)
from timestep.runstate import StateFormat, detect_format, typescript_to_python_json

__all__ = ["RunStateStore", "StateType", "StoredState"]

StateType = Literal["interrupted", "checkpoint", "completed"]
_t = run_states_table


@dataclass(frozen=True)
class StoredState:
    """One row of a session's history (without its payload).

    Attributes:
        state_id: The snapshot's id (``load(state_id)``).
        session_id: The session it belongs to.
        agent_name: The store's agent when it was saved.
        workflow_id: The run it came from, if ``save`` was told.
        state_type: ``"interrupted"``, ``"checkpoint"`` or ``"completed"``.
        schema_version: The RunState's ``$schemaVersion``.
        format: ``"python"`` or ``"typescript"``: which SDK wrote it.
        size: The stored payload's length.
        created_at: When it was saved (UTC).
    """

    state_id: str
    session_id: str
    agent_name: str
    workflow_id: str | None
    state_type: StateType
    schema_version: str
    format: StateFormat
    size: int
    created_at: datetime


class RunStateStore:
    """Save and load the RunStates of one agent's session.

    A session keeps its history: ``save`` appends, ``load()`` returns the newest snapshot and
    ``load(state_id)`` a given one. Rows saved by the TypeScript SDK (format ``typescript``)
    load here too. Storage follows ``configure_dbos``'s database unless ``database_url`` is set.

    Args:
        agent: The agent states are loaded for (it or one of its handoffs must be the state's
            current agent).
        session_id: The session (default: a new ``session_<uuid>``).
        database_url: The database to store in (default: ``configure_dbos``'s).
        max_state_bytes: The largest payload ``save`` accepts (default
            ``TIMESTEP_MAX_STATE_BYTES``).

    Attributes:
        agent: The store's agent.
        session_id: The store's session.
    """

    def __init__(
        self,
        agent: Agent[Any],
        session_id: str | None = None,
        *,
        database_url: str | None = None,
        max_state_bytes: int | None = None,
    ) -> None:
        self.agent = agent
        self.session_id = session_id or f"session_{uuid.uuid4().hex}"
        self._database_url = database_url
        self._max_bytes = max_state_bytes or get_settings().max_state_bytes

    async def save(
        self,
        state: RunState[Any] | str | dict[str, Any],
        *,
        state_type: StateType | None = None,
        workflow_id: str | None = None,
    ) -> str:
        """Validate and append ``state`` to the session's history; return its ``state_id``.

        ``state_type`` defaults to ``interrupted`` when the state has pending approvals, else
        ``checkpoint``. Nothing is written when validation fails.

        Args:
            state: A ``RunState``, or its JSON (as text or parsed) from either SDK.
            state_type: ``"interrupted"``, ``"checkpoint"`` or ``"completed"``.
            workflow_id: The run the state came from, kept in the history.

        Returns:
            The new snapshot's ``state_id``.

        Raises:
            MalformedStateError: The payload is not a loadable RunState.
            StateAgentMismatchError: The state's current agent is not the store's agent or
                one of its handoffs.
            StateTooLargeError: The payload is over ``max_state_bytes``.
            UnsupportedSchemaVersionError: The state's schema version is not supported.
        """
        fmt: StateFormat = "python"
        if isinstance(state, RunState):
            interrupted = bool(state.get_interruptions())
            payload = state.to_string()
            data = python_data = json.loads(payload)
            self._check_agent(python_data)
        else:
            data = _parse(state)
            fmt = detect_format(data)
            # A TypeScript SDK state is stored as written (Node loads it back unchanged) and
            # validated through its Python form, which is what load() will return here.
            python_data = typescript_to_python_json(data) if fmt == "typescript" else data
            self._check_agent(python_data)  # before loading: the SDK's own error is untyped
            await self._validated(python_data)
            interrupted = bool(_pending_approvals(python_data))
            payload = json.dumps(data)
        if fmt == "python":
            payload, payload_typescript = stored_forms(payload)
        else:
            payload, payload_typescript = redact(payload), None
        size = len(payload.encode())
        if size > self._max_bytes:
            raise StateTooLargeError(
                f"RunState payload is {size} bytes, over the limit of {self._max_bytes} "
                "(TIMESTEP_MAX_STATE_BYTES)"
            )
        state_id = f"state_{uuid.uuid4().hex}"
        row = {
            "payload_typescript": payload_typescript,
            "state_id": state_id,
            "session_id": self.session_id,
            "agent_name": self.agent.name,
            "workflow_id": workflow_id,
            "state_type": state_type or ("interrupted" if interrupted else "checkpoint"),
            "schema_version": str(data.get("$schemaVersion")),
            "format": fmt,
            "payload": payload,
            "created_at": utcnow(),
        }
        engine = await self._engine()
        async with engine.begin() as conn:
            await upsert(
                conn, agents_table, [_agent_row(self.agent)], ["name"], list(_AGENT_COLUMNS)
            )
            await conn.execute(sa.insert(_t), [row])
        return state_id

    async def load(self, state_id: str | None = None) -> RunState[Any]:
        """The newest snapshot of the session, or the one with ``state_id``.

        Args:
            state_id: The snapshot to load (default: the newest).

        Returns:
            The state, loaded for the store's agent (a TypeScript one converted).

        Raises:
            StateNotFoundError: The session has no such snapshot.
            MalformedStateError: The stored payload is not a loadable RunState.
            StateAgentMismatchError: The state's current agent is not the store's agent or
                one of its handoffs.
            UnsupportedSchemaVersionError: The state's schema version is not supported.
        """
        query = sa.select(_t.c.payload, _t.c.format, _t.c.state_id).where(
            _t.c.session_id == self.session_id
        )
        if state_id is not None:
            query = query.where(_t.c.state_id == state_id)
        query = query.order_by(_t.c.seq.desc()).limit(1)
        engine = await self._engine()
        async with engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            which = f"state {state_id!r}" if state_id else "any state"
            raise StateNotFoundError(f"session {self.session_id!r} has no {which}")
        data = _parse(row.payload)
        if row.format == "typescript":
            data = typescript_to_python_json(data)
        self._check_agent(data)
        return await self._validated(data)

    async def history(self) -> list[StoredState]:
        """The session's snapshots, oldest first.

        Returns:
            One row per snapshot, without its payload.
        """
        query = (
            sa.select(
                _t.c.state_id,
                _t.c.session_id,
                _t.c.agent_name,
                _t.c.workflow_id,
                _t.c.state_type,
                _t.c.schema_version,
                _t.c.format,
                sa.func.length(_t.c.payload).label("size"),
                _t.c.created_at,
            )
            .where(_t.c.session_id == self.session_id)
            .order_by(_t.c.seq)
        )
        engine = await self._engine()
        async with engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [StoredState(**row) for row in rows]

    async def _validated(self, data: dict[str, Any]) -> RunState[Any]:
        version = data.get("$schemaVersion")
        if version not in SUPPORTED_SCHEMA_VERSIONS:
            raise UnsupportedSchemaVersionError(
                f"RunState schema version {version!r} is not supported (this SDK reads "
                f"{', '.join(sorted(SUPPORTED_SCHEMA_VERSIONS))}; it writes {CURRENT_SCHEMA_VERSION})"
            )
        missing = [key for key in _REQUIRED_KEYS if key not in data]
        if missing:
            raise MalformedStateError(f"not a RunState: missing {', '.join(missing)}")
        try:
            return await RunState.from_json(self.agent, data)
        except Exception as exc:
            # The SDK redacts payload details from some errors ("Error details are redacted"),
            # so say where the failure came from as well as what it said.
            raise MalformedStateError(
                f"not a loadable RunState ({type(exc).__name__}: {exc})"
            ) from exc

    def _check_agent(self, data: dict[str, Any]) -> None:
        current = (data.get("current_agent") or {}).get("name")
        known = set(agent_graph(self.agent))
        if current is not None and current not in known:
            raise StateAgentMismatchError(
                f"the state belongs to agent {current!r}, which is not {self.agent.name!r} "
                f"or one of its handoffs ({', '.join(sorted(known))})"
            )

    async def _engine(self) -> AsyncEngine:
        if self._database_url is None:
            self._database_url = current_database().url
        return await process_state().engines.get(self._database_url)


# Fields every RunState schema this SDK reads has at its top level.
_REQUIRED_KEYS = ("current_agent", "original_input", "context", "max_turns")

_AGENT_COLUMNS = ("model", "instructions_hash", "tools", "updated_at")


def _agent_row(agent: Agent[Any]) -> dict[str, Any]:
    instructions = agent.instructions if isinstance(agent.instructions, str) else None
    return {
        "name": agent.name,
        "model": agent.model
        if isinstance(agent.model, str)
        else type(agent.model).__name__
        if agent.model
        else None,
        "instructions_hash": hashlib.sha256(instructions.encode()).hexdigest()
        if instructions
        else None,
        "tools": sorted(getattr(t, "name", type(t).__name__) for t in agent.tools),
        "updated_at": utcnow(),
    }


def _parse(value: str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(value, dict):
        data = value
    else:
        try:
            data = json.loads(value)
        except (TypeError, ValueError) as exc:
            raise MalformedStateError(f"RunState payload is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or "$schemaVersion" not in data:
        raise MalformedStateError("RunState payload is not a JSON object with a $schemaVersion")
    return data


def _pending_approvals(data: dict[str, Any]) -> list[Any]:
    step = data.get("current_step") or {}
    return list(step.get("data", {}).get("interruptions", [])) if isinstance(step, dict) else []
