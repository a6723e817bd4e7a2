"""The agent graph both SDKs run in the cross-language tests and fixtures.

``tests/js/agents.mjs`` and ``typescript/test/support/agents.mjs`` define the same graph for
Node: ``ops`` (``add``, ``get_weather``, ``delete_file`` which needs approval) can hand off to
``billing``. Names, tools and the approval rule must match for states to load on both sides.
"""

from __future__ import annotations

from typing import Any

from agents import Agent, function_tool

from timestep.testing import function_call, function_calls

__all__ = [
    "APPROVAL_TURN",
    "RESUMED_CALLS",
    "TOOL_TURN",
    "add",
    "agents",
    "calls_and_outputs",
    "delete_file",
    "deleted",
    "get_weather",
]

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

RESUMED_CALLS = [
    ("function_call", "call_add"),
    ("function_call", "call_w"),
    ("function_call_output", "call_add"),
    ("function_call_output", "call_w"),
    ("function_call", "call_del"),
    ("function_call_output", "call_del"),
]
"""What a run resumed after approving ``APPROVAL_TURN`` sends the model, as
``calls_and_outputs``: both finished calls, then the approved one and its output."""


def calls_and_outputs(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(type, call id) of every tool call and result in a list of Responses input items."""
    return [
        (item["type"], item["call_id"])
        for item in items
        if item.get("type") in ("function_call", "function_call_output")
    ]


OPS = agents()
"""The same agent as a module attribute, for the CLI (``--agent interop:OPS``)."""
