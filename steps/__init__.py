"""Everything that runs as a DBOS step inside an agent workflow: model calls, tool calls and
session reads and writes, made durable on the run's own objects, and the run's stream."""

from ._agent import make_agent_durable
from ._current_run import CurrentRun, current_run, durable_run, reset_current_run, set_current_run
from ._guardrails import GUARDRAIL_STEP_PREFIX, make_guardrails_durable
from ._mcp import (
    MCP_STEP_PREFIX,
    declare_mcp_server,
    make_agent_mcp_durable,
    make_mcp_server_durable,
)
from ._model import (
    MODEL_STEP_PREFIX,
    DurableModel,
    DurableModelProvider,
    PermitGate,
    get_model_provider,
    make_model_durable,
    set_model_provider,
)
from ._session import SESSION_STEP_PREFIX, TimestepSession, make_session_durable
from ._stream import StreamPublisher
from ._tools import (
    TOOL_STEP_PREFIX,
    get_tool_options,
    make_local_tool_durable,
    make_tool_durable,
    set_tool_options,
    tool_idempotency_key,
)

__all__ = [
    "CurrentRun",
    "DurableModel",
    "DurableModelProvider",
    "GUARDRAIL_STEP_PREFIX",
    "MCP_STEP_PREFIX",
    "MODEL_STEP_PREFIX",
    "PermitGate",
    "SESSION_STEP_PREFIX",
    "StreamPublisher",
    "TOOL_STEP_PREFIX",
    "TimestepSession",
    "current_run",
    "declare_mcp_server",
    "durable_run",
    "get_model_provider",
    "get_tool_options",
    "make_agent_durable",
    "make_agent_mcp_durable",
    "make_guardrails_durable",
    "make_local_tool_durable",
    "make_mcp_server_durable",
    "make_model_durable",
    "make_session_durable",
    "make_tool_durable",
    "reset_current_run",
    "set_current_run",
    "set_model_provider",
    "set_tool_options",
    "tool_idempotency_key",
]
