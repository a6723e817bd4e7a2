"""``run_agent`` and friends: start durable agent runs and fetch their results."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, overload

import sqlalchemy as sa
from agents import Agent, RunState
from agents.memory.session import Session
from dbos import DBOS, SetEnqueueOptions, SetWorkflowID, WorkflowHandleAsync, WorkflowStatus

from timestep._core.process import process_state
from timestep._core.protocol import (
    AGENT_RUN_WORKFLOW,
    SCHEDULED_RUN_WORKFLOW,
    RunRequest,
    RunSummary,
    request_of,
    time_of,
)
from timestep._core.runtime import ensure_dbos_launched, tables_engine
from timestep._core.tables import run_states_table
from timestep.errors import RunNotFoundError
from timestep.steps import TimestepSession
from timestep.workflows import agent_run_workflow, expect_live_result, take_live_result

from .results import AgentRunResult, Finish, StreamingAgentRun
from .system import system

__all__ = [
    "AgentRunHandle",
    "RUN_WORKFLOWS",
    "RunInfo",
    "cancel_run",
    "find_run",
    "find_workflow",
    "fork_run",
    "get_run",
    "get_run_result",
    "list_run_steps",
    "list_runs",
    "require_run",
    "resume_run",
    "run_agent",
    "run_agent_workflow",
    "run_state_json",
    "start_agent_run",
]

RunInput = str | list[Any] | RunState[Any]


@overload
async def run_agent(
    agent: Agent[Any],
    input_or_state: RunInput,
    session: Session | None = None,
    stream: Literal[False] = False,
    *,
    workflow_id: str | None = None,
    max_turns: int | None = None,
) -> AgentRunResult: ...


@overload
async def run_agent(
    agent: Agent[Any],
    input_or_state: RunInput,
    session: Session | None,
    stream: Literal[True],
    *,
    workflow_id: str | None = None,
    max_turns: int | None = None,
) -> StreamingAgentRun: ...


@overload
async def run_agent(
    agent: Agent[Any],
    input_or_state: RunInput,
    session: Session | None = None,
    *,
    stream: Literal[True],
    workflow_id: str | None = None,
    max_turns: int | None = None,
) -> StreamingAgentRun: ...


@overload
async def run_agent(
    agent: Agent[Any],
    input_or_state: RunInput,
    session: Session | None = None,
    stream: bool = False,
    *,
    workflow_id: str | None = None,
    max_turns: int | None = None,
) -> AgentRunResult | StreamingAgentRun: ...


async def run_agent(
    agent: Agent[Any],
    input_or_state: RunInput,
    session: Session | None = None,
    stream: bool = False,
    *,
    workflow_id: str | None = None,
    max_turns: int | None = None,
) -> AgentRunResult | StreamingAgentRun:
    """Run ``agent`` as a durable workflow: every model call and tool call is a DBOS step.

    ``input_or_state`` is the input (a string or input items) or a ``RunState`` to resume
    (e.g. after approving its interruptions). With ``stream=True`` the returned object's
    ``stream_events()`` yields events live while the run stays durable.
    """
    handle = await start_agent_run(
        agent,
        input_or_state,
        session,
        workflow_id=workflow_id,
        max_turns=max_turns,
        stream=stream,
        _awaited_here=True,
    )
    if stream:
        return StreamingAgentRun(handle.workflow_id, agent, handle._handle, _finish_for(agent))
    return await handle.result()


async def run_agent_workflow(
    agent: Agent[Any],
    input_items: RunInput,
    session: Session | None = None,
    workflow_id: str | None = None,
    *,
    max_turns: int | None = None,
) -> AgentRunResult:
    """Run ``agent`` durably under ``workflow_id``. Idempotent: calling again with the same id
    (from this or any process) returns the first run's result and calls no model again."""
    handle = await start_agent_run(
        agent,
        input_items,
        session,
        workflow_id=workflow_id,
        max_turns=max_turns,
        _awaited_here=True,
    )
    return await handle.result()


async def start_agent_run(
    agent: Agent[Any],
    input_or_state: RunInput,
    session: Session | None = None,
    *,
    workflow_id: str | None = None,
    max_turns: int | None = None,
    stream: bool = False,
    wait_for_approvals: bool = False,
    approval_timeout: float | None = None,
    on_approval_timeout: Literal["reject", "fail", "wait"] = "reject",
    queue: str | None = None,
    priority: int | None = None,
    deduplication_id: str | None = None,
    _awaited_here: bool = False,
) -> AgentRunHandle:
    """Start a durable run and return its handle at once.

    With ``wait_for_approvals`` an interrupted run does not end: it waits inside its workflow
    for ``approve`` / ``reject`` from any process (surviving restarts), then goes on. After
    ``approval_timeout`` seconds the pending calls are rejected, the run fails
    (``ApprovalTimeoutError``), or it keeps waiting, as ``on_approval_timeout`` says.

    With ``queue`` (declared with ``declare_queue``) the run waits its turn on that DBOS queue,
    whose concurrency and rate limit hold across processes; ``priority`` and
    ``deduplication_id`` are DBOS's enqueue options.
    """
    if queue is None and (priority is not None or deduplication_id is not None):
        raise ValueError("priority and deduplication_id need a queue")
    ensure_dbos_launched()
    entry = process_state().agents.register(agent)
    request: RunRequest = {
        "agent": agent.name,
        "agent_ref": entry.ref,
        "session_id": _session_id(session),
        "max_turns": max_turns,
        "stream": stream,
        "approvals": {
            "wait": wait_for_approvals,
            "timeout_seconds": approval_timeout,
            "on_timeout": on_approval_timeout,
        },
    }
    if isinstance(input_or_state, RunState):
        request["state"] = input_or_state.to_string()
        request["input"] = None
    else:
        request["input"] = input_or_state
    workflow_id = workflow_id or f"run-{uuid.uuid4().hex}"
    if _awaited_here:
        expect_live_result(workflow_id)
    with SetWorkflowID(workflow_id):
        if queue is None:
            handle = await DBOS.start_workflow_async(agent_run_workflow, request)
        else:
            with SetEnqueueOptions(priority=priority, deduplication_id=deduplication_id):
                handle = await DBOS.enqueue_workflow_async(queue, agent_run_workflow, request)
    return AgentRunHandle(handle, agent)


def _session_id(session: Session | None) -> str | None:
    if session is None:
        return None
    if not isinstance(session, TimestepSession):
        raise TypeError(
            "durable runs keep conversation memory in Timestep's database: pass a "
            f"timestep.Session (got {type(session).__name__}); "
            f"timestep.Session({getattr(session, 'session_id', None)!r}) continues the same id"
        )
    return session.session_id


class AgentRunHandle:
    """A started durable run."""

    def __init__(self, handle: WorkflowHandleAsync[RunSummary], agent: Agent[Any]) -> None:
        self._handle = handle
        self.agent = agent

    @property
    def workflow_id(self) -> str:
        return self._handle.get_workflow_id()

    async def status(self) -> str:
        return (await self._handle.get_status()).status

    async def result(self) -> AgentRunResult:
        """Wait for the run to end. Agent errors are raised as the SDK's own classes."""
        return await _finish_for(self.agent)(self._handle)


def _finish_for(agent: Agent[Any]) -> Finish:
    async def finish(handle: WorkflowHandleAsync[RunSummary]) -> AgentRunResult:
        summary = await handle.get_result()
        return await _result_from(handle.get_workflow_id(), summary, agent)

    return finish


async def _result_from(workflow_id: str, summary: RunSummary, agent: Agent[Any]) -> AgentRunResult:
    live = take_live_result(workflow_id)
    if live is not None:
        return AgentRunResult(workflow_id, live=live)
    if summary["state"] is not None:
        state = await RunState.from_string(agent, summary["state"])
        return AgentRunResult(workflow_id, state=state, final_output=summary["final_output"])
    status = await find_run(workflow_id)
    request = request_of(status)
    return AgentRunResult.from_summary(workflow_id, summary, agent, request.get("input"))


@dataclass(frozen=True)
class RunInfo:
    workflow_id: str
    status: str
    agent_name: str | None
    created_at: datetime | None
    updated_at: datetime | None
    error: str | None


RUN_WORKFLOWS = (AGENT_RUN_WORKFLOW, SCHEDULED_RUN_WORKFLOW)
"""The workflows that are runs: an agent run, or a schedule's fire (whose child is one)."""


async def find_workflow(workflow_id: str) -> WorkflowStatus | None:
    """Any workflow's DBOS status by id (a run, a fire, a permit...), from any process."""
    found = await system().list_workflows_async(workflow_ids=[workflow_id])
    return found[0] if found else None


async def find_run(workflow_id: str) -> WorkflowStatus | None:
    """A run's DBOS status by workflow id, from any process; None if no run has it."""
    status = await find_workflow(workflow_id)
    return status if status is not None and status.name in RUN_WORKFLOWS else None


async def require_run(workflow_id: str) -> WorkflowStatus:
    """``find_run``, or ``RunNotFoundError``."""
    status = await find_run(workflow_id)
    if status is None:
        raise RunNotFoundError(f"no run has workflow id {workflow_id!r}")
    return status


async def run_state_json(status: WorkflowStatus) -> str | None:
    """The RunState (Python format) of an interrupted run: an ended one's from its output, a
    waiting one's newest snapshot; None for any other run."""
    if status.status == "SUCCESS":
        output = status.output if isinstance(status.output, dict) else {}
        state_json: str | None = output.get("state")
        return state_json
    if status.status != "PENDING":
        return None
    t = run_states_table
    query = (
        sa.select(t.c.payload)
        .where(t.c.workflow_id == status.workflow_id, t.c.format == "python")
        .order_by(t.c.seq.desc())
        .limit(1)
    )
    async with (await tables_engine()).connect() as conn:
        payload: str | None = (await conn.execute(query)).scalar()
    return payload


async def get_run(workflow_id: str) -> RunInfo:
    """Status of a run by workflow id, from any process (it need not be a worker)."""
    status = await require_run(workflow_id)
    return RunInfo(
        workflow_id=workflow_id,
        status=status.status,
        agent_name=request_of(status).get("agent"),
        created_at=time_of(status.created_at),
        updated_at=time_of(status.updated_at),
        error=str(status.error) if status.error else None,
    )


async def get_run_result(workflow_id: str, agent: Agent[Any] | None = None) -> AgentRunResult:
    """Wait for the run's result, by workflow id, from any process."""
    info = await get_run(workflow_id)
    agent = agent or process_state().agents.resolve(info.agent_name or "")
    handle = await system().retrieve_workflow_async(workflow_id)
    return await _finish_for(agent)(handle)


async def list_runs(
    *, status: str | list[str] | None = None, limit: int = 20, load_output: bool = False
) -> list[WorkflowStatus]:
    """The newest agent runs first, from any process."""
    return await system().list_workflows_async(
        name=AGENT_RUN_WORKFLOW,
        status=status,
        limit=limit,
        sort_desc=True,
        load_output=load_output,
    )


async def list_run_steps(workflow_id: str) -> list[dict[str, Any]]:
    """A run's checkpointed steps, in order: id, name (``model:...``, ``tool:...``), outcome."""
    steps = await system().list_workflow_steps_async(workflow_id)
    return [
        {
            "id": s["function_id"],
            "name": s["function_name"],
            "outcome": "error" if s.get("error") is not None else "done",
        }
        for s in steps
    ]


async def cancel_run(workflow_id: str) -> None:
    """Cancel a run; it stops at its next step."""
    await system().cancel_workflow_async(workflow_id)


async def resume_run(workflow_id: str) -> None:
    """Resume a cancelled or failed run from its last finished step (a worker executes it)."""
    await system().resume_workflow_async(workflow_id)


async def fork_run(workflow_id: str, start_step: int = 1) -> str:
    """A new run that replays ``workflow_id``'s steps before ``start_step`` and executes the
    rest; returns its workflow id."""
    handle = await system().fork_workflow_async(workflow_id, start_step)
    return handle.get_workflow_id()
