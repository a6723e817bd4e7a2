"""Durable agent runs in one process: steps, idempotency, streaming, sessions, errors."""

from __future__ import annotations

import time
import uuid

import openai
import pytest
from agents import Agent, function_tool
from agents.exceptions import MaxTurnsExceeded, ModelBehaviorError
from dbos import DBOS

import timestep
import timestep._core.runtime
from timestep import Session, run_agent, run_agent_workflow
from timestep._core.runtime import tables_engine
from timestep.errors import AgentNotRegisteredError
from timestep.testing import error, function_call, function_calls, text

pytestmark = pytest.mark.usefixtures("durable")

calls: list[tuple[str, str]] = []


@function_tool
def lookup(item: str) -> str:
    """Look an item up."""
    calls.append(("lookup", item))
    return f"{item} is in stock"


@function_tool
def fetch(item: str) -> str:
    """Fetch an item."""
    calls.append(("fetch", item))
    return f"fetched {item}"


def _agent(name: str = "durable-runs", **kwargs) -> Agent:
    return Agent(name=name, instructions="Help.", tools=[lookup, fetch], **kwargs)


@pytest.fixture(autouse=True)
def _reset_calls():
    calls.clear()


async def _step_names(workflow_id: str) -> list[str]:
    return [s["function_name"] for s in await DBOS.list_workflow_steps_async(workflow_id)]


async def test_each_model_call_and_tool_call_is_a_step(fake_model):
    fake_model.add_turns(
        function_call("lookup", {"item": "apple"}),
        function_call("fetch", {"item": "apple"}),
        text("Done: apple fetched."),
    )
    result = await run_agent(_agent(model="gpt-4.1"), "get me an apple")
    assert result.final_output == "Done: apple fetched."
    assert calls == [("lookup", "apple"), ("fetch", "apple")]
    assert await _step_names(result.workflow_id) == [
        "model:gpt-4.1",
        "tool:lookup",
        "model:gpt-4.1",
        "tool:fetch",
        "model:gpt-4.1",
    ]
    assert len(fake_model.requests) == 3
    assert result.usage.requests == 3
    assert [i.type for i in result.new_items].count("tool_call_output_item") == 2


async def test_same_workflow_id_returns_the_same_result_and_calls_nothing_again(fake_model):
    fake_model.add_turns(function_call("lookup", {"item": "pear"}), text("Pear found."))
    agent = _agent()
    first = await run_agent_workflow(agent, "pear?", workflow_id="idempotent-run-1")
    second = await run_agent_workflow(agent, "pear?", workflow_id="idempotent-run-1")
    assert first.final_output == second.final_output == "Pear found."
    assert len(fake_model.requests) == 2
    assert calls == [("lookup", "pear")]
    # The second result is rebuilt from the stored RunState, with the same history.
    assert [i.type for i in second.new_items] == [i.type for i in first.new_items]
    assert second.to_state().to_json()["current_agent"]["name"] == agent.name


async def test_parallel_tool_calls_checkpoint_in_the_models_order(fake_model):
    fake_model.add_turns(
        function_calls(
            ("lookup", {"item": "a"}), ("fetch", {"item": "b"}), ("lookup", {"item": "c"})
        ),
        text("All three."),
    )
    result = await run_agent(_agent(), "three at once")
    assert result.final_output == "All three."
    steps = await DBOS.list_workflow_steps_async(result.workflow_id)
    tool_steps = [(s["function_id"], s["function_name"], s["output"]) for s in steps[1:4]]
    assert [name for _, name, _ in tool_steps] == ["tool:lookup", "tool:fetch", "tool:lookup"]
    assert [output for _, _, output in tool_steps] == [
        "a is in stock",
        "fetched b",
        "c is in stock",
    ]
    assert sorted(calls) == [("fetch", "b"), ("lookup", "a"), ("lookup", "c")]


async def test_streaming_delivers_deltas_before_the_model_step_ends(fake_model):
    fake_model.add_turns(text("one two three four five six", chunk_delay=0.15))
    run = await run_agent(_agent(), "count", stream=True)
    started = time.monotonic()
    first_delta_at = None
    deltas: list[str] = []
    async for event in run.stream_events():
        if event.type == "raw_response_event" and event.data.type == "response.output_text.delta":
            first_delta_at = first_delta_at or time.monotonic() - started
            deltas.append(event.data.delta)
    total = time.monotonic() - started
    assert "".join(deltas) == "one two three four five six"
    assert first_delta_at is not None and first_delta_at < total - 0.3
    assert run.final_output == "one two three four five six"

    # Another reader attaches by workflow id and sees the same text.
    replayed = [
        e.data.delta
        async for e in timestep.stream_run_events(run.workflow_id, _agent())
        if e.type == "raw_response_event" and e.data.type == "response.output_text.delta"
    ]
    assert "".join(replayed) == "one two three four five six"


async def test_streaming_reports_tool_calls_and_outputs(fake_model):
    fake_model.add_turns(function_call("lookup", {"item": "fig"}), text("Fig ok."))
    run = await run_agent(_agent(), "fig", stream=True)
    names = [e.name async for e in run.stream_events() if e.type == "run_item_stream_event"]
    assert names == ["tool_called", "tool_output", "message_output_created"]
    assert run.final_output == "Fig ok."


async def test_session_memory_across_runs(fake_model):
    fake_model.add_turns(text("Nice to meet you, Alice."), text("Your name is Alice."))
    agent = _agent()
    session = Session()
    await run_agent(agent, [{"role": "user", "content": "Hello, my name is Alice"}], session)
    second = await run_agent(agent, [{"role": "user", "content": "What's my name?"}], session)
    assert second.final_output == "Your name is Alice."
    sent = str(fake_model.requests[1].json["input"])
    assert "my name is Alice" in sent and "Nice to meet you, Alice." in sent
    items = await Session(session.session_id).get_items()
    assert [i.get("role") for i in items] == ["user", "assistant", "user", "assistant"]


async def test_model_behavior_error_reaches_the_caller_as_the_sdk_class(fake_model):
    fake_model.add_turns(function_call("no_such_tool", {}))
    with pytest.raises(ModelBehaviorError):
        await run_agent(_agent(), "break")


async def test_max_turns_exceeded(fake_model):
    fake_model.add_turns(
        function_call("lookup", {"item": "x"}), function_call("lookup", {"item": "y"})
    )
    with pytest.raises(MaxTurnsExceeded):
        await run_agent(_agent(), "loop", max_turns=1)


async def test_transient_errors_are_retried_inside_the_step(fake_model):
    fake_model.add_turns(error(429, retry_after=0.05), error(500), text("Recovered."))
    result = await run_agent(_agent(), "flaky")
    assert result.final_output == "Recovered."
    assert len(fake_model.requests) == 3
    # Both retries happened inside the one model step.
    names = await _step_names(result.workflow_id)
    assert len(names) == 1 and names[0].startswith("model:")


async def test_other_client_errors_fail_at_once(fake_model):
    fake_model.add_turns(error(400, message="bad request"), text("never"))
    with pytest.raises(openai.BadRequestError):
        await run_agent(_agent(), "bad")
    assert len(fake_model.requests) == 1


async def test_unknown_agent_is_a_clear_workflow_error(fake_model):
    from timestep.workflows import agent_run_workflow

    handle = await DBOS.start_workflow_async(
        agent_run_workflow, {"agent": "nobody-registered-this", "input": "hi"}
    )
    with pytest.raises(AgentNotRegisteredError, match="nobody-registered-this"):
        await handle.get_result()


async def test_tool_idempotency_key_is_workflow_and_step(fake_model):
    seen: list[str] = []

    @function_tool
    def charge(amount: int) -> str:
        """Charge a card."""
        seen.append(timestep.tool_idempotency_key())
        return "charged"

    fake_model.add_turns(function_call("charge", {"amount": 5}), text("Charged."))
    result = await run_agent(Agent(name="charger", tools=[charge]), "charge 5")
    assert seen == [f"{result.workflow_id}:2"]


async def test_usage_is_recorded_per_model_step(fake_model, durable):
    import sqlalchemy as sa

    from timestep._core.tables import usage_table

    fake_model.add_turns(function_call("lookup", {"item": "kiwi"}), text("Kiwi."))
    result = await run_agent(_agent(model="gpt-4.1-mini"), "kiwi", Session("usage-session"))
    assert await timestep.flush_records()  # rows are written in the background
    engine = await tables_engine()
    async with engine.connect() as conn:
        rows = (
            (
                await conn.execute(
                    sa.select(usage_table).where(usage_table.c.workflow_id == result.workflow_id)
                )
            )
            .mappings()
            .all()
        )
    assert [r["model"] for r in rows] == ["gpt-4.1-mini", "gpt-4.1-mini"]
    assert sum(r["input_tokens"] for r in rows) == result.usage.input_tokens
    assert all(r["session_id"] == "usage-session" for r in rows)
    assert all(r["cost_usd"] is not None and r["cost_usd"] > 0 for r in rows)


async def test_cost_per_run_agent_and_session(fake_model, durable):
    from timestep import get_usage
    from timestep.providers import cost_of

    session_id = f"cost-session-{uuid.uuid4().hex[:8]}"
    agent = _agent(model="gpt-4.1-mini").clone(name=f"cost-agent-{uuid.uuid4().hex[:8]}")
    fake_model.add_turns(
        text("one", usage={"input_tokens": 1000, "output_tokens": 100, "cached_tokens": 400}),
        text("two", usage={"input_tokens": 2000, "output_tokens": 50}),
    )
    first = await run_agent(agent, "first", Session(session_id))
    second = await run_agent(agent, "second", Session(session_id))

    expected_first = cost_of("gpt-4.1-mini", 1000, 100, cached_input_tokens=400)
    expected_second = cost_of("gpt-4.1-mini", 2000, 50)
    run_usage = await get_usage(workflow_id=first.workflow_id)
    assert (run_usage.requests, run_usage.input_tokens, run_usage.cached_tokens) == (1, 1000, 400)
    assert run_usage.cost_usd == pytest.approx(expected_first)
    for summary in (await get_usage(session_id=session_id), await get_usage(agent_name=agent.name)):
        assert (summary.requests, summary.input_tokens, summary.output_tokens) == (2, 3000, 150)
        assert summary.cost_usd == pytest.approx(expected_first + expected_second)
    assert second.usage.input_tokens == 2000
    assert (await get_usage(session_id="no-such-session")).requests == 0


def test_agents_are_made_durable_where_they_are():
    """A run executes the caller's own agents: their tools are made steps on the tool objects
    themselves, once, handoff cycles included, and nothing else about them changes."""
    from timestep.steps import make_agent_durable

    helper = Agent(name="helper", instructions="Help.", tools=[fetch])
    agent = _agent(handoffs=[helper])
    helper.handoffs = [agent]
    tools, invokers = list(agent.tools), [t.on_invoke_tool for t in agent.tools]

    assert make_agent_durable(agent) is agent
    impl = agent.tools[0].on_invoke_tool._invoke_tool_impl
    assert make_agent_durable(agent) is agent  # idempotent
    assert agent.tools[0].on_invoke_tool._invoke_tool_impl is impl
    assert all(a is b for a, b in zip(agent.tools, tools, strict=True))
    assert all(t.on_invoke_tool is i for t, i in zip(agent.tools, invokers, strict=True))
    assert type(impl).__name__ == "_StepInvocation"
    assert type(helper.tools[0].on_invoke_tool._invoke_tool_impl).__name__ == "_StepInvocation"


async def test_a_model_instance_on_the_agent_is_a_step(fake_model):
    from agents import OpenAIResponsesModel

    fake_model.add_turns(function_call("lookup", {"item": "pear"}), text("Pear found."))
    model = OpenAIResponsesModel("gpt-4.1", openai_client=fake_model.client())
    result = await run_agent(_agent("durable-model-instance", model=model), "find a pear")
    assert result.final_output == "Pear found."
    assert await _step_names(result.workflow_id) == [
        "model:gpt-4.1",
        "tool:lookup",
        "model:gpt-4.1",
    ]
