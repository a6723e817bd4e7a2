"""Durable MCP: real servers built with the official ``mcp`` package, on 127.0.0.1.

Each MCP tool call is a step ``mcp:<server>:<tool>`` and each tool listing a step
``mcp:<server>:list_tools``; the same agent through plain ``Runner`` and through Timestep gives
the same items, tool outputs and request bodies; a worker SIGKILLed at each step boundary (over
streamable HTTP and stdio) is restarted and every tool runs exactly once; a server down at
recovery fails the run with ``MCPServerUnavailableError``; MCP approvals wait durably like
function tools, across a restart, and are answered from the command line; a hosted MCP tool's
approval requests are answered durably as under ``Runner``. All on both databases.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, HostedMCPTool, RunConfig, Runner, function_tool
from agents.mcp import MCPServerStreamableHttp
from dbos import DBOS

import timestep
from tests.test_runner_parity import _outcome
from timestep import TimestepSerializer
from timestep.testing import (
    FakeModelServer,
    WorkerProcess,
    conversation_script,
    function_call,
    function_calls,
    output_items,
    text,
)

SHOP = Path(__file__).parent / "workers" / "mcp_shop_server.py"
WORKER = Path(__file__).parent / "workers" / "mcp_worker.py"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ShopServer:
    """``mcp_shop_server.py`` over streamable HTTP, in a process of its own (it outlives the
    workers the tests kill); its log counts every tool execution."""

    def __init__(self, log: Path, toolset: str = "v1") -> None:
        self.log, self.toolset = log, toolset
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def start(self) -> ShopServer:
        self.process = subprocess.Popen(
            [sys.executable, str(SHOP), str(self.log), "http", str(self.port), self.toolset],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        raise AssertionError("the MCP server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [line.split() for line in self.log.read_text().splitlines()]


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[ShopServer]:
    server = ShopServer(tmp_path / "shop.log").start()
    try:
        yield server
    finally:
        server.stop()


@function_tool
def lookup(item: str) -> str:
    """Look an item up in the catalogue."""
    return f"{item}: in stock"


# Two MCP calls at once (structured content), then one the server answers with isError.
SCRIPT = [
    function_calls(("charge", {"amount": 5}), ("ship", {"item": "book"})),
    function_calls(("refund", {"order": "A1"}), ("lookup", {"item": "book"})),
    text("charged and shipped; the refund was refused"),
]


def _shop_agent(url: str, **server_options: Any) -> tuple[Agent[Any], MCPServerStreamableHttp]:
    server = MCPServerStreamableHttp(
        name="shop", params={"url": url}, use_structured_content=True, **server_options
    )
    agent = Agent(
        name="mcp-parity",
        instructions="Use the shop.",
        tools=[lookup],
        mcp_servers=[server],
        mcp_config={"convert_schemas_to_strict": True},
    )
    return agent, server


@pytest.mark.usefixtures("durable")
async def test_an_mcp_agent_runs_like_runner_and_each_call_is_a_step(shop: ShopServer):
    outcomes = {}
    for side in ("plain", "durable", "streamed"):
        agent, server = _shop_agent(shop.url)
        with FakeModelServer(responder=conversation_script(SCRIPT)) as fake:
            config = RunConfig(model_provider=fake.provider())
            async with server:
                if side == "plain":
                    result = await Runner.run(agent, "go", run_config=config)
                elif side == "durable":
                    result = await timestep.run_agent(agent, "go", run_config=config)
                    durable = result
                else:
                    streamed = await timestep.run_agent(agent, "go", run_config=config, stream=True)
                    async for _ in streamed.stream_events():
                        pass
                    result = await streamed.wait()
            outcomes[side] = _outcome(result, fake.requests)
    assert outcomes["durable"] == outcomes["plain"]
    assert outcomes["streamed"]["items"] == outcomes["plain"]["items"]
    charge = next(t for t in outcomes["plain"]["requests"][0][1]["tools"] if t["name"] == "charge")
    assert charge["strict"] is True  # convert_schemas_to_strict, as under the SDK
    outputs = [i[2][1] for i in outcomes["plain"]["items"] if i[0] == "ToolCallOutputItem"]
    assert outputs[1] == '{"item": "book", "tracking": "TRK-BOOK"}'  # structured content
    assert "order A1 cannot be refunded" in str(outputs[2])  # the server's isError content

    steps = await DBOS.list_workflow_steps_async(durable.workflow_id)
    names = [s["function_name"] for s in steps]
    assert Counter(n for n in names if n.startswith("mcp:")) == {
        "mcp:shop:list_tools": 3,  # one listing per turn
        "mcp:shop:charge": 1,
        "mcp:shop:ship": 1,
        "mcp:shop:refund": 1,
    }
    assert "tool:lookup" in names and not any(n.startswith("tool:charge") for n in names)
    # Each durable call carried its idempotency key (<workflow id>:<step id>) in _meta.
    step_ids = {s["function_name"]: s["function_id"] for s in steps}
    durable_calls = [c for c in shop.calls() if c[2].startswith(f"{durable.workflow_id}:")]
    assert sorted(c[2] for c in durable_calls) == sorted(
        f"{durable.workflow_id}:{step_ids[f'mcp:shop:{tool}']}"
        for tool in ("charge", "ship", "refund")
    )

    # The same workflow id again replays: no tool runs again, not even listing them.
    before = len(shop.calls())
    again = await timestep.run_agent_workflow(
        agent, "go", workflow_id=durable.workflow_id, run_config=config
    )
    assert again.final_output == durable.final_output
    assert len(shop.calls()) == before


def _worker(
    database_url: str,
    fake: FakeModelServer,
    tmp_path: Path,
    workflow_id: str,
    transport: str = "http",
    target: str = "",
    *options: str,
) -> WorkerProcess:
    return WorkerProcess(
        [
            sys.executable,
            str(WORKER),
            database_url,
            fake.base_url,
            str(tmp_path),
            workflow_id,
            transport,
            target,
            *options,
        ]
    )


# One MCP call, then another MCP call and a function tool at once.
CRASH_SCRIPT = [
    function_call("charge", {"amount": 5}),
    function_calls(("ship", {"item": "book"}), ("lookup", {"item": "book"})),
    text("paid, shipped and looked up"),
]


def _tools_offered(request: Any) -> list[str]:
    return sorted(tool["name"] for tool in request.json.get("tools", []))


# The MCP calls each kill point finds finished: killed while the model is asked for turn N.
FINISHED_BEFORE_TURN = {0: [], 1: ["charge"], 2: ["charge", "ship"]}


@pytest.mark.parametrize("kill_at", sorted(FINISHED_BEFORE_TURN), ids=lambda k: f"turn{k}")
def test_a_worker_killed_at_each_step_boundary_runs_each_tool_once(
    database_url: str, tmp_path: Path, shop: ShopServer, kill_at: int
):
    """Killed at each boundary between steps (the model asked for each turn in turn, the MCP
    and function calls before it finished). The server also gains a tool while the worker is
    down: the turns the killed worker had listed are replayed with the tools it saw, the later
    ones see the new one."""
    _crash_and_recover(database_url, tmp_path, shop, "http", kill_at)


@pytest.mark.parametrize("kill_at", sorted(FINISHED_BEFORE_TURN), ids=lambda k: f"turn{k}")
def test_a_worker_killed_at_each_step_boundary_over_stdio_runs_each_tool_once(
    database_url: str, tmp_path: Path, kill_at: int
):
    """The same over stdio (the worker spawns the server; the kill takes it down too)."""
    shop = ShopServer(tmp_path / "shop.log")
    _crash_and_recover(database_url, tmp_path, shop, "stdio", kill_at)


def _crash_and_recover(
    database_url: str, tmp_path: Path, shop: ShopServer, transport: str, kill_at: int
):
    workflow_id = f"mcp-crash-{transport}-{uuid.uuid4().hex[:8]}"
    target = shop.url if transport == "http" else str(shop.log)
    with FakeModelServer(responder=conversation_script(CRASH_SCRIPT)) as fake:
        worker = _worker(database_url, fake, tmp_path, workflow_id, transport, target)
        with worker:
            # Killed when it asks for turn `kill_at`: every step before it is recorded.
            fake.on_request(lambda req: req.index == kill_at and worker.kill())
            worker.start()
            worker.wait_killed(timeout=60)
            assert sorted(c[0] for c in shop.calls()) == FINISHED_BEFORE_TURN[kill_at]
            fake.on_request(None)
            if transport == "http":
                shop.stop()
                shop.toolset = "v2"
                shop.start()
            worker.restart()
            line = worker.wait_for_line("RESULT", timeout=120)
            assert worker.wait(timeout=30) == 0
    assert "paid, shipped and looked up" in line
    calls = shop.calls()
    assert Counter(c[0] for c in calls) == {"charge": 1, "ship": 1}
    assert all(c[2].startswith(f"{workflow_id}:") for c in calls)
    lookups = (tmp_path / "calls.log").read_text().splitlines()
    assert len(lookups) == 1
    # Three conversation positions, the killed one asked twice, with the same tools.
    requests = fake.requests
    assert len(requests) == 4
    v1 = ["charge", "lookup", "refund", "ship"]
    v2 = sorted([*v1, "gift_wrap"]) if transport == "http" else v1
    assert [_tools_offered(r) for r in requests] == [
        v1 if index <= kill_at + 1 else v2 for index in range(4)
    ]


def test_a_server_down_at_recovery_fails_the_run_naming_it(
    database_url: str, tmp_path: Path, shop: ShopServer
):
    workflow_id = f"mcp-down-{uuid.uuid4().hex[:8]}"
    with FakeModelServer(responder=conversation_script(CRASH_SCRIPT)) as fake:
        worker = _worker(database_url, fake, tmp_path, workflow_id, "http", shop.url)
        with worker:
            fake.on_request(lambda req: req.index == 1 and worker.kill())
            worker.start()
            worker.wait_killed(timeout=60)
            fake.on_request(None)
            shop.stop()
            worker.restart()
            line = worker.wait_for_line("ERROR", timeout=90)
            assert worker.wait(timeout=30) == 0
    assert line.startswith("ERROR MCPServerUnavailableError MCP server 'shop' is unavailable")
    assert "after 3 attempt(s)" in line
    status = _run_status(database_url, workflow_id)
    assert status == "ERROR"


def _run_status(database_url: str, workflow_id: str) -> str | None:
    from dbos import DBOSClient

    client = DBOSClient(system_database_url=database_url, serializer=TimestepSerializer())
    try:
        found = client.list_workflows(workflow_ids=[workflow_id])
        return found[0].status if found else None
    finally:
        client.destroy()


@pytest.mark.usefixtures("durable")
async def test_an_mcp_approval_waits_durably_like_a_function_tool(fake_model, shop: ShopServer):
    fake_model.add_turns(
        function_call("charge", {"amount": 7}, call_id="call_charge"),
        text("charged 7 EUR"),
    )
    agent, server = _shop_agent(shop.url, require_approval={"always": {"tool_names": ["charge"]}})
    async with server:
        handle = await timestep.start_agent_run(agent, "pay", wait_for_approvals=True)
        deadline = time.monotonic() + 30
        while not (pending := await timestep.get_pending_approvals(handle.workflow_id)):
            assert time.monotonic() < deadline, "no pending approval published"
            await asyncio.sleep(0.02)
        assert [(p["call_id"], p["tool_name"]) for p in pending] == [("call_charge", "charge")]
        listed = await timestep.list_pending_approvals()
        assert any(row["workflow_id"] == handle.workflow_id for row in listed)
        assert shop.calls() == []  # nothing charged while waiting
        await timestep.approve(handle.workflow_id, "call_charge", by="alice")
        result = await handle.result()
    assert result.final_output == "charged 7 EUR"
    assert [c[:2] for c in shop.calls()] == [["charge", "7"]]
    steps = await DBOS.list_workflow_steps_async(handle.workflow_id)
    assert [s["function_name"] for s in steps].count("mcp:shop:charge") == 1


def _cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The ``timestep`` command line, in a process of its own (it never launches DBOS)."""
    env = {**os.environ, "TIMESTEP_DATABASE_URL": database_url}
    done = subprocess.run(
        [str(Path(sys.executable).with_name("timestep")), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_an_mcp_approval_survives_a_restart_and_is_answered_from_the_cli(
    database_url: str, tmp_path: Path, shop: ShopServer
):
    """The worker waits for an approval of the server's ``charge``, is SIGKILLed, restarts;
    the approval comes from the command line, another process: the charge runs once."""
    workflow_id = f"mcp-approve-{uuid.uuid4().hex[:8]}"
    script = [function_call("charge", {"amount": 9}, call_id="call_charge"), text("charged 9")]
    with FakeModelServer(responder=conversation_script(script)) as fake:
        worker = _worker(database_url, fake, tmp_path, workflow_id, "http", shop.url, "approval")
        with worker:
            worker.start()
            pending = _wait_for_pending(database_url, workflow_id)
            assert [(p["call_id"], p["tool_name"]) for p in pending] == [("call_charge", "charge")]
            worker.kill()
            worker.wait_killed(timeout=30)
            worker.restart()
            worker.wait_for_line("LAUNCHED", timeout=60)
            assert shop.calls() == []  # nothing charged while waiting
            _cli(database_url, "approvals", "approve", workflow_id, "call_charge", "--by", "carol")
            line = worker.wait_for_line("RESULT", timeout=120)
            assert worker.wait(timeout=30) == 0
    assert "charged 9" in line
    assert [c[:2] for c in shop.calls()] == [["charge", "9"]]
    assert len(fake.requests) == 2  # the first turn was not asked again


def _wait_for_pending(database_url: str, workflow_id: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        listed = json.loads(_cli(database_url, "approvals", "list", "--json").stdout)
        mine = [row for row in listed if row["workflow_id"] == workflow_id]
        if mine:
            return mine
        time.sleep(0.5)
    raise AssertionError("no pending approval was listed")


@pytest.mark.usefixtures("durable")
async def test_an_unreachable_server_is_retried_then_fails_the_run_with_a_typed_error(fake_model):
    fake_model.set_default(text("unused"))
    server = MCPServerStreamableHttp(
        name="gone", params={"url": f"http://127.0.0.1:{_free_port()}/mcp"}
    )
    timestep.declare_mcp_server(server, max_attempts=2, interval_seconds=0.05, backoff_rate=1.0)
    agent = Agent(name="mcp-gone", instructions="Use the tools.", mcp_servers=[server])
    workflow_id = f"mcp-gone-{uuid.uuid4().hex[:8]}"
    with pytest.raises(timestep.MCPServerUnavailableError) as raised:
        await timestep.run_agent_workflow(agent, "go", workflow_id=workflow_id)
    assert raised.value.server_name == "gone"
    assert str(raised.value).startswith("MCP server 'gone' is unavailable after 2 attempt(s): ")
    assert fake_model.requests == []  # the run failed before asking the model anything
    steps = await DBOS.list_workflow_steps_async(workflow_id)
    assert [(s["function_name"], type(s["error"]).__name__) for s in steps] == [
        ("mcp:gone:list_tools", "MCPServerUnavailableError")
    ]
    # The recorded error comes back as itself, from the record.
    with pytest.raises(timestep.MCPServerUnavailableError) as again:
        await timestep.run_agent_workflow(agent, "go", workflow_id=workflow_id)
    assert str(again.value) == str(raised.value)


HOSTED_APPROVAL = output_items(
    {
        "type": "mcp_approval_request",
        "id": "mcpr_1",
        "server_label": "shop",
        "name": "charge",
        "arguments": '{"amount": 5}',
    }
)


def _hosted_respond(request: Any) -> Any:
    """The provider asks for approval of its hosted MCP call, then answers by the decision."""
    items = request.json.get("input", [])
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and item.get("type") == "mcp_approval_response":
            return text("charged at the provider" if item["approve"] else "not charged")
    return HOSTED_APPROVAL


def _hosted_agent() -> Agent[Any]:
    tool = HostedMCPTool(
        tool_config={
            "type": "mcp",
            "server_label": "shop",
            "server_url": "https://shop.invalid/mcp",
            "require_approval": "always",
        }
    )
    return Agent(name="hosted-mcp", instructions="Use the shop.", tools=[tool])


@pytest.mark.usefixtures("durable")
@pytest.mark.parametrize("approve", [True, False], ids=["approved", "rejected"])
async def test_a_hosted_mcp_approval_request_is_answered_durably_as_under_runner(approve: bool):
    """A hosted MCP tool's approval request (the provider runs the tool) waits like a function
    tool's approval, and the decision reaches the provider as the SDK sends it."""
    with FakeModelServer(responder=_hosted_respond) as fake:
        config = RunConfig(model_provider=fake.provider())
        agent = _hosted_agent()
        first = await Runner.run(agent, "pay", run_config=config)
        state = first.to_state()
        if approve:
            state.approve(first.interruptions[0])
        else:
            state.reject(first.interruptions[0], rejection_message="no")
        plain = await Runner.run(agent, state, run_config=config)
        plain_requests = [r.json for r in fake.requests]
    with FakeModelServer(responder=_hosted_respond) as fake:
        config = RunConfig(model_provider=fake.provider())
        handle = await timestep.start_agent_run(
            _hosted_agent(), "pay", run_config=config, wait_for_approvals=True
        )
        deadline = time.monotonic() + 30
        while not (pending := await timestep.get_pending_approvals(handle.workflow_id)):
            assert time.monotonic() < deadline, "no pending approval published"
            await asyncio.sleep(0.02)
        assert [(p["call_id"], p["tool_name"]) for p in pending] == [("mcpr_1", "charge")]
        if approve:
            await timestep.approve(handle.workflow_id, "mcpr_1", by="alice")
        else:
            await timestep.reject(handle.workflow_id, "mcpr_1", "no", by="alice")
        durable = await handle.result()
        durable_requests = [r.json for r in fake.requests]
    assert durable.final_output == plain.final_output
    assert durable_requests == plain_requests
