"""Everything that runs as a DBOS step inside an agent workflow: model calls, tool calls,
session reads and writes, and the durable copy of an agent graph that routes them there."""

from ._agent import durable_agent
from ._current_run import CurrentRun, current_run, reset_current_run, set_current_run
from ._model import (
    MODEL_STEP_PREFIX,
    DurableModel,
    DurableModelProvider,
    PermitGate,
    get_model_provider,
    set_model_provider,
)
from ._session import TimestepSession
from ._tools import (
    TOOL_STEP_PREFIX,
    durable_tool,
    get_tool_options,
    set_tool_options,
    tool_idempotency_key,
)

__all__ = [
    "CurrentRun",
    "DurableModel",
    "DurableModelProvider",
    "MODEL_STEP_PREFIX",
    "PermitGate",
    "TOOL_STEP_PREFIX",
    "TimestepSession",
    "current_run",
    "durable_agent",
    "durable_tool",
    "get_model_provider",
    "get_tool_options",
    "reset_current_run",
    "set_current_run",
    "set_model_provider",
    "set_tool_options",
    "tool_idempotency_key",
]
