"""``timestep gc``: one retention pass by hand, with a progress bar per part."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from timestep._client.retention import GcReport, collect_garbage
from timestep._client.system import system
from timestep._core.process import process_state
from timestep._core.retention import GC_ROOT_WORKFLOWS, LEDGER_PART
from timestep._core.retention_policy import STATUS_GROUPS, RetentionPolicy, parse_duration
from timestep.errors import ConfigurationError

__all__ = ["run_gc"]


async def _candidates(policy: RetentionPolicy) -> dict[str, int]:
    """How many ended runs each part will look at (the bars' totals)."""
    now = datetime.now(UTC)
    totals: dict[str, int] = {}
    for part, statuses in STATUS_GROUPS.items():
        age = getattr(policy, part)
        if age is None:
            continue
        found = await system().list_workflows_async(
            status=list(statuses),
            name=list(GC_ROOT_WORKFLOWS),
            completed_before=(now - age).isoformat(),
            load_input=False,
            load_output=False,
        )
        totals[part] = len(found)
    return totals


async def run_gc(older_than: str | None, *, dry_run: bool, console: Console) -> GcReport:
    if older_than is not None:
        try:
            policy = RetentionPolicy.for_all(parse_duration(older_than))
        except ValueError as exc:
            raise ConfigurationError(f"--older-than: {exc}") from None
    else:
        configured = process_state().settings.retention_policy
        if configured is None:
            raise ConfigurationError(
                "no retention policy: set TIMESTEP_RETENTION (e.g. finished=30d,failed=90d) "
                "or pass --older-than 30d"
            )
        policy = configured
    totals = await _candidates(policy)
    columns: list[Any] = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=console, transient=False) as bar:
        tasks: dict[str, Any] = {}

        def advance(part: str, batch: dict[str, Any]) -> None:
            if part not in tasks:
                labels = {LEDGER_PART: "spent ledger rows", "sessions": "idle sessions"}
                label = labels.get(part, f"{part} runs")
                tasks[part] = bar.add_task(label, total=totals.get(part))
            done = batch.get("runs", 0) + batch.get("skipped", 0) + batch.get("sessions", 0)
            if part == LEDGER_PART:  # no total known ahead: the rows as they are counted
                done = sum((batch.get("rows") or {}).values())
            bar.advance(tasks[part], done)
            if batch.get("done"):
                bar.update(tasks[part], total=bar.tasks[tasks[part]].completed)

        return await collect_garbage(policy=policy, dry_run=dry_run, progress=advance)
