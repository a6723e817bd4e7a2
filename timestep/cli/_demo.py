"""``timestep demo``: a durable agent end to end, offline, on embedded SQLite.

The model is a scripted OpenAI-compatible server started in this process (clearly labelled),
unless ``--model`` names a real one whose key is set. The demo streams a run live, stops for an
approval, then kills a worker process mid-run and shows that the restarted worker finishes the
run without repeating a finished step.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from pathlib import Path
from typing import Any

from agents import Agent, function_tool, set_tracing_disabled
from agents.items import ToolCallItem, ToolCallOutputItem
from agents.stream_events import RawResponsesStreamEvent, RunItemStreamEvent
from openai.types.responses import ResponseFunctionToolCall, ResponseTextDeltaEvent
from rich.console import Console
from rich.prompt import Confirm
from rich.table import Table

import timestep
from timestep._core.protocol import PendingApproval
from timestep._core.runtime import reset_process
from timestep.testing import (
    FakeModelServer,
    WorkerProcess,
    conversation_script,
    function_call,
    text,
)

__all__ = [
    "CRASH_SCRIPT",
    "DEMO_SCRIPT",
    "crash_demo_agent",
    "demo_agent",
    "run_demo",
]

CALLS_FILE_ENV = "TIMESTEP_DEMO_CALLS_FILE"
"""Where the demo's tools log each execution: the demo counts them across the worker's lives."""


def _count_call(name: str) -> None:
    calls_file = os.environ.get(CALLS_FILE_ENV)
    if calls_file:
        with open(calls_file, "a") as f:
            f.write(name + "\n")


@function_tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    _count_call("get_weather")
    return f"{city}: 21°C, clear sky"


@function_tool(needs_approval=True)
def book_table(restaurant: str, time: str) -> str:
    """Book a restaurant table (a human must approve)."""
    _count_call("book_table")
    return f"Table booked at {restaurant} for {time}."


demo_agent = Agent(
    name="timestep-demo",
    instructions="You plan evenings. Check the weather, then book a table.",
    tools=[get_weather, book_table],
)
crash_demo_agent = Agent(
    name="timestep-crash-demo",
    instructions="Answer with the weather.",
    tools=[get_weather],
)
timestep.register_agent(demo_agent, ref="timestep.cli._demo:demo_agent")
timestep.register_agent(crash_demo_agent, ref="timestep.cli._demo:crash_demo_agent")


def _demo_script() -> list[Any]:
    return [
        function_call("get_weather", {"city": "Lisbon"}),
        function_call("book_table", {"restaurant": "Casa Timestep", "time": "19:30"}),
        text(
            "It is 21°C and clear in Lisbon, and your table at Casa Timestep is booked "
            "for 19:30. Enjoy your evening!",
            chunk_delay=0.03,
        ),
    ]


def _crash_script() -> list[Any]:
    return [
        function_call("get_weather", {"city": "Porto"}),
        text("Porto: 21°C and clear. (Finished by the restarted worker.)"),
    ]


DEMO_SCRIPT = _demo_script
CRASH_SCRIPT = _crash_script


async def run_demo(*, model: str | None, data_dir: Path, assume_yes: bool, console: Console) -> int:
    if not assume_yes and not sys.stdin.isatty():
        Console(stderr=True).print(
            "timestep demo asks you to approve a tool call: run it in a terminal, "
            "or pass --yes to approve by itself",
            soft_wrap=True,
        )
        return 2
    data_dir.mkdir(parents=True, exist_ok=True)
    database_url = f"sqlite:///{(data_dir / 'demo.sqlite').resolve()}"
    calls_file = data_dir / "demo-tool-calls.log"
    calls_file.write_text("")
    os.environ[CALLS_FILE_ENV] = str(calls_file.resolve())

    fake: FakeModelServer | None = None
    if model:
        demo_agent.model = model
        console.print(f"[bold]Model:[/] {model} (real provider; keys from the environment)")
    else:
        fake = FakeModelServer(responder=conversation_script(_demo_script()))
        fake.start()
        timestep.set_model_provider(fake.provider(api_key="demo"))
        set_tracing_disabled(True)  # nothing to export traces to without a key
        console.print(
            "[bold yellow]Model:[/] a scripted OpenAI-compatible fake at "
            f"{fake.base_url} (offline demo; pass --model gpt-4.1 for a real one)"
        )
    timestep.configure_dbos(database_url, log_level="WARNING")  # DBOS's launch log is noise here
    timestep.ensure_dbos_launched()
    console.print(f"[bold]Storage:[/] embedded SQLite at {database_url[len('sqlite:///') :]}\n")
    try:
        code = await _approval_part(console, assume_yes)
        if fake is not None and code == 0:
            # DBOS lets any live process on the database take over a dead worker's runs; this
            # one steps aside, so the restarted worker is the one that recovers its run.
            reset_process()
            code = await _crash_part(console, database_url, data_dir)
        return code
    finally:
        if fake is not None:
            fake.stop()


async def _approval_part(console: Console, assume_yes: bool) -> int:
    console.rule("1. A durable run, streamed live, waiting for your approval")
    session = timestep.Session()
    handle = await timestep.start_agent_run(
        demo_agent,
        "Plan my evening in Lisbon and book a table.",
        session,
        stream=True,
        wait_for_approvals=True,
    )
    console.print(f"workflow id: [cyan]{handle.workflow_id}[/]")
    reader = asyncio.create_task(_print_stream(console, handle.workflow_id))
    with console.status("waiting for the agent..."):
        pending = await _wait_pending(handle)
    for approval in pending:
        console.print(
            f"\n[bold magenta]Approval needed:[/] {approval['tool_name']}({approval['arguments']})"
        )
        ok = assume_yes or Confirm.ask("Approve?", default=True)
        if ok:
            await timestep.approve(handle.workflow_id, approval["call_id"], by="demo")
        else:
            await timestep.reject(handle.workflow_id, approval["call_id"], "The user declined.")
        console.print("approved" if ok else "rejected")
    result = await handle.result()
    await reader
    console.print(f"\n[bold green]Final output:[/] {result.final_output}")
    _print_usage(console, result)
    return 0


async def _wait_pending(handle: timestep.AgentRunHandle) -> list[PendingApproval]:
    while True:
        pending = await timestep.get_pending_approvals(handle.workflow_id)
        if pending:
            return pending
        if await handle.status() != "PENDING":
            return []
        await asyncio.sleep(0.05)


async def _print_stream(console: Console, workflow_id: str) -> None:
    async for event in timestep.stream_run_events(workflow_id, demo_agent):
        if isinstance(event, RawResponsesStreamEvent):
            if isinstance(event.data, ResponseTextDeltaEvent):
                console.print(event.data.delta, end="", highlight=False)
        elif isinstance(event, RunItemStreamEvent) and isinstance(event.item, ToolCallItem):
            raw = event.item.raw_item
            if isinstance(raw, ResponseFunctionToolCall):
                console.print(f"[dim]→ calling {raw.name}({raw.arguments})[/]")
        elif isinstance(event, RunItemStreamEvent) and isinstance(event.item, ToolCallOutputItem):
            console.print(f"[dim]← {event.item.output}[/]")
    console.print()


def _print_usage(console: Console, result: timestep.AgentRunResult) -> None:
    usage = result.usage
    table = Table(title="Usage", show_header=True)
    for column in ("model requests", "input tokens", "output tokens", "total tokens"):
        table.add_column(column, justify="right")
    table.add_row(
        *(
            str(v)
            for v in (usage.requests, usage.input_tokens, usage.output_tokens, usage.total_tokens)
        )
    )
    console.print(table)


async def _crash_part(console: Console, database_url: str, data_dir: Path) -> int:
    console.rule("2. kill -9 in the middle of a run, then recover")
    calls_file = Path(os.environ[CALLS_FILE_ENV])
    calls_file.write_text("")
    workflow_id = f"demo-crash-{uuid.uuid4().hex[:8]}"
    with FakeModelServer(responder=conversation_script(_crash_script())) as fake:
        command = [
            sys.executable,
            "-m",
            "timestep.cli._demo_worker",
            database_url,
            fake.base_url,
            workflow_id,
            str(calls_file),
        ]
        with WorkerProcess(command) as worker:
            # Kill the worker when it asks the model for its second turn: the tool step is done.
            fake.on_request(lambda request: request.index == 1 and worker.kill())
            worker.start()
            with console.status("worker running; it will be killed at its second model call"):
                worker.wait_killed(timeout=60)
            console.print("[bold red]worker killed with SIGKILL[/] after the get_weather step")
            fake.on_request(None)
            worker.restart()
            with console.status("restarted worker recovering the run..."):
                worker.wait_for_line("RESULT", timeout=60)
                worker.wait(timeout=30)
    output = worker.output().split("RESULT ", 1)[-1].strip().splitlines()[0]
    console.print(f"[bold green]Recovered run finished:[/] {output}")
    tool_runs = calls_file.read_text().split().count("get_weather")
    console.print(
        f"get_weather ran {tool_runs} time(s); the model was asked "
        f"{len(fake.requests)} time(s) (the killed request was never answered)."
    )
    console.print(
        f"\nRuns, steps and states are in {database_url[len('sqlite:///') :]}; try "
        f"[cyan]timestep runs show {workflow_id}[/] with TIMESTEP_DATABASE_URL={database_url}"
    )
    return 0 if tool_runs == 1 else 1
