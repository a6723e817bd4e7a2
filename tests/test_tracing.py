"""OpenTelemetry traces of durable runs (``timestep._core.tracing``): one trace per run, its
spans a tree under the run's root, across a SIGKILL and the process that recovers the run."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

from tests import parity_scenarios as sc
from timestep._core.runtime import reset_process
from timestep._core.tracing import RunTrace
from timestep.testing import (
    FakeModelServer,
    WorkerProcess,
    conversation_script,
    function_call,
    text,
)

WORKERS = Path(__file__).parent / "workers"
WORKER = WORKERS / "tracing_worker.py"


def _spans(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_a_run_is_one_trace_across_a_sigkill_and_its_recovery(database_url: str, tmp_path: Path):
    # Only the worker processes may run this run (see test_approvals' crash test).
    reset_process()
    workflow_id = f"traced-{uuid.uuid4().hex[:8]}"
    usage = {"input_tokens": 40, "output_tokens": 7}
    script = [
        function_call("lookup", {"order_id": "7"}, call_id="call_lookup", usage=usage),
        function_call("refund", {"order_id": "7"}, call_id="call_refund", usage=usage),
        text("Order 7 refunded.", usage=usage),
    ]
    spans_file = tmp_path / "spans.jsonl"
    with FakeModelServer(responder=conversation_script(script)) as server:
        command = [sys.executable, str(WORKER), database_url, server.base_url]
        with WorkerProcess([*command, str(spans_file), workflow_id]) as worker:
            worker.start()
            worker.wait_for_line("WAITING", timeout=60)
            first_pid = worker.pid
            worker.kill()
            approver = (
                "import asyncio, timestep\n"
                f"timestep.configure_dbos({database_url!r})\n"
                f"asyncio.run(timestep.approve({workflow_id!r}, 'call_refund', by='ops'))\n"
            )
            subprocess.run([sys.executable, "-c", approver], check=True, timeout=60)
            worker.restart()
            worker.wait_for_line("RESULT", timeout=90)
            second_pid = worker.pid
            assert worker.wait(timeout=30) == 0
        assert "Order 7 refunded." in worker.output()
        assert len(server.requests) == 3  # no model call repeated by the recovery

    spans = _spans(spans_file)
    caller = next(s for s in spans if s["name"] == "POST /refunds" and s["pid"] == first_pid)
    trace_id = caller["context"]["trace_id"]
    run_spans = [s for s in spans if s["context"]["trace_id"] == trace_id and s is not caller]

    # One root, emitted by the process that finished the run, under the caller's span.
    roots = [s for s in run_spans if s["name"] == "invoke_agent traced-agent"]
    assert len(roots) == 1
    root = roots[0]
    assert root["parent_id"] == caller["context"]["span_id"]
    assert root["pid"] == second_pid
    assert root["attributes"]["timestep.workflow_id"] == workflow_id
    assert root["attributes"]["timestep.run.outcome"] == "success"
    assert root["attributes"]["gen_ai.usage.input_tokens"] == 3 * usage["input_tokens"]
    assert root["attributes"]["gen_ai.usage.output_tokens"] == 3 * usage["output_tokens"]
    assert root["start_time"] <= caller["end_time"]

    # Every other span is a child of the root: one tree, though two processes made it.
    children = [s for s in run_spans if s is not root]
    assert {s["parent_id"] for s in children} == {root["context"]["span_id"]}
    assert len({s["context"]["span_id"] for s in run_spans}) == len(run_spans)

    # Each step once, in the process that really ran it; the recovery replayed the rest.
    made_by = Counter((s["name"], s["pid"]) for s in children)
    assert made_by == Counter(
        {
            ("timestep.queue_wait", first_pid): 2,
            ("chat gpt-5.6-luna", first_pid): 2,
            ("execute_tool lookup", first_pid): 1,
            ("timestep.approval_wait", second_pid): 1,
            ("execute_tool refund", second_pid): 1,
            ("timestep.queue_wait", second_pid): 1,
            ("chat gpt-5.6-luna", second_pid): 1,
        }
    ), made_by

    chats = [s for s in children if s["name"].startswith("chat ")]
    for chat in chats:
        attributes = chat["attributes"]
        assert attributes["gen_ai.operation.name"] == "chat"
        assert attributes["gen_ai.provider.name"] == "openai"
        assert attributes["gen_ai.usage.input_tokens"] == usage["input_tokens"]
        assert attributes["gen_ai.usage.output_tokens"] == usage["output_tokens"]
        assert attributes["timestep.step.attempt"] == 1
    refund = next(s for s in children if s["name"] == "execute_tool refund")
    assert refund["attributes"]["gen_ai.tool.call.id"] == "call_refund"
    assert refund["attributes"]["timestep.tool.outcome"] == "ok"
    wait = next(s for s in children if s["name"] == "timestep.approval_wait")
    assert wait["attributes"]["timestep.approval.decision"] == "approve"
    assert wait["attributes"]["timestep.approval.by"] == "ops"
    assert wait["end_time"] <= refund["start_time"]
    # The steps' order in time is the run's order.
    ordered = sorted(children, key=lambda s: s["start_time"])
    assert [s["name"] for s in ordered] == [
        "timestep.queue_wait",
        "chat gpt-5.6-luna",
        "execute_tool lookup",
        "timestep.queue_wait",
        "chat gpt-5.6-luna",
        "timestep.approval_wait",
        "execute_tool refund",
        "timestep.queue_wait",
        "chat gpt-5.6-luna",
    ]
    queued = [s for s in children if s["name"] == "timestep.queue_wait"]
    assert all(s["attributes"]["gen_ai.provider.name"] == "openai" for s in queued)
    assert all(s["end_time"] >= s["start_time"] for s in queued)


def test_a_runs_trace_ids_follow_from_its_workflow_id():
    # The same workflow id (a caller's retry, another process) names the same trace and
    # root; another run gets others; a caller's span lends the run its trace id.
    first, again = RunTrace.of_run("wf-1", "a"), RunTrace.of_run("wf-1", "a")
    other = RunTrace.of_run("wf-2", "a")
    assert (first.trace_id, first.span_id) == (again.trace_id, again.span_id)
    assert first.trace_id != other.trace_id and first.span_id != other.span_id
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    under = RunTrace.of_run("wf-1", "a", parent)
    assert under.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    assert under.parent is not None and under.parent.span_id == 0xB7AD6B7169203331
    assert under.span_id == first.span_id


_FAILING_SPANS = """
import json
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from timestep._core.tracing import RunTrace

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
run = RunTrace.of_run("wf-failing", "a")
error = RuntimeError("provider said: bad key sk-proj-abcdefghijklmnopqrstuvwxyz123456")
try:
    with run.span("chat m", {}):
        raise error
except RuntimeError:
    pass
run.emit_root({}, error)
print(json.dumps([
    {"name": s.name, "status": s.status.description, "error": s.attributes.get("error.type"),
     "events": [e.name for e in s.events]}
    for s in exporter.get_finished_spans()
]))
"""


def test_a_failed_steps_span_carries_its_error_without_secrets():
    # Spans leave the process (to the exporter's backend): the error's class and a scrubbed
    # message, never the SDK's exception event with the raw message and traceback.
    done = subprocess.run(
        [sys.executable, "-c", _FAILING_SPANS], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    spans = json.loads(done.stdout.strip().splitlines()[-1])
    assert [s["name"] for s in spans] == ["chat m", "invoke_agent a"]
    for span in spans:
        assert span["error"] == "RuntimeError" and span["events"] == []
        assert span["status"].startswith("provider said: bad key ")
        assert "sk-proj-abcdefghijklmnopqrstuvwxyz123456" not in span["status"]


_FORKED_SPANS = """
import asyncio, json, sys, time
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from agents import Agent
import timestep
from timestep._client.inspection import fork_run
from timestep.testing import FakeModelServer, text

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
agent = Agent(name="forked-agent", instructions="Answer.")
timestep.register_agent(agent)  # the fork is rebuilt from the registry
timestep.configure_dbos(sys.argv[1])
timestep.ensure_dbos_launched()

async def main():
    with FakeModelServer() as server:
        # Timestep's provider: the fork runs on DBOS's loop, which gets a client of its own.
        provider = timestep.MultiModelProvider(openai_base_url=server.base_url, openai_api_key="k")
        timestep.set_model_provider(provider)
        server.add_turns(text("first"), text("again"))
        original = await timestep.run_agent(agent, "hi", workflow_id=sys.argv[2])
        assert original.final_output == "first"
        time.sleep(1.2)  # later than the original by more than DBOS's precision
        forked_at = time.time_ns()
        fork = await fork_run(sys.argv[2], 1)
        await timestep.get_run_result(fork)
    roots = {
        s.attributes["timestep.workflow_id"]: s.start_time
        for s in exporter.get_finished_spans()
        if s.name.startswith("invoke_agent")
    }
    print(json.dumps({"original": roots[sys.argv[2]], "fork": roots[fork], "forked_at": forked_at}))

asyncio.run(main())
"""


def test_a_forked_runs_root_span_starts_when_it_was_forked(database_url: str):
    # The fork replays its origin's request, whose start is the origin's: its root span
    # starts when a worker began the fork instead (DBOS's status row says when).
    reset_process()
    workflow_id = f"to-fork-{uuid.uuid4().hex[:8]}"
    done = subprocess.run(
        [sys.executable, "-c", _FORKED_SPANS, database_url, workflow_id],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    starts = json.loads(done.stdout.strip().splitlines()[-1])
    assert starts["original"] < starts["forked_at"] - 1_200_000_000
    # DBOS records the start in whole ms on Postgres, in whole seconds on SQLite.
    precision = 1_000_000_000 if database_url.startswith("sqlite") else 1_000_000
    assert starts["fork"] >= starts["forked_at"] - precision


def test_with_a_tracer_provider_every_parity_scenario_runs_as_under_runner(
    database_url: str, tmp_path: Path
):
    # Tracing must not change what a run does: the differential suite's scenarios, in a process
    # with a tracer provider (tests/workers/traced_parity_worker.py), compared as
    # test_runner_parity compares them; each durable run made its spans and one root.
    reset_process()
    done = subprocess.run(
        [sys.executable, str(WORKERS / "traced_parity_worker.py"), database_url, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    results = [
        json.loads(line.removeprefix("RESULT "))
        for line in done.stdout.splitlines()
        if line.startswith("RESULT ")
    ]
    assert [r["scenario"] for r in results] == [s.name for s in sc.SCENARIOS]
    assert [r for r in results if r["difference"]] == []
    assert all(r["roots"] == 1 and r["spans"] > 1 for r in results), results
