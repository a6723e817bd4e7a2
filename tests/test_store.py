"""RunStateStore on SQLite and Postgres: history, concurrency, bad input, limits, secrets."""

from __future__ import annotations

import asyncio
import json

import pytest
import sqlalchemy as sa
from agents import Agent, function_tool

from timestep import RunStateStore, run_agent
from timestep._core.runtime import tables_engine
from timestep._core.tables import run_states_table
from timestep.errors import (
    MalformedStateError,
    StateAgentMismatchError,
    StateNotFoundError,
    StateTooLargeError,
    UnsupportedSchemaVersionError,
)
from timestep.testing import function_call

pytestmark = pytest.mark.usefixtures("durable")


@function_tool(needs_approval=True)
def delete_file(path: str) -> str:
    """Delete a file (needs approval)."""
    return f"deleted {path}"


def _agent(name: str = "store-agent") -> Agent:
    return Agent(name=name, instructions="Be careful.", tools=[delete_file])


async def _interrupted_state(fake_model, agent: Agent):
    fake_model.add_turns(function_call("delete_file", {"path": "/tmp/x"}))
    result = await run_agent(agent, "delete /tmp/x")
    assert result.interruptions
    return result.to_state()


async def _row_count(session_id: str) -> int:
    engine = await tables_engine()
    async with engine.connect() as conn:
        query = sa.select(sa.func.count()).where(run_states_table.c.session_id == session_id)
        return (await conn.execute(query)).scalar_one()


async def test_history_newest_and_by_id(fake_model):
    agent = _agent()
    store = RunStateStore(agent, "history-session")
    state = await _interrupted_state(fake_model, agent)
    first = await store.save(state)
    state.approve(state.get_interruptions()[0])
    second = await store.save(state, state_type="checkpoint")

    assert [h.state_id for h in await store.history()] == [first, second]
    assert [h.state_type for h in await store.history()] == ["interrupted", "checkpoint"]
    newest = await store.load()
    (pending,) = newest.get_interruptions()
    assert pending.raw_item.call_id == state.get_interruptions()[0].raw_item.call_id
    assert newest._context.is_tool_approved("delete_file", pending.raw_item.call_id) is True
    older = await store.load(first)
    assert len(older.get_interruptions()) == 1
    with pytest.raises(StateNotFoundError):
        await store.load("state_missing")
    with pytest.raises(StateNotFoundError):
        await RunStateStore(agent, "empty-session").load()


async def test_concurrent_saves_for_one_session(fake_model):
    agent = _agent()
    state = await _interrupted_state(fake_model, agent)
    store = RunStateStore(agent, "concurrent-session")
    ids = await asyncio.gather(*(store.save(state) for _ in range(20)))
    assert len(set(ids)) == 20
    history = await store.history()
    assert sorted(h.state_id for h in history) == sorted(ids)
    assert (await store.load()).get_interruptions()


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ("{not json", MalformedStateError),
        (
            '{"$schemaVersion": "1.21", "current_agent": {"name": "store-agent"}',
            MalformedStateError,
        ),
        ('["a list"]', MalformedStateError),
        (
            '{"$schemaVersion": "99.0", "current_agent": {"name": "store-agent"}}',
            UnsupportedSchemaVersionError,
        ),
    ],
)
async def test_bad_input_is_a_typed_error_and_writes_nothing(payload, error):
    store = RunStateStore(_agent(), "bad-input-session")
    with pytest.raises(error):
        await store.save(payload)
    assert await _row_count("bad-input-session") == 0


async def test_truncated_real_state_is_rejected(fake_model):
    agent = _agent()
    state_json = (await _interrupted_state(fake_model, agent)).to_string()
    store = RunStateStore(agent, "truncated-session")
    with pytest.raises(MalformedStateError):
        await store.save(state_json[: len(state_json) // 2])
    missing_field = json.loads(state_json)
    del missing_field["current_agent"]
    with pytest.raises(MalformedStateError):
        await store.save(missing_field)
    assert await _row_count("truncated-session") == 0


async def test_state_of_another_agent_is_refused(fake_model):
    agent = _agent()
    state = await _interrupted_state(fake_model, agent)
    other = RunStateStore(_agent("someone-else"), "mismatch-session")
    with pytest.raises(StateAgentMismatchError, match="store-agent"):
        await other.save(state)
    assert await _row_count("mismatch-session") == 0


async def test_payload_size_is_bounded(fake_model):
    agent = _agent()
    state = await _interrupted_state(fake_model, agent)
    store = RunStateStore(agent, "big-session", max_state_bytes=200)
    with pytest.raises(StateTooLargeError, match="200"):
        await store.save(state)
    assert await _row_count("big-session") == 0


async def test_configured_secrets_are_never_stored(fake_model, monkeypatch):
    from timestep._core.process import process_state

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-very-secret-key-123")
    process_state().reload_settings()
    agent = _agent()
    fake_model.add_turns(function_call("delete_file", {"path": "sk-test-very-secret-key-123"}))
    state = (await run_agent(agent, "delete it")).to_state()
    store = RunStateStore(agent, "secret-session")
    await store.save(state)
    engine = await tables_engine()
    async with engine.connect() as conn:
        payload = (
            await conn.execute(
                sa.select(run_states_table.c.payload).where(
                    run_states_table.c.session_id == "secret-session"
                )
            )
        ).scalar_one()
    assert "sk-test-very-secret-key-123" not in payload
    assert "[redacted]" in payload
