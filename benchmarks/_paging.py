"""(12) The web console's runs listing at 100,000 runs: a deep page must cost what the first does.

Two real runs (of two agents) are cloned in the database into ``runs`` DBOS workflows, one
created every half second (so pages deep in the listing are far back in time). The listing is
``list_runs_page`` plus the page's usage (``usage_of_runs``), as the console's runs page reads
them: the first page, the 20th (walked to with the cursors) and a page 90% deep (its cursor
made from a time there), each the median of five reads; for every run, one agent's runs, and
one status.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import sqlalchemy as sa
from agents import Agent
from rich.progress import Progress

import timestep
from timestep._client.inspection import list_runs_page
from timestep._client.usage import usage_of_runs

from ._common import new_id, sync_engine

AGENTS = (
    Agent(name="bench-pager-a", instructions="Page."),
    Agent(name="bench-pager-b", instructions="Page."),
)


def _clone(url: str, sources: list[str], runs: int) -> None:
    """``runs`` copies of the ``sources`` workflows (status, input, output), 500 ms apart."""
    engine = sync_engine(url)
    schema = None if url.startswith("sqlite") else "dbos"
    prefix = "" if schema is None else "dbos."
    inspector = sa.inspect(engine)
    each = runs // len(sources)
    series = f"WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < {each})"
    with engine.begin() as conn:
        for share, source in enumerate(sources):
            for table in ("workflow_status", "workflow_input", "workflow_output"):
                columns = [c["name"] for c in inspector.get_columns(table, schema=schema)]
                shifted = f"- (g.x * {len(sources) * 500} + {share * 500})"
                values = ", ".join(
                    "workflow_uuid || '-' || g.x"
                    if c == "workflow_uuid"
                    else f"{c} {shifted}"
                    if c in ("created_at", "updated_at") and table == "workflow_status"
                    else c
                    for c in columns
                )
                conn.execute(
                    sa.text(
                        f"{series} INSERT INTO {prefix}{table} ({', '.join(columns)}) "
                        f"SELECT {values} FROM {prefix}{table}, g WHERE workflow_uuid = :source"
                    ),
                    {"source": source},
                )
        conn.execute(sa.text("ANALYZE"))
    engine.dispose()


async def _read(**filters: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    page = await list_runs_page(limit=50, **filters)
    await usage_of_runs([s.workflow_id for s in page.runs])
    return (time.perf_counter() - started) * 1000, page


async def _median(**filters: Any) -> float:
    return statistics.median([(await _read(**filters))[0] for _ in range(5)])


async def run(kind: str, url: str, runs: int, progress: Progress) -> dict[str, Any]:
    task = progress.add_task(f"{kind}: runs listing at {runs:,} runs", total=4)
    for agent in AGENTS:
        timestep.register_agent(agent)
    sources = []
    for agent in AGENTS:
        handle = await timestep.start_agent_run(agent, "hi", workflow_id=new_id("page"))
        await handle.result()
        sources.append(handle.workflow_id)
    started = time.perf_counter()
    _clone(url, sources, runs)
    clone_seconds = time.perf_counter() - started
    progress.advance(task)
    figures: dict[str, Any] = {"runs": runs, "clone_seconds": round(clone_seconds, 1)}
    _, top = await _read()
    deep_cursor = f"{top.runs[0].created_at - int(runs * 0.9 * 500)}:"  # 90% of the way back
    for label, filters in (
        ("all runs", {}),
        ("one agent", {"agent": AGENTS[1].name}),
        ("status SUCCESS", {"status": "SUCCESS"}),
    ):
        first = await _median(**filters)
        cursor = None
        for _ in range(19):
            _, page = await _read(cursor=cursor, **filters)
            cursor = page.next_cursor
        twentieth = await _median(cursor=cursor, **filters)
        deep = await _median(cursor=deep_cursor, **filters)
        _, deep_page = await _read(cursor=deep_cursor, **filters)
        figures[label] = {
            "first_page_ms": round(first, 1),
            "page_20_ms": round(twentieth, 1),
            "page_90pct_deep_ms": round(deep, 1),
            "deep_page_runs": len(deep_page.runs),
        }
        progress.advance(task)
    return figures
