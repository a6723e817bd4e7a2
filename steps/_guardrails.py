"""Guardrails as steps: each input or output guardrail a durable run checks is a step
``guardrail:<name>``, so a guardrail that calls a model (an agent run inside it, the SDK's
usual pattern) asks it once, and a replay reuses its verdict instead of asking again. Inside
the step its model calls run as plain calls (``durable_run`` is None in a step).

The step id is drawn when the SDK calls the guardrail, before anything awaits: guardrails
that run in parallel with the model call start their tasks in a fixed order, ahead of the
model's step, so a replay meets the same ids. The verdict is recorded as its two fields: the
tripwire, and the guardrail's ``output_info`` in a form DBOS can store
(``_core.portable.storable``); the run's own process gets the guardrail's live output.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any

from agents import GuardrailFunctionOutput, InputGuardrail, OutputGuardrail
from dbos import DBOS, StepOptions

from timestep._core.portable import storable

from ._current_run import durable_run
from ._tracing import Traced

__all__ = ["GUARDRAIL_STEP_PREFIX", "make_guardrails_durable"]

GUARDRAIL_STEP_PREFIX = "guardrail:"
_MARK = "__timestep_durable_guardrail__"


def make_guardrails_durable(
    guardrails: Iterable[InputGuardrail[Any] | OutputGuardrail[Any]],
) -> None:
    """Make each guardrail's checks steps in durable runs, on the guardrail itself
    (idempotent); everywhere else it behaves as before."""
    for guardrail in guardrails:
        function = guardrail.guardrail_function
        if getattr(function, _MARK, False):
            continue
        guardrail.guardrail_function = _durable_check(function, guardrail.get_name())


def _durable_check(function: Callable[..., Any], name: str) -> Callable[..., Any]:
    options: StepOptions = {"name": f"{GUARDRAIL_STEP_PREFIX}{name}"}

    @functools.wraps(function)
    def check(*args: Any) -> Any:
        run = durable_run()
        if run is None:
            return function(*args)
        reservation = DBOS.reserve_step()  # now, before the SDK's tasks interleave
        live: list[GuardrailFunctionOutput] = []

        async def body() -> dict[str, Any]:
            output = function(*args)
            verdict: GuardrailFunctionOutput = (
                await output if inspect.isawaitable(output) else output
            )
            live.append(verdict)
            return {
                "tripwire_triggered": bool(verdict.tripwire_triggered),
                "output_info": storable(verdict.output_info),
            }

        def verdict(recorded: dict[str, Any]) -> dict[str, Any]:
            return {"timestep.guardrail.tripwire_triggered": recorded["tripwire_triggered"]}

        attributes = {"timestep.guardrail.name": name, "timestep.workflow_id": run.workflow_id}
        step = Traced(run, f"guardrail {name}", attributes, body, verdict)

        async def checked() -> GuardrailFunctionOutput:
            recorded = await step.run_step(options, reservation)
            if live:
                return live[-1]
            return GuardrailFunctionOutput(
                output_info=recorded["output_info"],
                tripwire_triggered=recorded["tripwire_triggered"],
            )

        return checked()

    setattr(check, _MARK, True)
    return check
