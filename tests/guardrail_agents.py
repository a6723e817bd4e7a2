"""An agent whose input guardrail runs another agent (the SDK's usual pattern for a guardrail
that calls a model), for tests/test_guardrails.py and its worker (tests/workers/guardrail_worker.py).

Every agent's instructions start with its name, so one fake model serves both."""

from __future__ import annotations

import os
from typing import Any

from agents import (
    Agent,
    GuardrailFunctionOutput,
    ModelProvider,
    RunConfig,
    RunContextWrapper,
    Runner,
    function_tool,
    input_guardrail,
)

from timestep.testing import RecordedRequest, Turn, function_call, text

CALLS_LOG_ENV = "TIMESTEP_GUARDRAIL_CALLS"
SCRIPT = [function_call("add", {"a": 2, "b": 3}), text("5")]


@function_tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    path = os.environ.get(CALLS_LOG_ENV)
    if path:
        with open(path, "a") as log:
            log.write(f"add {a} {b}\n")
    return a + b


def build(provider: ModelProvider, *, in_parallel: bool = True) -> Agent[Any]:
    """The guarded agent; its guardrail's checker asks ``provider``'s model."""
    checker = Agent(name="checker", instructions="checker: is this request safe? safe/unsafe")

    @input_guardrail(name="vet", run_in_parallel=in_parallel)
    async def vet(
        ctx: RunContextWrapper[Any], agent: Agent[Any], given: Any
    ) -> GuardrailFunctionOutput:
        verdict = await Runner.run(
            checker, given, context=ctx.context, run_config=RunConfig(model_provider=provider)
        )
        return GuardrailFunctionOutput(
            output_info={"verdict": verdict.final_output},
            tripwire_triggered=verdict.final_output != "safe",
        )

    return Agent(
        name="guarded",
        instructions="guarded: add numbers.",
        tools=[add],
        input_guardrails=[vet],
    )


def respond(request: RecordedRequest) -> Turn:
    """The checker finds a refund unsafe; the guarded agent follows SCRIPT by its tool outputs."""
    body = request.json if isinstance(request.json, dict) else {}
    items = body.get("input") if isinstance(body.get("input"), list) else []
    if str(body.get("instructions", "")).startswith("checker:"):
        return text("unsafe" if "refund" in str(body.get("input")) else "safe")
    outputs = sum(1 for i in items if i.get("type") == "function_call_output")
    return SCRIPT[min(outputs, len(SCRIPT) - 1)]


def is_checker(request: RecordedRequest) -> bool:
    body = request.json if isinstance(request.json, dict) else {}
    return str(body.get("instructions", "")).startswith("checker:")
