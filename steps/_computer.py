"""A computer tool's actions as steps: each click, keypress or screenshot a durable run makes
on a ``ComputerTool``'s computer is a step ``tool:<tool name>.<action>``, so a replay neither
clicks again nor takes a new screenshot (it gets the recorded one).

The SDK resolves a tool's computer (an instance, or one a factory creates per run) before
each model call and hands the model the resolved tools; the durable model makes that
instance's action methods steps then (``make_computers_durable``), on the instance itself.
Outside a durable run the methods behave as before (a sync computer stays sync).

The SDK runs one response's computer actions one after another, beside the other tool
categories: those take step ids reserved in the model's order (``_model.reserve_local_calls``
counts computer calls), so the computer's steps take the next ids in their own order.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any

from agents.computer import AsyncComputer, Computer
from agents.tool import ComputerTool
from dbos import StepOptions

from ._current_run import CurrentRun, durable_run
from ._tools import TOOL_STEP_PREFIX, get_tool_options
from ._tracing import Traced

__all__ = ["COMPUTER_ACTIONS", "make_computers_durable"]

COMPUTER_ACTIONS = (
    "click",
    "double_click",
    "drag",
    "keypress",
    "move",
    "screenshot",
    "scroll",
    "type",
    "wait",
)
"""The methods the SDK calls on a computer to carry out a model's computer call."""

_MARK = "__timestep_durable_computer__"


def make_computers_durable(tools: Iterable[Any]) -> None:
    """Make the action methods of every resolved computer among ``tools`` steps (idempotent)."""
    for tool in tools:
        if isinstance(tool, ComputerTool) and isinstance(tool.computer, Computer | AsyncComputer):
            _make_computer_durable(tool.computer, tool.name)


def _make_computer_durable(computer: Computer | AsyncComputer, tool_name: str) -> None:
    if getattr(computer, _MARK, False):
        return
    for action in COMPUTER_ACTIONS:
        method = getattr(computer, action, None)
        if callable(method):
            setattr(computer, action, _durable_action(method, tool_name, action))
    setattr(computer, _MARK, True)


def _durable_action(method: Callable[..., Any], tool_name: str, action: str) -> Callable[..., Any]:
    name = f"{TOOL_STEP_PREFIX}{tool_name}.{action}"

    async def body(*args: Any, **kwargs: Any) -> Any:
        result = method(*args, **kwargs)
        return await result if inspect.isawaitable(result) else result

    # ``wraps`` keeps the method's signature: the SDK reads it to choose which keyword
    # arguments (``keys=``) the driver accepts.
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        run = durable_run()
        if run is None:
            return method(*args, **kwargs)
        return _step(run, *args, **kwargs)

    async def _step(run: CurrentRun, *args: Any, **kwargs: Any) -> Any:
        attributes = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": tool_name,
            "gen_ai.tool.type": "computer",
            "timestep.computer.action": action,
            "timestep.workflow_id": run.workflow_id,
        }
        step = Traced(run, f"execute_tool {tool_name}.{action}", attributes, body)
        options: StepOptions = {"name": name, **get_tool_options(tool_name)}
        return await step.run_step(options, None, *args, **kwargs)

    return call
