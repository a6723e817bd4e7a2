"""Usage and tool-call rows are written in the background, batched, and never lost: a worker
killed before its writer committed a finished run's rows writes them at its next launch."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from agents import Agent, function_tool

import timestep
from timestep._core.database import sync_engine_for
from timestep._core.process import process_state
from timestep._core.tables import recorder_marks_table, tool_calls_table, usage_table
from timestep.testing import (
    FakeModelServer,
    WorkerProcess,
    conversation_script,
    function_call,
    text,
)

WORKER = Path(__file__).parent / "workers" / "durable_agent_worker.py"

SCRIPT = [
    function_call("lookup", {"item": "pear"}),
    function_call("fetch", {"item": "pear"}),
    text("pear looked up and fetched"),
]
EXPECTED_TOOLS = [("fetch", "completed"), ("lookup", "completed")]


def _rows(database_url: str, workflow_id: str) -> tuple[list[tuple], list[tuple]]:
    """(usage rows, tool-call rows) of one run, in key order."""
    engine = sync_engine_for(database_url)
    try:
        with engine.connect() as conn:
            u, t = usage_table.c, tool_calls_table.c
            usage = conn.execute(
                sa.select(u.response_index, u.input_tokens, u.session_id)
                .where(u.workflow_id == workflow_id)
                .order_by(u.response_index)
            ).all()
            tools = conn.execute(
                sa.select(t.tool_name, t.status)
                .where(t.workflow_id == workflow_id)
                .order_by(t.tool_name)
            ).all()
    finally:
        engine.dispose()
    return [tuple(r) for r in usage], [tuple(r) for r in tools]


def test_rows_a_kill_took_are_written_at_the_next_launch(database_url: str, tmp_path: Path):
    workflow_id = f"recorder-{uuid.uuid4().hex[:8]}"
    executor = f"recorder-worker-{uuid.uuid4().hex[:8]}"
    with FakeModelServer(responder=conversation_script(SCRIPT)) as server:
        command = [
            *(sys.executable, str(WORKER), database_url, server.base_url),
            *(str(tmp_path), workflow_id, "linger"),
        ]
        # The first worker's writer gathers for an hour: the finished run's rows are still in
        # its memory when it is killed.
        slow = {"TIMESTEP_EXECUTOR_ID": executor, "TIMESTEP_RECORDS_FLUSH_INTERVAL_SEC": "3600"}
        with WorkerProcess(command, env=slow) as worker:
            worker.start()
            worker.wait_for_line("RESULT", timeout=90)
            worker.kill()
            worker.wait(timeout=30)
        assert _rows(database_url, workflow_id) == ([], [])

        # Its restart (same executor id) finds the run finished and writes the rows from the
        # run's recorded output.
        with WorkerProcess(command, env={"TIMESTEP_EXECUTOR_ID": executor}) as worker:
            worker.start()
            worker.wait_for_line("RESULT", timeout=90)
            deadline = time.monotonic() + 30
            while _rows(database_url, workflow_id)[1] != EXPECTED_TOOLS:
                assert time.monotonic() < deadline, _rows(database_url, workflow_id)
                time.sleep(0.05)
            worker.kill()
        assert len(server.requests) == 3  # the restart asked the model nothing

    usage, tools = _rows(database_url, workflow_id)
    session = f"session-{workflow_id}"
    assert [(index, s) for index, _, s in usage] == [(0, session), (1, session), (2, session)]
    assert all(tokens > 0 for _, tokens, _ in usage)


@function_tool
def lookup(item: str) -> str:
    """Look an item up."""
    return f"{item} is in stock"


async def test_runs_finishing_together_share_one_transaction(fake_model, durable):
    assert await timestep.flush_records()  # the launch's reconciliation
    recorder = process_state().recorder
    recorder.flush_interval = 2.0
    commits = []

    def on_commit(connection: sa.Connection) -> None:
        commits.append(connection)

    engine = process_state().engines.sync(durable)
    sa.event.listen(engine, "commit", on_commit)
    try:
        fake_model.add_turns(*(text(f"answer {i}") for i in range(8)))
        agent = Agent(name="recorder-batch", instructions="Answer.")
        results = await asyncio.gather(*(timestep.run_agent(agent, f"q{i}") for i in range(8)))
        assert await timestep.flush_records()
    finally:
        sa.event.remove(engine, "commit", on_commit)
        recorder.flush_interval = 0.05
    assert 1 <= len(commits) <= 2  # not one per run
    for result in results:
        usage = await timestep.get_usage(workflow_id=result.workflow_id)
        assert usage.requests == 1


async def test_reconciliation_writes_what_the_recorder_lost(fake_model, durable):
    assert await timestep.flush_records()  # the launch's reconciliation
    recorder = process_state().recorder
    recorder.flush_interval = 3600
    try:
        fake_model.add_turns(function_call("lookup", {"item": "fig"}), text("Fig."))
        agent = Agent(name="recorder-lost", instructions="Help.", tools=[lookup])
        result = await timestep.run_agent(agent, "fig")
        assert recorder.discard() == 1  # as if the process had died here
    finally:
        recorder.flush_interval = 0.05
    assert _rows(durable, result.workflow_id) == ([], [])

    await asyncio.to_thread(process_state().recorder.start_reconciliation, durable, 0)
    assert await timestep.flush_records()
    usage, tools = _rows(durable, result.workflow_id)
    assert [index for index, _, _ in usage] == [0, 1]
    assert tools == [("lookup", "completed")]


async def test_each_commit_moves_the_executors_mark(fake_model, durable):
    from dbos import DBOS

    def mark() -> int | None:
        with process_state().engines.sync(durable).connect() as conn:
            t = recorder_marks_table
            return conn.execute(
                sa.select(t.c.recorded_through_ms).where(t.c.executor_id == DBOS.executor_id)
            ).scalar()

    before = await asyncio.to_thread(mark)
    assert before is not None  # launch gives an executor its first mark
    fake_model.add_turns(text("Done."))
    await timestep.run_agent(Agent(name="recorder-mark", instructions="Answer."), "go")
    assert await timestep.flush_records()
    assert await asyncio.to_thread(mark) > before
