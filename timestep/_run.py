"""``run_agent`` and friends: start durable agent runs and fetch their results."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from agents import Agent, RunState
from agents.memory.session import Session
from dbos import DBOS, SetEnqueueOptions, SetWorkflowID, WorkflowHandleAsync

from ._registry import register_agent, resolve_agent
from ._results import AgentRunResult, StreamingAgentRun
from ._runtime import ensure_dbos_launched
from ._sessions import TimestepSession
from .errors import RunNotFoundError
from .workflows import (
    RunRequest,
    RunSummary,
    agent_run_workflow,
    expect_live_result,
    request_of,
    take_live_result,
    time_of,
)

__all__ = [
    "run_agent",
    "run_agent_workflow",
    "start_agent_run",
    "get_run",
    "get_run_result",
    "AgentRunHandle",
    "RunInfo",
]

RunInput = str | list[Any] | RunState[Any]


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
    entry = register_agent(agent)
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


def _finish_for(agent: Agent[Any]) -> Any:
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
    status = await DBOS.get_workflow_status_async(workflow_id)
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


async def get_run(workflow_id: str) -> RunInfo:
    """Status of a run by workflow id, from any process."""
    ensure_dbos_launched()
    status = await DBOS.get_workflow_status_async(workflow_id)
    if status is None:
        raise RunNotFoundError(f"no run has workflow id {workflow_id!r}")
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
    agent = agent or resolve_agent(info.agent_name or "")
    handle = await DBOS.retrieve_workflow_async(workflow_id)
    return await _finish_for(agent)(handle)
