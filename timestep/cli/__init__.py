"""The ``timestep`` command line.

Commands that only inspect or answer runs (``runs``, ``approvals``, ``events``, ``state``) talk
to the database through a ``DBOSClient`` and never launch DBOS, so they never recover (and so
never execute) a worker's runs. ``run``, ``worker`` and ``demo`` launch DBOS.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click
import typer
from agents import Agent
from agents.exceptions import AgentsException
from agents.stream_events import RawResponsesStreamEvent
from openai.types.responses import ResponseTextDeltaEvent
from rich.console import Console
from rich.markup import escape
from rich.table import Table

import timestep
from timestep._client import inspection as client_runs
from timestep._client.agents import registered_agents
from timestep._client.streams import event_records
from timestep._core.process import process_state
from timestep._core.registry import import_ref
from timestep.errors import MalformedStateError, TimestepError
from timestep.runstate import detect_format, from_typescript, to_typescript

from . import _ops

__all__ = ["app", "main"]

T = TypeVar("T")

app = typer.Typer(
    name="timestep",
    help="Durable runtime for OpenAI Agents SDK agents, on DBOS.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
runs_app = typer.Typer(help="Inspect and control runs.", no_args_is_help=True)
approvals_app = typer.Typer(help="List and answer tool approvals.", no_args_is_help=True)
state_app = typer.Typer(help="Export and import RunState snapshots.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")
app.add_typer(approvals_app, name="approvals")
app.add_typer(state_app, name="state")
schedules_app = typer.Typer(help="Cron schedules of agents (created in code or over HTTP).")
app.add_typer(schedules_app, name="schedules")

console = Console()
err_console = Console(stderr=True)


@app.callback()
def _options(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks and debug logs."),
) -> None:
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING)
    if not debug:
        logging.getLogger("dbos").setLevel(logging.WARNING)


def _run(coro_factory: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(coro_factory())  # type: ignore[arg-type]


def _print_json(value: Any) -> None:
    console.print_json(json.dumps(value, default=str))


def _load_agent(ref: str) -> Any:

    try:
        agent = import_ref(ref)
    except (ImportError, AttributeError, ValueError) as exc:
        raise typer.BadParameter(f"cannot import {ref!r}: {exc}") from exc
    if not isinstance(agent, Agent):
        raise typer.BadParameter(f"{ref!r} is a {type(agent).__name__}, not an agents.Agent")
    timestep.register_agent(agent, ref=ref)
    return agent


@app.command()
def demo(
    model: str | None = typer.Option(
        None, help="A real model (e.g. gpt-4.1); its key must be set."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Approve without asking."),
    data_dir: Path = typer.Option(Path(".timestep"), help="Where the demo's SQLite file goes."),
) -> None:
    """Run a durable agent end to end, offline on embedded SQLite."""
    from ._demo import run_demo  # noqa: PLC0415 (importing it registers the demo's agents)

    code = _run(lambda: run_demo(model=model, data_dir=data_dir, assume_yes=yes, console=console))
    raise typer.Exit(code)


@app.command()
def run(
    agent_ref: str = typer.Argument(..., help="The agent, as module:attribute."),
    prompt: str = typer.Argument(...),
    stream: bool = typer.Option(False, "--stream", help="Print the answer as it streams."),
    workflow_id: str | None = typer.Option(
        None, help="Idempotency key: reuse to get the same run."
    ),
    session: str | None = typer.Option(None, help="Session id, for conversation memory."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Run an agent durably and print its final output."""
    agent = _load_agent(agent_ref)

    async def go() -> Any:
        timestep.ensure_dbos_launched()
        sess = timestep.Session(session) if session else None
        if not stream:
            with console.status("running..."):
                return await timestep.run_agent(agent, prompt, sess, workflow_id=workflow_id)
        result = await timestep.run_agent(agent, prompt, sess, stream=True, workflow_id=workflow_id)
        async for event in result.stream_events():
            if (
                isinstance(event, RawResponsesStreamEvent)
                and isinstance(event.data, ResponseTextDeltaEvent)
                and not as_json
            ):
                console.print(event.data.delta, end="", highlight=False)
        if not as_json:
            console.print()
        return await result.wait()

    result = _run(go)
    if as_json:
        _print_json(
            {
                "workflow_id": result.workflow_id,
                "final_output": result.final_output,
                "interruptions": [
                    {"call_id": getattr(i.raw_item, "call_id", None), "tool": i.tool_name}
                    for i in result.interruptions
                ],
                "usage": {
                    "requests": result.usage.requests,
                    "input_tokens": result.usage.input_tokens,
                    "output_tokens": result.usage.output_tokens,
                },
            }
        )
    elif not stream:
        console.print(result.final_output)
    if result.interruptions:
        raise typer.Exit(3)


@app.command()
def worker(
    modules: list[str] = typer.Argument(..., help="Modules that define (and register) agents."),
) -> None:
    """A long-running worker: recovers pending runs and executes them until stopped."""

    for name in modules:
        importlib.import_module(name)

    async def serve() -> None:
        timestep.ensure_dbos_launched()
        console.print(f"worker up; agents: {', '.join(sorted(registered_agents())) or 'none'}")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()

    _run(serve)


@app.command()
def serve(
    host: str | None = typer.Option(
        None, help="Address to bind (default: TIMESTEP_API_HOST, else 127.0.0.1)."
    ),
    port: int | None = typer.Option(
        None, min=0, max=65535, help="Port (default: TIMESTEP_API_PORT, else 8000)."
    ),
    agents: list[str] = typer.Option(
        [], "--agents", help="Module whose agents to serve (repeatable, or comma-separated)."
    ),
    no_auth: bool = typer.Option(
        False, "--no-auth", help="Serve without TIMESTEP_API_TOKEN (localhost only)."
    ),
    allow_short_token: bool = typer.Option(
        False,
        "--allow-short-token",
        help="Accept a TIMESTEP_API_TOKEN under 32 characters (local development only).",
    ),
) -> None:
    """Serve the HTTP API (runs, events, approvals, schedules); it also executes runs."""
    from timestep.server import serve as serve_api  # noqa: PLC0415 (start-up: only serve needs FastAPI)

    modules = [m.strip() for value in agents for m in value.split(",") if m.strip()]
    serve_api(
        host,
        port,
        agents=modules,
        auth=False if no_auth else None,
        allow_short_token=True if allow_short_token else None,
    )


@app.command()
def usage(
    workflow_id: str | None = typer.Option(None, "--run", help="One run's workflow id."),
    agent: str | None = typer.Option(None, help="An agent's name."),
    session: str | None = typer.Option(None, help="A session id."),
    tag: str | None = typer.Option(None, help="A tag given to runs (a tenant, a user)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Tokens and cost of finished runs' model calls, and every budget with its spend."""
    report = _run(
        lambda: _ops.usage_report(
            workflow_id=workflow_id, agent_name=agent, session_id=session, tag=tag
        )
    )
    if as_json:
        _print_json(report)
        return
    totals = report["usage"]
    table = Table("requests", "input tokens", "output tokens", "cached", "cost (USD)")
    cost = totals["cost_usd"]
    table.add_row(
        str(totals["requests"]),
        str(totals["input_tokens"]),
        str(totals["output_tokens"]),
        str(totals["cached_tokens"]),
        f"{cost:.6f}" if cost is not None else "unknown",
    )
    console.print(table)
    if report["budgets"]:
        budgets = Table("budget", "per", "tokens spent / max", "USD spent / max")
        for b in report["budgets"]:
            budgets.add_row(
                b["scope"],
                b["per"],
                f"{b['spent_tokens']} / {b['max_tokens'] if b['max_tokens'] is not None else '-'}",
                f"{b['spent_cost_usd']:.6f} / "
                + (f"{b['max_cost_usd']:g}" if b["max_cost_usd"] is not None else "-"),
            )
        console.print(budgets)


@app.command()
def gc(
    older_than: str | None = typer.Option(
        None, "--older-than", help="Delete every ended run older than this (30d, 12h...)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Count what would go; delete nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Delete ended runs and idle sessions by TIMESTEP_RETENTION (or --older-than), and the
    ledger rows no limit or budget counts any more."""
    from ._gc import run_gc  # noqa: PLC0415 (start-up: only gc needs the progress bar)

    report = _run(lambda: run_gc(older_than, dry_run=dry_run, console=err_console))
    if as_json:
        _print_json(report.to_json())
        return
    verb = "would free" if dry_run else "freed"
    table = Table("table", "rows")
    for name, count in sorted(report.rows.items()):
        if count:
            table.add_row(name, str(count))
    if report.rows and any(report.rows.values()):
        console.print(table)
    console.print(
        f"{'dry run: ' if dry_run else ''}{report.runs} run(s) ({report.workflows} workflow(s)), "
        f"{report.sessions} session(s); {verb} {sum(report.rows.values())} row(s), "
        f"{_size(report.bytes)} of stored payloads"
        + (f" and {_size(report.ledger_bytes)} of ledger rows" if report.ledger_bytes else "")
        + (f"; kept {report.skipped} with a live parent or child" if report.skipped else "")
    )


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


@runs_app.command("list")
def runs_list(
    status: str | None = typer.Option(None, help="PENDING, SUCCESS, ERROR, CANCELLED..."),
    limit: int = typer.Option(20, min=1),
    as_json: bool = typer.Option(False, "--json"),
    stale: bool = typer.Option(
        False, "--stale", help="Unfinished runs whose agent's definition changed since."
    ),
    agents: list[str] = typer.Option(
        [], "--agents", help="Module(s) defining the current agents (for --stale)."
    ),
) -> None:
    """The newest runs; with --stale, the unfinished ones started on an older definition."""
    if stale:
        for name in (m.strip() for value in agents for m in value.split(",") if m.strip()):
            importlib.import_module(name)
        statuses = [status] if status else None
        stale_rows = _run(lambda: client_runs.list_stale_runs(status=statuses))
        if as_json:
            _print_json(stale_rows)
            return
        stale_table = Table("workflow id", "status", "agent", "created", "what changed")
        for row in stale_rows:
            stale_table.add_row(
                row["workflow_id"],
                row["status"],
                row["agent"],
                str(row["created_at"]),
                "; ".join(row["changes"]),
            )
        console.print(stale_table)
        return
    rows = _run(lambda: _ops.run_rows(status=status, limit=limit))
    if as_json:
        _print_json(rows)
        return
    table = Table("workflow id", "status", "agent", "created")
    for row in rows:
        table.add_row(row["workflow_id"], row["status"], row["agent"] or "", str(row["created_at"]))
    console.print(table)


@runs_app.command("show")
def runs_show(workflow_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """A run's status, steps and pending approvals."""
    info = _run(lambda: _ops.show_run(workflow_id))
    if as_json:
        _print_json(info)
        return
    console.print(f"[bold]{info['workflow_id']}[/] {info['status']} agent={info['agent']}")
    table = Table("step", "name", "outcome", "retries")
    for step in info["steps"]:
        retries = str(step["retries"]) if step["retries"] else ""
        table.add_row(str(step["id"]), step["name"], step["outcome"], retries)
    console.print(table)
    for approval in info["pending_approvals"]:
        console.print(f"pending approval: {approval['call_id']} {approval['tool_name']}")
    if info.get("final_output") is not None:
        console.print(f"final output: {info['final_output']}")


@runs_app.command("cancel")
def runs_cancel(workflow_id: str) -> None:
    """Cancel a run (it stops at its next step)."""
    _run(lambda: client_runs.cancel_run(workflow_id))
    console.print(f"cancelled {workflow_id}")


@runs_app.command("resume")
def runs_resume(workflow_id: str) -> None:
    """Resume a cancelled or failed run from its last finished step (a worker executes it)."""
    _run(lambda: client_runs.resume_run(workflow_id))
    console.print(f"resumed {workflow_id}")


@runs_app.command("fork")
def runs_fork(
    workflow_id: str, start_step: int = typer.Option(1, help="First step to execute again.")
) -> None:
    """Start a new run that replays a run's steps before START_STEP and executes the rest."""
    forked = _run(lambda: client_runs.fork_run(workflow_id, start_step))
    console.print(f"forked {workflow_id} as {forked}")


@approvals_app.command("list")
def approvals_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """Tool calls waiting for a decision, across runs."""
    rows = _run(timestep.list_pending_approvals)
    if as_json:
        _print_json(rows)
        return
    table = Table("workflow id", "call id", "tool", "arguments")
    for row in rows:
        table.add_row(row["workflow_id"], row["call_id"], row["tool_name"], row["arguments"] or "")
    console.print(table)


@approvals_app.command("approve")
def approvals_approve(
    workflow_id: str,
    call_id: str,
    always: bool = typer.Option(False, help="Also approve later calls of this tool in the run."),
    by: str | None = typer.Option(None, help="Who decides (recorded)."),
) -> None:
    """Approve a pending tool call."""
    _run(lambda: timestep.approve(workflow_id, call_id, always=always, by=by))
    console.print(f"approved {call_id}")


@approvals_app.command("reject")
def approvals_reject(
    workflow_id: str,
    call_id: str,
    message: str | None = typer.Option(None, help="What the model is told."),
    by: str | None = typer.Option(None),
) -> None:
    """Reject a pending tool call."""
    _run(lambda: timestep.reject(workflow_id, call_id, message, by=by))
    console.print(f"rejected {call_id}")


def _schedule_op(action: Callable[[], T]) -> T:
    """One schedule operation (through a DBOSClient: the CLI never launches DBOS here)."""
    try:
        return action()
    except timestep.ScheduleError as exc:
        raise typer.BadParameter(str(exc)) from None


@schedules_app.command("list")
def schedules_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """Every schedule, with its cron, status and last fire."""
    rows = [
        {
            "name": s.name,
            "cron": s.cron,
            "status": s.status,
            "agent": s.agent,
            "last_fired_at": s.last_fired_at,
        }
        for s in timestep.list_schedules()
    ]
    if as_json:
        _print_json(rows)
        return
    table = Table("name", "cron", "status", "agent", "last fired")
    for row in rows:
        table.add_row(
            row["name"], row["cron"], row["status"], row["agent"] or "", str(row["last_fired_at"])
        )
    console.print(table)


@schedules_app.command("pause")
def schedules_pause(name: str) -> None:
    """Stop firing until resumed."""
    _schedule_op(lambda: timestep.pause_schedule(name))
    console.print(f"paused {name}")


@schedules_app.command("resume")
def schedules_resume(name: str) -> None:
    """Fire again after a pause."""
    _schedule_op(lambda: timestep.resume_schedule(name))
    console.print(f"resumed {name}")


@schedules_app.command("delete")
def schedules_delete(name: str) -> None:
    """Remove a schedule (its past fires stay)."""
    _schedule_op(lambda: timestep.delete_schedule(name))
    console.print(f"deleted {name}")


@schedules_app.command("trigger")
def schedules_trigger(name: str) -> None:
    """Fire now (a worker runs it)."""
    fired = _schedule_op(lambda: timestep.trigger_schedule(name))
    console.print(f"fired {name}: {fired}")


@schedules_app.command("backfill")
def schedules_backfill(
    name: str,
    start: datetime = typer.Argument(..., help="ISO time, e.g. 2026-01-01T00:00:00+00:00"),
    end: datetime = typer.Argument(...),
) -> None:
    """Fire every time in (START, END) that has not fired yet."""
    if start.tzinfo is None or end.tzinfo is None:
        raise typer.BadParameter("give times with a time zone, e.g. 2026-01-01T00:00:00+00:00")
    fired = _schedule_op(lambda: timestep.backfill_schedule(name, start, end))
    console.print(f"backfilled {len(fired)} fire(s) of {name}")


@app.command()
def events(workflow_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Follow a run's live events until it ends."""

    async def follow() -> None:
        async for record in event_records(workflow_id):
            if as_json:
                print(json.dumps(record, default=str), flush=True)
            elif record["type"] == "response.output_text.delta":
                console.print(record["delta"], end="", highlight=False)
            elif record["type"] == "tool_output":
                console.print(f"\n[dim]← {record['tool']}: {record['output']}[/]")
        if not as_json:
            console.print()

    _run(follow)


@state_app.command("export")
def state_export(
    session_id: str,
    agent_ref: str = typer.Option(..., "--agent", help="The agent, as module:attribute."),
    fmt: str = typer.Option("python", "--format", help="python or typescript"),
    state_id: str | None = typer.Option(None),
) -> None:
    """Print a session's newest (or a given) RunState as JSON."""
    agent = _load_agent(agent_ref)

    async def export() -> str:
        state = await timestep.RunStateStore(agent, session_id).load(state_id)
        if fmt == "typescript":
            return to_typescript(state)
        if fmt != "python":
            raise typer.BadParameter("--format must be python or typescript")
        return state.to_string()

    print(_run(export))


@state_app.command("import")
def state_import(
    path: Path,
    session_id: str = typer.Option(..., "--session"),
    agent_ref: str = typer.Option(..., "--agent"),
) -> None:
    """Store a RunState JSON file (Python or TypeScript format) in a session."""
    agent = _load_agent(agent_ref)

    async def do_import() -> str:
        data = _state_file(path)  # typed errors, before anything is written
        state: Any = (
            await from_typescript(data, agent) if detect_format(data) == "typescript" else data
        )
        return await timestep.RunStateStore(agent, session_id).save(state)

    console.print(f"stored as {_run(do_import)}")


def _state_file(path: Path) -> dict[str, Any]:
    """A RunState file as JSON, or a ``MalformedStateError`` that says what is wrong with it."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedStateError(
            f"{path} is not UTF-8 text (byte {exc.start}: {exc.reason})"
        ) from None
    try:
        data = json.loads(text)
    except RecursionError:
        raise MalformedStateError(f"{path} is nested too deeply to be a RunState") from None
    except ValueError as exc:
        raise MalformedStateError(f"{path} is not valid JSON (truncated?): {exc}") from None
    if not isinstance(data, dict):
        raise MalformedStateError(f"{path} holds a JSON {type(data).__name__}, not a RunState")
    return data


def main() -> None:
    """Console entry point: errors are one clear line (with --debug, a traceback)."""
    # DBOS's own INFO lines (its launch, each workflow it recovers) are a worker's log, not
    # the command's output; TIMESTEP_DBOS_LOG_LEVEL=INFO (or --debug) brings them back.
    debug = "--debug" in sys.argv[1:]
    os.environ.setdefault("TIMESTEP_DBOS_LOG_LEVEL", "DEBUG" if debug else "WARNING")
    process_state().reload_settings()
    try:
        # Without standalone mode click returns an Exit's code instead of exiting with it.
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("aborted")
        sys.exit(130)
    except Exception as exc:  # the one place that turns any failure into a line and a code
        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if "--debug" in sys.argv[1:]:  # the app's own option; main() outlives its context
            raise
        kind = "error" if isinstance(exc, TimestepError | AgentsException) else type(exc).__name__
        message = " ".join(str(exc).split())  # one line, whatever the error's own text holds
        err_console.print(f"[bold red]{kind}:[/] {escape(message)}", soft_wrap=True)
        sys.exit(1)
