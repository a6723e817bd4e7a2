"""What Timestep's processes read and write through DBOS, so any of them can follow a run.

A worker runs a run; the CLI, the HTTP API or another worker inspects it, answers its
approvals or reads its events, from the database alone. They agree on the names below and on
the shapes of a run's workflow argument (``RunRequest``) and output (``RunSummary``), which
are plain JSON so that DBOS can recover a run in a fresh process.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import (
    Any,
    Literal,
    NotRequired,  # pydantic wants these < 3.12
)

from typing_extensions import TypedDict

__all__ = [
    "AGENT_RUN_WORKFLOW",
    "APPROVALS_EVENT",
    "ApprovalPolicy",
    "DECISION_TOPIC",
    "Decision",
    "PERMIT_WORKFLOW",
    "PendingApproval",
    "RETENTION_SCHEDULE",
    "RETENTION_WORKFLOW",
    "RunRecords",
    "RunRequest",
    "RunSummary",
    "SCHEDULED_RUN_WORKFLOW",
    "STREAM_KEY",
    "ScheduleContext",
    "WAIT_SNAPSHOT_MARK",
    "request_of",
    "time_of",
    "wait_snapshot_id",
]

AGENT_RUN_WORKFLOW = "timestep.agent_run"
"""The workflow of every durable run (``workflows._agent_run``)."""

SCHEDULED_RUN_WORKFLOW = "timestep.scheduled_agent_run"
"""The workflow a schedule fires; its agent run is a child workflow."""

PERMIT_WORKFLOW = "timestep.provider_permit"
"""A rate or concurrency permit of a limited provider, enqueued on the provider's queues."""

RETENTION_WORKFLOW = "timestep.retention_pass"
"""The workflow that applies ``TIMESTEP_RETENTION`` (``workflows._retention``)."""

RETENTION_SCHEDULE = "timestep.retention"
"""The DBOS schedule that fires it, once per period across every worker."""

APPROVALS_EVENT = "timestep.pending_approvals"
"""The DBOS event where a waiting run publishes the ``PendingApproval`` list it waits on."""

DECISION_TOPIC = "timestep.approval"
"""The DBOS message topic a waiting run receives ``Decision`` messages on."""

STREAM_KEY = "timestep.events"
"""The DBOS stream a run's live events are written to."""


class ApprovalPolicy(TypedDict, total=False):
    wait: bool
    """Wait durably in the workflow (True) or end the run with its interruptions (False)."""
    timeout_seconds: float | None
    on_timeout: Literal["reject", "fail", "wait"]


class RunRequest(TypedDict, total=False):
    """An agent run's workflow argument (older runs may lack the later keys)."""

    agent: str
    agent_ref: str | None
    """``module:attr`` a fresh process imports the agent from, when it is importable."""
    agent_fingerprint: dict[str, dict[str, Any]]
    """The agent graph's definition when the run started (``_core.fingerprint``)."""
    input: str | list[Any] | None
    state: str | None
    """A serialized RunState to resume (Python format)."""
    session_id: str | None
    session: dict[str, Any] | None
    """The session, in portable form (``_core.portable``), when it is not Timestep's own."""
    max_turns: int | None
    stream: bool
    approvals: ApprovalPolicy
    context: dict[str, Any] | None
    hooks: dict[str, Any] | None
    run_config: dict[str, dict[str, Any]]
    """The RunConfig's fields that differ from the defaults, each in portable form."""
    error_handlers: dict[str, dict[str, Any]]
    previous_response_id: str | None
    auto_previous_response_id: bool
    conversation_id: str | None
    tags: list[str]
    """The caller's tags on the run (a tenant, a user), for budgets."""
    check_budgets: bool
    """Whether the run's model calls check budgets (``set_budget``): decided when it started,
    so that every process replays the same steps (a budget check is a step)."""
    traceparent: str | None
    """The W3C trace context of the caller's span, whose trace the run's spans join."""
    started_ns: int
    """When the run was started (ns since the epoch): its root span's start."""
    clears_approvals: bool
    """Whether the run publishes an empty approvals list (a DBOS event, so a step) once its
    decisions are in. Runs started before this key existed did, and their replays must do it
    again at the same place; later runs leave the list as it is, and readers leave out the
    calls that have a decision (``get_pending_approvals``), which keeps a step off the path
    from ``approve()`` to the approved tool."""
    tail_in_workflow: bool
    """Whether a streamed run writes the events after its last model call as a workflow
    operation (one transaction, once, when the run ends or waits for approvals). Runs started
    before this key existed wrote them in ``stream:tail`` steps, one per round and one to close,
    and their replays must take those steps again."""


class RunRecords(TypedDict):
    """A run's usage and tool-call rows, as the recorder writes them and as the run's output
    keeps them (so the rows are written again from there if a crash took them)."""

    usage: list[dict[str, Any]]
    tool_calls: list[dict[str, Any]]


class RunSummary(TypedDict):
    """An agent run's workflow output: enough for any process to rebuild an SDK-shaped result."""

    final_output: Any
    last_agent: str
    interrupted: bool
    state: str | None
    """An interrupted run's RunState JSON, to approve and resume from anywhere."""
    items: list[Any] | None
    """A finished run's new items, in the SDK's RunState item form (kinds, agents and outputs
    kept; far cheaper than the whole RunState)."""
    usage: dict[str, Any]
    records: RunRecords
    responses: NotRequired[list[dict[str, Any]]]
    """A finished run's model responses (output items, usage, ids), for ``raw_responses``."""


class ScheduleContext(TypedDict):
    """What a schedule gives each of its fires (DBOS stores it with the schedule)."""

    agent: str
    agent_ref: str | None
    input: str | list[Any]
    session: Literal["fresh", "shared"]
    session_id: str | None
    """The shared session's id (``session == "shared"``)."""
    max_turns: int | None


class PendingApproval(TypedDict):
    """A tool call a waiting run needs a decision on."""

    workflow_id: str
    call_id: str
    tool_name: str
    arguments: str | None
    agent_name: str


WAIT_SNAPSHOT_MARK = ":interrupted:"
"""What a waiting run's own snapshot ids have after the run's workflow id (``wait_snapshot_id``)."""


def wait_snapshot_id(workflow_id: str, round_index: int) -> str:
    """The ``state_id`` of the snapshot a run saves while it waits durably for decisions: its
    wait's, not a caller's to resume from (so it goes with the run)."""
    return f"{workflow_id}{WAIT_SNAPSHOT_MARK}{round_index}"


class Decision(TypedDict, total=False):
    """An approval decision, as a DBOS message to the waiting run."""

    call_id: str
    approve: bool
    always: bool
    message: str | None
    by: str | None
    at: str


def request_of(status: Any) -> dict[str, Any]:
    """The run's request (agent, input, session id...) from a DBOS ``WorkflowStatus``'s
    recorded arguments; for a schedule's fire, from its schedule context. ``{}`` when unknown."""
    if status is None or not status.input:
        return {}
    args = list(status.input.get("args") or ())
    if status.name == SCHEDULED_RUN_WORKFLOW and len(args) > 1 and isinstance(args[1], dict):
        context = args[1]
        shared = context.get("session") == "shared"
        return {
            **context,
            "session_id": context.get("session_id") if shared else status.workflow_id,
        }
    return args[0] if args and isinstance(args[0], dict) else {}


def time_of(epoch_ms: int | None) -> datetime | None:
    """A DBOS timestamp (epoch milliseconds) as an aware datetime."""
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC) if epoch_ms is not None else None
