"""Guardrails that call a model are durable: each guardrail check is a step
``guardrail:<name>``, the same agent through plain ``Runner`` and through Timestep gives the
same output, items and requests, a replay reuses the verdict instead of asking the model
again, and a worker SIGKILLed after the check finishes the run without asking it again."""

from __future__ import annotations

import json
import re
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from agents import InputGuardrailTripwireTriggered, RunConfig, Runner
from dbos import DBOS

import timestep
from tests import guardrail_agents as ga
from tests.test_runner_parity import _outcome
from timestep.testing import FakeModelServer, WorkerProcess

WORKER = Path(__file__).parent / "workers" / "guardrail_worker.py"


def _comparable(outcome: dict[str, Any]) -> Any:
    # A guardrail in parallel with the model call: their two requests may arrive either way,
    # and the fake numbers its responses and items (resp_0001...) by arrival.
    requests = sorted(json.dumps(r, sort_keys=True) for r in outcome["requests"])
    dumped = json.dumps({**outcome, "requests": requests}, sort_keys=True, default=str)
    return json.loads(re.sub(r"\b(resp|fc|msg)_\d{4}", r"\1_N", dumped))


@pytest.mark.usefixtures("durable")
@pytest.mark.parametrize("in_parallel", [True, False], ids=["parallel", "blocking"])
async def test_a_guardrail_that_calls_a_model_runs_like_runner_and_asks_once(in_parallel: bool):
    outcomes: dict[str, Any] = {}
    for side, run in (("plain", Runner.run), ("durable", timestep.run_agent)):
        with FakeModelServer(responder=ga.respond) as fake:
            agent = ga.build(fake.provider(), in_parallel=in_parallel)
            result = await run(agent, "add 2 and 3", run_config=_config(fake))
            outcomes[side] = _comparable(_outcome(result, fake.requests))
            assert sum(ga.is_checker(r) for r in fake.requests) == 1
            verdicts = [g.output.output_info for g in result.input_guardrail_results]
            assert verdicts == [{"verdict": "safe"}]
    assert outcomes["durable"] == outcomes["plain"]
    assert result.final_output == "5"

    steps = await DBOS.list_workflow_steps_async(result.workflow_id)
    names = Counter(s["function_name"] for s in steps)
    assert names["guardrail:vet"] == 1
    # The checker's model call ran inside the guardrail's step, not as a step of its own.
    assert sum(n.startswith("model:") for n in names.elements()) == 2

    # The same workflow id again replays the run: the checker is not asked again.
    with FakeModelServer(responder=ga.respond) as fake:
        again = await timestep.run_agent_workflow(
            ga.build(fake.provider(), in_parallel=in_parallel),
            "add 2 and 3",
            workflow_id=result.workflow_id,
            run_config=_config(fake),
        )
        assert fake.requests == []
    assert again.final_output == "5"


@pytest.mark.usefixtures("durable")
async def test_a_tripped_guardrail_raises_as_under_runner_and_is_not_asked_again():
    errors: dict[str, BaseException] = {}
    workflow_id = f"tripped-{uuid.uuid4().hex[:8]}"
    for side in ("plain", "durable"):
        with FakeModelServer(responder=ga.respond) as fake:
            agent = ga.build(fake.provider(), in_parallel=False)
            with pytest.raises(InputGuardrailTripwireTriggered) as raised:
                if side == "plain":
                    await Runner.run(agent, "refund me", run_config=_config(fake))
                else:
                    await timestep.run_agent_workflow(
                        agent, "refund me", workflow_id=workflow_id, run_config=_config(fake)
                    )
            errors[side] = raised.value
            assert [ga.is_checker(r) for r in fake.requests] == [True]  # the agent never ran
    plain, durable = errors["plain"], errors["durable"]
    assert type(durable) is type(plain) and str(durable) == str(plain)
    with FakeModelServer(responder=ga.respond) as fake:
        with pytest.raises(InputGuardrailTripwireTriggered):
            await timestep.run_agent_workflow(
                ga.build(fake.provider()), "refund me", workflow_id=workflow_id
            )
        assert fake.requests == []


def test_a_worker_killed_after_the_guardrail_check_does_not_ask_again(
    database_url: str, tmp_path: Path
):
    calls = tmp_path / "calls.log"
    workflow_id = f"guarded-{uuid.uuid4().hex[:8]}"
    with FakeModelServer(responder=ga.respond) as fake:
        worker = WorkerProcess(
            [sys.executable, str(WORKER), database_url, fake.base_url, workflow_id],
            env={ga.CALLS_LOG_ENV: str(calls)},
        )
        with worker:

            def kill_at_second_turn(request: Any) -> None:
                body = request.json if isinstance(request.json, dict) else {}
                if not ga.is_checker(request) and "function_call_output" in json.dumps(body):
                    worker.kill()  # the check, the first turn and the tool are recorded

            fake.on_request(kill_at_second_turn)
            worker.start()
            worker.wait_killed(timeout=60)
            fake.on_request(None)
            worker.restart()
            line = worker.wait_for_line("RESULT", timeout=120)
            assert worker.wait(timeout=30) == 0
        checker_requests = sum(ga.is_checker(r) for r in fake.requests)
    assert json.loads(line[len("RESULT ") :]) == {"final_output": "5"}
    assert checker_requests == 1
    assert calls.read_text().splitlines() == ["add 2 3"]


def _config(fake: FakeModelServer) -> RunConfig:
    return RunConfig(model_provider=fake.provider())
