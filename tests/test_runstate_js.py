"""Cross-language runs, proven with the real @openai/agents (pinned in tests/js/package-lock.json).

(a) Python stops for an approval, Node loads the state with ``RunState.fromString``, approves
and finishes it; (b) Node stops, Python loads it (through ``RunStateStore`` rows of format
``typescript``), approves and finishes it with ``run_agent``; decisions recorded on one side are
honoured on the other; and the schemas both SDKs write still match the frozen fixtures.
Everything talks to Timestep's fake OpenAI server; the only network use is ``npm ci``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from agents import Agent, RunConfig, Runner
from interop import APPROVAL_TURN, RESUMED_CALLS, TOOL_TURN, agents, calls_and_outputs, deleted

from timestep import RunStateStore, Session, run_agent
from timestep._core.runtime import tables_engine
from timestep._core.tables import run_states_table, utcnow
from timestep.runstate import (
    EXTENSION_KEY,
    TYPESCRIPT_SCHEMA_VERSION,
    from_typescript,
    to_typescript,
)
from timestep.testing import FakeModelServer, function_call, text

JS = Path(__file__).parent / "js"
FIXTURES = Path(__file__).parent / "fixtures" / "runstate"


@pytest.fixture(autouse=True)
def _reset() -> None:
    deleted.clear()


def _node(script: str, *args: str, timeout: float = 30) -> str:
    if shutil.which("node") is None:
        pytest.fail("node (v20+) is required for the cross-language RunState tests")
    if not (JS / "node_modules" / "@openai" / "agents").is_dir():
        pytest.fail(
            "tests/js/node_modules is missing: run `npm ci --prefix tests/js` "
            "(the README's test command does)"
        )
    proc = subprocess.run(
        ["node", script, *args], cwd=JS, capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        pytest.fail(f"node {script} failed:\n{proc.stderr[-4000:]}")
    return proc.stdout


def _node_json(script: str, *args: str) -> dict[str, Any]:
    return json.loads(_node(script, *args))


async def _python_interrupted(fake_model: FakeModelServer, session: Session) -> Any:
    fake_model.add_turns(TOOL_TURN, APPROVAL_TURN)
    result = await run_agent(agents(), "do things", session)
    assert [i.raw_item.name for i in result.interruptions] == ["delete_file"]
    return result


# --------------------------------------------------------------------------- (a) Python -> Node


@pytest.mark.usefixtures("durable")
async def test_python_run_resumed_and_finished_by_node(fake_model: FakeModelServer, tmp_path):
    agent = agents()
    session = Session(f"py-to-js-{uuid.uuid4().hex[:8]}")
    result = await _python_interrupted(fake_model, session)
    store = RunStateStore(agent, await session._get_session_id())
    await store.save(result.to_state())
    state = await store.load()

    exported = json.loads(to_typescript(state))
    assert exported["$schemaVersion"] == TYPESCRIPT_SCHEMA_VERSION
    path = tmp_path / "state.json"
    path.write_text(json.dumps(exported))

    fake_model.add_turns(text("all done"))
    before = len(fake_model.requests)
    out = _node_json("resume.mjs", fake_model.base_url, str(path), "approve")

    assert out["finalOutput"] == "all done"
    assert out["interruptions"] == []
    # Node sent the model the full history: both finished calls, then the approved one.
    resumed = fake_model.requests[before:]
    assert len(resumed) == 1
    assert calls_and_outputs(resumed[0].json["input"]) == RESUMED_CALLS
    outputs = {
        i["rawItem"]["callId"]: i["rawItem"]["output"]
        for i in out["newItems"]
        if i["type"] == "tool_call_output_item"
    }
    assert outputs == {
        "call_add": {"type": "text", "text": "3"},
        "call_w": {"type": "text", "text": "sunny in Paris"},
        "call_del": {"type": "text", "text": "deleted /tmp/x"},
    }
    # Usage carried over: the two Python model calls plus Node's one.
    assert out["state"]["context"]["usage"]["requests"] == 3


@pytest.mark.parametrize(
    ("decide", "executed", "message"),
    [
        (lambda s, i: s.approve(i), True, None),
        (lambda s, i: s.approve(i, always_approve=True), True, None),
        (lambda s, i: s.reject(i, rejection_message="not that file"), False, "not that file"),
        (lambda s, i: s.reject(i, always_reject=True, rejection_message="never"), False, "never"),
    ],
    ids=["approve", "always-approve", "reject", "always-reject"],
)
@pytest.mark.usefixtures("durable")
async def test_python_decision_is_honoured_by_node(
    fake_model: FakeModelServer, tmp_path, decide, executed, message
):
    session = Session(f"decide-{uuid.uuid4().hex[:8]}")
    state = (await _python_interrupted(fake_model, session)).to_state()
    decide(state, state.get_interruptions()[0])
    path = tmp_path / "state.json"
    path.write_text(to_typescript(state))

    fake_model.add_turns(text("ok"))
    before = len(fake_model.requests)
    out = _node_json("resume.mjs", fake_model.base_url, str(path), "none")

    assert out["finalOutput"] == "ok"
    sent = fake_model.requests[before].json["input"]
    result = next(i for i in sent if i.get("call_id") == "call_del" and "output" in i)
    if executed:
        assert result["output"] == "deleted /tmp/x"
    else:
        assert message in result["output"]


# --------------------------------------------------------------------------- (b) Node -> Python


async def _save_typescript_row(agent: Agent[Any], session_id: str, payload: dict[str, Any]) -> None:
    """What a Node process sharing the database does: a row of format ``typescript``."""
    engine = await tables_engine()
    async with engine.begin() as conn:
        await conn.execute(
            sa.insert(run_states_table),
            [
                {
                    "state_id": f"state_{uuid.uuid4().hex}",
                    "session_id": session_id,
                    "agent_name": agent.name,
                    "workflow_id": None,
                    "state_type": "interrupted",
                    "schema_version": payload["$schemaVersion"],
                    "format": "typescript",
                    "payload": json.dumps(payload),
                    "created_at": utcnow(),
                }
            ],
        )


@pytest.mark.usefixtures("durable")
async def test_node_run_resumed_and_finished_by_python(fake_model: FakeModelServer):
    fake_model.add_turns(
        TOOL_TURN, function_call("transfer_to_billing", {}, call_id="call_h"), APPROVAL_TURN
    )
    started = _node_json("start.mjs", fake_model.base_url, "do things")
    assert started["interruptions"] == [{"toolName": "delete_file", "callId": "call_del"}]
    ts_state = started["state"]
    assert ts_state["$schemaVersion"] == TYPESCRIPT_SCHEMA_VERSION
    assert EXTENSION_KEY not in ts_state

    agent = agents()
    session = Session(f"js-to-py-{uuid.uuid4().hex[:8]}")
    session_id = await session._get_session_id()
    await _save_typescript_row(agent, session_id, ts_state)
    store = RunStateStore(agent, session_id)
    assert [h.format for h in await store.history()] == ["typescript"]

    state = await store.load()
    assert state._current_agent.name == "billing"
    pending = state.get_interruptions()
    assert [(p.tool_name, p.call_id) for p in pending] == [("delete_file", "call_del")]
    state.approve(pending[0])

    fake_model.add_turns(text("all done"))
    before = len(fake_model.requests)
    result = await run_agent(agent, state, session)

    assert result.final_output == "all done"
    assert deleted == ["/tmp/x"]
    assert result.last_agent.name == "billing"
    # No dropped items: every item Node generated is in the Python result, in order, then
    # the approved call's output and the final message.
    ts_types = [i["type"] for i in ts_state["generatedItems"]]
    py_types = [i.type for i in result.new_items]
    assert py_types[: len(ts_types)] == ts_types
    assert py_types[len(ts_types) :] == ["tool_call_output_item", "message_output_item"]
    sent = fake_model.requests[before].json["input"]
    assert calls_and_outputs(sent) == [
        ("function_call", "call_add"),
        ("function_call", "call_w"),
        ("function_call_output", "call_add"),
        ("function_call_output", "call_w"),
        ("function_call", "call_h"),
        ("function_call_output", "call_h"),
        ("function_call", "call_del"),
        ("function_call_output", "call_del"),
    ]
    assert sent[0] == {"content": "do things", "role": "user"}
    assert result.to_state().to_json()["context"]["usage"]["requests"] == 4


@pytest.mark.parametrize(
    ("decision", "executed"),
    [("approve", True), ("approve-always", True), ("reject", False), ("reject-always", False)],
)
async def test_node_decision_is_honoured_by_python(
    fake_model: FakeModelServer, tmp_path, decision, executed
):
    fake_model.add_turns(TOOL_TURN, APPROVAL_TURN)
    started = _node_json("start.mjs", fake_model.base_url, "do things")
    path = tmp_path / "state.json"
    path.write_text(json.dumps(started["state"]))
    decided = _node("decide.mjs", fake_model.base_url, str(path), decision, "nope")

    state = await from_typescript(decided, agents())
    assert state.get_interruptions(), "the call is still pending; only the decision is recorded"
    fake_model.add_turns(text("ok"))
    provider = fake_model.provider(api_key="test")
    result = await Runner.run(agents(), state, run_config=RunConfig(model_provider=provider))
    assert result.final_output == "ok"
    assert deleted == (["/tmp/x"] if executed else [])


# --------------------------------------------------------------------------- frozen schemas


def _shape(value: Any) -> Any:
    """The schema of a JSON document: object keys and value kinds, not the values."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in sorted(value.items()) if k != "providerData"}
    if isinstance(value, list):
        shapes = []
        for item in value:
            shape = _shape(item)
            if shape not in shapes:
                shapes.append(shape)
        return shapes
    return type(value).__name__


def test_typescript_sdk_still_writes_the_frozen_schema(fake_model: FakeModelServer):
    """An @openai/agents upgrade that changes the schema fails here, not in a user's resume."""
    fake_model.add_turns(TOOL_TURN, APPROVAL_TURN)
    live = _node_json("start.mjs", fake_model.base_url, "do things")["state"]
    frozen = json.loads((FIXTURES / "typescript_interrupted.json").read_text())
    assert live["$schemaVersion"] == frozen["$schemaVersion"] == TYPESCRIPT_SCHEMA_VERSION
    assert _shape(live) == _shape(frozen)


def test_node_loads_every_python_fixture_after_conversion(tmp_path):
    for name in ("interrupted", "approved", "handoff_interrupted", "completed"):
        path = tmp_path / f"{name}.json"
        path.write_text(to_typescript((FIXTURES / f"python_{name}.json").read_text()))
        loaded = json.loads(_node("decide.mjs", "http://127.0.0.1:9/v1", str(path), "none"))
        assert loaded["$schemaVersion"] == TYPESCRIPT_SCHEMA_VERSION
        assert len(loaded["generatedItems"]) == len(json.loads(path.read_text())["generatedItems"])
