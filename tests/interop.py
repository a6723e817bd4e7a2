"""The agent graph both SDKs run in the cross-language tests and fixtures.

``tests/js/agents.mjs`` and ``typescript/test/support/agents.mjs`` define the same graph for
Node: ``ops`` (``add``, ``get_weather``, ``delete_file`` which needs approval) can hand off to
``billing``. Names, tools and the approval rule must match for states to load on both sides.
"""

from __future__ import annotations

from typing import Any

from agents import Agent, function_tool

from timestep.testing import function_call, function_calls

__all__ = ["APPROVAL_TURN", "TOOL_TURN", "add", "agents", "delete_file", "deleted", "get_weather"]

deleted: list[str] = []
"""Paths ``delete_file`` was really run on (tests clear it)."""


@function_tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


@function_tool(needs_approval=True)
def delete_file(path: str) -> str:
    """Delete a file (needs approval)."""
    deleted.append(path)
    return f"deleted {path}"


def agents() -> Agent[Any]:
    """``ops``, with its handoff to ``billing``."""
    billing = Agent(
        name="billing",
        instructions="Answer billing questions.",
        model="gpt-4.1",
        tools=[add, delete_file],
    )
    return Agent(
        name="ops",
        instructions="Be careful.",
        model="gpt-4.1",
        tools=[add, get_weather, delete_file],
        handoffs=[billing],
    )


TOOL_TURN = function_calls(
    ("add", {"a": 1, "b": 2}, "call_add"), ("get_weather", {"city": "Paris"}, "call_w")
)
"""The model's first turn: two parallel tool calls."""

APPROVAL_TURN = function_call("delete_file", {"path": "/tmp/x"}, call_id="call_del")
"""A turn whose call waits for approval."""
