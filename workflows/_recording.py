"""What a finished (or interrupted) run leaves in Timestep's tables: usage and tool calls.

One transaction per run, not one query per step. The writes are keyed by workflow id, so a
replay rewrites the same rows instead of adding new ones; that makes them safe outside a step.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from agents.items import ToolApprovalItem, ToolCallItem, ToolCallOutputItem
from agents.result import RunResult

from timestep._run_context import DurableRunContext
from timestep._storage import (
    get_sync_engine,
    insert_ignoring_duplicates_statement,
    tool_calls_table,
    upsert_statement,
    usage_table,
)

__all__ = ["record_run", "usage_rows", "tool_call_rows"]

logger = logging.getLogger("timestep")


async def record_run(run: DurableRunContext, result: RunResult) -> None:
    from timestep._runtime import current_database

    usage = usage_rows(run, result)
    tools = tool_call_rows(run, result)
    if not usage and not tools:
        return
    # One hop to a worker thread for the whole transaction (an async driver would hop per
    # statement, and aiosqlite per call).
    await asyncio.to_thread(_write, current_database().url, usage, tools)


def _write(url: str, usage: list[dict[str, Any]], tools: list[dict[str, Any]]) -> None:
    engine = get_sync_engine(url)
    with engine.begin() as conn:
        dialect = conn.dialect.name
        if usage:
            conn.execute(insert_ignoring_duplicates_statement(dialect, usage_table), usage)
        if tools:
            statement = upsert_statement(
                dialect, tool_calls_table, ["workflow_id", "call_id"], ["status"]
            )
            conn.execute(statement, tools)


def usage_rows(run: DurableRunContext, result: RunResult) -> list[dict[str, Any]]:
    from timestep.providers import cost_of

    responses = result.raw_responses
    # The model names of this workflow's calls line up with the last responses (a run resumed
    # from a RunState also carries the responses of the run it continues).
    names: list[str | None] = [None] * (len(responses) - len(run.model_names)) + list(
        run.model_names[-len(responses) :] if responses else []
    )
    rows = []
    for index, (response, model) in enumerate(zip(responses, names, strict=True)):
        u = response.usage
        cached = u.input_tokens_details.cached_tokens or 0
        rows.append(
            {
                "workflow_id": run.workflow_id,
                "response_index": index,
                "session_id": run.session_id,
                "agent_name": run.agent_name,
                "model": model,
                "requests": u.requests,
                "input_tokens": u.input_tokens,
                "output_tokens": u.output_tokens,
                "cached_tokens": cached,
                "reasoning_tokens": u.output_tokens_details.reasoning_tokens or 0,
                "cost_usd": cost_of(model, u.input_tokens, u.output_tokens, cached)
                if model
                else None,
            }
        )
    return rows


def tool_call_rows(run: DurableRunContext, result: RunResult) -> list[dict[str, Any]]:
    calls: dict[str, dict[str, Any]] = {}
    finished: set[str] = set()
    for item in result.new_items:
        if isinstance(item, ToolCallItem | ToolApprovalItem):
            raw = item.raw_item
            call_id = _get(raw, "call_id")
            if call_id and _get(raw, "type") == "function_call":
                calls[call_id] = {
                    "workflow_id": run.workflow_id,
                    "call_id": call_id,
                    "session_id": run.session_id,
                    "agent_name": item.agent.name,
                    "tool_name": _get(raw, "name") or "",
                    "arguments": _get(raw, "arguments"),
                    "status": "called",
                }
        elif isinstance(item, ToolCallOutputItem):
            call_id = _get(item.raw_item, "call_id")
            if call_id:
                finished.add(call_id)
    pending = {_get(i.raw_item, "call_id") for i in result.interruptions}
    for call_id, row in calls.items():
        if call_id in finished:
            row["status"] = "completed"
        elif call_id in pending:
            row["status"] = "pending_approval"
    return list(calls.values())


def _get(raw: Any, key: str) -> Any:
    return raw.get(key) if isinstance(raw, dict) else getattr(raw, key, None)
