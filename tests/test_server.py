"""The HTTP API, driven over real HTTP: uvicorn on a free 127.0.0.1 port, an httpx client.

The server runs in a thread of the test process (sharing its DBOS, launched on SQLite or
Postgres by the ``durable`` fixture) or, for ``timestep serve``, as a subprocess. Approvals
also reach a worker that is a separate process, through the database.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from agents import Agent, function_tool

import timestep
from timestep._core.process import process_state
from timestep._core.runtime import tables_engine
from timestep._core.settings import Settings
from timestep._core.tables import session_items_table
from timestep.errors import ConfigurationError, InputTooLargeError, StateTooLargeError
from timestep.runstate import detect_format, to_python_json
from timestep.server import ServerSettings, create_app, serve
from timestep.testing import (
    FakeModelServer,
    WorkerProcess,
    conversation_script,
    function_call,
    text,
)

TOKEN = f"test-token-{uuid.uuid4().hex}"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WORKERS = Path(__file__).parent / "workers"

refunds: list[str] = []


@function_tool(needs_approval=True)
def refund(order_id: str) -> str:
    """Refund an order (a human must approve)."""
    refunds.append(order_id)
    return f"refunded {order_id}"


SUPPORT = Agent(name="server-support", instructions="Help.", tools=[refund])
GREETER = Agent(name="server-greeter", instructions="Greet.")
REF_AGENT = Agent(name="server-ref-agent", instructions="Imported by reference.")
NOT_AN_AGENT = "a string"
timestep.register_agent(SUPPORT)
timestep.register_agent(GREETER)


class ServerThread:
    """uvicorn serving ``app`` in a thread, on a free port of ``host``: for sync tests, whose
    blocking client would otherwise block the server."""

    def __init__(self, app: Any, host: str = "127.0.0.1") -> None:
        self.server = _uvicorn(app, host)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.port = 0

    def url(self, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the server failed to start (see the log above)")
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start within 60 s")
            time.sleep(0.01)
        self.port = _bound_port(self.server)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


class Served:
    def __init__(self, port: int) -> None:
        self.port = port

    def url(self, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}"


def _uvicorn(app: Any, host: str) -> uvicorn.Server:
    config = uvicorn.Config(
        app, host=host, port=0, log_level="warning", timeout_graceful_shutdown=2
    )
    return uvicorn.Server(config)


def _bound_port(server: uvicorn.Server) -> int:
    return server.servers[0].sockets[0].getsockname()[1]


@asynccontextmanager
async def served(app: Any, host: str = "127.0.0.1") -> AsyncIterator[Served]:
    """uvicorn serving ``app`` on the test's own event loop (where the runs the server starts
    then execute, beside the model clients they use), on a free port of ``host``."""
    server = _uvicorn(app, host)
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 60
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("the server failed to start (see the log above)")
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not start within 60 s")
        await asyncio.sleep(0.01)
    try:
        yield Served(_bound_port(server))
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def api(durable: str, fake_model: FakeModelServer) -> AsyncIterator[Served]:
    """The API (token auth) on this test's database, its runs answered by ``fake_model``."""
    refunds.clear()
    async with served(create_app(ServerSettings(api_token=TOKEN))) as server:
        yield server


@pytest.fixture
async def client(api: Served) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api.url(), headers=AUTH, timeout=60) as c:
        yield c


async def _wait_run(
    client: httpx.AsyncClient,
    workflow_id: str,
    until: Callable[[dict[str, Any]], bool] = lambda run: (
        run["status"] not in ("PENDING", "ENQUEUED")
    ),
    timeout: float = 60,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = await client.get(f"/runs/{workflow_id}")
        assert response.status_code == 200, response.text
        run = response.json()
        if until(run):
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"run {workflow_id} never got there: {run}")
        await asyncio.sleep(0.05)


def _waiting(run: dict[str, Any]) -> bool:
    return bool(run["pending_approvals"]) or run["status"] != "PENDING"


async def _read_events(
    client: httpx.AsyncClient,
    workflow_id: str,
    *,
    last_event_id: int | None = None,
    limit: int | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """SSE events (with their ids) until the ``end`` event, or until ``limit`` events; then
    the client disconnects."""
    headers = {} if last_event_id is None else {"Last-Event-ID": str(last_event_id)}
    events: list[dict[str, Any]] = []
    end = None
    async with client.stream("GET", f"/runs/{workflow_id}/events", headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        frame: dict[str, str] = {}
        async for line in response.aiter_lines():
            if line.startswith(":"):
                continue
            if line:
                name, _, value = line.partition(":")
                frame[name] = value.removeprefix(" ")
                continue
            if "data" in frame:
                if frame.get("event") == "end":
                    assert "id" not in frame
                    end = json.loads(frame["data"])
                    break
                events.append({"id": frame["id"], **json.loads(frame["data"])})
                if limit is not None and len(events) >= limit:
                    break
            frame = {}
    return events, end


def _position(event_id: str) -> tuple[int, int]:
    offset, _, index = event_id.partition(".")
    return int(offset), int(index or 0)


def _is_tool_output(event: dict[str, Any], call_id: str) -> bool:
    return (
        event["type"] == "run_item_stream_event"
        and event["name"] == "tool_output"
        and event["raw_item"]["call_id"] == call_id
    )


# -- auth -----------------------------------------------------------------------------------


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


async def test_every_route_but_healthz_needs_the_token(api: Served):
    async with httpx.AsyncClient(base_url=api.url(), timeout=30) as anonymous:
        health = await anonymous.get("/healthz")
        assert health.status_code == 200
        assert health.json()["status"] == "ok"
        assert health.json()["database"] in ("sqlite", "postgres")

        spec = (await anonymous.get("/openapi.json", headers=AUTH)).json()
        operations = [
            (method.upper(), _concrete(path))
            for path, item in spec["paths"].items()
            for method in item
            if path != "/healthz"
        ]
        operations.append(("GET", "/openapi.json"))
        assert len(operations) > 15
        for method, path in operations:
            for headers, problem in (
                ({}, "missing bearer token"),
                ({"Authorization": "Bearer wrong-token"}, "invalid bearer token"),
                ({"Authorization": f"Basic {TOKEN}"}, "malformed Authorization header"),
            ):
                response = await anonymous.request(method, path, headers=headers)
                assert response.status_code == 401, (method, path, response.text)
                assert response.headers["www-authenticate"] == "Bearer"
                assert problem in response.json()["detail"]


def test_a_token_is_required_unless_auth_is_turned_off():
    with pytest.raises(ConfigurationError, match="TIMESTEP_API_TOKEN is not set"):
        create_app(ServerSettings(api_token=None))
    with pytest.raises(ConfigurationError, match="only allowed when binding to localhost"):
        serve("0.0.0.0", 0, auth=False)
    result = subprocess.run(
        [sys.executable, "-c", "from timestep.cli import main; main()", "serve", "--no-auth"]
        + ["--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "only allowed when binding to localhost" in " ".join(result.stderr.split())


def test_a_short_token_is_refused_at_start_up_unless_allowed(monkeypatch: pytest.MonkeyPatch):
    for short in ("x", "a" * 31):
        with pytest.raises(ConfigurationError, match=rf"too short \({len(short)} characters"):
            create_app(ServerSettings(api_token=short))
    assert create_app(ServerSettings(api_token="a" * 32)) is not None
    assert create_app(ServerSettings(api_token="x", allow_short_token=True)) is not None
    monkeypatch.setenv("TIMESTEP_API_ALLOW_SHORT_TOKEN", "true")
    assert ServerSettings().allow_short_token is True

    serve_command = [sys.executable, "-c", "from timestep.cli import main; main()", "serve"]
    env = {**os.environ, "TIMESTEP_API_TOKEN": "x", "TIMESTEP_API_ALLOW_SHORT_TOKEN": "false"}
    refused = subprocess.run(
        [*serve_command, "--port", "0"], capture_output=True, text=True, timeout=60, env=env
    )
    assert refused.returncode == 1, refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1, refused.stderr
    assert "TIMESTEP_API_TOKEN is too short (1 characters, at least 32 required" in lines[0]
    assert "Uvicorn running" not in refused.stderr


def test_settings_read_timestep_variables_only(monkeypatch: pytest.MonkeyPatch):
    for name, value in {"HOST": "0.0.0.0", "PORT": "1", "AUTH": "false"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TIMESTEP_API_PORT", "9000")
    monkeypatch.setenv("TIMESTEP_API_TOKEN", "from-the-environment")
    settings = ServerSettings()
    assert (settings.host, settings.port, settings.auth) == ("127.0.0.1", 9000, True)
    assert settings.api_token is not None
    assert settings.api_token.get_secret_value() == "from-the-environment"
    assert ServerSettings(host="::1", auth=False).auth is False


def _non_loopback_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks a route
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if ipaddress.ip_address(address).is_loopback else address


async def test_no_auth_serves_loopback_clients_only(durable: str):
    app = create_app(ServerSettings(auth=False, api_token=None))
    async with served(app, host="0.0.0.0") as server, httpx.AsyncClient(timeout=30) as anonymous:
        local = await anonymous.get(f"{server.url()}/approvals")
        assert local.status_code == 200, local.text
        address = _non_loopback_address()
        if address is None:
            pytest.skip("this host has no non-loopback address to connect from")
        remote = await anonymous.get(f"{server.url(address)}/approvals")
        assert remote.status_code == 403
        assert "only loopback clients" in remote.json()["detail"]


# -- runs -----------------------------------------------------------------------------------


async def test_post_run_then_get_its_result(client: httpx.AsyncClient, fake_model):
    fake_model.add_turns(text("Hello over HTTP."))
    response = await client.post(
        "/runs", json={"agent": "server-greeter", "input": "hi", "session_id": "http-s1"}
    )
    assert response.status_code == 201, response.text
    created = response.json()
    workflow_id = created["workflow_id"]
    assert response.headers["location"] == f"/runs/{workflow_id}"
    assert created["agent"] == "server-greeter"
    assert created["session_id"] == "http-s1"
    run = await _wait_run(client, workflow_id)
    assert run["status"] == "SUCCESS"
    assert run["final_output"] == "Hello over HTTP."
    assert run["usage"]["requests"] == 1
    assert run["error"] is None
    listed = (await client.get("/runs", params={"status": "SUCCESS", "limit": 100})).json()
    assert isinstance(listed, list), listed
    assert workflow_id in [r["workflow_id"] for r in listed]


async def test_post_run_is_idempotent(client: httpx.AsyncClient, fake_model):
    fake_model.add_turns(text("Only once."), text("Keyed once."))
    workflow_id = f"http-idem-{uuid.uuid4().hex[:8]}"
    body = {"agent": "server-greeter", "input": "hi", "workflow_id": workflow_id}
    first = await client.post("/runs", json=body)
    assert first.status_code == 201, first.text
    await _wait_run(client, workflow_id)
    again = await client.post("/runs", json=body)
    assert again.status_code == 200, again.text
    assert again.json()["workflow_id"] == workflow_id
    assert again.json()["final_output"] == "Only once."

    key = f"http-key-{uuid.uuid4().hex[:8]}"
    keyed = {"agent": "server-greeter", "input": "hello"}
    by_key = await client.post("/runs", json=keyed, headers={"Idempotency-Key": key})
    assert by_key.status_code == 201, by_key.text
    assert by_key.json()["workflow_id"] == key
    await _wait_run(client, key)
    retried = await client.post("/runs", json=keyed, headers={"Idempotency-Key": key})
    assert retried.status_code == 200
    assert retried.json()["final_output"] == "Keyed once."
    assert len(fake_model.requests) == 2  # one model call per run, none for the retries

    other = await client.post("/runs", json={**body, "input": "something else"})
    assert other.status_code == 409
    assert "input" in other.json()["detail"]
    mismatch = await client.post("/runs", json=body, headers={"Idempotency-Key": key})
    assert mismatch.status_code == 422
    assert mismatch.json()["errors"][0]["loc"] == ["header", "Idempotency-Key"]


@asynccontextmanager
async def ref_client(prefixes: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app that imports agent references from modules under ``prefixes``."""
    settings = ServerSettings(api_token=TOKEN, allow_agent_refs=True, agent_ref_prefixes=prefixes)
    async with (
        served(create_app(settings)) as server,
        httpx.AsyncClient(base_url=server.url(), headers=AUTH, timeout=60) as c,
    ):
        yield c


def _agent_module(directory: Path, name: str, body: str) -> str:
    """Write module ``name`` (importable from ``directory``); importing it appends its name to
    ``imported.log``, so a test sees whether it ran."""
    log = directory / "imported.log"
    (directory / f"{name}.py").write_text(
        "from agents import Agent\n"
        "import timestep\n"
        f"open({str(log)!r}, 'a').write({name!r} + '\\n')\n" + body
    )
    return name


async def test_agents_by_module_reference(durable: str, fake_model):
    fake_model.add_turns(text("Imported."))
    async with ref_client(__name__) as client:
        response = await client.post(
            "/runs", json={"agent": f"{__name__}:REF_AGENT", "input": "hi"}
        )
        assert response.status_code == 201, response.text
        run = await _wait_run(client, response.json()["workflow_id"])
        assert (run["agent"], run["final_output"]) == ("server-ref-agent", "Imported.")

        wrong = await client.post("/runs", json={"agent": f"{__name__}:NOT_AN_AGENT", "input": "x"})
        assert wrong.status_code == 422
        assert "is a str, not an agents.Agent" in wrong.json()["detail"]
        missing = await client.post(
            "/runs", json={"agent": f"{__name__}.no_such_module:agent", "input": "x"}
        )
        assert missing.status_code == 422
        assert f"cannot import agent '{__name__}.no_such_module:agent'" in missing.json()["detail"]


async def test_agent_references_are_off_by_default(
    client: httpx.AsyncClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    assert ServerSettings().allow_agent_refs is False
    assert "this" not in sys.modules  # the Zen of Python, printed on import
    module = _agent_module(
        tmp_path, f"refs_off_{uuid.uuid4().hex[:8]}", "agent = Agent(name='refs-off')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    for route, body in (
        ("/runs", {"agent": f"{module}:agent", "input": "hi"}),
        ("/runs", {"agent": "this:s", "input": "hi"}),
        (
            "/schedules",
            {"name": "refs-off", "agent": f"{module}:agent", "input": "x", "cron": "0 0 0 1 1 *"},
        ),
    ):
        refused = await client.post(route, json=body)
        assert refused.status_code == 403, refused.text
        assert "agent references are off" in refused.json()["detail"]
    assert module not in sys.modules and "this" not in sys.modules
    assert not (tmp_path / "imported.log").exists()
    runs = (await client.get("/runs", params={"limit": 100})).json()
    assert not [r for r in runs if r["agent"] == "refs-off"]


async def test_agent_references_import_only_under_the_prefixes(
    durable: str, fake_model, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.syspath_prepend(str(tmp_path))
    tag = uuid.uuid4().hex[:8]
    package = tmp_path / f"allowed_{tag}"
    package.mkdir()
    (package / "__init__.py").write_text("")
    inside = _agent_module(package, "agents_mod", f"agent = Agent(name='ref-inside-{tag}')\n")
    outside = _agent_module(tmp_path, f"allowed_{tag}x", "agent = Agent(name='ref-outside')\n")
    assert inside == "agents_mod"
    fake_model.add_turns(text("From the allowed module."))
    async with ref_client(f"allowed_{tag}, other.prefix") as client:
        for ref in (f"allowed_{tag}x:agent", "this:s", "other:agent"):
            refused = await client.post("/runs", json={"agent": ref, "input": "hi"})
            assert refused.status_code == 403, refused.text
            assert "is not under TIMESTEP_API_AGENT_REF_PREFIXES" in refused.json()["detail"]
            assert ref.partition(":")[0] not in sys.modules
        assert not (tmp_path / "imported.log").exists()

        ok = await client.post(
            "/runs", json={"agent": f"allowed_{tag}.agents_mod:agent", "input": "hi"}
        )
        assert ok.status_code == 201, ok.text
        run = await _wait_run(client, ok.json()["workflow_id"])
        assert (run["agent"], run["final_output"]) == (
            f"ref-inside-{tag}",
            "From the allowed module.",
        )
        assert (package / "imported.log").read_text().split() == ["agents_mod"]
        assert outside not in sys.modules
    with pytest.raises(ConfigurationError, match="needs TIMESTEP_API_AGENT_REF_PREFIXES"):
        create_app(ServerSettings(api_token=TOKEN, allow_agent_refs=True))
    with pytest.raises(ConfigurationError, match="not 'bad prefix'"):
        create_app(
            ServerSettings(api_token=TOKEN, allow_agent_refs=True, agent_ref_prefixes="bad prefix")
        )


async def test_an_imported_agent_never_replaces_a_served_one(
    durable: str, fake_model, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.syspath_prepend(str(tmp_path))
    tag = uuid.uuid4().hex[:8]
    clash = _agent_module(
        tmp_path, f"clash_{tag}", "agent = Agent(name='server-support', instructions='Impostor.')\n"
    )
    registers = _agent_module(
        tmp_path,
        f"clash_{tag}_registers",
        "timestep.register_agent(Agent(name='server-greeter', instructions='Impostor.'))\n"
        "agent = Agent(name='ref-registers')\n",
    )
    refunds.clear()
    fake_model.add_turns(
        function_call("refund", {"order_id": "R9"}, call_id="call_r9"), text("Refunded R9.")
    )
    async with ref_client(f"clash_{tag},{registers}") as client:
        taken = await client.post("/runs", json={"agent": f"{clash}:agent", "input": "hi"})
        assert taken.status_code == 409, taken.text
        assert "an agent named 'server-support'" in taken.json()["detail"]
        side_effect = await client.post("/runs", json={"agent": f"{registers}:agent", "input": "x"})
        assert side_effect.status_code == 409, side_effect.text
        assert "server-greeter" in side_effect.json()["detail"]
        assert process_state().agents.get("server-support") is SUPPORT
        assert process_state().agents.get("server-greeter") is GREETER

        # The served agent still runs as itself, with its tool.
        created = await client.post("/runs", json={"agent": "server-support", "input": "R9"})
        workflow_id = created.json()["workflow_id"]
        await _wait_run(client, workflow_id, _waiting)
        await client.post(f"/runs/{workflow_id}/approvals/call_r9", json={"decision": "approve"})
        run = await _wait_run(client, workflow_id)
        assert (run["status"], run["final_output"]) == ("SUCCESS", "Refunded R9.")
        assert refunds == ["R9"]


async def test_4xx_bodies_say_what_is_wrong(client: httpx.AsyncClient):
    empty = await client.post("/runs", json={})
    assert empty.status_code == 422
    locs = [e["loc"] for e in empty.json()["errors"]]
    assert ["body", "agent"] in locs and ["body", "input"] in locs
    assert "body.agent: Field required" in empty.json()["detail"]

    unknown = await client.post("/runs", json={"agent": "nobody", "input": "hi"})
    assert unknown.status_code == 422
    assert "unknown agent 'nobody'" in unknown.json()["detail"]
    assert "server-greeter" in unknown.json()["detail"]

    typo = await client.post("/runs", json={"agent": "server-greeter", "input": "hi", "strem": 1})
    assert typo.status_code == 422
    assert "body.strem: Extra inputs are not permitted" in typo.json()["detail"]

    negative = await client.post(
        "/runs", json={"agent": "server-greeter", "input": "hi", "approval_timeout": -1}
    )
    assert negative.status_code == 422
    assert negative.json()["errors"][0]["loc"] == ["body", "approval_timeout"]

    not_json = await client.post(
        "/runs", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert not_json.status_code == 422
    assert "JSON decode error" in not_json.json()["detail"]

    missing = await client.get("/runs/no-such-run")
    assert missing.status_code == 404
    assert missing.json()["detail"] == "no run has workflow id 'no-such-run'"
    for path in ("/runs/no-such-run/events", "/runs/no-such-run/state"):
        assert (await client.get(path)).status_code == 404
    decision = await client.post("/runs/no-such-run/approvals/c1", json={"decision": "approve"})
    assert decision.status_code == 404

    bad_decision = await client.post("/runs/r/approvals/c", json={"decision": "maybe"})
    assert bad_decision.status_code == 422
    approve_with_message = await client.post(
        "/runs/r/approvals/c", json={"decision": "approve", "message": "why"}
    )
    assert approve_with_message.status_code == 422
    assert "message is only for rejections" in approve_with_message.json()["detail"]

    bad_resume = await client.get("/runs/r/events", headers={"Last-Event-ID": "soon"})
    assert bad_resume.status_code == 422
    assert "Last-Event-ID must be the id of an event" in bad_resume.json()["detail"]

    bad_cron = await client.post(
        "/schedules",
        json={"name": "bad-cron", "agent": "server-greeter", "input": "x", "cron": "every day"},
    )
    assert bad_cron.status_code == 422
    assert "invalid cron expression 'every day'" in bad_cron.json()["detail"]


# -- size limits ------------------------------------------------------------------------------


@pytest.fixture
def small_input_limit(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """TIMESTEP_MAX_INPUT_BYTES=2048 for this test (and the settings read again after it)."""
    monkeypatch.setenv("TIMESTEP_MAX_INPUT_BYTES", "2048")
    process_state().reload_settings()
    try:
        yield 2048
    finally:
        monkeypatch.undo()
        process_state().reload_settings()


async def _stored_rows(session_id: str) -> tuple[int, int]:
    """Session items of ``session_id`` and workflows in the database."""
    engine = await tables_engine()
    workflows = "workflow_status" if engine.dialect.name == "sqlite" else "dbos.workflow_status"
    async with engine.connect() as conn:
        items = await conn.execute(
            sa.select(sa.func.count()).where(session_items_table.c.session_id == session_id)
        )
        runs = await conn.execute(sa.text(f"SELECT count(*) FROM {workflows}"))
        return int(items.scalar_one()), int(runs.scalar_one())


async def test_inputs_over_the_limit_are_refused_with_413(
    small_input_limit: int, client: httpx.AsyncClient, fake_model
):
    assert Settings().max_input_bytes == 2048
    assert Settings.model_fields["max_input_bytes"].default == 1024 * 1024
    session_id = f"big-{uuid.uuid4().hex[:8]}"
    before = await _stored_rows(session_id)
    too_big: list[Any] = [
        "x" * 2047,  # 2049 bytes as JSON, with its quotes
        "é" * 1024,  # 2048 characters' worth of UTF-8, plus the quotes
        [{"role": "user", "content": "y" * 2100}],
    ]
    for value in too_big:
        workflow_id = f"big-{uuid.uuid4().hex[:8]}"
        body = {"agent": "server-greeter", "input": value, "session_id": session_id}
        refused = await client.post("/runs", json={**body, "workflow_id": workflow_id})
        assert refused.status_code == 413, refused.text
        detail = refused.json()["detail"]
        assert "\n" not in detail and "over the limit of 2048 (TIMESTEP_MAX_INPUT_BYTES)" in detail
        assert (await client.get(f"/runs/{workflow_id}")).status_code == 404
    schedule = await client.post(
        "/schedules",
        json={
            "name": "big-input",
            "agent": "server-greeter",
            "input": "z" * 3000,
            "cron": "0 0 0 1 1 *",
        },
    )
    assert schedule.status_code == 413, schedule.text
    assert (await client.get("/schedules/big-input")).status_code == 404

    # A body too big to be that of an allowed run is refused before it is read.
    huge = json.dumps({"agent": "server-greeter", "input": "w" * (2048 + 70_000)})
    early = await client.post("/runs", content=huge, headers={"Content-Type": "application/json"})
    assert early.status_code == 413, early.text
    assert "the request body is" in early.json()["detail"]
    assert await _stored_rows(session_id) == before  # nothing was written

    fake_model.add_turns(text("Small enough."))
    fits = await client.post(
        "/runs", json={"agent": "server-greeter", "input": "x" * 2046, "session_id": session_id}
    )
    assert fits.status_code == 201, fits.text
    run = await _wait_run(client, fits.json()["workflow_id"])
    assert run["final_output"] == "Small enough."


async def test_run_agent_refuses_inputs_and_states_over_the_limits(
    small_input_limit: int, durable: str, fake_model, monkeypatch: pytest.MonkeyPatch
):
    session = timestep.Session(f"big-client-{uuid.uuid4().hex[:8]}")
    before = await _stored_rows(session.session_id)
    with pytest.raises(InputTooLargeError, match="over the limit of 2048"):
        await timestep.run_agent(GREETER, "x" * 3000, session)
    with pytest.raises(InputTooLargeError):
        await timestep.start_agent_run(GREETER, [{"role": "user", "content": "y" * 3000}])
    assert await _stored_rows(session.session_id) == before

    fake_model.add_turns(function_call("refund", {"order_id": "L1"}, call_id="call_l1"))
    interrupted = await timestep.run_agent(SUPPORT, "refund L1", wait_for_approvals=False)
    state = interrupted.to_state()
    monkeypatch.setenv("TIMESTEP_MAX_STATE_BYTES", "100")
    process_state().reload_settings()
    with pytest.raises(StateTooLargeError, match="TIMESTEP_MAX_STATE_BYTES"):
        await timestep.run_agent(SUPPORT, state)
    assert (await _stored_rows(session.session_id))[1] == before[1] + 1  # the interrupted run


# -- approvals and events ---------------------------------------------------------------------


async def test_approval_over_http(client: httpx.AsyncClient, fake_model):
    fake_model.add_turns(
        function_call("refund", {"order_id": "A1"}, call_id="call_a1"), text("Refunded A1.")
    )
    created = await client.post("/runs", json={"agent": "server-support", "input": "refund A1"})
    assert created.status_code == 201, created.text
    workflow_id = created.json()["workflow_id"]
    run = await _wait_run(client, workflow_id, _waiting)
    assert run["status"] == "PENDING"
    assert [(p["call_id"], p["tool_name"]) for p in run["pending_approvals"]] == [
        ("call_a1", "refund")
    ]
    listed = (await client.get("/approvals")).json()
    assert any(a["workflow_id"] == workflow_id and a["call_id"] == "call_a1" for a in listed)
    assert [p["call_id"] for p in (await client.get(f"/runs/{workflow_id}/approvals")).json()] == [
        "call_a1"
    ]
    state = await client.get(f"/runs/{workflow_id}/state")
    assert state.status_code == 200
    assert "$schemaVersion" in state.json()
    assert refunds == []

    unknown = await client.post(
        f"/runs/{workflow_id}/approvals/call_nope", json={"decision": "approve"}
    )
    assert unknown.status_code == 409
    assert "not waiting on call_nope" in unknown.json()["detail"]
    decided = await client.post(
        f"/runs/{workflow_id}/approvals/call_a1", json={"decision": "approve", "by": "alice"}
    )
    assert decided.status_code == 202, decided.text
    assert decided.json() == {
        "workflow_id": workflow_id,
        "call_id": "call_a1",
        "decision": "approve",
        "always": False,
    }
    # The first decision wins: a second one, the same or not, is told which won.
    second = await client.post(
        f"/runs/{workflow_id}/approvals/call_a1",
        json={"decision": "reject", "message": "no", "by": "bob"},
    )
    assert second.status_code == 409, second.text
    assert second.json()["decision"] == "approve"
    assert second.json()["decided_by"] == "alice"
    assert "already approved by alice" in second.json()["detail"]
    run = await _wait_run(client, workflow_id)
    assert (run["status"], run["final_output"]) == ("SUCCESS", "Refunded A1.")
    assert refunds == ["A1"]
    late = await client.post(f"/runs/{workflow_id}/approvals/call_a1", json={"decision": "approve"})
    assert late.status_code == 409
    assert (late.json()["decision"], late.json()["decided_by"]) == ("approve", "alice")
    never = await client.post(
        f"/runs/{workflow_id}/approvals/call_zz", json={"decision": "approve"}
    )
    assert never.status_code == 409
    assert "SUCCESS, not waiting for approvals" in never.json()["detail"]
    still_pending = (await client.get("/approvals")).json()
    assert not [a for a in still_pending if a["workflow_id"] == workflow_id]


async def test_rejection_over_http_reaches_the_model(client: httpx.AsyncClient, fake_model):
    fake_model.add_turns(
        function_call("refund", {"order_id": "B2"}, call_id="call_b2"), text("No refund then.")
    )
    created = await client.post("/runs", json={"agent": "server-support", "input": "refund B2"})
    workflow_id = created.json()["workflow_id"]
    await _wait_run(client, workflow_id, _waiting)
    decided = await client.post(
        f"/runs/{workflow_id}/approvals/call_b2",
        json={"decision": "reject", "message": "Refunds need a manager."},
    )
    assert decided.status_code == 202, decided.text
    run = await _wait_run(client, workflow_id)
    assert run["final_output"] == "No refund then."
    assert refunds == []
    assert "Refunds need a manager." in str(fake_model.requests[-1].json["input"])


async def test_sse_reconnect_resumes_where_it_left_off(client: httpx.AsyncClient, fake_model):
    fake_model.add_turns(
        function_call("refund", {"order_id": "C3"}, call_id="call_c3"), text("Refunded C3.")
    )
    created = await client.post("/runs", json={"agent": "server-support", "input": "refund C3"})
    workflow_id = created.json()["workflow_id"]
    await _wait_run(client, workflow_id, _waiting)

    # Read part of the first turn's events, then drop the connection.
    first, end = await _read_events(client, workflow_id, limit=3)
    assert end is None
    positions = [_position(e["id"]) for e in first]
    assert positions == sorted(positions) and len(set(positions)) == 3
    assert all((e["offset"], e["index"]) == _position(e["id"]) for e in first)

    # The run goes on while no client listens.
    decided = await client.post(
        f"/runs/{workflow_id}/approvals/call_c3", json={"decision": "approve"}
    )
    assert decided.status_code == 202

    # Reconnect as EventSource does: the rest, from the event after the last one seen.
    rest, end = await _read_events(client, workflow_id, last_event_id=first[-1]["id"])
    assert end is not None and end["status"] == "SUCCESS"
    later = [_position(e["id"]) for e in rest]
    assert later == sorted(later) and later[0] > positions[-1]
    assert end["next_offset"] == later[-1][0] + 1
    assert any(_is_tool_output(e, "call_c3") for e in rest)
    deltas = "".join(e.get("delta", "") for e in rest if e["type"] == "response.output_text.delta")
    assert deltas == "Refunded C3."

    # A fresh read of the ended run replays the same events, none missing, none repeated.
    everything, _ = await _read_events(client, workflow_id)
    assert everything == first + rest
    third = everything[-1]["offset"]
    from_offset = await client.get(f"/runs/{workflow_id}/events", params={"offset": third})
    assert f"id: {third}" in from_offset.text and f"id: {third - 1}\n" not in from_offset.text


async def test_state_of_an_interrupted_run(client: httpx.AsyncClient, fake_model):
    fake_model.add_turns(function_call("refund", {"order_id": "D4"}, call_id="call_d4"))
    created = await client.post(
        "/runs",
        json={"agent": "server-support", "input": "refund D4", "wait_for_approvals": False},
    )
    workflow_id = created.json()["workflow_id"]
    run = await _wait_run(client, workflow_id)
    assert (run["status"], run["interrupted"]) == ("SUCCESS", True)
    state = await client.get(f"/runs/{workflow_id}/state", params={"format": "python"})
    assert state.status_code == 200
    assert "$schemaVersion" in state.json()
    assert "call_d4" in state.text

    fake_model.add_turns(text("Plain."))
    plain = await client.post("/runs", json={"agent": "server-greeter", "input": "hi"})
    plain_id = plain.json()["workflow_id"]
    await _wait_run(client, plain_id)
    none = await client.get(f"/runs/{plain_id}/state")
    assert none.status_code == 404
    assert "has no RunState" in none.json()["detail"]


async def test_state_in_typescript_format(client: httpx.AsyncClient, fake_model):
    fake_model.add_turns(function_call("refund", {"order_id": "E5"}, call_id="call_e5"))
    created = await client.post(
        "/runs",
        json={"agent": "server-support", "input": "refund E5", "wait_for_approvals": False},
    )
    workflow_id = created.json()["workflow_id"]
    await _wait_run(client, workflow_id)
    typescript = await client.get(f"/runs/{workflow_id}/state", params={"format": "typescript"})
    assert typescript.status_code == 200, typescript.text
    python = (await client.get(f"/runs/{workflow_id}/state")).json()
    assert detect_format(typescript.json()) == "typescript"
    assert detect_format(python) == "python"
    assert to_python_json(typescript.json()) == python
    bad = await client.get(f"/runs/{workflow_id}/state", params={"format": "java"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["loc"] == ["query", "format"]


async def test_idle_event_streams_send_heartbeats(durable: str, fake_model):
    """A run waiting for an approval writes nothing: comments keep proxies from closing the
    connection meanwhile, and the client skips them."""
    fake_model.add_turns(
        function_call("refund", {"order_id": "F6"}, call_id="call_f6"), text("Refunded F6.")
    )
    app = create_app(ServerSettings(api_token=TOKEN, heartbeat_sec=0.05))
    async with (
        served(app) as server,
        httpx.AsyncClient(base_url=server.url(), headers=AUTH, timeout=60) as client,
    ):
        created = await client.post("/runs", json={"agent": "server-support", "input": "F6"})
        workflow_id = created.json()["workflow_id"]
        await _wait_run(client, workflow_id, _waiting)
        lines: list[str] = []
        async with client.stream("GET", f"/runs/{workflow_id}/events") as response:
            # A heartbeat may also come before the first event, if reading it takes longer
            # than heartbeat_sec: wait for the events and then a heartbeat of the idle run
            # (with none, the read times out and the test fails).
            async for line in response.aiter_lines():
                lines.append(line)
                if line == ": keep-alive" and any(seen.startswith("id: ") for seen in lines):
                    break
        assert lines[-1] == ": keep-alive" and any(line.startswith("id: ") for line in lines)
        await client.post(f"/runs/{workflow_id}/approvals/call_f6", json={"decision": "approve"})
        assert (await _wait_run(client, workflow_id))["final_output"] == "Refunded F6."


async def test_approval_over_http_reaches_a_worker_in_another_process(
    api: Served, durable: str, tmp_path: Path
):
    workflow_id = f"http-worker-{uuid.uuid4().hex[:8]}"
    script = [function_call("refund", {"order_id": "S1"}, call_id="call_s1"), text("S1 refunded.")]
    with FakeModelServer(responder=conversation_script(script)) as model:
        command = [
            sys.executable,
            str(WORKERS / "approval_worker.py"),
            durable,
            model.base_url,
            str(tmp_path),
            workflow_id,
            "--stream",
        ]
        async with httpx.AsyncClient(base_url=api.url(), headers=AUTH, timeout=60) as client:
            # Its own executor id: the worker recovers only its own runs, not this process's.
            with WorkerProcess(
                command, env={"TIMESTEP_EXECUTOR_ID": "server-test-worker"}
            ) as worker:
                worker.start()
                await asyncio.to_thread(worker.wait_for_line, "WAITING", 90)
                listed = (await client.get("/approvals")).json()
                assert any(
                    (a["workflow_id"], a["call_id"], a["tool_name"])
                    == (workflow_id, "call_s1", "refund")
                    for a in listed
                ), listed
                run = (await client.get(f"/runs/{workflow_id}")).json()
                assert (run["status"], run["agent"]) == ("PENDING", "approval-worker-agent")
                assert [p["call_id"] for p in run["pending_approvals"]] == ["call_s1"]

                decided = await client.post(
                    f"/runs/{workflow_id}/approvals/call_s1",
                    json={"decision": "approve", "by": "ops"},
                )
                assert decided.status_code == 202, decided.text
                await asyncio.to_thread(worker.wait_for_line, "RESULT", 90)
                assert await asyncio.to_thread(worker.wait, 30) == 0, worker.output()
            run = await _wait_run(client, workflow_id)
            assert (run["status"], run["final_output"]) == ("SUCCESS", "S1 refunded.")
            events, end = await _read_events(client, workflow_id)
            assert end is not None and end["status"] == "SUCCESS"
            assert any(_is_tool_output(e, "call_s1") for e in events)
    assert (tmp_path / "refunds.log").read_text().split() == ["S1"]
    assert len(model.requests) == 2


# -- schedules ------------------------------------------------------------------------------


async def test_schedule_routes(client: httpx.AsyncClient, fake_model):
    name = f"http-sched-{uuid.uuid4().hex[:6]}"
    body = {
        "name": name,
        "agent": "server-greeter",
        "input": "report",
        "cron": "0 0 0 1 1 *",  # yearly: never fires by itself during the test
        "timezone": "Europe/Lisbon",
    }
    created = await client.post("/schedules", json=body)
    assert created.status_code == 201, created.text
    try:
        assert created.json()["status"] == "ACTIVE"
        assert created.json()["agent"] == "server-greeter"
        assert (await client.post("/schedules", json=body)).status_code == 409
        assert name in [s["name"] for s in (await client.get("/schedules")).json()]
        assert (await client.get(f"/schedules/{name}")).json()["timezone"] == "Europe/Lisbon"
        assert (await client.post(f"/schedules/{name}/pause")).json()["status"] == "PAUSED"
        assert (await client.post(f"/schedules/{name}/resume")).json()["status"] == "ACTIVE"

        fake_model.add_turns(text("Triggered report."))
        fired = await client.post(f"/schedules/{name}/trigger")
        assert fired.status_code == 202, fired.text
        run = await _wait_run(client, fired.json()["workflow_id"])
        assert (run["status"], run["final_output"]) == ("SUCCESS", "Triggered report.")
        assert run["agent"] == "server-greeter"

        window = {"start": "2030-02-01T00:00:00Z", "end": "2030-03-01T00:00:00Z"}
        backfill = await client.post(f"/schedules/{name}/backfill", json=window)
        assert backfill.status_code == 202, backfill.text
        assert backfill.json() == {"workflow_ids": []}
        naive = await client.post(
            f"/schedules/{name}/backfill",
            json={"start": "2030-02-01T00:00:00", "end": "2030-03-01T00:00:00"},
        )
        assert naive.status_code == 422
    finally:
        deleted = await client.delete(f"/schedules/{name}")
    assert deleted.status_code == 204
    assert (await client.get(f"/schedules/{name}")).status_code == 404
    assert (await client.post(f"/schedules/{name}/trigger")).status_code == 404


# -- timestep serve ---------------------------------------------------------------------------


async def test_timestep_serve_in_a_subprocess(tmp_path: Path):
    with FakeModelServer(responder=conversation_script([text("Hello from serve.")])) as model:
        env = {
            "TIMESTEP_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.sqlite'}",
            "TIMESTEP_API_TOKEN": TOKEN,
            "TIMESTEP_TEST_MODEL_URL": model.base_url,
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(WORKERS), os.environ.get("PYTHONPATH")])
            ),
        }
        command = [sys.executable, "-c", "from timestep.cli import main; main()", "serve"]
        command += ["--port", "0", "--agents", "server_agents"]
        with WorkerProcess(command, env=env, cwd=tmp_path) as server:
            server.start()
            line = await asyncio.to_thread(server.wait_for_line, "INFO:     Uvicorn running on", 90)
            url = re.search(r"http://127\.0\.0\.1:\d+", line).group(0)  # type: ignore[union-attr]
            assert "agents: server-cli-greeter" in server.output()
            async with httpx.AsyncClient(base_url=url, timeout=60) as anonymous:
                assert (await anonymous.get("/healthz")).status_code == 200
                assert (await anonymous.get("/runs")).status_code == 401
            async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=60) as client:
                created = await client.post(
                    "/runs", json={"agent": "server-cli-greeter", "input": "hi"}
                )
                assert created.status_code == 201, created.text
                run = await _wait_run(client, created.json()["workflow_id"])
                assert run["final_output"] == "Hello from serve."
            os.kill(server.pid, signal.SIGTERM)  # type: ignore[arg-type]
            # uvicorn shuts down gracefully, then re-raises the signal it caught.
            code = await asyncio.to_thread(server.wait, 60)
            assert code in (0, -signal.SIGTERM), server.output()
            assert "Application shutdown complete" in server.output()


# -- the OpenAPI contract ---------------------------------------------------------------------


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
def test_openapi_contract_with_schemathesis(durable: str, fake_model: FakeModelServer):
    """Generated requests (valid and invalid) against every operation of the published spec:
    no 5xx, and every answer's status, content type and body are the documented ones. The
    spec's example agent is served, so generated runs really start (and run on the fake).
    The server runs in a thread: schemathesis' client blocks."""
    fake_model.set_default(text("Generated runs get this answer."))
    timestep.register_agent(Agent(name="support-agent", instructions="Help."))
    with ServerThread(create_app(ServerSettings(api_token=TOKEN))) as api:
        started = _contract_check(api)
    assert started, "no generated request started a run of the served agent"


def _contract_check(api: ServerThread) -> int:
    """Runs the contract checks; returns how many generated requests started a run."""
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    schema = schemathesis.openapi.from_url(f"{api.url()}/openapi.json", headers=AUTH)
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    sent: list[int] = []
    started: list[str] = []
    for operation in operations:
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):

            @settings(
                max_examples=10,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case: Any) -> None:
                response = case.call(base_url=api.url(), headers=AUTH, timeout=30)
                sent.append(response.status_code)
                if case.method == "POST" and case.path == "/runs" and response.status_code < 300:
                    started.append(response.json()["workflow_id"])
                case.validate_response(response, checks=checks)

            try:
                check()
            except Unsatisfiable:
                # Nothing to make invalid: the operation has no parameters and no body.
                assert mode is schemathesis.GenerationMode.NEGATIVE, operation.label
    assert len(sent) > 100, len(sent)
    print(f"schemathesis sent {len(sent)} requests: {sorted(Counter(sent).items())}")
    print(f"of which {len(started)} started a run")
    assert {200, 404, 422} <= set(sent)
    return len(started)
