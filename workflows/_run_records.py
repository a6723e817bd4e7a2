"""What a finished (or interrupted) run leaves in Timestep's tables: usage and tool calls.

The rows go to the process's recorder (``timestep._core.recorder``), which writes them in the
background, batched with other runs'; the workflow output keeps them too, so a crash before
the write loses nothing. The writes are keyed by workflow id, so writing a run again rewrites
the same rows instead of adding new ones.
"""

from __future__ import annotations

from typing import Any

from agents.items import ToolApprovalItem, ToolCallItem, ToolCallOutputItem
from agents.result import RunResult, RunResultStreaming

from timestep._core.process import process_state
from timestep._core.protocol import RunRecords
from timestep._core.runtime import current_database
from timestep.steps import CurrentRun

__all__ = ["record_run", "tool_call_rows", "usage_rows"]


def record_run(run: CurrentRun, result: RunResult | RunResultStreaming) -> RunRecords:
    """Hand the run's rows to the recorder (no waiting) and return them for the output."""
    records: RunRecords = {
        "usage": usage_rows(run, result),
        "tool_calls": tool_call_rows(run, result),
    }
    process_state().recorder.submit(current_database().url, records)
    return records


def usage_rows(run: CurrentRun, result: RunResult | RunResultStreaming) -> list[dict[str, Any]]:
    prices = process_state().prices
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
                "tags": f",{','.join(run.tags)}," if run.tags else "",
                "model": model,
                "requests": u.requests,
                "input_tokens": u.input_tokens,
                "output_tokens": u.output_tokens,
                "cached_tokens": cached,
                "reasoning_tokens": u.output_tokens_details.reasoning_tokens or 0,
                "cost_usd": prices.cost_of(model, u.input_tokens, u.output_tokens, cached)
                if model
                else None,
            }
        )
    return rows


def tool_call_rows(run: CurrentRun, result: RunResult | RunResultStreaming) -> list[dict[str, Any]]:
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
