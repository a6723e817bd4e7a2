"""Timestep: durable runtime for OpenAI Agents SDK agents on DBOS.

>>> from agents import Agent
>>> from timestep import Session, run_agent
>>> result = await run_agent(Agent(name="Assistant"), "Hello", Session())  # doctest: +SKIP
"""

from ._approvals import (
    ApprovalDecision,
    approve,
    decide,
    get_pending_approvals,
    list_pending_approvals,
    reject,
)
from ._limits import ProviderLimit, declare_queue, limit_provider
from ._recorder import flush_records
from ._registry import register_agent
from ._results import AgentRunResult, StreamingAgentRun, stream_run_events
from ._run import (
    AgentRunHandle,
    RunInfo,
    get_run,
    get_run_result,
    run_agent,
    run_agent_workflow,
    start_agent_run,
)
from ._runtime import configure_dbos, ensure_dbos_launched
from ._schedules import (
    ScheduleInfo,
    backfill_schedule,
    delete_schedule,
    get_schedule,
    list_schedules,
    pause_schedule,
    resume_schedule,
    schedule_agent,
    trigger_schedule,
)
from ._sessions import TimestepSession
from ._store import RunStateStore, StoredState
from ._usage import UsageSummary, get_usage
from .errors import (
    AgentNotRegisteredError,
    ApprovalError,
    ApprovalTimeoutError,
    ConfigurationError,
    DatabaseUnreachableError,
    MalformedStateError,
    RunNotFoundError,
    ScheduleError,
    StateAgentMismatchError,
    StateError,
    StateNotFoundError,
    StateTooLargeError,
    TimestepError,
    UnsupportedSchemaVersionError,
)
from .providers import (
    MultiModelProvider,
    MultiModelProviderMap,
    OllamaModelProvider,
    ProviderUnavailableError,
    cost_of,
    set_price,
    web_search,
)
from .steps import set_tool_options, tool_idempotency_key
from .workflows import set_model_provider

Session = TimestepSession
"""The seeds' ``Session()``: conversation memory stored in Timestep's database."""

__all__ = [
    "AgentNotRegisteredError",
    "AgentRunHandle",
    "AgentRunResult",
    "ApprovalDecision",
    "ApprovalError",
    "ApprovalTimeoutError",
    "ConfigurationError",
    "DatabaseUnreachableError",
    "MalformedStateError",
    "MultiModelProvider",
    "MultiModelProviderMap",
    "OllamaModelProvider",
    "ProviderLimit",
    "ProviderUnavailableError",
    "RunInfo",
    "RunNotFoundError",
    "RunStateStore",
    "ScheduleError",
    "ScheduleInfo",
    "Session",
    "StateAgentMismatchError",
    "StateError",
    "StateNotFoundError",
    "StateTooLargeError",
    "StoredState",
    "StreamingAgentRun",
    "TimestepError",
    "TimestepSession",
    "UsageSummary",
    "UnsupportedSchemaVersionError",
    "approve",
    "backfill_schedule",
    "configure_dbos",
    "cost_of",
    "decide",
    "declare_queue",
    "delete_schedule",
    "ensure_dbos_launched",
    "flush_records",
    "get_pending_approvals",
    "get_run",
    "get_usage",
    "get_run_result",
    "get_schedule",
    "limit_provider",
    "list_pending_approvals",
    "list_schedules",
    "pause_schedule",
    "register_agent",
    "reject",
    "resume_schedule",
    "run_agent",
    "run_agent_workflow",
    "schedule_agent",
    "set_model_provider",
    "set_price",
    "set_tool_options",
    "start_agent_run",
    "stream_run_events",
    "tool_idempotency_key",
    "trigger_schedule",
    "web_search",
]
