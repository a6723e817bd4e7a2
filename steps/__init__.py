"""Durable steps: model calls and tool calls checkpointed by DBOS inside an agent workflow."""

from ._agent import durable_agent
from ._model import MODEL_STEP_PREFIX, DurableModel, DurableModelProvider
from ._tools import (
    TOOL_STEP_PREFIX,
    durable_tool,
    get_tool_options,
    set_tool_options,
    tool_idempotency_key,
)

__all__ = [
    "MODEL_STEP_PREFIX",
    "TOOL_STEP_PREFIX",
    "DurableModel",
    "DurableModelProvider",
    "durable_agent",
    "durable_tool",
    "get_tool_options",
    "set_tool_options",
    "tool_idempotency_key",
]
