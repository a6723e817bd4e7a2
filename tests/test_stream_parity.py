"""A durable streamed run streams exactly what ``Runner.run_streamed`` streams, event for event,
with no normalisation: live in the caller's process, read back from the run's DBOS stream in
the same process and in another one, and from any offset after a reconnect."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from agents import RunConfig, Runner

import timestep
from tests import stream_scenario as sc
from timestep._client.streams import read_run_stream
from timestep._core.sdk_forms import EVENT_KINDS, decode_entry
from timestep.testing import FakeModelServer

pytestmark = pytest.mark.usefixtures("durable")

READER = Path(__file__).parent / "workers" / "stream_reader.py"


def _jsonable(signatures: list[tuple[Any, ...]]) -> list[list[Any]]:
    return json.loads(json.dumps(signatures))


async def _plain() -> tuple[list[tuple[Any, ...]], Any]:
    with FakeModelServer(responder=sc.respond) as fake:
        result = Runner.run_streamed(
            sc.triage, "weather?", run_config=RunConfig(model_provider=fake.provider())
        )
        events = [sc.signature(e) async for e in result.stream_events()]
        return events, result


async def test_the_live_stream_is_runner_run_streamed_event_for_event(durable: str):
    plain, plain_result = await _plain()
    with FakeModelServer(responder=sc.respond) as fake:
        run = await timestep.run_agent(
            sc.triage,
            "weather?",
            stream=True,
            run_config=RunConfig(model_provider=fake.provider()),
        )
        live = [sc.signature(e) async for e in run.stream_events()]
        result = await run.wait()
    assert live == plain
    assert result.final_output == plain_result.final_output == sc.FINAL_WORDS
    assert result.last_agent is sc.specialist  # the caller's own agent objects
    kinds = {s[1] for s in plain if s[0] == "item"}
    assert {"tool_called", "tool_output", "handoff_requested", "handoff_occured"} <= kinds
    assert plain[0] == ("agent", "triage")
    assert any(s[1] == "tool_output" and "error occurred" in str(s[-1]) for s in plain)

    # Read back from the run's durable stream, here and in another process (a DBOSClient),
    # then from halfway, as a reconnecting reader would.
    replayed = [
        sc.signature(e) async for e in timestep.stream_run_events(run.workflow_id, sc.triage)
    ]
    assert replayed == plain
    other = subprocess.run(
        [sys.executable, str(READER), durable, run.workflow_id],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert other.returncode == 0, other.stderr[-3000:]
    assert json.loads(other.stdout.splitlines()[-1]) == _jsonable(plain)

    entries = [entry async for entry in read_run_stream(run.workflow_id)]
    halfway = len(entries) // 2
    agents = {a.name: a for a in (sc.triage, sc.helper, sc.specialist)}
    expected_rest = [
        sc.signature(e)
        for entry in entries[halfway:]
        if isinstance(entry, dict) and entry.get("t") in EVENT_KINDS
        for e in decode_entry(entry, agents)
    ]
    rest = [
        sc.signature(e)
        async for e in timestep.stream_run_events(run.workflow_id, sc.triage, offset=halfway)
    ]
    assert rest == expected_rest and 0 < len(rest) < len(plain)
    assert plain[-len(rest) :] == rest


async def test_a_nested_agent_tool_streams_nothing_of_its_own(durable: str):
    plain, _ = await _plain()
    assert ("raw", "response.output_text.delta", "Helper ") not in plain
    with FakeModelServer(responder=sc.respond) as fake:
        run = await timestep.run_agent(
            sc.triage, "weather?", stream=True, run_config=RunConfig(model_provider=fake.provider())
        )
        live = [sc.signature(e) async for e in run.stream_events()]
        nested = [r for r in fake.requests if "helper:" in str(r.json.get("instructions"))]
    assert live == plain
    assert len(nested) == 1 and not nested[0].streaming  # as under the SDK: run, not streamed
