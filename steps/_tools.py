"""Tool calls as DBOS steps.

Tool authors write plain ``@function_tool`` functions. ``make_tool_durable`` makes a tool's
invocation a step named ``tool:<name>`` in durable runs; a finished invocation is never run
again on replay.
The tools that run code in the worker without being function tools (``LocalShellTool``,
``ShellTool`` in local mode, ``ApplyPatchTool``) are made steps the same way
(``make_local_tool_durable``): each executor call, or each editor operation, is a step named
``tool:<name>``. Hosted tools run at the provider and are part of the model call's step.
Per-tool step options (retries, timeout) are set with ``set_tool_options`` without touching the
tool. Inside a tool, ``tool_idempotency_key()`` gives a key stable across replays and retries,
for making external side effects exactly-once.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from agents.tool import (
    ApplyPatchTool,
    FunctionTool,
    LocalShellTool,
    ShellTool,
    _FailureHandlingFunctionToolInvoker,
)
from agents.tool_context import ToolContext
from dbos import DBOS, StepOptions

from timestep._core.portable import storable
from timestep._core.process import process_state

from ._current_run import durable_run
from ._tracing import Traced

__all__ = [
    "TOOL_STEP_PREFIX",
    "get_tool_options",
    "make_local_tool_durable",
    "make_tool_durable",
    "set_tool_options",
    "tool_idempotency_key",
]

TOOL_STEP_PREFIX = "tool:"
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
    Calling it again replaces the tool's options; an option not given is DBOS's default.

    Args:
        tool: The function tool, or its name.
        max_attempts: Attempts of a raising tool (1: no retry).
        interval_seconds: The wait after the first failed attempt.
        backoff_rate: What each later wait is multiplied by.
        timeout_seconds: How long each attempt may run before it is cancelled (DBOS raises
            ``DBOSStepTimeoutError``).

    Raises:
        ValueError: ``max_attempts`` is below 1 or ``timeout_seconds`` is not positive.
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
    (``<workflow id>:<step id>``). Pass it to external APIs to make side effects exactly-once.

    Returns:
        The key.

    Raises:
        RuntimeError: It was called outside a durable tool call.
    """
    workflow_id, step_id = DBOS.workflow_id, DBOS.step_id
    if workflow_id is None or step_id is None:
        raise RuntimeError("tool_idempotency_key() must be called inside a durable tool call")
    return f"{workflow_id}:{step_id}"


def make_tool_durable(tool: FunctionTool) -> FunctionTool:
    """Make ``tool``'s invocations steps in durable runs, on the tool itself (idempotent), so
    the agent keeps its own tool objects; everywhere else it behaves as before.

    With the SDK's failure handling around the tool, the raw implementation becomes the
    step: retries see its exceptions, and the SDK turns the last one into text for the model
    as it would without Timestep. Copies the SDK makes of the tool share the durable
    implementation."""
    invoker: Any = tool.on_invoke_tool
    if isinstance(invoker, _FailureHandlingFunctionToolInvoker):
        impl = invoker._invoke_tool_impl
        if not isinstance(impl, _StepInvocation):
            invoker._invoke_tool_impl = _StepInvocation(impl)
    elif not isinstance(invoker, _StepInvocation):
        tool.on_invoke_tool = _StepInvocation(invoker)
    return tool


class _StepInvocation:
    """A tool's invocation, run as a DBOS step named ``tool:<name>`` in durable runs (at the
    step id reserved for it when the model called several tools at once)."""

    def __init__(self, invoke: Callable[[ToolContext[Any], str], Awaitable[Any]]) -> None:
        self._invoke = invoke
        for attr in _SDK_ATTRS:  # the SDK reads these markers off the invoker
            if hasattr(invoke, attr):
                setattr(self, attr, getattr(invoke, attr))

    async def __call__(self, ctx: ToolContext[Any], tool_input: str) -> Any:
        run = durable_run()
        if run is None:
            return await self._invoke(ctx, tool_input)
        options: StepOptions = {
            "name": f"{TOOL_STEP_PREFIX}{ctx.tool_name}",
            **get_tool_options(ctx.tool_name),
        }
        live: list[Any] = []

        async def body(call_ctx: ToolContext[Any], call_input: str) -> Any:
            # DBOS records what it can store; the SDK gets the tool's own object (one holding
            # a lock, of a local class), as under plain Runner. A replay gets the record.
            output = await self._invoke(call_ctx, call_input)
            live.append(output)
            return storable(output)

        step = Traced(
            run, *_tool_span(run, ctx.tool_name, "function", ctx.tool_call_id), body, _outcome
        )
        reservation = run.reservations.pop(ctx.tool_call_id, None)
        recorded = await step.run_step(options, reservation, ctx, tool_input)
        return live[-1] if live else recorded


def _tool_span(
    run: Any, tool_name: str, tool_type: str, call_id: str | None
) -> tuple[str, dict[str, Any]]:
    """An ``execute_tool`` span's name and attributes (GenAI conventions)."""
    return f"execute_tool {tool_name}", {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": tool_name,
        "gen_ai.tool.type": tool_type,
        "gen_ai.tool.call.id": call_id,
        "timestep.workflow_id": run.workflow_id,
    }


def _outcome(_: Any) -> dict[str, Any]:
    return {"timestep.tool.outcome": "ok"}


_EDITOR_OPERATIONS = ("create_file", "update_file", "delete_file")
_EDITOR_MARK = "__timestep_durable_editor__"


def make_local_tool_durable(tool: LocalShellTool | ShellTool | ApplyPatchTool) -> None:
    """Make a local tool's executor (``LocalShellTool``, ``ShellTool``) or editor
    (``ApplyPatchTool``) calls steps named ``tool:<name>`` in durable runs, on the tool's own
    objects (idempotent); everywhere else they behave as before."""
    if isinstance(tool, LocalShellTool | ShellTool):
        executor = tool.executor
        if executor is not None and not isinstance(executor, _StepExecutor):
            tool.executor = _StepExecutor(executor, tool.name)
        return
    editor = tool.editor
    if getattr(editor, _EDITOR_MARK, False):
        return
    for operation in _EDITOR_OPERATIONS:
        method = getattr(editor, operation, None)
        if method is not None:
            setattr(editor, operation, _StepExecutor(method, tool.name))
    setattr(editor, _EDITOR_MARK, True)


class _StepExecutor:
    """A local tool's executor (or editor operation) whose calls are steps ``tool:<name>`` in
    durable runs, at the step id reserved for their call when the model made several calls;
    outside them it is the executor itself (sync stays sync)."""

    def __init__(self, call: Callable[[Any], Any], tool_name: str) -> None:
        self._call = call
        self._tool_name = tool_name

    def __call__(self, request: Any) -> Any:
        run = durable_run()
        if run is None:
            return self._call(request)
        return self._step(run, request)

    async def _step(self, run: Any, request: Any) -> Any:
        options: StepOptions = {
            "name": f"{TOOL_STEP_PREFIX}{self._tool_name}",
            **get_tool_options(self._tool_name),
        }
        data = getattr(request, "data", None)
        call_id = getattr(data, "call_id", None)
        reservation = run.reservations.pop(call_id, None) if call_id else None
        while reservation is None and call_id is None and run.patch_calls:
            # An editor operation: the next apply_patch call's id, in the model's order.
            reservation = run.reservations.pop(run.patch_calls.pop(0), None)
        step = Traced(
            run, *_tool_span(run, self._tool_name, "local", call_id), self._body, _outcome
        )
        return await step.run_step(options, reservation, request)

    async def _body(self, request: Any) -> Any:
        result = self._call(request)
        return await result if inspect.isawaitable(result) else result
