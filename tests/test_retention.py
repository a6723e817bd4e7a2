"""Retention on SQLite and Postgres: gc deletes exactly what the policy says, and never a
waiting run (which is approved and finishes after the pass), a state an approval still needs,
or a live session's items. Each test has a database of its own, so counts are exact."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from agents import Agent, function_tool

import timestep
from timestep import (
    RunStateStore,
    Session,
    approve,
    collect_garbage,
    get_pending_approvals,
    get_run,
    get_usage,
    run_agent,
    start_agent_run,
)
from timestep._core.process import process_state
from timestep._core.runtime import reset_process, tables_engine
from timestep._core.tables import (
    decisions_table,
    rate_slots_table,
    run_states_table,
    session_items_table,
    tool_calls_table,
    usage_daily_table,
    usage_table,
)
from timestep.errors import RunNotFoundError
from timestep.testing import error, function_call, text


@function_tool
def lookup(order_id: str) -> str:
    """Look an order up."""
    return f"order {order_id}: paid"


@function_tool(needs_approval=True)
def refund(order_id: str) -> str:
    """Refund an order (a human must approve)."""
    return f"refunded {order_id}"


def _agent() -> Agent:
    return Agent(name="retention-agent", instructions="Help.", tools=[lookup, refund])


async def _count(table: sa.Table, *where: sa.ColumnElement[bool]) -> int:
    async with (await tables_engine()).connect() as conn:
        return int(
            (
                await conn.execute(sa.select(sa.func.count()).select_from(table).where(*where))
            ).scalar_one()
        )


async def _dead_rate_slot() -> None:
    """A rate slot free an hour ago, of a queue with no call since (the permits' own clean-up
    never reaches it). Inserted: a test cannot wait an hour."""
    hour_ago = time.time() - 3600
    async with (await tables_engine()).begin() as conn:
        await conn.execute(
            sa.insert(rate_slots_table).values(
                permit_id=f"gone-{uuid.uuid4().hex[:6]}",
                queue_name="timestep.provider.gone.rate",
                handed_at=hour_ago,
                free_at=hour_ago,
            )
        )


async def _pending(workflow_id: str) -> list[dict]:
    for _ in range(1000):
        pending = await get_pending_approvals(workflow_id)
        if pending:
            return pending
        await asyncio.sleep(0.02)
    raise AssertionError(f"{workflow_id} published no pending approval")


async def _exists(workflow_id: str) -> bool:
    try:
        await get_run(workflow_id)
        return True
    except RunNotFoundError:
        return False


@pytest.mark.usefixtures("own_durable")
async def test_gc_deletes_exactly_what_the_policy_says_and_never_a_waiting_run(fake_model):
    agent = _agent()
    # Two finished runs with a tool call each, in one session.
    finished_session = Session(f"finished-{uuid.uuid4().hex[:6]}")
    finished = []
    for order in ("A1", "A2"):
        fake_model.add_turns(function_call("lookup", {"order_id": order}), text(f"{order} ok"))
        result = await run_agent(agent, f"look {order} up", finished_session)
        finished.append(result.workflow_id)
    # A failed run (a permanent provider error).
    fake_model.add_turns(error(400, message="bad request"))
    failed = f"failed-{uuid.uuid4().hex[:6]}"
    with pytest.raises(Exception, match="bad request"):
        await timestep.run_agent_workflow(agent, "fail", None, workflow_id=failed)
    # The manual flow: a run that ended with its interruption, whose state a human still needs.
    fake_model.add_turns(function_call("refund", {"order_id": "M1"}, call_id="call_m1"))
    manual_session = Session(f"manual-{uuid.uuid4().hex[:6]}")
    manual = await run_agent(agent, "refund M1", manual_session)
    assert manual.interruptions
    store = RunStateStore(agent, manual_session.session_id)
    await store.save(manual.to_state(), workflow_id=manual.workflow_id)
    # A run waiting for an approval, in its own session.
    fake_model.add_turns(
        function_call("refund", {"order_id": "W1"}, call_id="call_w1"), text("Refunded W1.")
    )
    waiting_session = Session(f"waiting-{uuid.uuid4().hex[:6]}")
    handle = await start_agent_run(agent, "refund W1", waiting_session, wait_for_approvals=True)
    await _pending(handle.workflow_id)
    await timestep.flush_records()
    usage_before = await get_usage()
    agent_usage_before = await get_usage(agent_name=agent.name)
    assert usage_before.requests == 5  # a waiting run's rows are written when it ends
    assert await _count(usage_table, usage_table.c.workflow_id.in_(finished)) == 4
    assert await _count(tool_calls_table, tool_calls_table.c.workflow_id.in_(finished)) == 2

    later = datetime.now(UTC) + timedelta(days=31)
    policy = "finished=30d,failed=90d"
    dry = await collect_garbage(policy=policy, now=later, dry_run=True)
    # finished: the two runs and the manual run (it ended with interruptions: SUCCESS).
    assert (dry.runs, dry.dry_run) == (3, True)
    assert dry.rows["timestep_usage"] == 5 and dry.rows["timestep_tool_calls"] == 3
    assert dry.rows["dbos.operation_outputs"] > 0 and dry.bytes > 0
    assert all(await asyncio.gather(*(_exists(w) for w in [*finished, manual.workflow_id])))

    report = await collect_garbage(policy=policy, now=later)
    assert report.runs == 3 and report.rows == dry.rows and report.bytes == dry.bytes
    for workflow_id in [*finished, manual.workflow_id]:
        assert not await _exists(workflow_id)
    assert await _exists(failed)  # failed=90d: not yet
    assert (await get_run(handle.workflow_id)).status == "PENDING"  # waiting: never
    assert await _count(usage_table, usage_table.c.workflow_id.in_(finished)) == 0
    assert await _count(tool_calls_table, tool_calls_table.c.workflow_id.in_(finished)) == 0
    # The manual run's interrupted state is its session's newest: an approval needs it.
    assert (await store.load()).get_interruptions()
    # Usage of the deleted runs is kept, summed per day, agent and model.
    assert await _count(usage_daily_table) >= 1
    assert await get_usage() == usage_before
    assert await get_usage(agent_name=agent.name) == agent_usage_before
    assert (await get_usage(workflow_id=finished[0])).requests == 0
    # Sessions are kept (no sessions= age): the finished runs' conversation is still there.
    assert len(await finished_session.get_items()) == 8

    # The waiting run is approved and finishes after the pass.
    await approve(handle.workflow_id, "call_w1")
    assert (await handle.result()).final_output == "Refunded W1."

    await timestep.flush_records()
    usage_now = await get_usage()
    assert usage_now.requests == 7
    again = await collect_garbage(policy=policy, now=later + timedelta(days=60))
    # failed=90d now holds; the approved run finished (and is 30 days old at that time).
    assert again.runs == 2
    assert not await _exists(failed) and not await _exists(handle.workflow_id)
    assert await get_usage() == usage_now
    assert (await collect_garbage(policy=policy, now=later + timedelta(days=60))).runs == 0


@pytest.mark.usefixtures("own_durable")
async def test_sessions_policy_keeps_live_sessions_and_deletes_idle_ones(fake_model):
    agent = _agent()
    idle, live = Session(f"idle-{uuid.uuid4().hex[:6]}"), Session(f"live-{uuid.uuid4().hex[:6]}")
    fake_model.add_turns(text("hi idle"))
    await run_agent(agent, "hello", idle)
    fake_model.add_turns(
        function_call("refund", {"order_id": "L1"}, call_id="call_l1"), text("Refunded L1.")
    )
    handle = await start_agent_run(agent, "refund L1", live, wait_for_approvals=True)
    await _pending(handle.workflow_id)
    later = datetime.now(UTC) + timedelta(days=11)
    report = await collect_garbage(policy="finished=10d,sessions=10d", now=later)
    assert report.runs == 1 and report.sessions == 1
    assert await idle.get_items() == []
    assert (
        await _count(session_items_table, session_items_table.c.session_id == idle.session_id) == 0
    )
    # A waiting run uses the live session: its items and states stay.
    assert len(await live.get_items()) >= 1
    assert await _count(run_states_table, run_states_table.c.session_id == live.session_id) >= 1
    await approve(handle.workflow_id, "call_l1")
    assert (await handle.result()).final_output == "Refunded L1."

    # Once the run has ended, the snapshot it saved while it waited is its own, not a caller's
    # to resume from: it goes with the run, with the run's decision, and the session can go.
    states = run_states_table
    (snapshot,) = await _rows(
        states, states.c.session_id == live.session_id, states.c.workflow_id.is_not(None)
    )
    assert snapshot["state_type"] == "interrupted"  # still the session's newest state
    assert await _count(decisions_table, decisions_table.c.workflow_id == handle.workflow_id) == 1
    report = await collect_garbage(
        policy="finished=10d,sessions=10d", now=later + timedelta(days=11)
    )
    assert report.runs == 1 and report.sessions == 1
    assert report.rows["timestep_decisions"] == 1
    assert await _count(states, states.c.session_id == live.session_id) == 0
    assert await _count(decisions_table, decisions_table.c.workflow_id == handle.workflow_id) == 0
    assert await live.get_items() == []


async def _rows(table: sa.Table, *where: sa.ColumnElement[bool]) -> list[dict[str, Any]]:
    engine = await tables_engine()
    async with engine.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(sa.select(table).where(*where))]


async def test_the_scheduled_pass_runs_by_itself(own_database, fake_model, monkeypatch):
    monkeypatch.setenv("TIMESTEP_RETENTION", "finished=1s")
    monkeypatch.setenv("TIMESTEP_RETENTION_SCHEDULE", "* * * * * *")
    monkeypatch.setenv("TIMESTEP_SCHEDULER_POLLING_INTERVAL_SEC", "0.2")
    if process_state().runtime is not None:
        reset_process(destroy=False)
    process_state().reload_settings()
    timestep.configure_dbos(own_database)
    timestep.ensure_dbos_launched()
    try:
        from dbos import DBOS

        await _dead_rate_slot()
        fake_model.add_turns(text("soon gone"))
        result = await run_agent(_agent(), "hello", None)
        for _ in range(300):
            if not await _exists(result.workflow_id):
                break
            await asyncio.sleep(0.05)
        assert not await _exists(result.workflow_id)
        # The pass that deleted the run may still be finishing its other batches.
        for _ in range(300):
            passes = await DBOS.list_workflows_async(
                name="timestep.retention_pass", status="SUCCESS"
            )
            if any(p.output and p.output["runs"] >= 1 for p in passes):
                break
            await asyncio.sleep(0.05)
        assert passes and any(p.output and p.output["runs"] >= 1 for p in passes)
        assert await _count(rate_slots_table) == 0  # the ledger's dead rows go too
    finally:
        reset_process()
        monkeypatch.delenv("TIMESTEP_RETENTION")
        process_state().reload_settings()


async def test_cli_gc_dry_run_progress_and_summary(own_database, fake_model, monkeypatch):
    """``timestep gc`` from a process that is no worker (a DBOSClient), on one finished run."""
    from typer.testing import CliRunner

    from timestep.cli import app

    monkeypatch.delenv("TIMESTEP_RETENTION", raising=False)
    if process_state().runtime is not None:
        reset_process(destroy=False)
    process_state().reload_settings()
    timestep.configure_dbos(own_database)
    timestep.ensure_dbos_launched()
    fake_model.add_turns(text("done"))
    workflow_id = (await run_agent(_agent(), "hi", None)).workflow_id
    await _dead_rate_slot()
    reset_process()  # the CLI's process: DBOS not launched
    monkeypatch.setenv("TIMESTEP_DATABASE_URL", own_database)
    process_state().reload_settings()
    runner = CliRunner()
    pool = concurrent.futures.ThreadPoolExecutor(1)  # DBOS shut the loop's own pool down

    async def invoke(args: list[str]) -> Any:
        return await asyncio.wrap_future(pool.submit(runner.invoke, app, args))

    try:
        dry = await invoke(["gc", "--older-than", "0s", "--dry-run", "--json"])
        assert dry.exit_code == 0, dry.output
        summary = json.loads(dry.stdout)
        assert summary["runs"] == 1 and summary["dry_run"] and summary["bytes"] > 0
        assert summary["rows"]["dbos.workflow_status"] == 1
        assert summary["rows"]["timestep_rate_slots"] == 1 and summary["ledger_bytes"] > 0
        done = await invoke(["gc", "--older-than", "0s"])
        assert done.exit_code == 0, done.output
        assert "finished runs" in done.stderr and "1/1" in done.stderr  # the progress bar
        assert "1 run(s) (1 workflow(s))" in done.stdout and "freed 6 row(s)" in done.stdout
        assert "spent ledger rows" in done.stderr and "timestep_rate_slots" in done.stdout
        assert f"and {summary['ledger_bytes']} B of ledger rows" in done.stdout
        listed = await invoke(["runs", "list", "--json"])
        assert listed.exit_code == 0 and workflow_id not in listed.stdout
        missing = await invoke(["gc"])
        assert missing.exit_code == 1 and "TIMESTEP_RETENTION" in str(missing.exception)
    finally:
        pool.shutdown()
        reset_process()
        monkeypatch.delenv("TIMESTEP_DATABASE_URL")
        process_state().reload_settings()


def test_two_workers_run_the_scheduled_pass_once_per_period(own_database, tmp_path):
    """Two worker processes on one database, the pass scheduled every 2 s: each period's
    fire has one workflow id (``sched-timestep.retention-<time>``, DBOS's deterministic id),
    so every period while both run has exactly one pass, and there are no more passes than
    periods: not one per worker."""
    import sys
    import time
    from pathlib import Path

    from croniter import croniter
    from dbos import DBOSClient

    from timestep import TimestepSerializer
    from timestep._core.protocol import RETENTION_SCHEDULE, RETENTION_WORKFLOW
    from timestep.testing import WorkerProcess

    reset_process()  # only the workers run passes here
    worker = Path(__file__).parent / "workers" / "retention_worker.py"
    env = {
        "TIMESTEP_RETENTION": "finished=30d",
        "TIMESTEP_RETENTION_SCHEDULE": "*/2 * * * * *",
        "TIMESTEP_SCHEDULER_POLLING_INTERVAL_SEC": "0.2",
    }
    client = DBOSClient(system_database_url=own_database, serializer=TimestepSerializer())

    def passes() -> dict[datetime, Any]:
        prefix = f"sched-{RETENTION_SCHEDULE}-"
        return {
            datetime.fromisoformat(w.workflow_id.removeprefix(prefix)): w
            for w in client.list_workflows(name=RETENTION_WORKFLOW)
        }

    try:
        command = [sys.executable, str(worker), own_database]
        with (
            WorkerProcess(command, env={**env, "TIMESTEP_EXECUTOR_ID": "gc-worker-1"}) as first,
            WorkerProcess(command, env={**env, "TIMESTEP_EXECUTOR_ID": "gc-worker-2"}) as second,
        ):
            started = datetime.now(UTC)
            first.start()
            first.wait_for_line("LAUNCHED", timeout=90)
            second.start()
            second.wait_for_line("LAUNCHED", timeout=90)
            both = datetime.now(UTC)
            deadline = time.monotonic() + 120
            while len([t for t in passes() if t > both]) < 5:
                assert time.monotonic() < deadline, passes()
                time.sleep(0.2)
            stopped = datetime.now(UTC)
            first.kill()
            second.kill()
        fired = passes()
        for found in fired.values():
            if found.status in ("PENDING", "ENQUEUED"):
                client.cancel_workflow(found.workflow_id)
    finally:
        client.destroy()

    ticks = croniter("*/2 * * * * *", started, second_at_beginning=True)
    periods = []
    while (tick := ticks.get_next(datetime)) <= stopped:
        periods.append(tick)
    # Every period while both workers ran fired exactly once (ids are unique per period).
    settled = [t for t in periods if both < t < stopped - timedelta(seconds=1)]
    assert len(settled) >= 4 and all(t in fired for t in settled), (settled, sorted(fired))
    # And nothing more: no pass outside the periods, none doubled by the second worker.
    assert set(fired) <= set(periods), (sorted(fired), periods)
    assert len(fired) <= len(periods)
    done = [w for w in fired.values() if w.status == "SUCCESS"]
    assert len(done) >= len(settled) - 1  # the newest may be cut by the kill
    assert all(w.output["runs"] == 0 for w in done)  # finished=30d: nothing to delete yet
