"""Per-provider rate limits and run queues, on DBOS queues: limits hold, replays take no
second permit, and providers without a limit pay nothing."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from agents import Agent
from dbos import DBOS

import timestep
from timestep import TimestepSerializer
from timestep._core.process import process_state
from timestep._core.protocol import PERMIT_WORKFLOW
from timestep._core.runtime import apply_declared_queues, tables_engine
from timestep._core.tables import rate_slots_table
from timestep.errors import ConfigurationError
from timestep.testing import text

pytestmark = pytest.mark.usefixtures("durable")


@pytest.fixture(autouse=True)
def _no_limits():
    yield
    process_state().limits.clear()


def _agent(name: str = "limited", model: str = "gpt-4.1") -> Agent:
    return Agent(name=name, instructions="Answer.", model=model)


async def _permits(*runs) -> list:
    """The permit workflows the given runs took (the database outlives single tests)."""
    ids = {run.workflow_id for run in runs}
    permits = await DBOS.list_workflows_async(name=PERMIT_WORKFLOW)
    return [p for p in permits if p.parent_workflow_id in ids]


async def test_provider_concurrency_holds_across_runs(fake_model):
    timestep.limit_provider("openai", concurrency=1)
    fake_model.set_default(text("slow answer", delay=0.2))
    agent = _agent()

    results = await asyncio.gather(*(timestep.run_agent(agent, f"q{i}") for i in range(3)))

    assert [r.final_output for r in results] == ["slow answer"] * 3
    assert fake_model.max_concurrent_requests == 1
    assert len(await _permits(*results)) == 3


async def test_provider_rate_limit_is_never_exceeded(fake_model, database_url):
    # A provider prefix of its own: a fresh queue, whose limiter no earlier test has used.
    prefix = f"rl{uuid.uuid4().hex[:8]}"
    timestep.limit_provider(prefix, requests=2, per_seconds=1.0)
    fake_model.set_default(text("ok"))
    agent = _agent(model=f"{prefix}/gpt-4.1")

    runs = await asyncio.gather(*(timestep.run_agent(agent, f"q{i}") for i in range(5)))

    permits = await _permits(*runs)
    assert [p.queue_name for p in permits] == [f"timestep.provider.{prefix}.rate"] * 5
    arrivals = sorted(r.received_at for r in fake_model.requests)
    assert len(arrivals) == 5
    # Unlimited, 5 runs started together call the model within milliseconds; at 2 per second
    # the 3rd and 4th calls wait a second, the 5th two.
    assert max(sum(start <= t < start + 1.0 for t in arrivals) for start in arrivals) == 2
    assert arrivals[-1] - arrivals[0] >= 2.0


async def test_a_rate_permit_hands_its_slot_on_before_it_is_free(fake_model):
    """The next permit is granted while the slot cools down, and its call waits for the end
    of the cool-down, so the grant's delays overlap it."""
    prefix = f"early{uuid.uuid4().hex[:8]}"
    timestep.limit_provider(prefix, requests=1, per_seconds=2.0)
    fake_model.set_default(text("ok"))
    agent = _agent(model=f"{prefix}/gpt-4.1")

    runs = await asyncio.gather(*(timestep.run_agent(agent, f"q{i}") for i in range(2)))

    first, _ = sorted(await _permits(*runs), key=lambda permit: permit.created_at)
    free_at = first.output
    assert isinstance(free_at, float)
    # DBOS's SQLite clock truncates completed_at to the second: it can only read earlier.
    assert first.completed_at / 1000 < free_at, "the first permit ended before its slot was free"
    arrivals = sorted(request.received_at for request in fake_model.requests)
    assert arrivals[1] - arrivals[0] >= 2.0, "and the second call still waited for the slot"


async def test_rate_slots_are_handed_on_through_a_few_recent_rows(fake_model):
    """Each rate permit leaves one row saying when its slot changes hands and when it is free;
    rows long past are deleted as new ones come, so a hand-over reads a few rows, however
    many calls the queue has had."""
    prefix = f"slots{uuid.uuid4().hex[:8]}"
    limit = timestep.limit_provider(prefix, requests=1, per_seconds=2.0)
    fake_model.set_default(text("ok"))
    engine = await tables_engine()
    an_hour_ago = time.time() - 3600
    async with engine.begin() as conn:  # as a permit of an hour ago left it
        await conn.execute(
            sa.insert(rate_slots_table).values(
                permit_id=f"old-{prefix}",
                queue_name=limit.rate_queue_name,
                handed_at=an_hour_ago,
                free_at=an_hour_ago + 1.0,
            )
        )

    agent = _agent(model=f"{prefix}/gpt-4.1")
    runs = await asyncio.gather(*(timestep.run_agent(agent, f"q{i}") for i in range(2)))

    # A permit writes its row when it hears its call ended, which can be after the run
    # returned: wait for the permits to end (a second before their slots are free).
    for permit in await _permits(*runs):
        await (await DBOS.retrieve_workflow_async(permit.workflow_id)).get_result()
    permits = {p.workflow_id: p for p in await _permits(*runs)}
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(rate_slots_table).where(
                    rate_slots_table.c.queue_name == limit.rate_queue_name
                )
            )
        ).all()
    assert {row.permit_id for row in rows} == set(permits), "one row per permit, the old gone"
    for row in rows:
        # Handed on at most half the 2 s cool-down early; the permit returns the same free_at.
        assert 0 < row.free_at - row.handed_at <= 1.0
        assert permits[row.permit_id].output == row.free_at


def test_two_worker_processes_share_one_rate_limit(database_url, tmp_path):
    """The issue's acceptance: 20 model calls from two worker processes on a provider limited
    to 5 per 2 s never put more than 5 requests into any 2 s window at the fake."""
    from dbos import DBOSClient

    from timestep._core.runtime import reset_process
    from timestep.testing import FakeModelServer, WorkerProcess

    reset_process()  # only the workers take permits here
    prefix = f"shared{uuid.uuid4().hex[:8]}"
    go = tmp_path / "go"
    script = Path(__file__).parent / "workers" / "limit_worker.py"
    with FakeModelServer() as fake:
        fake.set_default(text("ok"))
        command = [sys.executable, str(script), database_url, fake.base_url, prefix, "10", str(go)]
        with (
            WorkerProcess(command, env={"TIMESTEP_EXECUTOR_ID": "limit-worker-1"}) as first,
            WorkerProcess(command, env={"TIMESTEP_EXECUTOR_ID": "limit-worker-2"}) as second,
        ):
            for worker in (first, second):
                worker.start()
            for worker in (first, second):
                worker.wait_for_line("LAUNCHED", timeout=60)
            go.touch()
            for worker in (first, second):
                worker.wait_for_line("DONE", timeout=120)
        requests = list(fake.requests)

    client = DBOSClient(system_database_url=database_url, serializer=TimestepSerializer())
    try:  # permits still cooling down when the workers stopped
        for permit in client.list_workflows(name=PERMIT_WORKFLOW, status="PENDING"):
            client.cancel_workflow(permit.workflow_id)
    finally:
        client.destroy()

    arrivals = sorted(request.received_at for request in requests)
    assert len(arrivals) == 20
    askers = {request.json["input"][0]["content"].split("-")[0] for request in requests}
    assert len(askers) == 2, "both workers made calls"
    busiest = max(sum(start <= t < start + 2.0 for t in arrivals) for start in arrivals)
    assert busiest == 5, " ".join(f"{t - arrivals[0]:.3f}" for t in arrivals)
    assert arrivals[-1] - arrivals[0] >= 6.0  # 20 calls at 5 per 2 s span three windows


async def test_a_replayed_run_takes_no_second_permit(fake_model):
    timestep.limit_provider("openai", concurrency=2)
    fake_model.set_default(text("once"))
    agent = _agent()

    first = await timestep.run_agent_workflow(agent, "hi", workflow_id="limited-once")
    again = await timestep.run_agent_workflow(agent, "hi", workflow_id="limited-once")

    assert first.final_output == again.final_output == "once"
    assert len(fake_model.requests) == 1
    assert len(await _permits(first)) == 1


async def test_unlimited_providers_take_no_permit(fake_model):
    timestep.limit_provider("ollama", concurrency=1)
    fake_model.set_default(text("free"))

    result = await timestep.run_agent(_agent(), "hi")

    assert await _permits(result) == []


async def test_runs_on_a_queue_respect_its_concurrency(fake_model):
    timestep.declare_queue("timestep-test-runs", concurrency=1)
    fake_model.set_default(text("queued", delay=0.2))
    agent = _agent("queued-agent")

    handles = [
        await timestep.start_agent_run(agent, f"q{i}", queue="timestep-test-runs") for i in range(3)
    ]
    results = [await handle.result() for handle in handles]

    assert [r.final_output for r in results] == ["queued"] * 3
    assert fake_model.max_concurrent_requests == 1


async def test_deduplicated_runs_are_refused(fake_model):
    timestep.declare_queue("timestep-test-dedup", concurrency=1)
    fake_model.set_default(text("first", delay=0.3))
    agent = _agent("dedup-agent")

    handle = await timestep.start_agent_run(
        agent, "a", queue="timestep-test-dedup", deduplication_id="order-7"
    )
    with pytest.raises(Exception, match="order-7"):
        await timestep.start_agent_run(
            agent, "b", queue="timestep-test-dedup", deduplication_id="order-7"
        )
    assert (await handle.result()).final_output == "first"


def test_bad_limits_are_clear_errors():
    with pytest.raises(ConfigurationError, match="both requests and per_seconds"):
        timestep.limit_provider("openai", requests=10)
    with pytest.raises(ConfigurationError, match="concurrency must be positive"):
        timestep.limit_provider("openai", concurrency=0)
    with pytest.raises(ConfigurationError, match="invalid provider prefix"):
        timestep.limit_provider("openai/gpt-4.1", concurrency=1)
    with pytest.raises(ValueError, match="need a queue"):
        asyncio.run(timestep.start_agent_run(_agent(), "x", priority=1))


def test_limits_from_settings(monkeypatch):
    monkeypatch.setenv(
        "TIMESTEP_PROVIDER_LIMITS", '{"ollama": {"requests": 30, "per_seconds": 60}}'
    )
    process_state().reload_settings()
    try:
        apply_declared_queues()
        limit = process_state().limits.provider_limit("ollama")
        assert limit is not None and (limit.requests, limit.per_seconds) == (30, 60)
        # A request limit alone needs only its rate queue (no concurrency queue).
        assert DBOS.retrieve_queue(limit.rate_queue_name) is not None

        monkeypatch.setenv("TIMESTEP_PROVIDER_LIMITS", '{"openai": {"rpm": 30}}')
        process_state().reload_settings()
        with pytest.raises(ConfigurationError, match="unknown option"):
            apply_declared_queues()
    finally:
        process_state().reload_settings()
