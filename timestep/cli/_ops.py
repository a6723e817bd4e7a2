"""Run inspection through a ``DBOSClient``: shared by the CLI and the HTTP API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from dbos import DBOSClient

from timestep._approvals import get_pending_approvals
from timestep._results import read_run_stream
from timestep._runtime import current_database
from timestep.errors import RunNotFoundError
from timestep.workflows import AGENT_RUN_WORKFLOW, request_of

__all__ = ["client", "client_call", "list_runs", "show_run", "event_records", "event_record"]


def client() -> DBOSClient:
    return DBOSClient(system_database_url=current_database().url)


async def client_call(method: str, *args: Any) -> Any:
    c = client()
    try:
        return await getattr(c, method)(*args)
    finally:
        c.destroy()


def _row(status: Any) -> dict[str, Any]:
    return {
        "workflow_id": status.workflow_id,
        "status": status.status,
        "agent": request_of(status).get("agent"),
        "created_at": status.created_at,
        "updated_at": status.updated_at,
    }


async def list_runs(*, status: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    c = client()
    try:
        workflows = await c.list_workflows_async(
            name=AGENT_RUN_WORKFLOW, status=status, limit=limit, sort_desc=True, load_output=False
        )
    finally:
        c.destroy()
    return [_row(w) for w in workflows]


async def show_run(workflow_id: str) -> dict[str, Any]:
    c = client()
    try:
        found = await c.list_workflows_async(workflow_ids=[workflow_id])
        if not found:
            raise RunNotFoundError(f"no run has workflow id {workflow_id!r}")
        steps = await c.list_workflow_steps_async(workflow_id)
    finally:
        c.destroy()
    status = found[0]
    info = _row(status)
    info["steps"] = [
        {
            "id": s["function_id"],
            "name": s["function_name"],
            "outcome": "error" if s.get("error") is not None else "done",
        }
        for s in steps
    ]
    output = status.output if status.status == "SUCCESS" else None
    info["final_output"] = output.get("final_output") if isinstance(output, dict) else None
    info["error"] = str(status.error) if status.error else None
    info["pending_approvals"] = (
        await get_pending_approvals(workflow_id) if status.status == "PENDING" else []
    )
    return info


def event_record(offset: int, entry: Any) -> dict[str, Any]:
    """One stream entry as JSON-able data (for SSE and ``timestep events --json``)."""
    kind = entry[0]
    if kind == "raw":
        event = entry[1]
        data = event.model_dump(mode="json", exclude_none=True)
        data["offset"] = offset
        return data
    if kind == "tool_output":
        _, call_id, tool, output = entry
        return {
            "offset": offset,
            "type": "tool_output",
            "call_id": call_id,
            "tool": tool,
            "output": str(output),
        }
    return {"offset": offset, "type": str(kind)}


async def event_records(workflow_id: str, offset: int = 0) -> AsyncIterator[dict[str, Any]]:
    position = offset
    async for entry in read_run_stream(workflow_id, offset=offset):
        yield event_record(position, entry)
        position += 1
