"""A streamed model response cut short (the connection drops mid-stream) is retried like an
unstreamed call whose connection dropped: the OpenAI client retries that one itself, as often
as its ``max_retries``; the stream's retry is the model step's, since the client cannot retry
a response already under way. Real HTTP fake, both databases."""

from __future__ import annotations

import openai
import pytest
from agents import Agent
from dbos import DBOS

from timestep import run_agent
from timestep.testing import text

FULL = "one two three four five six seven eight"


def _agent() -> Agent:
    return Agent(name="cut-streams", instructions="Count.", model="gpt-4.1")


async def _model_steps(workflow_id: str) -> list[str]:
    steps = await DBOS.list_workflow_steps_async(workflow_id)
    return [s["function_name"] for s in steps if s["function_name"].startswith("model:")]


@pytest.mark.usefixtures("durable")
async def test_a_stream_cut_short_is_retried_like_an_unstreamed_call(fake_model) -> None:
    # Unstreamed: the connection drops before the answer; the client sends it again.
    fake_model.on_request(lambda request: request.index == 0)
    fake_model.set_default(text(FULL))
    plain = await run_agent(_agent(), "count")
    fake_model.on_request(None)
    assert plain.final_output == FULL
    assert len(fake_model.requests) == 2

    # Streamed: the connection drops after six events (two words out); the step asks again.
    fake_model.add_turns(text(FULL, cut_after_events=6))
    run = await run_agent(_agent(), "count", stream=True)
    deltas = [
        event.data.delta
        async for event in run.stream_events()
        if event.type == "raw_response_event" and event.data.type == "response.output_text.delta"
    ]

    assert run.final_output == FULL
    requests = fake_model.requests[2:]
    assert len(requests) == 2 and requests[0].streaming
    assert requests[0].json == requests[1].json  # the same request, sent again
    # A live reader sees the cut attempt's first words, then the whole answer.
    assert "".join(deltas) == "one two " + FULL
    assert await _model_steps(run.workflow_id) == ["model:gpt-4.1"]  # one step, one checkpoint


@pytest.mark.usefixtures("durable")
async def test_a_stream_cut_every_time_fails_like_an_unstreamed_call(fake_model) -> None:
    """After the client's ``max_retries`` (2) retries, both fail with APIConnectionError."""
    fake_model.on_request(lambda request: True)
    with pytest.raises(openai.APIConnectionError):
        await run_agent(_agent(), "count")
    fake_model.on_request(None)
    assert len(fake_model.requests) == 3

    fake_model.set_default(text(FULL, cut_after_events=6))
    with pytest.raises(openai.APIConnectionError):
        run = await run_agent(_agent(), "count", stream=True)
        async for _ in run.stream_events():
            pass
    assert len(fake_model.requests) == 6
