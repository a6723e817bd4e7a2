"""Human in the loop: durable approvals, the reject path, timeouts, the seeds' manual flow."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from agents import Agent, function_tool

import timestep
from timestep import (
    RunStateStore,
    Session,
    approve,
    get_pending_approvals,
    list_pending_approvals,
    reject,
    run_agent,
    start_agent_run,
)
from timestep._core.protocol import DECISION_TOPIC
from timestep._core.runtime import reset_process, tables_engine
from timestep._core.tables import tool_calls_table
from timestep.errors import ApprovalError, ApprovalTimeoutError, DecisionConflictError
from timestep.testing import function_call, text

pytestmark = pytest.mark.usefixtures("durable")

WORKERS = Path(__file__).parent / "workers"

refunds: list[str] = []


@function_tool(needs_approval=True)
def refund(order_id: str) -> str:
    """Refund an order (a human must approve)."""
    refunds.append(order_id)
    return f"refunded {order_id}"


@function_tool
def lookup_order(order_id: str) -> str:
    """Look an order up."""
    return f"order {order_id}: 2 items, paid"


def _agent() -> Agent:
    return Agent(name="support-agent", instructions="Help.", tools=[lookup_order, refund])


@pytest.fixture(autouse=True)
def _reset():
    refunds.clear()


async def _pending(workflow_id: str, timeout: float = 20) -> list[dict]:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        pending = await get_pending_approvals(workflow_id)
        if pending:
            return pending
        await asyncio.sleep(0.02)
    raise AssertionError(f"run {workflow_id} published no pending approval")


async def test_run_waits_durably_and_resumes_on_approval(fake_model):
    fake_model.add_turns(
        function_call("lookup_order", {"order_id": "A1"}),
        function_call("refund", {"order_id": "A1"}, call_id="call_refund"),
        text("Refund done."),
    )
    handle = await start_agent_run(_agent(), "refund A1", wait_for_approvals=True)
    pending = await _pending(handle.workflow_id)
    assert [(p["call_id"], p["tool_name"]) for p in pending] == [("call_refund", "refund")]
    assert refunds == []
    assert await handle.status() == "PENDING"
    listed = await list_pending_approvals()
    assert any(row["workflow_id"] == handle.workflow_id for row in listed)

    await approve(handle.workflow_id, "call_refund", by="alice")
    result = await handle.result()
    assert result.final_output == "Refund done."
    assert refunds == ["A1"]
    assert await get_pending_approvals(handle.workflow_id) == []
    assert not [r for r in await list_pending_approvals() if r["workflow_id"] == handle.workflow_id]


async def test_rejection_message_reaches_the_model(fake_model):
    fake_model.add_turns(
        function_call("refund", {"order_id": "B2"}, call_id="call_b2"),
        text("Understood, no refund."),
    )
    handle = await start_agent_run(_agent(), "refund B2", wait_for_approvals=True)
    await _pending(handle.workflow_id)
    await reject(handle.workflow_id, "call_b2", "Refunds over $100 need a manager.")
    result = await handle.result()
    assert result.final_output == "Understood, no refund."
    assert refunds == []
    assert "Refunds over $100 need a manager." in str(fake_model.requests[-1].json["input"])


async def test_deciding_an_unknown_call_is_an_error(fake_model):
    fake_model.add_turns(function_call("refund", {"order_id": "C3"}, call_id="call_c3"), text("ok"))
    handle = await start_agent_run(_agent(), "refund C3", wait_for_approvals=True)
    await _pending(handle.workflow_id)
    with pytest.raises(ApprovalError, match="call_nope"):
        await approve(handle.workflow_id, "call_nope")
    await approve(handle.workflow_id, "call_c3")
    assert (await handle.result()).final_output == "ok"


async def test_timeout_policy_reject(fake_model):
    fake_model.add_turns(function_call("refund", {"order_id": "D4"}), text("Timed out, sorry."))
    handle = await start_agent_run(
        _agent(), "refund D4", wait_for_approvals=True, approval_timeout=0.3
    )
    result = await handle.result()
    assert result.final_output == "Timed out, sorry."
    assert refunds == []
    assert "not approved within" in str(fake_model.requests[-1].json["input"])


async def test_timeout_policy_fail(fake_model):
    fake_model.add_turns(function_call("refund", {"order_id": "E5"}), text("never"))
    handle = await start_agent_run(
        _agent(),
        "refund E5",
        wait_for_approvals=True,
        approval_timeout=0.3,
        on_approval_timeout="fail",
    )
    with pytest.raises(ApprovalTimeoutError):
        await handle.result()


async def test_approval_from_a_separate_process_through_dbos_client(fake_model, durable):
    fake_model.add_turns(
        function_call("refund", {"order_id": "F6"}, call_id="call_f6"), text("Refunded F6.")
    )
    handle = await start_agent_run(_agent(), "refund F6", wait_for_approvals=True)
    await _pending(handle.workflow_id)
    code = (
        "import asyncio, timestep\n"
        f"timestep.configure_dbos({durable!r})\n"
        f"asyncio.run(timestep.approve({handle.workflow_id!r}, 'call_f6', by='cli'))\n"
        "assert not timestep._core.runtime.is_dbos_launched()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert (await handle.result()).final_output == "Refunded F6."
    assert refunds == ["F6"]


async def test_seeds_manual_flow(fake_model):
    """The seeds' flow, as written: run, save the state, load it, approve, run again."""
    fake_model.add_turns(
        function_call("refund", {"order_id": "G7"}), text("Refund of G7 complete.")
    )
    agent = _agent()
    session = Session()
    state_store = RunStateStore(agent=agent, session_id=await session._get_session_id())

    result = await run_agent(
        agent, [{"role": "user", "content": "refund G7"}], session, stream=False
    )
    assert result.interruptions
    state = result.to_state()
    await state_store.save(state)

    loaded_state = await state_store.load()
    for interruption in loaded_state.get_interruptions():
        loaded_state.approve(interruption)
    result = await run_agent(agent, loaded_state, session, stream=False)

    assert result.final_output == "Refund of G7 complete."
    assert refunds == ["G7"]
    history = await state_store.history()
    assert [h.state_type for h in history] == ["interrupted"]


WORKER = Path(__file__).parent / "workers" / "approval_worker.py"


@pytest.mark.parametrize("stream", [False, True], ids=["run", "streamed"])
def test_approval_survives_sigkill_of_the_waiting_worker(
    database_url: str, tmp_path: Path, stream: bool
):
    """Streamed, the recovering worker rebuilds the pending call from the streamed model
    step's checkpoint (kept in the API's field names), as the SDK would have made it."""
    from timestep.testing import FakeModelServer, WorkerProcess, conversation_script

    # Only worker processes may run this run: DBOS lets any live process on the database take
    # over a dead worker's runs, and this module's fixture launched DBOS here too.
    reset_process()
    workflow_id = f"approval-crash-{uuid.uuid4().hex[:8]}"
    script = [function_call("refund", {"order_id": "H8"}, call_id="call_h8"), text("H8 refunded.")]
    with FakeModelServer(responder=conversation_script(script)) as server:
        command = [
            sys.executable,
            str(WORKER),
            database_url,
            server.base_url,
            str(tmp_path),
            workflow_id,
            *(["--stream"] if stream else []),
        ]
        with WorkerProcess(command) as worker:
            worker.start()
            worker.wait_for_line("WAITING", timeout=60)
            worker.kill()
            # Decide while no worker runs: the message waits in the database.
            approver = (
                "import asyncio, timestep\n"
                f"timestep.configure_dbos({database_url!r})\n"
                f"asyncio.run(timestep.approve({workflow_id!r}, 'call_h8', by='ops'))\n"
            )
            subprocess.run([sys.executable, "-c", approver], check=True, timeout=60)
            worker.restart()
            worker.wait_for_line("RESULT", timeout=90)
            assert worker.wait(timeout=30) == 0
        assert "H8 refunded." in worker.output()
    assert (tmp_path / "refunds.log").read_text().split() == ["H8"]
    assert len(server.requests) == 2


async def test_waiting_snapshot_is_stored_for_both_sdks_without_secrets(fake_model, monkeypatch):
    import json

    import sqlalchemy as sa

    from timestep._core.process import process_state
    from timestep._core.tables import run_states_table

    secret = "sk-approval-snapshot-secret-123"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    process_state().reload_settings()
    fake_model.add_turns(
        function_call("refund", {"order_id": secret}, call_id="call_s"), text("Not refunded.")
    )
    handle = await start_agent_run(_agent(), "refund it", wait_for_approvals=True)
    await _pending(handle.workflow_id)

    engine = await tables_engine()
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                sa.select(run_states_table).where(
                    run_states_table.c.workflow_id == handle.workflow_id
                )
            )
        ).one()
    await reject(handle.workflow_id, "call_s", "no")
    assert (await handle.result()).final_output == "Not refunded."
    process_state().reload_settings()
    assert row.state_type == "interrupted"
    assert secret not in row.payload and secret not in row.payload_typescript
    assert json.loads(row.payload_typescript)["$schemaVersion"] == "1.22"


# -- first-wins decisions ---------------------------------------------------------------------


async def _decision_messages(workflow_id: str) -> list[bool]:
    """Whether each decision message sent to the run was consumed, read from DBOS's own
    notifications table (beside Timestep's, in the same database)."""
    engine = await tables_engine()
    table = "notifications" if engine.dialect.name == "sqlite" else "dbos.notifications"
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.text(
                f"SELECT consumed FROM {table} WHERE destination_uuid = :wf AND topic = :topic"
            ),
            {"wf": workflow_id, "topic": DECISION_TOPIC},
        )
        return [bool(row.consumed) for row in rows]


async def test_the_first_decision_wins(fake_model):
    fake_model.add_turns(
        function_call("refund", {"order_id": "W1"}, call_id="call_w1"), text("Refunded W1.")
    )
    handle = await start_agent_run(_agent(), "refund W1", wait_for_approvals=True)
    await _pending(handle.workflow_id)
    await approve(handle.workflow_id, "call_w1", by="alice")
    for later in (
        approve(handle.workflow_id, "call_w1", by="bob"),
        reject(handle.workflow_id, "call_w1", "no", by="carol"),
    ):
        with pytest.raises(DecisionConflictError, match="already approved by alice") as info:
            await later
        assert (info.value.decision, info.value.winner["by"]) == ("approve", "alice")
    assert (await handle.result()).final_output == "Refunded W1."
    assert refunds == ["W1"]
    # After the run went on, a decision still names the winner rather than "not waiting".
    with pytest.raises(DecisionConflictError, match="already approved by alice"):
        await reject(handle.workflow_id, "call_w1", by="dave")
    assert await _decision_messages(handle.workflow_id) == [True]


async def test_a_decision_after_the_timeout_is_told_the_timeout_won(fake_model):
    fake_model.add_turns(
        function_call("refund", {"order_id": "W2"}, call_id="call_w2"), text("Too late.")
    )
    handle = await start_agent_run(
        _agent(), "refund W2", wait_for_approvals=True, approval_timeout=0.3
    )
    assert (await handle.result()).final_output == "Too late."
    with pytest.raises(DecisionConflictError, match="already rejected by timeout") as info:
        await approve(handle.workflow_id, "call_w2", by="alice")
    assert info.value.decision == "reject"
    assert refunds == []
    assert await _decision_messages(handle.workflow_id) == []  # the run decided it itself


async def test_concurrent_deciders_in_two_processes_exactly_one_wins(
    fake_model, durable: str, tmp_path: Path
):
    fake_model.add_turns(
        function_call("refund", {"order_id": "W3"}, call_id="call_w3"), text("Decided W3.")
    )
    handle = await start_agent_run(_agent(), "refund W3", wait_for_approvals=True)
    await _pending(handle.workflow_id)
    start_at = time.time() + 8  # both processes import and connect before it
    deciders = [
        subprocess.Popen(
            [sys.executable, str(WORKERS / "decider.py"), durable, handle.workflow_id]
            + ["call_w3", decision, "5", str(start_at)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for decision in ("approve", "reject")
    ]
    outcomes: list[dict] = []
    for process in deciders:
        out, err = await asyncio.to_thread(process.communicate, timeout=120)
        assert process.returncode == 0, err
        line = next(line for line in out.splitlines() if line.startswith("OUTCOME "))
        outcomes += json.loads(line.removeprefix("OUTCOME "))
    assert len(outcomes) == 10
    winners = [o for o in outcomes if o["won"]]
    assert len(winners) == 1, outcomes
    winner = winners[0]["by"]
    decision = winner.split("-")[0]
    assert all(
        (o["winner"], o["winner_by"]) == (decision, winner) for o in outcomes if not o["won"]
    )

    result = await handle.result()
    assert result.final_output == "Decided W3."
    assert refunds == (["W3"] if decision == "approve" else [])
    # One message reached the run and it was consumed: none is left over.
    assert await _decision_messages(handle.workflow_id) == [True]
    rows = [r for r in await _tool_call_rows(handle.workflow_id) if r["call_id"] == "call_w3"]
    assert [(json.loads(r["decision"])["approve"], r["decided_by"]) for r in rows] == [
        (decision == "approve", winner)
    ]

    # The CLI says it in one line, with exit code 1.
    cli = subprocess.run(
        [sys.executable, "-c", "from timestep.cli import main; main()", "approvals", "approve"]
        + [handle.workflow_id, "call_w3"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TIMESTEP_DATABASE_URL": durable},
    )
    assert cli.returncode == 1, cli.stdout + cli.stderr
    lines = cli.stderr.strip().splitlines()
    assert len(lines) == 1, cli.stderr
    verb = "approved" if decision == "approve" else "rejected"
    assert f"already {verb} by {winner}" in lines[0]


async def _tool_call_rows(workflow_id: str) -> list[dict]:
    await timestep.flush_records()
    engine = await tables_engine()
    t = tool_calls_table
    async with engine.connect() as conn:
        rows = await conn.execute(sa.select(t).where(t.c.workflow_id == workflow_id))
        return [dict(row._mapping) for row in rows]


async def test_a_streamed_run_cancelled_while_waiting_resumes_and_finishes():
    """A streamed run replays its model call from the step's checkpoint: the pending approval
    rebuilt from it is the SDK's own (the checkpoint keeps the fields' API names), so the
    resumed run waits again, takes the decision and finishes, asking the model nothing twice."""
    from timestep._client.inspection import cancel_run, resume_run
    from timestep.testing import FakeModelServer

    with FakeModelServer() as fake:
        # Resumed runs execute on DBOS's event loop: this provider keeps a client per loop.
        timestep.set_model_provider(
            timestep.MultiModelProvider(openai_base_url=fake.base_url, openai_api_key="k")
        )
        try:
            fake.add_turns(
                function_call("refund", {"order_id": "S1"}, call_id="call_s1"),
                text("S1 refunded."),
            )
            agent = _agent()
            timestep.register_agent(agent)  # the resumed run is rebuilt from the registry
            run = await run_agent(agent, "refund S1", stream=True, wait_for_approvals=True)
            await _pending(run.workflow_id)
            await cancel_run(run.workflow_id)
            await resume_run(run.workflow_id)
            await approve(run.workflow_id, "call_s1", by="ops")
            result = await timestep.get_run_result(run.workflow_id)
        finally:
            timestep.set_model_provider(None)
    assert result.final_output == "S1 refunded."
    assert refunds == ["S1"]
    assert len(fake.requests) == 2


async def test_the_published_list_stays_and_readers_leave_out_decided_calls(fake_model):
    """No step between the decision and the tool: the run leaves its published list as it is,
    and the readers (``get_pending_approvals``, ``decide``) know a decided call by its row."""
    from dbos import DBOS

    fake_model.add_turns(
        function_call("refund", {"order_id": "P1"}, call_id="call_p1"), text("P1 refunded.")
    )
    handle = await start_agent_run(_agent(), "refund P1", wait_for_approvals=True)
    await _pending(handle.workflow_id)
    await approve(handle.workflow_id, "call_p1")
    assert await get_pending_approvals(handle.workflow_id) == []  # decided, before the run ends
    with pytest.raises(DecisionConflictError):
        await reject(handle.workflow_id, "call_p1")
    assert (await handle.result()).final_output == "P1 refunded."
    steps = await DBOS.list_workflow_steps_async(handle.workflow_id)
    assert [s["function_name"] for s in steps].count("DBOS.setEvent") == 1  # the publication


async def test_a_run_of_an_earlier_version_replays_its_clearing_step(fake_model):
    """Runs started by earlier versions published an empty list once their decisions were in
    (their requests lack ``clears_approvals``): a replay past that step must take it again at
    the same place, or DBOS would find the next step where the event's checkpoint is."""
    from dbos import DBOS, SetWorkflowID

    from timestep._client.inspection import fork_run
    from timestep.workflows._agent_run import agent_run_workflow

    agent = _agent()
    timestep.register_agent(agent)  # the earlier version's run is rebuilt from the registry
    fake_model.add_turns(
        function_call("refund", {"order_id": "E0"}, call_id="call_e0"), text("E0 refunded.")
    )
    template = await start_agent_run(agent, "refund E0", wait_for_approvals=True)
    await _pending(template.workflow_id)
    await approve(template.workflow_id, "call_e0")
    await template.result()
    (status,) = await DBOS.list_workflows_async(workflow_ids=[template.workflow_id])
    request = dict(status.input["args"][0])
    assert request.pop("clears_approvals") is False
    request["input"] = "refund E1"

    fake_model.add_turns(
        function_call("refund", {"order_id": "E1"}, call_id="call_e1"), text("E1 refunded.")
    )
    earlier = f"earlier-{uuid.uuid4().hex}"
    with SetWorkflowID(earlier):
        handle = await DBOS.start_workflow_async(agent_run_workflow, request)
    await _pending(earlier)
    await approve(earlier, "call_e1")
    assert (await handle.get_result())["final_output"] == "E1 refunded."
    steps = await DBOS.list_workflow_steps_async(earlier)
    names = [s["function_name"] for s in steps]
    assert names.count("DBOS.setEvent") == 2  # published, then cleared
    cleared = max(s["function_id"] for s in steps if s["function_name"] == "DBOS.setEvent")
    assert names[-1].startswith("model:") and steps[-1]["function_id"] > cleared

    # Replay past the clearing step (a fork from the last model call): the same steps again.
    fake_model.add_turns(text("E1 refunded, again."))
    timestep.set_model_provider(fake_model.provider())  # the fork runs on DBOS's own loop
    try:
        forked = await fork_run(earlier, steps[-1]["function_id"])
        result = await timestep.get_run_result(forked, agent)
    finally:
        timestep.set_model_provider(None)
    assert result.final_output == "E1 refunded, again."
    assert refunds == ["E0", "E1"]  # the tool ran before the fork's step: replayed, not again
    assert [s["function_name"] for s in await DBOS.list_workflow_steps_async(forked)] == names
