"""SIGKILL a real worker process at every step boundary; the restarted worker finishes the run
without repeating any finished model call or tool call."""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa
from dbos import DBOSClient

from timestep import TimestepSerializer
from timestep._core.database import sync_engine_for
from timestep._core.protocol import STREAM_KEY
from timestep._core.sdk_forms import settled
from timestep._core.tables import session_items_table
from timestep.testing import (
    FakeModelServer,
    WorkerProcess,
    conversation_script,
    function_call,
    function_calls,
    text,
)

WORKER = Path(__file__).parent / "workers" / "durable_agent_worker.py"

SEQUENTIAL = [
    function_call("lookup", {"item": "apple"}),
    function_call("fetch", {"item": "apple"}),
    text("apple looked up and fetched"),
]
# Steps of the sequential run, in order: where a kill can land.
BOUNDARIES = ["model-1", "tool-lookup", "model-2", "tool-fetch", "model-3"]


def _tool_log(state_dir: Path) -> list[list[str]]:
    path = state_dir / "calls.log"
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def _session_items(database_url: str, session_id: str) -> list[str]:
    """The kinds of a session's stored items, in order (role for messages, else type)."""
    engine = sync_engine_for(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(session_items_table.c.item)
                .where(session_items_table.c.session_id == session_id)
                .order_by(session_items_table.c.id)
            ).scalars()
            items = [json.loads(row) for row in rows]
    finally:
        engine.dispose()
    return [item.get("role") or item["type"] for item in items]


def _start_worker(
    database_url: str,
    server: FakeModelServer,
    state_dir: Path,
    workflow_id: str,
    scenario: str = "plain",
):
    return WorkerProcess(
        [
            sys.executable,
            str(WORKER),
            database_url,
            server.base_url,
            str(state_dir),
            workflow_id,
            scenario,
        ]
    )


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_sigkill_at_each_step_boundary(database_url: str, tmp_path: Path, boundary: str):
    workflow_id = f"crash-{boundary}-{uuid.uuid4().hex[:8]}"
    with FakeModelServer(responder=conversation_script(SEQUENTIAL)) as server:
        worker = _start_worker(database_url, server, tmp_path, workflow_id)
        with worker:
            if boundary.startswith("model-"):
                n = int(boundary.split("-")[1])
                server.on_request(lambda req, n=n: req.index == n - 1 and worker.kill())
                worker.start()
                worker.wait_killed(timeout=60)
            else:
                # Hold the tool open so the kill lands mid-call, before its step is checkpointed.
                tool = boundary.split("-")[1]
                hold = tmp_path / f"hold-{tool}"
                hold.touch()
                worker.start()
                worker.wait_for_line(f"TOOL_START {tool}", timeout=60)
                worker.kill()
                worker.wait(timeout=30)
                hold.unlink()
            server.on_request(None)
            worker.restart()
            worker.wait_for_line("RESULT", timeout=90)
            assert worker.wait(timeout=30) == 0

        assert "apple looked up and fetched" in worker.output()
        # The session holds the conversation once: no item written twice by the replay.
        assert _session_items(database_url, f"session-{workflow_id}") == [
            "user",
            "function_call",
            "function_call_output",
            "function_call",
            "function_call_output",
            "assistant",
        ]
        # Each conversation position reached the fake once, plus once more for the request
        # the kill interrupted (it never finished, so it was not a finished call).
        positions = Counter(len(r.json["input"]) for r in server.requests)
        repeated = {pos: n for pos, n in positions.items() if n > 1}
        assert len(positions) == 3
        if boundary.startswith("model-"):
            assert list(repeated.values()) == [2]
        else:
            assert repeated == {}
        # Every tool finished exactly once; only the one killed mid-call started twice.
        log = _tool_log(tmp_path)
        done = Counter(tuple(entry[1:3]) for entry in log if entry[0] == "done")
        assert done == {("lookup", "apple"): 1, ("fetch", "apple"): 1}
        starts = Counter(tuple(entry[1:3]) for entry in log if entry[0] == "start")
        expected_twice = {"tool-lookup": ("lookup", "apple"), "tool-fetch": ("fetch", "apple")}
        for call, count in starts.items():
            assert count == (2 if expected_twice.get(boundary) == call else 1), (call, count)


def test_sigkill_after_two_of_three_parallel_tools_finished(database_url: str, tmp_path: Path):
    workflow_id = f"crash-parallel-{uuid.uuid4().hex[:8]}"
    script = [
        function_calls(
            ("lookup", {"item": "a"}), ("fetch", {"item": "b"}), ("slow", {"item": "c"})
        ),
        text("three tools done"),
    ]
    (tmp_path / "hold-slow").touch()  # the third tool stays in flight until released
    with FakeModelServer(responder=conversation_script(script)) as server:
        worker = _start_worker(database_url, server, tmp_path, workflow_id)
        with worker:
            worker.start()
            _wait_for_steps(database_url, workflow_id, {"tool:lookup", "tool:fetch"})
            worker.wait_for_line("TOOL_START slow", timeout=30)
            worker.kill()
            (tmp_path / "hold-slow").unlink()
            worker.restart()
            worker.wait_for_line("RESULT", timeout=90)
            assert worker.wait(timeout=30) == 0

    log = _tool_log(tmp_path)
    done = Counter(tuple(e[1:3]) for e in log if e[0] == "done")
    starts = Counter(tuple(e[1:3]) for e in log if e[0] == "start")
    assert done == {("lookup", "a"): 1, ("fetch", "b"): 1, ("slow", "c"): 1}
    assert starts == {("lookup", "a"): 1, ("fetch", "b"): 1, ("slow", "c"): 2}
    # The slow tool kept its reserved step id (and so its idempotency key) across the crash.
    keys = {e[3] for e in log if e[1] == "slow"}
    assert len(keys) == 1
    assert len(server.requests) == 2


def _wait_for_steps(database_url: str, workflow_id: str, names: set[str], timeout: float = 60):
    client = DBOSClient(system_database_url=database_url, serializer=TimestepSerializer())
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                steps = client.list_workflow_steps(workflow_id)
            except Exception:
                steps = []
            finished = {
                s["function_name"]
                for s in steps
                if s.get("error") is None and s.get("output") is not None
            }
            if names <= finished:
                return
            time.sleep(0.02)
        raise AssertionError(f"steps {names} of {workflow_id} not checkpointed within {timeout}s")
    finally:
        client.destroy()


def test_a_streamed_run_killed_mid_way_streams_each_finished_step_once(
    database_url: str, tmp_path: Path
):
    workflow_id = f"crash-stream-{uuid.uuid4().hex[:8]}"
    with FakeModelServer(responder=conversation_script(SEQUENTIAL)) as server:
        worker = _start_worker(database_url, server, tmp_path, workflow_id, "stream")
        with worker:
            # Killed when it asks for its third turn: two model steps and two tools are done.
            server.on_request(lambda req: req.index == 2 and worker.kill())
            worker.start()
            worker.wait_killed(timeout=60)
            server.on_request(None)
            worker.restart()
            worker.wait_for_line("RESULT", timeout=90)
            assert worker.wait(timeout=30) == 0

    client = DBOSClient(system_database_url=database_url, serializer=TimestepSerializer())
    try:
        # The stream is closed when the run ends, so reading it to the end terminates.
        entries = list(client.read_stream(workflow_id, STREAM_KEY))
    finally:
        client.destroy()
    kept = [entry for _, entry in settled(enumerate(entries))]
    raws = [d for e in kept if e["t"] == "raw" for d in [e["data"]]] + [
        d for e in kept if e["t"] == "raws" for d in e["data"]
    ]
    completed = [d for d in raws if d["type"] == "response.completed"]
    assert len(completed) == 3  # one per model call: nothing replayed into the stream
    items = [e for e in kept if e["t"] == "item"]
    called = {
        i["item"]["raw_item"]["call_id"]: i["item"]["raw_item"]["name"]
        for i in items
        if i["name"] == "tool_called"
    }
    outputs = Counter(
        called[i["item"]["raw_item"]["call_id"]] for i in items if i["name"] == "tool_output"
    )
    assert outputs == {"lookup": 1, "fetch": 1}
    ordered = [
        d
        for e in kept
        if e["t"] in ("raw", "raws")
        for d in ([e["data"]] if e["t"] == "raw" else e["data"])
    ]
    deltas = [d["delta"] for d in ordered if d["type"].endswith("text.delta")]
    assert "".join(deltas) == "apple looked up and fetched"
