"""Scheduled agents on DBOS schedules: fires, pause/resume, backfill, sessions, validation."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from agents import Agent
from dbos import DBOS, WorkflowStatus

import timestep
from timestep import Session, TimestepSerializer
from timestep._client.inspection import list_runs_page
from timestep._core.protocol import AGENT_RUN_WORKFLOW, SCHEDULED_RUN_WORKFLOW
from timestep.errors import ScheduleError
from timestep.testing import text

EVERY_SECOND = "* * * * * *"
# Midnight on New Year's Day: a schedule that never fires live during a test, for tests that
# trigger it by hand (an every-second schedule paused after creation could fire in between).
YEARLY = "0 0 0 1 1 *"


@pytest.fixture
def scheduled(
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest, database_url: str
) -> str:
    """A DBOS whose scheduler picks up new schedules within a fraction of a second (the
    ``durable`` fixture on ``database_url``, launched after the setting; it leaves no
    schedule or fire behind)."""
    monkeypatch.setenv("TIMESTEP_SCHEDULER_POLLING_INTERVAL_SEC", "0.2")
    return request.getfixturevalue("durable")


def _agent() -> Agent:
    return Agent(name="scheduled-agent", instructions="Report.")


async def _fires(name: str) -> list[str]:
    workflows = await DBOS.list_workflows_async(name=SCHEDULED_RUN_WORKFLOW)
    return [w.workflow_id for w in workflows if w.workflow_id.startswith(f"sched-{name}-")]


async def _wait_for(predicate, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def test_fires_pause_resume(scheduled, fake_model):
    fake_model.set_default(text("tick"))
    timestep.schedule_agent("ticker", _agent(), "tick?", EVERY_SECOND)

    async def two_fired() -> bool:
        return len(await _fires("ticker")) >= 2

    await _wait_for(two_fired)
    timestep.pause_schedule("ticker")
    assert timestep.get_schedule("ticker").status == "PAUSED"
    await asyncio.sleep(0.5)  # a fire already under way may still land
    paused_count = len(await _fires("ticker"))
    await asyncio.sleep(2.5)
    assert len(await _fires("ticker")) == paused_count

    timestep.resume_schedule("ticker")

    async def fired_again() -> bool:
        return len(await _fires("ticker")) > paused_count

    await _wait_for(fired_again)
    for workflow_id in await _fires("ticker"):
        summary = await (await DBOS.retrieve_workflow_async(workflow_id)).get_result()
        assert summary["final_output"] == "tick"


async def test_backfill_counts_and_skips_times_already_run(scheduled, fake_model):
    fake_model.set_default(text("backfilled"))
    # Every second of January 1st only: it never fires live during the test (unless run on
    # New Year's Day), so every run below comes from the backfill.
    timestep.schedule_agent("backfiller", _agent(), "go", "* * * 1 1 *")
    start = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    ids = timestep.backfill_schedule("backfiller", start, start + timedelta(seconds=5))
    assert len(ids) == 4  # 12:00:01 .. 12:00:04: both ends are exclusive
    again = timestep.backfill_schedule("backfiller", start, start + timedelta(seconds=5))
    assert sorted(again) == sorted(ids)
    for workflow_id in ids:
        await (await DBOS.retrieve_workflow_async(workflow_id)).get_result()
    backfilled = [w for w in await _fires("backfiller") if "2026-01-01T12:00:0" in w]
    assert len(backfilled) == 4
    assert len(fake_model.requests) == 4  # each time ran once


async def test_shared_session_accumulates_memory(scheduled, fake_model):
    fake_model.set_default(text("noted"))
    session = Session("schedule-shared-session")
    timestep.schedule_agent("memory", _agent(), "note this", YEARLY, session=session)
    first = timestep.trigger_schedule("memory")
    await (await DBOS.retrieve_workflow_async(first)).get_result()
    second = timestep.trigger_schedule("memory")
    await (await DBOS.retrieve_workflow_async(second)).get_result()
    items = await session.get_items()
    assert [i.get("role") for i in items] == ["user", "assistant", "user", "assistant"]


async def test_fresh_session_per_fire(scheduled, fake_model):
    fake_model.set_default(text("fresh"))
    timestep.schedule_agent("fresh", _agent(), "hello", YEARLY)
    for _ in range(2):
        fire = timestep.trigger_schedule("fresh")
        await (await DBOS.retrieve_workflow_async(fire)).get_result()
    # Each request carried only its own input: no memory between fires.
    assert [len(r.json["input"]) for r in fake_model.requests] == [1, 1]


async def test_scheduled_runs_are_listed_by_agent_and_session(scheduled, fake_model):
    """A fire's agent run carries the agent and session attributes a ``run_agent`` run
    does, so the agent and session filters (in the database on Postgres) find it."""
    fake_model.set_default(text("listed"))
    agent = Agent(name=f"listed-agent-{uuid.uuid4().hex[:6]}", instructions="Report.")
    session = Session(f"listed-session-{uuid.uuid4().hex[:6]}")
    timestep.schedule_agent("listed-shared", agent, "go", YEARLY, session=session)
    timestep.schedule_agent("listed-fresh", agent, "go", YEARLY)
    shared = timestep.trigger_schedule("listed-shared")
    fresh = timestep.trigger_schedule("listed-fresh")
    for fire in (shared, fresh):
        await (await DBOS.retrieve_workflow_async(fire)).get_result()
    runs = await DBOS.list_workflows_async(name=AGENT_RUN_WORKFLOW)
    child = {fire: _child_of(fire, runs) for fire in (shared, fresh)}

    by_agent = await list_runs_page(agent=agent.name)
    assert sorted(r.workflow_id for r in by_agent.runs) == sorted(child.values())
    by_session = await list_runs_page(session_id=session.session_id)
    assert [r.workflow_id for r in by_session.runs] == [child[shared]]
    by_fire = await list_runs_page(session_id=fresh)  # a fresh session is the fire's id
    assert [r.workflow_id for r in by_fire.runs] == [child[fresh]]


def _child_of(fire: str, runs: list[WorkflowStatus]) -> str:
    (child,) = [run.workflow_id for run in runs if run.parent_workflow_id == fire]
    return child


async def test_validation(scheduled):
    with pytest.raises(ScheduleError, match="cron"):
        timestep.schedule_agent("bad-cron", _agent(), "x", "every minute")
    with pytest.raises(ScheduleError, match="name"):
        timestep.schedule_agent("bad name!", _agent(), "x", EVERY_SECOND)
    timestep.schedule_agent("unique", _agent(), "x", YEARLY)
    with pytest.raises(ScheduleError, match="already exists"):
        timestep.schedule_agent("unique", _agent(), "x", YEARLY)
    with pytest.raises(ScheduleError, match="no schedule"):
        timestep.pause_schedule("missing")


def test_two_workers_run_each_fire_once_even_across_a_sigkill(database_url, tmp_path):
    """Two worker processes declare the same schedule; one is SIGKILLed and restarted. Every
    fire that finished ran its tool once, and no fire ran twice."""
    import sys
    from collections import Counter
    from pathlib import Path

    from dbos import DBOSClient

    from timestep._core.runtime import reset_process
    from timestep.testing import FakeModelServer, WorkerProcess, conversation_script
    from timestep.testing import function_call as call

    reset_process()  # only the workers run fires here
    name = f"two-workers-{time.time_ns()}"
    script = Path(__file__).parent / "workers" / "schedule_worker.py"
    log = tmp_path / "fires.log"

    def done_calls() -> list[tuple[str, int]]:
        """(agent run id, pid) of each finished tool call."""
        lines = log.read_text().split("\n") if log.exists() else []
        # "done <run id>:<step> <pid>"; fire ids hold colons themselves (the fire time).
        return [
            (line.split()[1].rsplit(":", 1)[0], int(line.split()[2]))
            for line in lines
            if line.startswith("done")
        ]

    def fires_done() -> Counter:
        return Counter(run for run, _ in done_calls())

    def wait_until(predicate, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, log.read_text() if log.exists() else "no fires"
            time.sleep(0.05)

    with FakeModelServer(responder=conversation_script([call("record"), text("ok")])) as fake:
        command = [sys.executable, str(script), database_url, fake.base_url, str(tmp_path), name]
        # Each worker has its own executor id, stable across its restart: at launch DBOS
        # recovers the pending runs of that id, and must not take the other's live ones.
        first_env = {"TIMESTEP_EXECUTOR_ID": "schedule-worker-1"}
        second_env = {"TIMESTEP_EXECUTOR_ID": "schedule-worker-2"}
        with (
            WorkerProcess(command, env=first_env) as first,
            WorkerProcess(command, env=second_env) as second,
        ):
            first.start()
            second.start()
            first.wait_for_line("LAUNCHED", timeout=60)
            second.wait_for_line("LAUNCHED", timeout=60)
            wait_until(lambda: len(fires_done()) >= 2)
            killed_pid = first.pid
            first.kill()
            first.wait(timeout=30)
            first.restart()
            first.wait_for_line("LAUNCHED", timeout=60)
            seen = len(fires_done())
            wait_until(lambda: len(fires_done()) >= seen + 2)
            first.kill()
            second.kill()

    client = DBOSClient(system_database_url=database_url, serializer=TimestepSerializer())
    try:
        schedules = [s for s in client.list_schedules() if s["schedule_name"] == name]
        fires = {
            w.workflow_id: w.status
            for w in client.list_workflows(name=SCHEDULED_RUN_WORKFLOW)
            if w.workflow_id.startswith(f"sched-{name}-")
        }
        for workflow_id, status in fires.items():
            if status in ("PENDING", "ENQUEUED"):
                client.cancel_workflow(workflow_id)
        client.delete_schedule(name)
    finally:
        client.destroy()

    assert len(schedules) == 1  # declared by both workers (and a restart), created once
    done = fires_done()
    assert len(done) >= 4
    # A tool call the SIGKILL cut off after its body but before its checkpoint is run again by
    # the recovery (at least once, in that window only). Apart from that one call, no fire ran
    # its tool twice: not across the two workers, not after the restart.
    by_survivors = Counter(run for run, pid in done_calls() if pid != killed_pid)
    assert max(by_survivors.values()) == 1, done_calls()
    assert max(done.values()) <= 2, done_calls()
    finished = [w for w, status in fires.items() if status == "SUCCESS"]
    # Each finished fire's agent run (a child workflow, "<fire id>-<n>") ran the tool.
    assert finished
    for fire in finished:
        runs = [run for run in done if run.startswith(f"{fire}-")]
        assert len(runs) == 1 and by_survivors[runs[0]] <= 1, fire
