"""Runs that fail on a provider error, on SQLite and Postgres: nothing secret is stored or
served, and `resume` asks the failed model call again (or says why it won't).

The provider is the real OpenAI client against the HTTP fake, configured with a real-looking
key that the fake even echoes in its error message, as a careless provider might.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import sqlalchemy as sa
from agents import Agent, function_tool
from agents.exceptions import MaxTurnsExceeded
from dbos import DBOS
from test_server import served

import timestep
from timestep._client.inspection import resume_run
from timestep.errors import RunNotResumableError
from timestep.server import ServerSettings, create_app
from timestep.testing import FakeModelServer, error, function_call, text

KEY = "sk-proj-failedruns-0123456789abcdefghijklmnop"
TOKEN = f"failed-runs-token-{uuid.uuid4().hex}"
TIMESTEP = str(Path(sys.executable).parent / "timestep")

lookups: list[str] = []


@function_tool
def look_up(order_id: str) -> str:
    """Look an order up."""
    lookups.append(order_id)
    return f"order {order_id}: shipped"


CLERK = Agent(name="failing-clerk", instructions="Help.", tools=[look_up])
timestep.register_agent(CLERK)


@pytest.fixture
def keyed(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[str]:
    """The configured key is set before DBOS launches (the ``durable`` fixture reads it)."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    yield database_url


@pytest.fixture
def provider(keyed: str, durable: str) -> Iterator[FakeModelServer]:
    with FakeModelServer() as fake:
        timestep.set_model_provider(timestep.MultiModelProvider(openai_base_url=fake.base_url))
        yield fake
        timestep.set_model_provider(None)


def _values(row: Any) -> Iterator[str]:
    """A row's text, and each value's base64 decoding where it is base64 (pickles are)."""
    for value in row:
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if not isinstance(value, str):
            continue
        yield value
        with contextlib.suppress(binascii.Error, ValueError):
            yield base64.b64decode(value, validate=True).decode("utf-8", "replace")


def _every_table(url: str) -> dict[str, list[str]]:
    """Every value of every table of the database, DBOS's and Timestep's."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    found: dict[str, list[str]] = {}
    try:
        inspector = sa.inspect(engine)
        schemas = [None] if url.startswith("sqlite") else ["dbos", "public"]
        with engine.connect() as conn:
            for schema in schemas:
                for name in inspector.get_table_names(schema=schema):
                    table = sa.Table(name, sa.MetaData(), schema=schema, autoload_with=conn)
                    rows = conn.execute(sa.select(table)).all()
                    found[f"{schema}.{name}"] = [v for row in rows for v in _values(row)]
    finally:
        engine.dispose()
    return found


def _tables_holding(secret: str, url: str) -> list[str]:
    return [name for name, values in _every_table(url).items() if any(secret in v for v in values)]


async def test_a_provider_error_leaves_no_key_in_the_database_the_api_or_the_cli(
    provider: FakeModelServer, durable: str, caplog: pytest.LogCaptureFixture
) -> None:
    provider.set_default(error(401, message=f"Incorrect API key provided: {KEY}."))
    workflow_id = f"leaky-{uuid.uuid4().hex[:8]}"

    with pytest.raises(openai.AuthenticationError):
        await timestep.run_agent_workflow(CLERK, "where is order 7?", workflow_id=workflow_id)
    assert provider.requests[0].headers["authorization"] == f"Bearer {KEY}"  # it did travel

    assert _tables_holding(KEY, durable) == []
    info = await timestep.get_run(workflow_id)
    assert info.status == "ERROR"
    assert info.error is not None and info.error.startswith("AuthenticationError: Error code: 401")
    assert KEY not in info.error

    steps = await DBOS.list_workflow_steps_async(workflow_id)
    recorded = steps[-1]["error"]
    assert type(recorded) is openai.AuthenticationError and recorded.status_code == 401

    async with (
        served(create_app(ServerSettings(api_token=TOKEN))) as server,
        httpx.AsyncClient(
            base_url=server.url(), headers={"Authorization": f"Bearer {TOKEN}"}
        ) as client,
    ):
        listed = await client.get("/runs", params={"status": "ERROR", "limit": 100})
        one = await client.get(f"/runs/{workflow_id}")
    assert listed.status_code == one.status_code == 200
    assert KEY not in listed.text and KEY not in one.text
    assert one.json()["error"].startswith("AuthenticationError: ")

    shown = subprocess.run(
        [TIMESTEP, "runs", "show", workflow_id, "--json"],
        env={**os.environ, "TIMESTEP_DATABASE_URL": durable, "OPENAI_API_KEY": KEY},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    assert KEY not in shown.stdout + shown.stderr
    assert json.loads(shown.stdout)["error"].startswith("AuthenticationError: ")
    assert all(KEY not in record.getMessage() for record in caplog.records)


async def test_a_run_failed_on_a_transient_error_resumes_at_its_failed_model_call(
    provider: FakeModelServer, durable: str
) -> None:
    lookups.clear()
    # A tool call, then a provider outage longer than the SDK's own retries (three attempts).
    provider.add_turns(function_call("look_up", {"order_id": "7"}), *[error(503)] * 3)
    workflow_id = f"outage-{uuid.uuid4().hex[:8]}"
    with pytest.raises(openai.InternalServerError):
        await timestep.run_agent_workflow(CLERK, "where is order 7?", workflow_id=workflow_id)
    assert len(provider.requests) == 4 and lookups == ["7"]

    provider.set_default(text("Order 7 has shipped."))
    await resume_run(workflow_id)
    result = await timestep.get_run_result(workflow_id)

    assert result.final_output == "Order 7 has shipped."
    assert lookups == ["7"]  # the finished tool call is not repeated
    assert len(provider.requests) == 5  # only the failed model call is asked again
    assert (await timestep.get_run(workflow_id)).status == "SUCCESS"


async def test_a_run_failed_on_a_permanent_error_is_not_resumed_and_says_why(
    provider: FakeModelServer, durable: str
) -> None:
    provider.set_default(error(401))
    workflow_id = f"bad-key-{uuid.uuid4().hex[:8]}"
    with pytest.raises(openai.AuthenticationError):
        await timestep.run_agent_workflow(CLERK, "hello", workflow_id=workflow_id)
    asked = len(provider.requests)

    with pytest.raises(RunNotResumableError, match="permanent error.*AuthenticationError"):
        await resume_run(workflow_id)
    async with (
        served(create_app(ServerSettings(api_token=TOKEN))) as server,
        httpx.AsyncClient(
            base_url=server.url(), headers={"Authorization": f"Bearer {TOKEN}"}
        ) as client,
    ):
        answer = await client.post(f"/runs/{workflow_id}/resume")
    assert answer.status_code == 409
    assert "permanent error" in answer.json()["detail"]
    assert len(provider.requests) == asked
    assert (await timestep.get_run(workflow_id)).status == "ERROR"


async def test_a_run_failed_in_its_agent_loop_is_not_resumed_and_says_why(
    provider: FakeModelServer, durable: str
) -> None:
    provider.set_default(function_call("look_up", {"order_id": "8"}))
    workflow_id = f"loop-{uuid.uuid4().hex[:8]}"
    with pytest.raises(MaxTurnsExceeded):
        await timestep.run_agent_workflow(CLERK, "hi", workflow_id=workflow_id, max_turns=1)

    with pytest.raises(RunNotResumableError, match="agent loop.*MaxTurnsExceeded"):
        await resume_run(workflow_id)


async def test_resume_from_the_cli_of_a_permanently_failed_run_is_one_line_and_exit_code_1(
    provider: FakeModelServer, durable: str
) -> None:
    provider.set_default(error(401))
    workflow_id = f"cli-bad-key-{uuid.uuid4().hex[:8]}"
    with pytest.raises(openai.AuthenticationError):
        await timestep.run_agent_workflow(CLERK, "hello", workflow_id=workflow_id)

    resumed = subprocess.run(
        [TIMESTEP, "runs", "resume", workflow_id],
        env={**os.environ, "TIMESTEP_DATABASE_URL": durable},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 1
    message = (resumed.stdout + resumed.stderr).strip()
    assert "permanent error" in message
    assert len(message.splitlines()) == 1, message
