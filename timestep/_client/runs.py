"""``run_agent`` and friends: durable runs that take what ``Runner.run`` takes.

Each entry point accepts every argument of ``Runner.run`` with the same meaning (context,
hooks, run_config, error_handlers, previous_response_id, auto_previous_response_id,
conversation_id, session, max_turns) plus Timestep's own (workflow id, approval waiting,
queues). In this process the run uses the caller's own objects (``_core.live``); for a
recovery in another process each is also recorded in portable form (``_core.portable``).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Sequence
from typing import Any, Literal, overload

from agents import Agent, RunConfig, RunHooks, RunState, SQLiteSession
from agents.memory.session import Session
from agents.run import DEFAULT_MAX_TURNS
from agents.run_config import _coerce_run_config
from dbos import DBOS, SetEnqueueOptions, SetWorkflowAttributes, SetWorkflowID, WorkflowHandleAsync
from typing_extensions import TypedDict, Unpack

from timestep._core.fingerprint import fingerprint
from timestep._core.live import LiveRun, RunObjects
from timestep._core.portable import Portable, TypeCodecs, portable, portable_fields
from timestep._core.process import process_state
from timestep._core.protocol import RunRequest, RunSummary, request_of
from timestep._core.runtime import budgets_in_force, ensure_dbos_launched
from timestep._core.tracing import caller_traceparent
from timestep.errors import InputTooLargeError, StateTooLargeError
from timestep.steps import TimestepSession
from timestep.workflows import agent_run_workflow

from .inspection import find_run, get_run
from .rebuilt import rebuilt_result
from .results import AgentRunResult, Finish, StreamingAgentRun
from .system import system

__all__ = [
    "AgentRunHandle",
    "RunInput",
    "RunOptions",
    "check_input_size",
    "get_run_result",
    "run_agent",
    "run_agent_sync",
    "run_agent_workflow",
    "start_agent_run",
]

RunInput = str | list[Any] | RunState[Any]


class RunOptions(TypedDict, total=False):
    """The keyword arguments every durable entry point takes besides ``workflow_id``:
    ``Runner.run``'s, with the same meaning and defaults, then Timestep's own."""

    context: Any
    max_turns: int | None
    hooks: RunHooks[Any] | None
    run_config: RunConfig | dict[str, Any] | None
    error_handlers: Any
    previous_response_id: str | None
    auto_previous_response_id: bool
    conversation_id: str | None
    wait_for_approvals: bool
    """Wait inside the workflow for decisions instead of ending with interruptions."""
    approval_timeout: float | None
    on_approval_timeout: Literal["reject", "fail", "wait"]
    queue: str | None
    """A queue declared with ``declare_queue``: the run waits its turn there."""
    priority: int | None
    deduplication_id: str | None
    tags: Sequence[str] | None
    """Tags on the run (a tenant, a user): budgets of scope ``tag:<tag>`` apply to it."""


class AgentRunHandle:
    """A started durable run, as ``start_agent_run`` returns it.

    Timestep builds it; it is not meant to be constructed.

    Args:
        handle: The run's DBOS workflow handle.
        agent: The agent the run was started with.
        live: The run's live entry in this process, if it started here.

    Attributes:
        agent: The agent the run was started with.
    """

    def __init__(
        self,
        handle: WorkflowHandleAsync[RunSummary],
        agent: Agent[Any],
        live: LiveRun | None = None,
    ) -> None:
        self._handle = handle
        self.agent = agent
        self._live = live

    @property
    def workflow_id(self) -> str:
        """The run's DBOS workflow id."""
        return self._handle.get_workflow_id()

    async def status(self) -> str:
        """Read the run's workflow status now.

        Returns:
            DBOS's status: ``"PENDING"``, ``"ENQUEUED"``, ``"SUCCESS"``, ``"ERROR"``,
            ``"CANCELLED"``...
        """
        return (await self._handle.get_status()).status

    async def result(self) -> AgentRunResult:
        """Wait for the run to end and return its result.

        Returns:
            The run's result (the live SDK result when this process ran it).

        Raises:
            Exception: The run's error, as the SDK's own class (e.g. ``MaxTurnsExceeded``).
        """
        return await _finish_for(self.agent, self._live)(self._handle)


@overload
async def run_agent(
    agent: Agent[Any],
    input_or_state: RunInput,
    session: Session | None = None,
    stream: Literal[False] = False,
    *,
    workflow_id: str | None = None,
    **options: Unpack[RunOptions],
) -> AgentRunResult: ...


@overload
async def run_agent(
    agent: Agent[Any],
    input_or_state: RunInput,
    session: Session | None,
    stream: Literal[True],
    *,
    workflow_id: str | None = None,
    **options: Unpack[RunOptions],
) -> StreamingAgentRun: ...


@overload
async def run_agent(
    agent: Agent[Any],
    input_or_state: RunInput,
    session: Session | None = None,
    *,
    stream: Literal[True],
    workflow_id: str | None = None,
    **options: Unpack[RunOptions],
) -> StreamingAgentRun: ...


@overload
async def run_agent(
    agent: Agent[Any],
    input_or_state: RunInput,
    session: Session | None = None,
    stream: bool = False,
    *,
    workflow_id: str | None = None,
    **options: Unpack[RunOptions],
) -> AgentRunResult | StreamingAgentRun: ...


async def run_agent(
    agent: Agent[Any],
    input_or_state: RunInput,
    session: Session | None = None,
    stream: bool = False,
    *,
    workflow_id: str | None = None,
    **options: Unpack[RunOptions],
) -> AgentRunResult | StreamingAgentRun:
    """Run ``agent`` as a durable workflow: every model call and tool call is a DBOS step.

    ``input_or_state`` is the input (a string or input items) or a ``RunState`` to resume
    (e.g. after approving its interruptions). Every keyword argument of ``Runner.run`` works
    as it does there (``context``, ``hooks``, ``run_config``, ``max_turns``...), and so do
    ``start_agent_run``'s (``workflow_id``, ``wait_for_approvals``, ``queue``...). With
    ``stream=True`` the result's ``stream_events()`` yields the SDK's stream events live
    while the run stays durable.

    Args:
        agent: The agent to run; register it (``register_agent``) for recovery elsewhere.
        input_or_state: A string, a list of input items, or a ``RunState`` to resume.
        session: Conversation memory, as ``Runner.run`` takes it (e.g. ``Session()``).
        stream: Return a ``StreamingAgentRun`` at once instead of waiting for the result.
        workflow_id: The run's workflow id (default: a new ``run-<uuid>``); a second run
            under the same id gets the first one's result.
        **options: Any of ``RunOptions``: ``Runner.run``'s keyword arguments (``context``,
            ``hooks``, ``run_config``, ``max_turns``...) and Timestep's (``wait_for_approvals``,
            ``queue``, ``tags``...).

    Returns:
        The run's result, or with ``stream=True`` the streaming run.

    Raises:
        InputTooLargeError: The input is over ``TIMESTEP_MAX_INPUT_BYTES``.
        StateTooLargeError: The ``RunState`` is over ``TIMESTEP_MAX_STATE_BYTES``.
        TypeError: ``agent`` is not an ``Agent``, or an option is unknown.
    """
    handle = await _start(agent, input_or_state, session, stream, True, workflow_id, options)
    if stream:
        return StreamingAgentRun(
            handle.workflow_id,
            agent,
            handle._handle,
            _finish_for(agent, handle._live),
            handle._live,
            cancel=lambda: system().cancel_workflow_async(handle.workflow_id),
        )
    return await handle.result()


async def run_agent_workflow(
    agent: Agent[Any],
    input_items: RunInput,
    session: Session | None = None,
    workflow_id: str | None = None,
    **options: Unpack[RunOptions],
) -> AgentRunResult:
    """Run ``agent`` durably under ``workflow_id``. Idempotent: calling again with the same id
    (from this or any process) returns the first run's result and calls no model again.

    Args:
        agent: The agent to run.
        input_items: A string, a list of input items, or a ``RunState`` to resume.
        session: Conversation memory, as ``Runner.run`` takes it.
        workflow_id: The run's workflow id (default: a new ``run-<uuid>``).
        **options: Any of ``RunOptions``: ``Runner.run``'s keyword arguments (``context``,
            ``hooks``, ``run_config``, ``max_turns``...) and Timestep's (``wait_for_approvals``,
            ``queue``, ``tags``...).

    Returns:
        The run's result.

    Raises:
        InputTooLargeError: The input is over ``TIMESTEP_MAX_INPUT_BYTES``.
        StateTooLargeError: The ``RunState`` is over ``TIMESTEP_MAX_STATE_BYTES``.
    """
    handle = await _start(agent, input_items, session, False, True, workflow_id, options)
    return await handle.result()


def run_agent_sync(
    agent: Agent[Any],
    input_or_state: RunInput,
    session: Session | None = None,
    *,
    workflow_id: str | None = None,
    **options: Unpack[RunOptions],
) -> AgentRunResult:
    """``run_agent`` for synchronous code, like ``Runner.run_sync``: it runs its own event
    loop, so it cannot be called from inside one (use ``await run_agent(...)`` there).

    Args:
        agent: The agent to run.
        input_or_state: A string, a list of input items, or a ``RunState`` to resume.
        session: Conversation memory, as ``Runner.run`` takes it.
        workflow_id: The run's workflow id (default: a new ``run-<uuid>``).
        **options: Any of ``RunOptions``: ``Runner.run``'s keyword arguments (``context``,
            ``hooks``, ``run_config``, ``max_turns``...) and Timestep's (``wait_for_approvals``,
            ``queue``, ``tags``...).

    Returns:
        The run's result.

    Raises:
        RuntimeError: It was called from a running event loop.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError(
            "run_agent_sync() cannot be called from a running event loop: await run_agent()"
        )
    ensure_dbos_launched()  # outside the loop: DBOS keeps its own for recovered runs

    async def run() -> AgentRunResult:
        handle = await _start(agent, input_or_state, session, False, True, workflow_id, options)
        return await handle.result()

    return asyncio.run(run())


async def start_agent_run(
    agent: Agent[Any],
    input_or_state: RunInput,
    session: Session | None = None,
    *,
    stream: bool = False,
    workflow_id: str | None = None,
    **options: Unpack[RunOptions],
) -> AgentRunHandle:
    """Start a durable run and return its handle at once. Takes ``run_agent``'s arguments.

    With ``wait_for_approvals`` an interrupted run does not end: it waits inside its workflow
    for ``approve`` / ``reject`` from any process (surviving restarts), then goes on. After
    ``approval_timeout`` seconds the pending calls are rejected, the run fails
    (``ApprovalTimeoutError``), or it keeps waiting, as ``on_approval_timeout`` says.

    With ``queue`` (declared with ``declare_queue``) the run waits its turn on that DBOS queue,
    whose concurrency and rate limit hold across processes; ``priority`` and
    ``deduplication_id`` are DBOS's enqueue options.

    Args:
        agent: The agent to run.
        input_or_state: A string, a list of input items, or a ``RunState`` to resume.
        session: Conversation memory, as ``Runner.run`` takes it.
        stream: Record stream events, for ``stream_run_events`` from any process.
        workflow_id: The run's workflow id (default: a new ``run-<uuid>``).
        **options: Any of ``RunOptions``: ``Runner.run``'s keyword arguments (``context``,
            ``hooks``, ``run_config``, ``max_turns``...) and Timestep's (``wait_for_approvals``,
            ``queue``, ``tags``...).

    Returns:
        The handle of the started (or enqueued) run.

    Raises:
        InputTooLargeError: The input is over ``TIMESTEP_MAX_INPUT_BYTES``.
        StateTooLargeError: The ``RunState`` is over ``TIMESTEP_MAX_STATE_BYTES``.
        ValueError: ``priority`` or ``deduplication_id`` was given without a ``queue``.
    """
    return await _start(agent, input_or_state, session, stream, False, workflow_id, options)


def check_input_size(input_or_state: Any) -> None:
    """Refuse a run input over ``TIMESTEP_MAX_INPUT_BYTES`` (``InputTooLargeError``), or a
    RunState over ``TIMESTEP_MAX_STATE_BYTES`` (``StateTooLargeError``), before anything is
    written. An input is measured as its compact JSON in UTF-8."""
    settings = process_state().settings
    if isinstance(input_or_state, RunState):
        size = len(input_or_state.to_string().encode())
        if size > settings.max_state_bytes:
            raise StateTooLargeError(
                f"the RunState to resume is {size} bytes, over the limit of "
                f"{settings.max_state_bytes} (TIMESTEP_MAX_STATE_BYTES)"
            )
        return
    encoded = json.dumps(input_or_state, ensure_ascii=False, separators=(",", ":"), default=str)
    size = len(encoded.encode())
    if size > settings.max_input_bytes:
        raise InputTooLargeError(
            f"the run's input is {size} bytes, over the limit of {settings.max_input_bytes} "
            "(TIMESTEP_MAX_INPUT_BYTES)"
        )


async def _start(
    agent: Agent[Any],
    input_or_state: RunInput,
    session: Session | None,
    stream: bool,
    awaited: bool,
    workflow_id: str | None,
    options: RunOptions,
) -> AgentRunHandle:
    if not isinstance(agent, Agent):
        raise TypeError(f"expected an agents.Agent, got {type(agent).__name__}")
    unknown = options.keys() - RunOptions.__annotations__.keys()
    if unknown:
        raise TypeError(f"unexpected keyword argument(s): {', '.join(sorted(unknown))}")
    context = options.get("context")
    hooks = options.get("hooks")
    run_config = options.get("run_config")
    error_handlers = options.get("error_handlers")
    queue = options.get("queue")
    priority, deduplication_id = options.get("priority"), options.get("deduplication_id")
    if queue is None and (priority is not None or deduplication_id is not None):
        raise ValueError("priority and deduplication_id need a queue")
    check_input_size(input_or_state)
    tags = _tags(options.get("tags"))
    ensure_dbos_launched()
    process = process_state()
    codecs = process.type_codecs
    config = _coerce_run_config(run_config) if run_config is not None else None
    request: RunRequest = {
        "agent": agent.name,
        "agent_ref": process.agent_refs.ref_of(agent),
        "agent_fingerprint": fingerprint(agent),
        "session_id": getattr(session, "session_id", None) if session is not None else None,
        "session": _session_form(session, codecs),
        "max_turns": options.get("max_turns", DEFAULT_MAX_TURNS),
        "stream": stream,
        "approvals": {
            "wait": bool(options.get("wait_for_approvals")),
            "timeout_seconds": options.get("approval_timeout"),
            "on_timeout": options.get("on_approval_timeout", "reject"),
        },
        "context": portable(context, codecs),
        "hooks": portable(hooks, codecs),
        "run_config": (
            portable_fields(config, codecs, skip=frozenset({"model_provider"})) if config else {}
        ),
        "error_handlers": {
            name: form
            for name, handler in dict(error_handlers or {}).items()
            if (form := portable(handler, codecs)) is not None
        },
        "previous_response_id": options.get("previous_response_id"),
        "auto_previous_response_id": bool(options.get("auto_previous_response_id")),
        "conversation_id": options.get("conversation_id"),
        "tags": tags,
        "check_budgets": await budgets_in_force(),
        "traceparent": caller_traceparent(),
        "started_ns": time.time_ns(),
        "clears_approvals": False,
        "tail_in_workflow": True,
    }
    if isinstance(input_or_state, RunState):
        request["state"] = input_or_state.to_string()
        request["input"] = None
    else:
        request["input"] = input_or_state
    workflow_id = workflow_id or f"run-{uuid.uuid4().hex}"
    live = LiveRun(
        RunObjects(
            agent=agent,
            context=context,
            hooks=hooks,
            run_config=config,
            error_handlers=error_handlers,
            session=session,
        ),
        awaited=awaited,
        subscribers=[asyncio.Queue()] if stream and awaited else [],
    )
    process.live_runs[workflow_id] = live
    try:
        # The agent and session as attributes, so listings filter on them in the database.
        attributes = {"agent": agent.name, "session_id": request.get("session_id")}
        with SetWorkflowID(workflow_id), SetWorkflowAttributes(attributes):
            if queue is None:
                handle = await DBOS.start_workflow_async(agent_run_workflow, request)
            else:
                with SetEnqueueOptions(priority=priority, deduplication_id=deduplication_id):
                    handle = await DBOS.enqueue_workflow_async(queue, agent_run_workflow, request)
    except BaseException:
        _forget(workflow_id, live)
        raise
    return AgentRunHandle(handle, agent, live)


def _session_form(session: Session | None, codecs: TypeCodecs) -> Portable | None:
    """How a fresh process rebuilds the session: Timestep's by its id (the request's
    ``session_id``), an SDK ``SQLiteSession`` file by its path, others by ``register_type``."""
    if session is None or isinstance(session, TimestepSession):
        return None
    if isinstance(session, SQLiteSession):
        if str(session.db_path) == ":memory:":
            return {"unrecoverable": "an in-memory SQLiteSession", "type": "agents:SQLiteSession"}
        return {
            "sqlite": {
                "session_id": session.session_id,
                "db_path": str(session.db_path),
                "sessions_table": session.sessions_table,
                "messages_table": session.messages_table,
            }
        }
    return portable(session, codecs)


def _forget(workflow_id: str, live: LiveRun | None) -> None:
    """Drop this run's live entry (only ours: a second start under the same id has its own)."""
    if live is None:
        return
    live_runs = process_state().live_runs
    if live_runs.get(workflow_id) is live:
        del live_runs[workflow_id]


def _finish_for(agent: Agent[Any], live: LiveRun | None) -> Finish:
    async def finish(handle: WorkflowHandleAsync[RunSummary]) -> AgentRunResult:
        workflow_id = handle.get_workflow_id()
        try:
            summary = await handle.get_result()
        finally:
            _forget(workflow_id, live)
        if live is not None and live.result is not None:
            return AgentRunResult(workflow_id, live.result)
        status = await find_run(workflow_id)
        return await rebuilt_result(workflow_id, summary, agent, request_of(status))

    return finish


async def get_run_result(workflow_id: str, agent: Agent[Any] | None = None) -> AgentRunResult:
    """Wait for the run's result, by workflow id, from any process. The agent (its graph
    gives the items their agents) defaults to the one registered under the run's agent name.

    Args:
        workflow_id: The run's workflow id.
        agent: The run's agent (default: the one registered under its name).

    Returns:
        The run's result, rebuilt from its record unless this process ran it.

    Raises:
        RunNotFoundError: No run has this workflow id.
        AgentNotRegisteredError: No ``agent`` was given and none is registered under the
            run's agent name.
    """
    info = await get_run(workflow_id)
    agent = agent or process_state().agents.resolve(info.agent_name or "")
    handle = await system().retrieve_workflow_async(workflow_id)
    return await _finish_for(agent, None)(handle)


def _tags(tags: Sequence[str] | None) -> list[str]:
    if tags is None:
        return []
    if isinstance(tags, str):
        raise TypeError("tags is a list of strings, not one string")
    for tag in tags:
        if not isinstance(tag, str) or not tag or "," in tag:
            raise ValueError(f"invalid run tag {tag!r}: a non-empty string without commas")
    return list(dict.fromkeys(tags))
