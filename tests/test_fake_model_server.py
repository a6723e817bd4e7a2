"""The shipped test harness speaks the protocol the SDK really uses: plain ``agents.Runner``
(no Timestep, no DBOS) against ``FakeModelServer``, over real HTTP, streaming included."""

from __future__ import annotations

import sys
import time

import httpx
import openai
import pytest
from agents import (
    Agent,
    OpenAIChatCompletionsModel,
    RunConfig,
    Runner,
    function_tool,
)

from timestep.testing import (
    FakeModelServer,
    WorkerProcess,
    conversation_script,
    error,
    function_call,
    function_calls,
    text,
)


@function_tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@pytest.fixture
def fake() -> FakeModelServer:
    with FakeModelServer() as server:
        yield server


def _config(fake: FakeModelServer, **kwargs) -> RunConfig:
    return RunConfig(
        model_provider=fake.provider(api_key="sk-fake", **kwargs),
        tracing_disabled=True,
    )


def _agent() -> Agent:
    return Agent(name="calc", instructions="Use the tool.", tools=[add], model="gpt-4.1")


async def test_responses_api_with_a_tool_call(fake: FakeModelServer) -> None:
    fake.add_turns(function_call("add", {"a": 2, "b": 3}, call_id="call_add"), text("2+3=5"))

    result = await Runner.run(_agent(), "what is 2+3?", run_config=_config(fake))

    assert result.final_output == "2+3=5"
    first, second = fake.requests
    assert (first.path, first.index, second.index) == ("/v1/responses", 0, 1)
    assert first.headers["authorization"] == "Bearer sk-fake"
    assert first.json["model"] == "gpt-4.1"
    assert first.json["instructions"] == "Use the tool."
    assert [tool["name"] for tool in first.json["tools"]] == ["add"]
    output = second.json["input"][-1]
    assert output == {"call_id": "call_add", "output": "5", "type": "function_call_output"}
    assert result.context_wrapper.usage.requests == 2
    assert result.context_wrapper.usage.input_tokens > 0


async def test_responses_api_streams_text_deltas(fake: FakeModelServer) -> None:
    fake.add_turns(function_call("add", {"a": 1, "b": 1}), text("one two three"))

    result = Runner.run_streamed(_agent(), "count", run_config=_config(fake))
    deltas, item_types = [], []
    async for event in result.stream_events():
        if event.type == "raw_response_event" and event.data.type == "response.output_text.delta":
            deltas.append(event.data.delta)
        elif event.type == "run_item_stream_event":
            item_types.append(event.item.type)

    assert deltas == ["one ", "two ", "three"]
    assert item_types == ["tool_call_item", "tool_call_output_item", "message_output_item"]
    assert result.final_output == "one two three"
    assert all(request.streaming for request in fake.requests)


async def test_parallel_function_calls_in_one_turn(fake: FakeModelServer) -> None:
    fake.add_turns(
        function_calls(("add", {"a": 1, "b": 2}), ("add", {"a": 3, "b": 4})), text("3 and 7")
    )

    result = await Runner.run(_agent(), "two sums", run_config=_config(fake))

    assert result.final_output == "3 and 7"
    outputs = [i for i in fake.requests[1].json["input"] if i.get("type") == "function_call_output"]
    assert sorted(o["output"] for o in outputs) == ["3", "7"]
    assert len({o["call_id"] for o in outputs}) == 2


@pytest.mark.parametrize("stream", [False, True])
async def test_chat_completions(fake: FakeModelServer, stream: bool) -> None:
    fake.add_turns(function_call("add", {"a": 20, "b": 22}), text("The answer is 42."))
    client = fake.client()
    agent = _agent().clone(model=OpenAIChatCompletionsModel("llama3", openai_client=client))

    if stream:
        result = Runner.run_streamed(agent, "sum", run_config=RunConfig(tracing_disabled=True))
        async for _ in result.stream_events():
            pass
    else:
        result = await Runner.run(agent, "sum", run_config=RunConfig(tracing_disabled=True))

    assert result.final_output == "The answer is 42."
    assert [r.path for r in fake.requests] == ["/v1/chat/completions"] * 2
    assert fake.requests[0].json["messages"][0] == {"role": "system", "content": "Use the tool."}
    assert fake.requests[1].json["messages"][-1]["role"] == "tool"
    assert fake.requests[1].json["messages"][-1]["content"] == "42"


async def test_429_with_retry_after_is_retried_by_the_client(fake: FakeModelServer) -> None:
    fake.add_turns(error(429, retry_after=0.05), error(500), text("made it"))
    started = time.monotonic()

    result = await Runner.run(_agent(), "hi", run_config=_config(fake))

    assert result.final_output == "made it"
    assert len(fake.requests) == 3
    assert time.monotonic() - started >= 0.05


async def test_4xx_errors_fail_with_the_openai_exception(fake: FakeModelServer) -> None:
    fake.add_turns(error(400, message="context too long"))
    with pytest.raises(openai.BadRequestError, match="context too long"):
        await Runner.run(_agent(), "hi", run_config=_config(fake))
    assert len(fake.requests) == 1


async def test_an_unscripted_request_is_a_clear_error(fake: FakeModelServer) -> None:
    with pytest.raises(openai.BadRequestError, match="no scripted turn left"):
        await Runner.run(_agent(), "hi", run_config=_config(fake))


def test_conversation_script_answers_by_conversation_position() -> None:
    script = [function_call("add", {"a": 1, "b": 2}), text("three")]
    with FakeModelServer(responder=conversation_script(script)) as server:
        for _ in range(2):  # the same run twice gets the same answers: the script is stateless
            result = Runner.run_sync(_agent(), "1+2", run_config=_config(server))
            assert result.final_output == "three"
        assert len(server.requests) == 4
        assert server.requests[0].json["input"] == server.requests[2].json["input"]


def test_slow_turns_and_chunk_delays_are_honoured() -> None:
    with FakeModelServer() as server:
        server.add_turns(text("slow", delay=0.3))
        started = time.monotonic()
        response = httpx.post(f"{server.base_url}/responses", json={"model": "m", "input": "x"})
        assert time.monotonic() - started >= 0.3
        assert response.json()["output"][0]["content"][0]["text"] == "slow"

        server.add_turns(text("a b c", chunk_delay=0.1))
        arrivals = []
        body = {"model": "m", "input": "x", "stream": True}
        with httpx.stream("POST", f"{server.base_url}/responses", json=body) as stream:
            for line in stream.iter_lines():
                if line.startswith("event: response.output_text.delta"):
                    arrivals.append(time.monotonic())
        assert len(arrivals) == 3
        assert arrivals[-1] - arrivals[0] >= 0.15


def test_on_request_hook_can_drop_a_request() -> None:
    with FakeModelServer() as server:
        server.set_default(text("answered"))
        server.on_request(lambda request: request.index == 0)
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.post(f"{server.base_url}/responses", json={"model": "m", "input": "x"})
        server.on_request(None)
        response = httpx.post(f"{server.base_url}/responses", json={"model": "m", "input": "x"})
        assert response.status_code == 200
        assert [r.index for r in server.wait_for_requests(2)] == [0, 1]


def test_worker_process_is_killed_and_restarted(tmp_path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(
        "import sys, time\nprint('READY', flush=True)\n"
        "if len(sys.argv) > 1: print('DONE', flush=True); sys.exit(0)\ntime.sleep(60)\n"
    )
    with WorkerProcess([sys.executable, str(script)]) as worker:
        worker.start()
        assert worker.wait_for_line("READY", timeout=30) == "READY"
        assert worker.kill() is True
        worker.wait_killed(timeout=10)
        assert worker.returncode == -9
        worker.command.append("finish")
        worker.restart()
        worker.wait_for_line("DONE", timeout=30)
        assert worker.wait(timeout=10) == 0
    assert worker.output().split() == ["READY", "READY", "DONE"]


def test_worker_process_reports_an_exit_without_the_line(tmp_path) -> None:
    script = tmp_path / "worker.py"
    script.write_text("print('oops', flush=True)\nraise SystemExit(3)\n")
    with WorkerProcess([sys.executable, str(script)]) as worker:
        worker.start()
        with pytest.raises(AssertionError, match=r"exited with 3 before printing 'RESULT'"):
            worker.wait_for_line("RESULT", timeout=30)
