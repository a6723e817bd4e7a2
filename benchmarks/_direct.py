"""(2d) Direct wiring: the SDK's ``Runner.run`` inside a DBOS workflow, each model call and
each tool call a DBOS step, in the fewest lines that do it (no recovery in another process,
no streaming to other processes, no records): what a Timestep run would cost if it added
nothing of its own to the SDK's run plus DBOS's checkpoints."""

from __future__ import annotations

from typing import Any

from agents import Agent, FunctionTool, RunConfig, Runner
from agents.items import ModelResponse
from agents.models.interface import Model, ModelProvider
from dbos import DBOS

from ._agents import BENCH_AGENT
from ._common import ZeroLatencyModel


class _StepModel(Model):
    """Each ``get_response`` is a step; the response is checkpointed as DBOS pickles it."""

    def __init__(self, inner: Model) -> None:
        self.inner = inner

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        return await DBOS.run_step_async(
            {"name": "direct.model"}, self.inner.get_response, *args, **kwargs
        )

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


class _StepProvider(ModelProvider):
    def get_model(self, model_name: str | None) -> Model:
        return _StepModel(ZeroLatencyModel())


def _step_tool(tool: FunctionTool) -> FunctionTool:
    invoke = tool.on_invoke_tool

    async def body(ctx: Any, tool_input: str) -> Any:  # a coroutine function: run on the loop
        return await invoke(ctx, tool_input)

    async def on_invoke(ctx: Any, tool_input: str) -> Any:
        return await DBOS.run_step_async({"name": f"direct.{tool.name}"}, body, ctx, tool_input)

    return FunctionTool(
        name=tool.name,
        description=tool.description,
        params_json_schema=tool.params_json_schema,
        on_invoke_tool=on_invoke,
        strict_json_schema=tool.strict_json_schema,
    )


DIRECT_AGENT = Agent(
    name="bench-direct-agent",
    instructions=BENCH_AGENT.instructions,
    tools=[_step_tool(t) for t in BENCH_AGENT.tools if isinstance(t, FunctionTool)],
)


@DBOS.workflow(name="bench.direct_wiring")
async def direct_workflow(text: str) -> str:
    result = await Runner.run(
        DIRECT_AGENT, text, run_config=RunConfig(model_provider=_StepProvider())
    )
    return str(result.final_output)


async def direct_wiring() -> None:
    assert await direct_workflow("go") == "done"
