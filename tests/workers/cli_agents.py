"""Agents for the CLI tests, importable as ``cli_agents:<name>`` (tests put this folder on
PYTHONPATH), the way users point ``timestep run`` at their own modules."""

from __future__ import annotations

from agents import Agent, function_tool


@function_tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@function_tool(needs_approval=True)
def delete_file(path: str) -> str:
    """Delete a file (a human must approve)."""
    return f"deleted {path}"


calculator = Agent(name="cli-calculator", instructions="Use the tool.", tools=[add])
guarded = Agent(name="cli-guarded", instructions="Help.", tools=[delete_file])
