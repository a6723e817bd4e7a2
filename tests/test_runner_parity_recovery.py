"""Runner parity across a crash: every scenario of tests/parity_scenarios.py started in a
worker process, SIGKILLed while its second model call is in flight, and finished by a fresh
process, ends as the same scenario run uninterrupted: the same output and items, and each
tool executed once. The fresh process rebuilds what each run was given (its agent by name and
fingerprint, context, hooks, RunConfig, session) from the run's recorded argument."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys
import threading
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, RunConfig

import timestep
from tests import parity_scenarios as sc
from tests.test_runner_parity import _durable, _item, turns_by_outputs
from timestep._core.live import RunObjects
from timestep._core.portable import portable, portable_fields
from timestep._core.process import process_state
from timestep._core.runtime import reset_process
from timestep.errors import AgentDefinitionChangedError, RecoveryError
from timestep.testing import FakeModelServer, RecordedRequest, Turn, WorkerProcess
from timestep.workflows._run_objects import rebuild_run_objects

WORKER = Path(__file__).parent / "workers" / "parity_worker.py"
RECOVERABLE = [s for s in sc.SCENARIOS if s.recoverable]


def _script_for(request: RecordedRequest) -> list[Turn]:
    return sc.scenario_of((request.json or {}).get("instructions") or "").script


def _outputs_in(request: RecordedRequest) -> int:
    items = (request.json or {}).get("input")
    return sum(
        1
        for i in (items if isinstance(items, list) else [])
        if str(i.get("type", "")).endswith("_call_output")
    )


def test_each_scenario_killed_mid_run_finishes_the_same_in_a_fresh_process(
    database_url: str, tmp_path: Path
):
    calls = tmp_path / "calls.log"
    folder = tmp_path / "worker"
    folder.mkdir()
    run_id = f"parity-{uuid.uuid4().hex[:8]}"
    second_calls: set[str] = set()
    all_second = threading.Event()

    def respond(request: RecordedRequest) -> Turn:
        return turns_by_outputs(_script_for(request))(request)

    with (
        FakeModelServer(responder=respond) as fake,
        WorkerProcess(
            [sys.executable, str(WORKER), database_url, fake.base_url, str(folder), run_id],
            env={sc.CALLS_LOG_ENV: str(calls)},
        ) as worker,
    ):

        def hold_second_calls(request: RecordedRequest) -> bool:
            # Every run's second model call waits here until all have arrived; then the
            # worker dies with all of them in flight.
            if _outputs_in(request) == 0:
                return False
            second_calls.add(
                json.dumps((request.json or {}).get("instructions"))
                + str(
                    sorted(
                        t.get("name") or t["type"] for t in (request.json or {}).get("tools") or []
                    )
                )
            )
            if len(second_calls) == len(RECOVERABLE):
                all_second.set()
                worker.kill()
            else:
                all_second.wait(timeout=60)
            return True

        fake.on_request(hold_second_calls)
        worker.start()
        worker.wait_killed(timeout=120)
        fake.on_request(None)
        before = Counter(calls.read_text().split("\n"))
        worker.restart()
        worker.wait_for_line("ALL DONE", timeout=180)
        assert worker.wait(timeout=30) == 0, worker.output()
    recovered = {
        record["scenario"]: record
        for line in worker.output().splitlines()
        if line.startswith("RESULT ")
        for record in [json.loads(line[len("RESULT ") :])]
    }
    assert set(recovered) == {s.name for s in RECOVERABLE}, worker.output()[-3000:]
    assert Counter(calls.read_text().split("\n")) == before, "a finished tool ran again"
    # The same scenarios uninterrupted, in this process. (DBOS launches here only now: a live
    # process on the database would have taken over the killed worker's runs itself.)
    uninterrupted_calls = tmp_path / "uninterrupted.log"
    os.environ[sc.CALLS_LOG_ENV] = str(uninterrupted_calls)
    timestep.configure_dbos(database_url)
    timestep.ensure_dbos_launched()
    try:
        for scenario in RECOVERABLE:
            (tmp_path / "durable").mkdir(exist_ok=True)
            _, result, _ = asyncio.run(_durable(scenario, tmp_path))
            if isinstance(result, Exception):  # raised: the same class and message
                expected_error = [type(result).__name__, str(result)]
                assert recovered[scenario.name].get("error") == expected_error, scenario.name
                continue
            expected = {
                "scenario": scenario.name,
                "final_output": json.loads(json.dumps(result.final_output, default=str)),
                "items": json.loads(
                    json.dumps(
                        [list(_item(i)[:2]) + list(_item(i)[2]) for i in result.new_items],
                        default=str,
                    )
                ),
                "last_agent": result.last_agent.name,
            }
            assert _without_ids(recovered[scenario.name]) == _without_ids(expected), scenario.name
    finally:
        os.environ.pop(sc.CALLS_LOG_ENV, None)
        reset_process()
    assert Counter(uninterrupted_calls.read_text().split("\n")) == Counter(
        calls.read_text().split("\n")
    ), "the recovered runs executed their tools as often as uninterrupted runs"


def _without_ids(value: Any) -> Any:
    """The fake names items by its request counter, which differs between one fake serving
    every scenario at once and one per scenario."""
    if isinstance(value, dict):
        return {k: _without_ids(v) for k, v in value.items() if k != "id"}
    if isinstance(value, list):
        return [_without_ids(v) for v in value]
    return value


def test_what_a_run_is_given_is_rebuilt_from_its_recorded_form(durable: str):
    codecs = process_state().type_codecs
    context = sc.Account(user="ada", tier="gold")
    config = RunConfig(model="parity-model", workflow_name="w", tracing_disabled=True)
    agent = Agent(name="rebuilt", instructions="Hi.", tools=[sc.add])
    timestep.register_agent(agent)
    from timestep._core.fingerprint import fingerprint

    request: Any = {
        "agent": "rebuilt",
        "agent_fingerprint": fingerprint(agent),
        "context": portable(context, codecs),
        "hooks": portable(sc.AuditHooks(), codecs),
        "run_config": portable_fields(config, codecs, skip=frozenset({"model_provider"})),
        "error_handlers": {"max_turns": portable(sc.stop_after_max_turns, codecs)},
    }
    objects = rebuild_run_objects(request)
    assert isinstance(objects, RunObjects) and objects.agent is agent
    assert objects.context == context and objects.context is not context
    assert isinstance(objects.hooks, sc.AuditHooks)
    assert objects.run_config is not None
    assert (objects.run_config.model, objects.run_config.workflow_name) == ("parity-model", "w")
    assert objects.error_handlers == {"max_turns": sc.stop_after_max_turns}

    # What cannot be rebuilt fails the recovery and says what to register.
    request["hooks"] = portable(_LocalHooks(), codecs)
    with pytest.raises(RecoveryError, match=r"hooks.*register_type"):
        rebuild_run_objects(request)
    request["hooks"] = None
    request["context"] = portable(threading.Lock(), codecs)
    with pytest.raises(RecoveryError, match="context"):
        rebuild_run_objects(request)

    # A changed definition is named, unless the agent was registered to continue.
    request["context"] = None
    agent.instructions = "Hello instead."
    with pytest.raises(AgentDefinitionChangedError, match="instructions changed") as info:
        rebuild_run_objects(request)
    assert info.value.changes == ["agent 'rebuilt': instructions changed"]
    timestep.register_agent(agent, on_definition_change="continue")
    assert rebuild_run_objects(request).agent is agent


class _LocalHooks(sc.AuditHooks):
    """Hooks of a type nobody registered."""


UNPICKLABLE_WORKER = Path(__file__).parent / "workers" / "unpicklable_worker.py"


def test_values_dbos_cannot_pickle_survive_a_sigkill(database_url: str, tmp_path: Path):
    """A tool output holding a lock and a local output class, killed after the tool's step
    and recovered in a fresh process: the model is asked exactly what plain Runner asks, the
    tool is not run again, and the recovered result holds their JSON forms."""
    from agents import Runner

    from tests.test_runner_parity import _body, grab

    script = [sc.function_call("grab", {}), sc.text('{"response": {"n": 7}}')]

    @dataclasses.dataclass
    class Answer:
        n: int

    plain_agent = Agent(name="unpicklable", instructions="Grab.", tools=[grab], output_type=Answer)
    with FakeModelServer(responder=turns_by_outputs(script)) as fake:
        plain = asyncio.run(
            Runner.run(plain_agent, "go", run_config=RunConfig(model_provider=fake.provider()))
        )
        plain_requests = [_body(r) for r in fake.requests]
    assert plain.final_output == Answer(n=7)

    reset_process()  # only the worker processes may run this run
    grabs = tmp_path / "grabs.log"
    workflow_id = f"unpicklable-{uuid.uuid4().hex[:8]}"
    with FakeModelServer(responder=turns_by_outputs(script)) as fake:
        command = [sys.executable, str(UNPICKLABLE_WORKER), database_url, fake.base_url]
        with WorkerProcess([*command, str(grabs), workflow_id]) as worker:
            # The second model call (the tool's output in its input) never returns.
            fake.on_request(lambda r: _outputs_in(r) > 0 and worker.kill())
            worker.start()
            worker.wait_killed(timeout=90)
            fake.on_request(None)
            worker.restart()
            worker.wait_for_line("RESULT", timeout=90)
            assert worker.wait(timeout=30) == 0
        recovered = json.loads(worker.output().split("RESULT ", 1)[1].splitlines()[0])
        durable_requests = [_body(r) for r in fake.requests]
    assert grabs.read_text().split() == ["grab"]  # the tool's step replayed, not re-run
    # The killed attempt's second call and the recovered one ask what plain Runner asked.
    assert durable_requests == [plain_requests[0], plain_requests[1], plain_requests[1]]
    # The recovering process's caller gets the live objects, as under Runner; the run's record,
    # read from another process, their JSON forms.
    assert recovered == {"final_output": "build.<locals>.Answer(n=7)", "tool_outputs": ["held 7"]}
    timestep.configure_dbos(database_url)
    try:
        fetched = asyncio.run(timestep.get_run_result(workflow_id, plain_agent))
    finally:
        reset_process()
    assert fetched.final_output == {"n": 7}
    assert [i.output for i in fetched.new_items if hasattr(i, "output")] == ["held 7"]
