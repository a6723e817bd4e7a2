"""``timestep.runstate``: schema-aware conversion, exact round trips, pinned versions, fixtures.

The frozen fixtures in tests/fixtures/runstate were written by the real SDKs (regenerate.py);
the property tests build many states of the kinds both SDKs model and check that nothing is
lost either way.
"""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from agents import (
    RunConfig,
    Runner,
    RunState,
)
from agents.run_state import CURRENT_SCHEMA_VERSION
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from interop import agents, deleted

from timestep.errors import MalformedStateError, TimestepError, UnsupportedSchemaVersionError
from timestep.runstate import (
    EXTENSION_KEY,
    PYTHON_SCHEMA_VERSION,
    PYTHON_SCHEMA_VERSIONS,
    TYPESCRIPT_SCHEMA_VERSION,
    TYPESCRIPT_SCHEMA_VERSIONS,
    detect_format,
    from_typescript,
    python_to_typescript_json,
    to_python_json,
    to_typescript,
    typescript_to_python_json,
)
from timestep.runstate._carried import carried
from timestep.runstate._convert import _py_to_ts, _ts_to_py
from timestep.testing import FakeModelServer, function_call, function_calls, text

FIXTURES = Path(__file__).parent / "fixtures" / "runstate"
PY_FIXTURES = sorted(FIXTURES.glob("python_*.json"))
TS_FIXTURES = sorted(FIXTURES.glob("typescript_*.json"))


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _exact(left: Any, right: Any) -> bool:
    """Equal as JSON text: values, types and key order."""
    return json.dumps(left) == json.dumps(right)


# --------------------------------------------------------------------------- versions, errors


def test_pinned_versions_match_the_installed_python_sdk():
    assert CURRENT_SCHEMA_VERSION == PYTHON_SCHEMA_VERSION
    assert {"1.21"} == PYTHON_SCHEMA_VERSIONS
    assert {"1.22"} == TYPESCRIPT_SCHEMA_VERSIONS and TYPESCRIPT_SCHEMA_VERSION == "1.22"


@pytest.mark.parametrize("path", PY_FIXTURES + TS_FIXTURES, ids=lambda p: p.stem)
def test_fixtures_are_pinned_versions_and_detected(path: Path):
    data = _load(path)
    expected = "python" if path.stem.startswith("python") else "typescript"
    assert detect_format(data) == expected
    pinned = PYTHON_SCHEMA_VERSIONS if expected == "python" else TYPESCRIPT_SCHEMA_VERSIONS
    assert data["$schemaVersion"] in pinned


@pytest.mark.parametrize("name", ["python_interrupted", "typescript_interrupted"])
def test_unknown_schema_version_is_a_clear_error(name: str):
    data = _load(FIXTURES / f"{name}.json")
    data["$schemaVersion"] = "1.99"
    convert = python_to_typescript_json if name.startswith("python") else typescript_to_python_json
    with pytest.raises(UnsupportedSchemaVersionError, match="1.99"):
        convert(data)
    with pytest.raises(UnsupportedSchemaVersionError):
        to_python_json(data) if name.startswith("typescript") else to_typescript(data)


@pytest.mark.parametrize(
    "payload",
    ["not json", "[1, 2]", '{"no": "version"}', '{"$schemaVersion": "1.21"}', b"{"],
)
def test_malformed_input_is_a_typed_error(payload: Any):
    with pytest.raises(MalformedStateError):
        to_typescript(payload)
    with pytest.raises(MalformedStateError):
        to_python_json(payload)


def test_missing_required_fields_are_malformed():
    data = _load(FIXTURES / "typescript_interrupted.json")
    del data["currentTurn"]
    with pytest.raises(MalformedStateError):
        typescript_to_python_json(data)


# --------------------------------------------------------------------------- fixtures


@pytest.mark.parametrize("path", PY_FIXTURES, ids=lambda p: p.stem)
def test_python_fixture_round_trips_exactly(path: Path):
    data = _load(path)
    ts = python_to_typescript_json(data)
    assert ts["$schemaVersion"] == TYPESCRIPT_SCHEMA_VERSION
    assert "current_turn" not in ts and "currentTurn" in ts
    assert _exact(typescript_to_python_json(ts), data)
    # Through JSON text too, as the store and node see it.
    assert _exact(to_python_json(to_typescript(json.dumps(data))), data)


@pytest.mark.parametrize("path", TS_FIXTURES, ids=lambda p: p.stem)
def test_typescript_fixture_round_trips_exactly(path: Path):
    data = _load(path)
    py = typescript_to_python_json(data)
    assert py["$schemaVersion"] == PYTHON_SCHEMA_VERSION
    assert _exact(python_to_typescript_json(py), data)


def test_map_keys_that_are_data_are_not_renamed():
    data = _load(FIXTURES / "typescript_handoff_interrupted.json")
    data["toolUseTracker"]["someAgent"] = ["camelTool"]
    data["context"]["context"] = {"userId": 7, "nested_key": {"innerKey": True}}
    py = typescript_to_python_json(data)
    assert py["tool_use_tracker"]["someAgent"] == ["camelTool"]
    assert py["context"]["context"] == {"userId": 7, "nested_key": {"innerKey": True}}
    call = next(i for i in py["generated_items"] if i["type"] == "tool_call_item")
    assert json.loads(call["raw_item"]["arguments"]) == {"a": 1, "b": 2}


async def test_python_sdk_still_writes_the_frozen_schema():
    """An openai-agents upgrade that changes the schema fails here, not in a user's resume."""
    with FakeModelServer() as server:
        server.add_turns(
            function_calls(
                ("add", {"a": 1, "b": 2}, "call_add"), ("get_weather", {"city": "P"}, "call_w")
            ),
            function_call("delete_file", {"path": "/x"}, call_id="call_del"),
        )
        config = RunConfig(model_provider=server.provider(api_key="test"))
        result = await Runner.run(agents(), "do things", run_config=config)
    live = result.to_state().to_json()
    frozen = _load(FIXTURES / "python_interrupted.json")
    assert live["$schemaVersion"] == frozen["$schemaVersion"]
    assert _shape(live) == _shape(frozen)


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        shapes: list[Any] = []
        for item in value:
            if _shape(item) not in shapes:
                shapes.append(_shape(item))
        return shapes
    return type(value).__name__


@pytest.mark.parametrize("name", ["interrupted", "handoff_interrupted", "approved", "completed"])
async def test_python_loads_typescript_fixtures(name: str):
    state = await from_typescript((FIXTURES / f"typescript_{name}.json").read_text(), agents())
    assert isinstance(state, RunState)
    data = _load(FIXTURES / f"typescript_{name}.json")
    assert len(state._generated_items) == len(data["generatedItems"])
    assert state._current_turn == data["currentTurn"]
    assert state._context.usage.requests == data["context"]["usage"]["requests"]
    if name == "completed":
        assert state.get_interruptions() == []
    else:
        assert [i.call_id for i in state.get_interruptions()] == ["call_del"]
    if name == "handoff_interrupted":
        assert state._current_agent.name == "billing"


@pytest.mark.parametrize("approve_in_python", [False, True], ids=["node-approved", "py-approves"])
async def test_typescript_fixture_finishes_in_python(approve_in_python: bool):
    """The approval recorded by Node (typescript_approved) needs no new decision in Python."""
    deleted.clear()
    name = "interrupted" if approve_in_python else "approved"
    state = await from_typescript(_load(FIXTURES / f"typescript_{name}.json"), agents())
    if approve_in_python:
        state.approve(state.get_interruptions()[0])
    with FakeModelServer() as server:
        server.add_turns(text("all done"))
        config = RunConfig(model_provider=server.provider(api_key="test"))
        result = await Runner.run(agents(), state, run_config=config)
        sent = server.requests[0].json["input"]
    assert result.final_output == "all done"
    assert deleted == ["/tmp/x"]
    assert [i.get("call_id") for i in sent if i.get("type") == "function_call_output"] == [
        "call_add",
        "call_w",
        "call_del",
    ]


def test_tool_results_map_between_item_protocols():
    ts = python_to_typescript_json(_load(FIXTURES / "python_interrupted.json"))
    result = next(i for i in ts["generatedItems"] if i["type"] == "tool_call_output_item")
    assert result["rawItem"] == {
        "type": "function_call_result",
        "name": "add",
        "callId": "call_add",
        "status": "completed",
        "output": {"type": "text", "text": "3"},
    }
    py = typescript_to_python_json(_load(FIXTURES / "typescript_interrupted.json"))
    result = next(i for i in py["generated_items"] if i["type"] == "tool_call_output_item")
    assert result["raw_item"] == {
        "call_id": "call_add",
        "output": "3",
        "type": "function_call_output",
    }


def test_changed_document_does_not_get_stale_extension_applied():
    data = _load(FIXTURES / "python_interrupted.json")
    ts = python_to_typescript_json(data)
    ts["currentTurn"] = 5  # advanced elsewhere: the recorded residual no longer applies
    back = typescript_to_python_json(ts)
    assert back["current_turn"] == 5
    assert back[EXTENSION_KEY]["source"] == "typescript"


# --------------------------------------------------------------------------- properties

_text = st.text(max_size=12)
_ident = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=10)
_json_scalar = st.none() | st.booleans() | st.integers(-(10**6), 10**6) | _text
_json = st.recursive(
    _json_scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)
_AGENTS = ["ops", "billing"]


@st.composite
def _python_items(draw: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Generated items (messages, reasoning, calls with results, handoffs) and interruptions."""
    items: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []
    for n in range(draw(st.integers(0, 6))):
        agent = {"name": draw(st.sampled_from(_AGENTS))}
        kind = draw(st.sampled_from(["message", "reasoning", "call", "handoff", "approval"]))
        if kind == "message":
            raw = {
                "id": f"msg_{n}",
                "content": [{"annotations": [], "text": draw(_text), "type": "output_text"}],
                "role": "assistant",
                "status": "completed",
                "type": "message",
            }
            items.append({"type": "message_output_item", "raw_item": raw, "agent": agent})
        elif kind == "reasoning":
            raw = {
                "id": f"rs_{n}",
                "summary": [
                    {"text": t, "type": "summary_text"} for t in draw(st.lists(_text, max_size=2))
                ],
                "type": "reasoning",
            }
            if draw(st.booleans()):
                raw["encrypted_content"] = draw(_text)
            items.append({"type": "reasoning_item", "raw_item": raw, "agent": agent})
        else:
            name = draw(_ident)
            call_id = f"call_{n}_{draw(_ident)}"
            args = json.dumps(draw(st.dictionaries(_text, _json, max_size=3)))
            call = {
                "arguments": args,
                "call_id": call_id,
                "name": f"transfer_to_{name}" if kind == "handoff" else name,
                "type": "function_call",
                "id": f"fc_{n}",
                "status": "completed",
            }
            if kind == "handoff":  # as the SDK writes it: no tool_name on a handoff call
                items.append({"type": "handoff_call_item", "raw_item": call, "agent": agent})
            else:
                items.append(
                    {"type": "tool_call_item", "raw_item": call, "agent": agent, "tool_name": name}
                )
            if kind == "approval":
                approval = {
                    "type": "tool_approval_item",
                    "raw_item": call,
                    "agent": agent,
                    "tool_name": name,
                    "tool_lookup_key": {"kind": "bare", "name": name},
                }
                items.append(approval)
                pending.append(approval)
                continue
            output = draw(_text)
            result = {"call_id": call_id, "output": output, "type": "function_call_output"}
            if kind == "handoff":
                target = {"name": draw(st.sampled_from(_AGENTS))}
                items.append(
                    {
                        "type": "handoff_output_item",
                        "raw_item": result,
                        "agent": agent,
                        "source_agent": agent,
                        "target_agent": target,
                    }
                )
            else:
                items.append(
                    {
                        "type": "tool_call_output_item",
                        "raw_item": result,
                        "agent": agent,
                        "output": output,
                    }
                )
    return items, pending


_decision = st.sampled_from(["approve", "reject", "always", "never"])
_counts = st.integers(0, 10**6)


@st.composite
def python_states(draw: Any) -> dict[str, Any]:
    """Python SDK documents built on the real fixture, with generated content."""
    doc = copy.deepcopy(_load(FIXTURES / "python_interrupted.json"))
    items, pending = draw(_python_items())
    doc["generated_items"] = items
    doc["session_items"] = copy.deepcopy(items)
    doc["generated_session_item_indexes"] = list(range(len(items)))
    doc.pop("current_response_generated_item_ownership", None)
    doc["current_turn"] = draw(st.integers(0, 50))
    doc["max_turns"] = draw(st.none() | st.integers(1, 100))
    doc["current_agent"] = {"name": draw(st.sampled_from(_AGENTS))}
    doc["original_input"] = draw(
        _text | st.lists(st.builds(lambda t: {"content": t, "role": "user"}, _text), max_size=2)
    )
    usage = doc["context"]["usage"]
    usage["requests"], usage["input_tokens"], usage["output_tokens"] = (
        draw(_counts),
        draw(_counts),
        draw(_counts),
    )
    usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
    usage["input_tokens_details"][0]["cached_tokens"] = draw(_counts)
    doc["context"]["context"] = draw(st.none() | st.dictionaries(_text, _json, max_size=3))
    doc["context"]["tool_invocations"] = {}
    # The SDK keeps one approval record per (agent, tool): pending calls of one tool by one
    # agent share it, so one decision covers all of their call ids.
    by_tool: dict[tuple[str, str], list[str]] = {}
    for item in pending:
        key = (json.dumps(item["agent"], sort_keys=True), item["tool_name"])
        by_tool.setdefault(key, []).append(item["raw_item"]["call_id"])
    approvals = []
    for (agent, tool_key), call_ids in by_tool.items():
        kind = draw(_decision)
        decision: dict[str, Any] = {
            "approved": list(call_ids) if kind == "approve" else kind == "always",
            "rejected": list(call_ids) if kind == "reject" else kind == "never",
        }
        if kind in ("reject", "never"):
            decision["rejection_messages"] = {call_id: draw(_text) for call_id in call_ids}
        approvals.append({"agent": json.loads(agent), "tool_key": tool_key, "decision": decision})
    if approvals and draw(st.booleans()):
        doc["context"]["function_tool_approvals"] = approvals
    else:
        doc["context"].pop("function_tool_approvals", None)
    if pending:
        doc["current_step"]["data"]["interruptions"] = copy.deepcopy(pending)
        doc["last_processed_response"]["interruptions"] = copy.deepcopy(pending)
    else:
        doc["current_step"] = draw(st.none() | st.just({"type": "next_step_run_again"}))
        doc["last_processed_response"] = None
    return doc


def _essence(py: dict[str, Any]) -> dict[str, Any]:
    """What both SDKs model, in a form independent of naming and protocol."""

    def item(i: dict[str, Any]) -> tuple[Any, ...]:
        raw = i["raw_item"]
        texts = [c.get("text") for c in raw.get("content") or [] if isinstance(c, dict)]
        summary = [c.get("text") for c in raw.get("summary") or []]
        return (
            i["type"],
            i.get("agent", {}).get("name"),
            raw.get("type"),
            raw.get("call_id"),
            raw.get("name"),
            raw.get("arguments"),
            raw.get("output"),
            tuple(texts),
            tuple(summary),
            raw.get("encrypted_content"),
            (i.get("target_agent") or {}).get("name"),
        )

    context = py["context"]
    usage = context["usage"]
    return {
        "turn": py["current_turn"],
        "max_turns": py["max_turns"],
        "agent": py["current_agent"]["name"],
        "input": py["original_input"],
        "items": [item(i) for i in py["generated_items"]],
        "pending": [
            item(i)
            for i in ((py.get("current_step") or {}).get("data") or {}).get("interruptions", [])
        ],
        "usage": (
            usage["requests"],
            usage["input_tokens"],
            usage["output_tokens"],
            usage["total_tokens"],
            usage["input_tokens_details"][0]["cached_tokens"],
        ),
        "context": context.get("context") or {},
        # One record per (agent, tool) in the SDK, a mapping: their order means nothing.
        "decisions": sorted(
            (
                (
                    a["agent"]["name"],
                    a["tool_key"],
                    a["decision"]["approved"],
                    a["decision"]["rejected"],
                    a["decision"].get("rejection_messages"),
                )
                for a in context.get("function_tool_approvals") or []
            ),
            key=repr,
        ),
    }


_settings = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_settings
@given(python_states())
def test_python_to_typescript_to_python_is_exact(doc: dict[str, Any]):
    ts = python_to_typescript_json(doc)
    assert detect_format(ts) == "typescript"
    assert _exact(typescript_to_python_json(json.loads(json.dumps(ts))), doc)


@_settings
@given(python_states())
def test_modeled_fields_survive_without_the_extension(doc: dict[str, Any]):
    """The core mapping alone (what another SDK keeps after a re-save) loses nothing modeled."""
    assert _essence(_ts_to_py(_py_to_ts(doc))) == _essence(doc)


@_settings
@given(python_states(), st.dictionaries(_ident, _json, max_size=3), _json)
def test_typescript_to_python_to_typescript_is_exact(
    doc: dict[str, Any], provider_data: dict[str, Any], session_input: Any
):
    ts = _py_to_ts(doc)
    # What the JS SDK adds and Python has no field for.
    for item in ts["generatedItems"]:
        item["rawItem"]["providerData"] = provider_data
    ts["currentTurnSessionInputItems"] = [{"type": "message", "role": "user", "content": "x"}]
    ts["modelResponses"][0]["providerData"] = {"raw": session_input}
    back = python_to_typescript_json(typescript_to_python_json(ts))
    assert _exact(back, ts)


# --------------------------------------------------------------------------- the extension


@pytest.mark.parametrize("path", PY_FIXTURES + TS_FIXTURES, ids=lambda p: p.stem)
def test_the_extension_carries_only_named_fields(path: Path):
    """Every residual operation touches a field of the allowlist, or only reorders keys."""
    data = _load(path)
    fmt = detect_format(data)
    converted = (
        python_to_typescript_json(data) if fmt == "python" else typescript_to_python_json(data)
    )
    patch = converted[EXTENSION_KEY]["patch"]
    assert patch and carried(patch, fmt) == patch


def test_a_forged_extension_cannot_change_modeled_fields():
    data = _load(FIXTURES / "python_interrupted.json")
    ts = python_to_typescript_json(data)
    forged = [
        ["set", ["current_turn"], 99],
        ["set", ["generated_items"], []],
        ["set", ["context", "approvals"], {"delete_file": {"approved": True, "rejected": []}}],
        ["del", ["current_step"]],
        ["set", ["context", "context"], {"role": "admin"}],  # an object: TypeScript has it
    ]
    ts[EXTENSION_KEY]["patch"] = forged + ts[EXTENSION_KEY]["patch"]
    back = typescript_to_python_json(ts)  # the digest still matches: the patch is applied
    assert _exact(back, data)
    assert carried(forged, "python") == []


# --------------------------------------------------------------------------- bad input


def _nodes(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path in a JSON document (the root excluded)."""
    found: list[tuple[Any, ...]] = []
    children = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, child in children:
        found.append((*path, key))
        found.extend(_nodes(child, (*path, key)))
    return found


def _at(document: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        document = document[step]
    return document


_FIXTURE_DOCS = {path.stem: _load(path) for path in PY_FIXTURES + TS_FIXTURES}
_FIXTURE_NODES = {name: _nodes(doc) for name, doc in _FIXTURE_DOCS.items()}


@st.composite
def _mutated_fixtures(draw: Any) -> dict[str, Any]:
    """A frozen fixture with one to three values deleted, replaced or changed in type."""
    name = draw(st.sampled_from(sorted(_FIXTURE_DOCS)))
    doc = copy.deepcopy(_FIXTURE_DOCS[name])
    for _ in range(draw(st.integers(1, 3))):
        nodes = _nodes(doc) if _ else _FIXTURE_NODES[name]
        if not nodes:
            break
        path = draw(st.sampled_from(nodes))
        parent, last = _at(doc, path[:-1]), path[-1]
        action = draw(st.sampled_from(["delete", "replace", "empty", "wrap"]))
        if action == "delete":
            del parent[last]
        elif action == "replace":
            parent[last] = draw(_json)
        elif action == "empty":
            parent[last] = (
                type(parent[last])() if isinstance(parent[last], dict | list | str) else None
            )
        else:
            parent[last] = [parent[last]]
    return doc


_TYPED = (TimestepError,)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated_fixtures())
def test_mutated_fixtures_give_typed_errors_or_valid_states(doc: dict[str, Any]):
    """Whatever is changed, the converter and ``from_typescript`` give a Timestep error or a
    result, never a KeyError, TypeError, RecursionError or the SDK's RuntimeError."""
    try:
        fmt = detect_format(doc)
    except _TYPED:
        return
    convert = python_to_typescript_json if fmt == "python" else typescript_to_python_json
    try:
        converted = convert(doc)
    except _TYPED:
        converted = None
    if converted is not None:
        json.dumps(converted)  # a valid JSON document
    try:
        state = asyncio.run(from_typescript(json.dumps(doc), agents()))
    except _TYPED:
        return
    assert isinstance(state, RunState)


@pytest.mark.parametrize("depth", [2_000, 100_000])
async def test_deep_nesting_is_a_typed_error(depth: int):
    data = _load(FIXTURES / "typescript_interrupted.json")
    text = json.dumps(data)
    nested = text[:-1] + ', "x": ' + "[" * depth + "]" * depth + "}"
    with pytest.raises(MalformedStateError, match="nested too deeply|not a loadable"):
        await from_typescript(nested, agents())
    deep: Any = []
    for _ in range(depth if depth < 50_000 else 5_000):
        deep = [deep]
    data["context"]["context"] = {"deep": deep}
    with pytest.raises(MalformedStateError):
        await from_typescript(data, agents())


def test_unknown_typescript_item_type_is_refused():
    data = _load(FIXTURES / "typescript_interrupted.json")
    data["generatedItems"][0]["type"] = "future_item"
    with pytest.raises(MalformedStateError, match="unknown type 'future_item'"):
        typescript_to_python_json(data)
