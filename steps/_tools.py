"""Tool calls as DBOS steps.

Tool authors write plain ``@function_tool`` functions. ``durable_tool`` returns a copy whose
invocation is a step named ``tool:<name>``; a finished invocation is never run again on replay.
Per-tool step options (retries, timeout) are set with ``set_tool_options`` without touching the
tool. Inside a tool, ``tool_idempotency_key()`` gives a key stable across replays and retries,
for making external side effects exactly-once.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from agents.tool import FunctionTool, _FailureHandlingFunctionToolInvoker
from agents.tool_context import ToolContext
from dbos import DBOS, StepOptions

from timestep._core.process import process_state
from timestep._core.protocol import STREAM_KEY

from ._current_run import current_run

__all__ = [
    "TOOL_STEP_PREFIX",
    "durable_tool",
    "get_tool_options",
    "set_tool_options",
    "tool_idempotency_key",
]

TOOL_STEP_PREFIX = "tool:"
_WRAPPED_MARK = "__timestep_durable__"
_SDK_ATTRS = (
    "__agents_prepare_arguments__",
    "__agents_function_tool_wrapped_callable__",
    "__agents_sync_function_tool__",
)


def set_tool_options(
    tool: FunctionTool | str,
    *,
    max_attempts: int | None = None,
    interval_seconds: float | None = None,
    backoff_rate: float | None = None,
    timeout_seconds: float | None = None,
) -> None:
    """Set the durable step options of a tool (by object or name), for every agent using it.

    ``max_attempts > 1`` retries a raising tool inside its step with exponential backoff
    before the SDK's failure handling turns the error into a message for the model.
    """
    name = tool if isinstance(tool, str) else tool.name
    options: StepOptions = {}
    if max_attempts is not None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        options["retries_allowed"] = max_attempts > 1
        options["max_attempts"] = max_attempts
    if interval_seconds is not None:
        options["interval_seconds"] = interval_seconds
    if backoff_rate is not None:
        options["backoff_rate"] = backoff_rate
    if timeout_seconds is not None:
        if timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be positive")
        options["timeout_seconds"] = timeout_seconds
    process = process_state()
    with process.lock:
        process.tool_options[name] = options


def get_tool_options(name: str) -> StepOptions:
    """The step options ``set_tool_options`` gave the tool named ``name`` (a copy)."""
    return StepOptions(**process_state().tool_options.get(name, {}))


def tool_idempotency_key() -> str:
    """A key unique to this tool invocation and identical on every retry and replay of it
    (``<workflow id>:<step id>``). Pass it to external APIs to make side effects exactly-once."""
    workflow_id, step_id = DBOS.workflow_id, DBOS.step_id
    if workflow_id is None or step_id is None:
        raise RuntimeError("tool_idempotency_key() must be called inside a durable tool call")
    return f"{workflow_id}:{step_id}"


def durable_tool(tool: FunctionTool) -> FunctionTool:
    """A copy of ``tool`` whose invocations are DBOS steps (idempotent: wrapping twice is a no-op)."""
    if getattr(tool.on_invoke_tool, _WRAPPED_MARK, False):
        return tool
    invoker = tool.on_invoke_tool
    step_name = f"{TOOL_STEP_PREFIX}{tool.name}"
    if isinstance(invoker, _FailureHandlingFunctionToolInvoker):
        # Make the raw implementation the step, so retries see its exceptions and the SDK's
        # failure handling (error text for the model) still applies once retries are spent.
        impl = _step_invocation(invoker._invoke_tool_impl, tool.name, step_name)
        for attr in _SDK_ATTRS:
            if hasattr(invoker._invoke_tool_impl, attr):
                setattr(impl, attr, getattr(invoker._invoke_tool_impl, attr))
        wrapped: Any = _FailureHandlingFunctionToolInvoker(impl, invoker._on_handled_error)
        for attr in _SDK_ATTRS[2:]:
            if hasattr(invoker, attr):
                setattr(wrapped, attr, getattr(invoker, attr))
    else:
        wrapped = _step_invocation(invoker, tool.name, step_name)
    setattr(wrapped, _WRAPPED_MARK, True)
    return dataclasses.replace(tool, on_invoke_tool=wrapped)


class _StepInvocation:
    """The tool's invocation, run as a DBOS step (at a reserved id for parallel calls)."""

    def __init__(self, invoke: Any, tool_name: str, step_name: str) -> None:
        self._invoke = invoke
        self._tool_name = tool_name
        self._step_name = step_name

    async def __call__(self, ctx: ToolContext[Any], tool_input: str) -> Any:
        if DBOS.workflow_id is None:
            return await self._invoke(ctx, tool_input)
        options: StepOptions = {"name": self._step_name, **get_tool_options(self._tool_name)}
        run = current_run()
        reservation = run.reservations.pop(ctx.tool_call_id, None) if run else None
        body = self._invoke_streaming if run is not None and run.stream else self._invoke
        if reservation is not None:
            return await reservation.run_async(options, body, ctx, tool_input)
        return await DBOS.run_step_async(options, body, ctx, tool_input)

    async def _invoke_streaming(self, ctx: ToolContext[Any], tool_input: str) -> Any:
        output = await self._invoke(ctx, tool_input)
        await DBOS.write_stream_async(
            STREAM_KEY, ("tool_output", ctx.tool_call_id, self._tool_name, output)
        )
        return output


def _step_invocation(invoke: Any, tool_name: str, step_name: str) -> _StepInvocation:
    return _StepInvocation(invoke, tool_name, step_name)
