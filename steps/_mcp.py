"""MCP servers made durable where they are.

The SDK gets an agent's MCP tools from its ``mcp_servers`` every turn
(``MCPUtil.get_all_function_tools`` calls ``server.list_tools``) and invokes them through
``MCPUtil.invoke_mcp_tool``, which calls ``server.call_tool``. ``make_mcp_server_durable``
makes those two methods steps on the server object itself:

- ``list_tools`` is a step named ``mcp:<server>:list_tools``: the tool list a turn saw
  (after the server's ``tool_filter``, from its cache when ``cache_tools_list`` is on) is
  recorded, so a replay offers the model the same tools even if the server changed since;
- ``call_tool`` is a step named ``mcp:<server>:<tool>``: a finished call is never made
  again; its recorded ``CallToolResult`` (content, structured content, ``isError``) goes back
  through the SDK's own ``invoke_mcp_tool``, so the model sees exactly what the SDK gives it.
  An ``MCPError`` the server answered with is recorded and raised again as that error. The
  call carries ``tool_idempotency_key()`` to the server in its request ``_meta``
  (``timestep/idempotency_key``).

A server found unconnected inside a live step (a worker recovering a run in a fresh
process) is connected on the loop the run executes on, through the SDK's
``MCPServerManager`` (one dedicated task owns the connection, as the SDK requires). A
connection failure is retried by the step's own DBOS retries with exponential backoff
(``declare_mcp_server`` sets them per server); when they are spent the run gets
``MCPServerUnavailableError`` naming the server.

Outside a durable run, and inside another step, both methods call straight through: the same
server under a plain ``Runner.run`` behaves exactly as before.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from agents import Agent
from agents.mcp import MCPServer, MCPServerManager
from agents.mcp._compat import MCPError
from agents.mcp._logging import get_mcp_server_log_name
from agents.tool import FunctionTool, _FailureHandlingFunctionToolInvoker
from agents.tool_context import ToolContext
from dbos import DBOS, StepOptions
from mcp.types import CallToolResult, ErrorData
from mcp.types import Tool as MCPTool

from timestep._core.process import process_state
from timestep.errors import MCPServerUnavailableError

from ._current_run import durable_run
from ._tools import _SDK_ATTRS, get_tool_options
from ._tracing import Traced

__all__ = [
    "MCP_STEP_PREFIX",
    "declare_mcp_server",
    "make_agent_mcp_durable",
    "make_mcp_server_durable",
]

MCP_STEP_PREFIX = "mcp:"
IDEMPOTENCY_META_KEY = "timestep/idempotency_key"
_SERVER_MARK = "__timestep_durable_mcp__"
_CONNECTION_ATTR = "__timestep_mcp_connection__"
_AGENT_MARK = "__timestep_durable_mcp_tools__"
_MCP_ERROR_KEY = "$mcp_error"

# Connection retries of a server declared without options: 5 attempts, 1 + 2 + 4 + 8 s apart.
DEFAULT_MAX_ATTEMPTS, DEFAULT_INTERVAL_SECONDS, DEFAULT_BACKOFF_RATE = 5, 1.0, 2.0

# The SDK invokes an MCP tool with its ToolContext; the server's call_tool is not given it.
# The durable invocation puts it here for call_tool (reserved step id, idempotency key).
_tool_call: contextvars.ContextVar[ToolContext[Any] | None] = contextvars.ContextVar(
    "timestep_mcp_tool_call", default=None
)


class _ServerUnreachable(Exception):
    """A live step could not connect its server (retried by the step's DBOS retries)."""


def declare_mcp_server(
    server: MCPServer,
    *,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    interval_seconds: float = DEFAULT_INTERVAL_SECONDS,
    backoff_rate: float = DEFAULT_BACKOFF_RATE,
) -> MCPServer:
    """Declare an MCP server a worker's runs use (at import, beside ``register_agent``).

    Makes the server durable in place and sets how a run retries connecting it when it is
    unreachable: ``max_attempts`` tries, ``interval_seconds`` apart at first, multiplied by
    ``backoff_rate`` each time; then the run gets ``MCPServerUnavailableError``. Returns the
    server. Servers on a registered agent's ``mcp_servers`` are made durable with the default
    policy without being declared.

    Args:
        server: The MCP server (its name keys the policy).
        max_attempts: Connection attempts before the run gets ``MCPServerUnavailableError``.
        interval_seconds: The wait after the first failed attempt.
        backoff_rate: What each later wait is multiplied by.

    Returns:
        The same server, now durable.

    Raises:
        ValueError: ``max_attempts`` is below 1.
    """
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    process = process_state()
    with process.lock:
        process.mcp_connect_policies[_server_name(server)] = {
            "max_attempts": max_attempts,
            "interval_seconds": interval_seconds,
            "backoff_rate": backoff_rate,
        }
    return make_mcp_server_durable(server)


def make_mcp_server_durable(server: MCPServer) -> MCPServer:
    """Make ``server``'s ``list_tools`` and ``call_tool`` steps in durable runs, on the
    server itself (idempotent); everywhere else it behaves as before."""
    if getattr(server, _SERVER_MARK, False):
        return server
    list_tools = server.list_tools
    call_tool = server.call_tool

    async def durable_list_tools(run_context: Any = None, agent: Any = None) -> list[MCPTool]:
        if durable_run() is None:
            return await list_tools(run_context, agent)

        async def body() -> list[dict[str, Any]]:
            await _ensure_connected(server)
            tools = await list_tools(run_context, agent)
            return [_dump(tool) for tool in tools]

        dumped = await _run_step(server, f"{_server_name(server)}:list_tools", body, None)
        return [MCPTool.model_validate(tool) for tool in dumped]

    async def durable_call_tool(
        tool_name: str, arguments: dict[str, Any] | None, meta: dict[str, Any] | None = None
    ) -> CallToolResult:
        run = durable_run()
        if run is None:
            if meta is None:
                return await call_tool(tool_name, arguments)
            return await call_tool(tool_name, arguments, meta=meta)
        ctx = _tool_call.get()
        reservation = run.reservations.pop(ctx.tool_call_id, None) if ctx is not None else None

        async def body() -> dict[str, Any]:
            await _ensure_connected(server)
            request_meta = dict(meta or {})
            request_meta[IDEMPOTENCY_META_KEY] = f"{DBOS.workflow_id}:{DBOS.step_id}"
            try:
                result = await call_tool(tool_name, arguments, meta=request_meta)
            except MCPError as exc:  # the server's own error: recorded, raised again as itself
                error: ErrorData = exc.error  # type: ignore[attr-defined]
                return {_MCP_ERROR_KEY: error.model_dump(mode="json", by_alias=True)}
            return _dump(result)

        dumped = await _run_step(
            server, f"{_server_name(server)}:{tool_name}", body, reservation, tool_name
        )
        if _MCP_ERROR_KEY in dumped:
            raise MCPError.from_error_data(  # type: ignore[attr-defined]
                ErrorData.model_validate(dumped[_MCP_ERROR_KEY])
            )
        return CallToolResult.model_validate(dumped)

    try:
        server.list_tools = durable_list_tools  # type: ignore[method-assign]
        server.call_tool = durable_call_tool  # type: ignore[method-assign]
        setattr(server, _SERVER_MARK, True)
    except (AttributeError, TypeError) as exc:
        raise TypeError(
            f"the MCP server {type(server).__name__} cannot be made durable in place ({exc})"
        ) from exc
    return server


def make_agent_mcp_durable(agent: Agent[Any]) -> None:
    """Make ``agent``'s MCP servers durable, and the MCP tools the SDK builds from them each
    turn carry their invocation's context to ``call_tool`` (on the agent itself)."""
    if not agent.mcp_servers:
        return
    for server in agent.mcp_servers:
        make_mcp_server_durable(server)
    if getattr(agent, _AGENT_MARK, False):
        return
    get_mcp_tools = agent.get_mcp_tools

    async def durable_get_mcp_tools(run_context: Any) -> Any:
        tools = await get_mcp_tools(run_context)
        for tool in tools:
            if isinstance(tool, FunctionTool):
                _carry_tool_context(tool)
        return tools

    if dataclasses.is_dataclass(agent):
        object.__setattr__(agent, "get_mcp_tools", durable_get_mcp_tools)
        object.__setattr__(agent, _AGENT_MARK, True)


def _carry_tool_context(tool: FunctionTool) -> None:
    invoker: Any = tool.on_invoke_tool
    if isinstance(invoker, _FailureHandlingFunctionToolInvoker):
        if not isinstance(invoker._invoke_tool_impl, _WithToolContext):
            invoker._invoke_tool_impl = _WithToolContext(invoker._invoke_tool_impl)
    elif not isinstance(invoker, _WithToolContext):
        tool.on_invoke_tool = _WithToolContext(invoker)


class _WithToolContext:
    """An MCP tool's invocation with its ToolContext visible to the server's ``call_tool``."""

    def __init__(self, invoke: Callable[[ToolContext[Any], str], Awaitable[Any]]) -> None:
        self._invoke = invoke
        for attr in _SDK_ATTRS:  # the SDK reads these markers off the invoker
            if hasattr(invoke, attr):
                setattr(self, attr, getattr(invoke, attr))

    async def __call__(self, ctx: ToolContext[Any], tool_input: str) -> Any:
        token = _tool_call.set(ctx if isinstance(ctx, ToolContext) else None)
        try:
            return await self._invoke(ctx, tool_input)
        finally:
            _tool_call.reset(token)


async def _run_step(
    server: MCPServer,
    name: str,
    body: Callable[[], Awaitable[Any]],
    reservation: Any,
    tool_name: str | None = None,
) -> Any:
    """``body`` as the step ``mcp:<name>``: retried while the server cannot be connected;
    the last failed attempt records ``MCPServerUnavailableError`` as the step's error, so a
    replay raises what the live run raised."""
    policy = process_state().mcp_connect_policies.get(_server_name(server)) or StepOptions(
        max_attempts=DEFAULT_MAX_ATTEMPTS,
        interval_seconds=DEFAULT_INTERVAL_SECONDS,
        backoff_rate=DEFAULT_BACKOFF_RATE,
    )
    options: StepOptions = {
        "retries_allowed": policy.get("max_attempts", 1) > 1,
        **policy,
        "should_retry": lambda exc: isinstance(exc, _ServerUnreachable),
    }
    if tool_name is not None:  # set_tool_options("charge", ...) applies to MCP tools too
        tool_options = get_tool_options(tool_name)
        if tool_options.get("retries_allowed"):
            options.pop("should_retry", None)
        options.update(tool_options)
    options["name"] = f"{MCP_STEP_PREFIX}{name}"
    max_attempts = int(options.get("max_attempts", 1)) if options.get("retries_allowed") else 1
    attempts = 0

    async def attempt() -> Any:
        nonlocal attempts
        attempts += 1
        try:
            return await body()
        except _ServerUnreachable as exc:
            if attempts >= max_attempts:
                raise MCPServerUnavailableError(_server_name(server), attempts, str(exc)) from None
            raise

    run = durable_run()
    if run is None:  # not in a Timestep run: no trace to join
        return await DBOS.run_step_async(options, attempt)
    span_name, attributes = (
        (f"execute_tool {tool_name}", {"gen_ai.operation.name": "execute_tool"})
        if tool_name is not None
        else (f"mcp {name}", dict[str, str | None]())
    )
    attributes |= {
        "gen_ai.tool.name": tool_name,
        "gen_ai.tool.type": "mcp",
        "timestep.mcp.server": _server_name(server),
        "timestep.workflow_id": run.workflow_id,
    }
    return await Traced(run, span_name, attributes, attempt).run_step(options, reservation)


async def _ensure_connected(server: MCPServer) -> None:
    """Connect ``server`` if nothing has (a fresh worker), on the running loop, in a task of
    its own that keeps the connection open for the process's life."""
    if not hasattr(server, "session") or getattr(server, "session", None) is not None:
        return  # connected by its owner, or a kind of server Timestep cannot tell
    loop = asyncio.get_running_loop()
    connection: _Connection | None = getattr(server, _CONNECTION_ATTR, None)
    if connection is None or connection.loop is not loop or loop.is_closed():
        connection = _Connection(
            loop, MCPServerManager([server], strict=True, connect_in_parallel=True), asyncio.Lock()
        )
        setattr(server, _CONNECTION_ATTR, connection)
    async with connection.lock:
        if getattr(server, "session", None) is not None:
            return
        # A context of its own: the connection's tasks outlive this step and this run.
        task = loop.create_task(connection.manager.connect_all(), context=contextvars.Context())
        try:
            await task
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
            raise _ServerUnreachable(reason) from None
        if getattr(server, "session", None) is None:
            raise _ServerUnreachable("the server did not open a session")


@dataclasses.dataclass
class _Connection:
    loop: asyncio.AbstractEventLoop
    manager: MCPServerManager
    lock: asyncio.Lock


def _server_name(server: MCPServer) -> str:
    return get_mcp_server_log_name(server.name)


def _dump(model: Any) -> dict[str, Any]:
    dumped: dict[str, Any] = model.model_dump(mode="json", by_alias=True, exclude_unset=True)
    return dumped
