"""Differential conformance: the same agent on the same scripted model, through plain ``Runner``
and through Timestep, gives the same outputs, items, request bodies, usage, hooks and errors;
and a durable run executes the caller's own objects (agents, context, hooks).

The scenarios live in tests/parity_scenarios.py; test_runner_parity_recovery.py runs each one
killed mid-way in a worker process and finished by a fresh one.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from agents import (
    Agent,
    RunConfig,
    Runner,
    function_tool,
    set_default_openai_api,
    set_default_openai_client,
)
from agents.items import RunItem
from openai import AsyncOpenAI

import timestep
from tests import parity_scenarios as sc
from timestep.testing import FakeModelServer, RecordedRequest, Turn, text

pytestmark = pytest.mark.usefixtures("durable")

# What differs between two runs of the same script and is not behaviour.
_VOLATILE = ("created_at", "created")


def turns_by_outputs(script: list[Turn]) -> Any:
    """Answer by how many tool outputs the request carries (so server-managed conversations,
    which send only the new items, and replays after a crash get the same answers)."""

    def respond(request: RecordedRequest) -> Turn:
        body = request.json if isinstance(request.json, dict) else {}
        if request.api == "chat":
            outputs = sum(1 for m in body.get("messages", []) if m.get("role") == "tool")
        else:
            items = body.get("input")
            outputs = sum(
                1
                for i in (items if isinstance(items, list) else [])
                if isinstance(i, dict) and str(i.get("type", "")).endswith("_call_output")
            )
        return script[min(outputs, len(script) - 1)]

    return respond


def _body(request: RecordedRequest) -> Any:
    body = json.loads(json.dumps(request.json))
    if isinstance(body, dict):
        for key in _VOLATILE:
            body.pop(key, None)
    return (request.path, body)


def _item(item: RunItem) -> tuple[str, str, Any]:
    raw = item.raw_item
    dumped = raw.model_dump(mode="json") if hasattr(raw, "model_dump") else raw
    return (type(item).__name__, item.agent.name, (dumped, getattr(item, "output", None)))


def _outcome(result: Any, requests: list[RecordedRequest]) -> dict[str, Any]:
    usage = result.context_wrapper.usage
    return {
        "final_output": result.final_output,
        "items": [_item(i) for i in result.new_items],
        "last_agent": result.last_agent.name,
        "usage": (usage.requests, usage.input_tokens, usage.output_tokens, usage.total_tokens),
        "requests": [_body(r) for r in requests],
        "raw_responses": [(r.response_id, len(r.output)) for r in result.raw_responses],
        "last_response_id": result.last_response_id,
        "input_list": json.loads(json.dumps(result.to_input_list(), default=str)),
    }


@contextlib.contextmanager
def _fake(script: list[Turn]) -> Iterator[FakeModelServer]:
    with FakeModelServer(responder=turns_by_outputs(script)) as fake:
        yield fake


def _with_provider(kwargs: dict[str, Any], fake: FakeModelServer) -> dict[str, Any]:
    config = kwargs.get("run_config") or RunConfig()
    config.model_provider = fake.provider()
    return {**kwargs, "run_config": config}


async def _plain(scenario: sc.Scenario, folder: Path) -> tuple[Any, Any, dict[str, Any]]:
    agent, given, kwargs = scenario.build(folder / "plain")
    with _fake(scenario.script) as fake:
        try:
            result = await Runner.run(agent, given, **_with_provider(kwargs, fake))
        except Exception as exc:
            return agent, exc, {"requests": [_body(r) for r in fake.requests]}
        return agent, result, _outcome(result, fake.requests)


async def _durable(scenario: sc.Scenario, folder: Path) -> tuple[Any, Any, dict[str, Any]]:
    agent, given, kwargs = scenario.build(folder / "durable")
    with _fake(scenario.script) as fake:
        try:
            result = await timestep.run_agent(agent, given, **_with_provider(kwargs, fake))
        except Exception as exc:
            return agent, exc, {"requests": [_body(r) for r in fake.requests]}
        return agent, result, _outcome(result, fake.requests)


def _error_attributes(error: Exception) -> dict[str, Any]:
    """What the SDK puts on its exceptions: the run so far, the guardrail's verdict."""
    found: dict[str, Any] = {}
    run_data = getattr(error, "run_data", None)
    if run_data is not None:
        found["run_data"] = (
            run_data.last_agent.name,
            [_item(i) for i in run_data.new_items],
            len(run_data.raw_responses),
        )
    guardrail = getattr(error, "guardrail_result", None)
    if guardrail is not None:
        found["guardrail"] = (
            guardrail.guardrail.get_name(),
            guardrail.output.tripwire_triggered,
            guardrail.output.output_info,
        )
    return found


@pytest.fixture
def folders(tmp_path: Path) -> Path:
    for side in ("plain", "durable"):
        (tmp_path / side).mkdir()
    return tmp_path


@pytest.mark.parametrize("name", [s.name for s in sc.SCENARIOS])
async def test_timestep_runs_like_runner(name: str, folders: Path):
    scenario = sc.BY_NAME[name]
    sc.SEEN_CONTEXTS.clear()
    plain_agent, plain, plain_outcome = await _plain(scenario, folders)
    durable_agent, durable, durable_outcome = await _durable(scenario, folders)
    assert durable_outcome == plain_outcome
    if isinstance(plain, Exception):
        assert type(durable) is type(plain)
        assert str(durable) == str(plain)
        assert _error_attributes(durable) == _error_attributes(plain)
        return
    assert not isinstance(durable, Exception), durable
    # The durable run executed the caller's own objects.
    assert durable.last_agent is durable_agent
    assert all(item.agent is durable_agent for item in durable.new_items)


async def test_tools_see_the_callers_own_context(folders: Path):
    scenario = sc.BY_NAME["context_pydantic"]
    agent, given, kwargs = scenario.build(folders)
    sc.SEEN_CONTEXTS.clear()
    with _fake(scenario.script) as fake:
        result = await timestep.run_agent(agent, given, **_with_provider(kwargs, fake))
    assert result.final_output == "Done."
    assert [kwargs["context"]] == sc.SEEN_CONTEXTS
    assert sc.SEEN_CONTEXTS[0] is kwargs["context"]
    assert result.context_wrapper.context is kwargs["context"]


async def test_hooks_get_the_callers_own_agents_and_tools(folders: Path):
    records = {}
    for side, run in (("plain", Runner.run), ("durable", timestep.run_agent)):
        agent, given, kwargs = sc.BY_NAME["hooks"].build(folders / side)
        with _fake(sc.BY_NAME["hooks"].script) as fake:
            await run(agent, given, **_with_provider(kwargs, fake))
        run_hooks, agent_hooks = kwargs["hooks"], agent.hooks
        assert all(a is agent for _, a, _ in run_hooks.events)
        assert all(t is agent.tools[0] for e, _, t in run_hooks.events if e.startswith("tool"))
        assert [e for e, _ in agent_hooks.events] == ["start", "tool_start", "end"]
        records[side] = [e for e, _, _ in run_hooks.events]
    assert records["durable"] == records["plain"]


async def test_dynamic_instructions_get_the_callers_agent(folders: Path):
    sc.DYNAMIC_AGENTS.clear()
    agent, given, kwargs = sc.BY_NAME["run_config"].build(folders)
    with _fake(sc.BY_NAME["run_config"].script) as fake:
        await timestep.run_agent(agent, given, **_with_provider(kwargs, fake))
        assert fake.requests[0].json["model"] == "parity-model"
        assert fake.requests[0].json["temperature"] == 0.25
    assert sc.DYNAMIC_AGENTS and all(a is agent for a in sc.DYNAMIC_AGENTS)


async def test_two_agents_of_one_name_run_at_once_each_as_itself():
    def answer_as_instructed(request: RecordedRequest) -> Turn:
        instructions = (request.json or {}).get("instructions", "")
        return text(f"I am {instructions.split()[-1]}")

    one = Agent(name="tenant", instructions="You are ONE")
    two = Agent(name="tenant", instructions="You are TWO")
    with FakeModelServer(responder=answer_as_instructed) as fake:
        config = RunConfig(model_provider=fake.provider())
        results = await asyncio.gather(
            timestep.run_agent(one, "who?", run_config=config),
            timestep.run_agent(two, "who?", run_config=RunConfig(model_provider=fake.provider())),
        )
    assert [r.final_output for r in results] == ["I am ONE", "I am TWO"]
    assert results[0].last_agent is one and results[1].last_agent is two


async def test_switching_the_default_api_after_a_first_run_is_honoured():
    """The SDK's defaults are read when a run needs them, as a plain Runner.run reads them."""
    agent = Agent(name="default-api", instructions="Answer.")
    timestep.set_model_provider(None)  # the process's MultiModelProvider, on the SDK defaults
    with FakeModelServer() as fake:
        fake.set_default(text("hello"))
        set_default_openai_client(AsyncOpenAI(base_url=fake.base_url, api_key="k"), False)
        try:
            await timestep.run_agent(agent, "first")
            set_default_openai_api("chat_completions")
            await timestep.run_agent(agent, "second")
            set_default_openai_client(AsyncOpenAI(base_url=fake.base_url, api_key="k2"), False)
            await timestep.run_agent(agent, "third")
        finally:
            set_default_openai_api("responses")
    assert [r.path for r in fake.requests] == [
        "/v1/responses",
        "/v1/chat/completions",
        "/v1/chat/completions",
    ]
    assert fake.requests[2].headers["authorization"] == "Bearer k2"


async def test_a_500_is_retried_as_often_as_under_the_sdk():
    from timestep.testing import error

    agent = Agent(name="retried", instructions="Answer.")
    counts = {}
    for side, run in (("plain", Runner.run), ("durable", timestep.run_agent)):
        with FakeModelServer() as fake:
            fake.add_turns(error(500, retry_after=0.01), error(500, retry_after=0.01))
            fake.set_default(text("ok"))
            config = RunConfig(
                model_provider=timestep.MultiModelProvider(
                    openai_base_url=fake.base_url, openai_api_key="k"
                )
            )
            result = await run(agent, "hi", run_config=config)
            assert result.final_output == "ok"
            counts[side] = len(fake.requests)
    assert counts["durable"] == counts["plain"] == 3


def _rebuilt_outcome(result: Any) -> dict[str, Any]:
    outcome = _outcome(result, [])
    outcome.pop("requests")
    # The SDK's own RunState round trip keeps some items (a computer call) as their dict,
    # without the fields that were None.
    outcome["items"] = _without_nones(outcome["items"])
    return outcome


def _without_nones(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nones(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return type(value)(_without_nones(v) for v in value)
    return value


RAISING = ("max_turns_exceeded", "input_tripwire", "output_tripwire")


@pytest.mark.parametrize("name", RAISING)
async def test_a_failed_run_fetched_again_raises_the_sdk_class_with_its_message(
    name: str, folders: Path
):
    """Rebuilt from the run's error record: the SDK's class and message, nothing asked again."""
    scenario = sc.BY_NAME[name]
    agent, given, kwargs = scenario.build(folders / "durable")
    with _fake(scenario.script) as fake:
        kwargs = _with_provider(kwargs, fake)
        workflow_id = f"again-{name}-{id(agent)}"
        with pytest.raises(Exception) as live:
            await timestep.run_agent_workflow(agent, given, workflow_id=workflow_id, **kwargs)
        requests = len(fake.requests)
        with pytest.raises(type(live.value)) as again:
            await timestep.run_agent_workflow(agent, given, workflow_id=workflow_id, **kwargs)
        with pytest.raises(type(live.value)) as fetched:
            await timestep.get_run_result(workflow_id, agent)
        assert len(fake.requests) == requests
    assert str(again.value) == str(fetched.value) == str(live.value)


@pytest.mark.parametrize("name", [s.name for s in sc.SCENARIOS if s.name not in RAISING])
async def test_a_finished_run_fetched_again_is_the_same_result(name: str, folders: Path):
    """The same workflow id again rebuilds the result from the run's recorded output: outputs
    keep their JSON types, items their kinds and agents, the last agent is the right one."""
    scenario = sc.BY_NAME[name]
    agent, given, kwargs = scenario.build(folders / "durable")
    with _fake(scenario.script) as fake:
        kwargs = _with_provider(kwargs, fake)
        first = await timestep.run_agent_workflow(
            agent, given, workflow_id=f"again-{name}-{id(agent)}", **kwargs
        )
        again = await timestep.run_agent_workflow(
            agent, given, workflow_id=first.workflow_id, **kwargs
        )
        requests = len(fake.requests)
        fetched = await timestep.get_run_result(first.workflow_id, agent)
        assert len(fake.requests) == requests  # nothing was asked again
    assert again.sdk_result is not first.sdk_result  # rebuilt, not the live object
    assert _rebuilt_outcome(again) == _rebuilt_outcome(first)
    assert _rebuilt_outcome(fetched) == _rebuilt_outcome(first)
    assert again.last_agent is agent
    assert [type(i.agent) for i in again.new_items] == [type(i.agent) for i in first.new_items]


async def test_a_handoff_object_run_fetched_again_keeps_its_last_agent():
    from agents import handoff

    specialist = Agent(name="specialist", instructions="Answer.")
    triage = Agent(name="triage", instructions="Route.", handoffs=[handoff(specialist)])
    script = [sc.function_call("transfer_to_specialist", {}), text("Specialist here.")]
    with FakeModelServer(responder=turns_by_outputs(script)) as fake:
        config = RunConfig(model_provider=fake.provider())
        first = await timestep.run_agent(triage, "help", run_config=config)
        again = await timestep.run_agent_workflow(
            triage, "help", workflow_id=first.workflow_id, run_config=config
        )
    assert first.last_agent is specialist
    assert again.last_agent is specialist
    assert [type(i).__name__ for i in again.new_items] == [
        type(i).__name__ for i in first.new_items
    ]
    assert "HandoffOutputItem" in [type(i).__name__ for i in again.new_items]


class _Holder:
    """A tool's output DBOS cannot pickle: it holds a lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def __str__(self) -> str:
        return "held 7"


@function_tool
def grab() -> _Holder:
    """Returns an object holding a lock."""
    return _Holder()


async def test_values_dbos_cannot_pickle_work_as_under_runner():
    """A local output class and a tool output holding a lock: the caller gets the live objects
    and the model the same text, as under Runner; the run's record keeps their JSON form."""

    @dataclasses.dataclass
    class Answer:  # defined inside a function: pickle cannot find it
        n: int

    script = [sc.function_call("grab", {}), text('{"response": {"n": 7}}')]
    outcomes = {}
    for side, run in (("plain", Runner.run), ("durable", timestep.run_agent)):
        agent = Agent(name="unpicklable", instructions="Grab.", tools=[grab], output_type=Answer)
        with FakeModelServer(responder=turns_by_outputs(script)) as fake:
            result = await run(agent, "go", run_config=RunConfig(model_provider=fake.provider()))
            outcomes[side] = (
                result.final_output,
                [type(getattr(i, "output", None)).__name__ for i in result.new_items],
                [_body(r) for r in fake.requests],
            )
            if side == "durable":
                fetched = await timestep.get_run_result(result.workflow_id, agent)
    assert outcomes["durable"] == outcomes["plain"]
    assert outcomes["durable"][0] == Answer(n=7)
    assert fetched.final_output == {"n": 7}  # its JSON form, from the record
