"""Timestep: durable runtime for OpenAI Agents SDK agents on DBOS.

>>> from agents import Agent
>>> from timestep import Session, run_agent
>>> result = await run_agent(Agent(name="Assistant"), "Hello", Session())  # doctest: +SKIP
"""

from ._client.agents import register_agent, register_agent_factory, register_type
from ._client.approvals import (
    ApprovalDecision,
    approve,
    decide,
    get_pending_approvals,
    list_pending_approvals,
    reject,
)
from ._client.budgets import BudgetStatus, get_budgets, remove_budget, set_budget
from ._client.inspection import RunInfo, get_run
from ._client.limits import ProviderLimit, declare_queue, limit_provider
from ._client.results import AgentRunResult, StreamingAgentRun
from ._client.retention import GcReport, RetentionPolicy, collect_garbage
from ._client.runs import (
    AgentRunHandle,
    RunOptions,
    get_run_result,
    run_agent,
    run_agent_sync,
    run_agent_workflow,
    start_agent_run,
)
from ._client.schedules import (
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
from ._client.store import RunStateStore, StoredState
from ._client.streams import stream_run_events
from ._client.usage import UsageSummary, get_usage
from ._core.runtime import configure_dbos, ensure_dbos_launched, flush_records
from ._core.serializer import TimestepSerializer
from .errors import (
    AgentDefinitionChangedError,
    AgentNameConflictError,
    AgentNotRegisteredError,
    AgentRefNotAllowedError,
    ApprovalError,
    ApprovalTimeoutError,
    BudgetExceededError,
    ConfigurationError,
    DatabaseNotInitializedError,
    DatabaseUnreachableError,
    DecisionConflictError,
    InputTooLargeError,
    MalformedStateError,
    MCPServerUnavailableError,
    RecordedError,
    RecoveryError,
    RunNotFoundError,
    RunNotResumableError,
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
from .steps import (
    TimestepSession,
    declare_mcp_server,
    set_model_provider,
    set_tool_options,
    tool_idempotency_key,
)

Session = TimestepSession
"""The seeds' ``Session()``: conversation memory stored in Timestep's database."""

__all__ = [
    "AgentDefinitionChangedError",
    "AgentNameConflictError",
    "AgentNotRegisteredError",
    "AgentRefNotAllowedError",
    "AgentRunHandle",
    "AgentRunResult",
    "ApprovalDecision",
    "ApprovalError",
    "ApprovalTimeoutError",
    "BudgetExceededError",
    "BudgetStatus",
    "ConfigurationError",
    "DatabaseNotInitializedError",
    "DatabaseUnreachableError",
    "DecisionConflictError",
    "GcReport",
    "InputTooLargeError",
    "MCPServerUnavailableError",
    "MalformedStateError",
    "MultiModelProvider",
    "MultiModelProviderMap",
    "OllamaModelProvider",
    "ProviderLimit",
    "ProviderUnavailableError",
    "RecordedError",
    "RecoveryError",
    "RetentionPolicy",
    "RunInfo",
    "RunNotFoundError",
    "RunNotResumableError",
    "RunOptions",
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
    "TimestepSerializer",
    "TimestepSession",
    "UnsupportedSchemaVersionError",
    "UsageSummary",
    "approve",
    "backfill_schedule",
    "collect_garbage",
    "configure_dbos",
    "cost_of",
    "decide",
    "declare_mcp_server",
    "declare_queue",
    "delete_schedule",
    "ensure_dbos_launched",
    "flush_records",
    "get_budgets",
    "get_pending_approvals",
    "get_run",
    "get_run_result",
    "get_schedule",
    "get_usage",
    "limit_provider",
    "list_pending_approvals",
    "list_schedules",
    "pause_schedule",
    "register_agent",
    "register_agent_factory",
    "register_type",
    "reject",
    "remove_budget",
    "resume_schedule",
    "run_agent",
    "run_agent_sync",
    "run_agent_workflow",
    "schedule_agent",
    "set_budget",
    "set_model_provider",
    "set_price",
    "set_tool_options",
    "start_agent_run",
    "stream_run_events",
    "tool_idempotency_key",
    "trigger_schedule",
    "web_search",
]
