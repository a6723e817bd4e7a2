"""``/metrics`` on SQLite and Postgres, parsed with prometheus-client's own parser after known
runs: runs by status, pending approvals, step latency histograms by kind, tokens and cost by
provider and model (including the daily sums retention leaves)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from agents import Agent, function_tool
from prometheus_client.parser import text_string_to_metric_families

import timestep
from timestep import collect_garbage, get_pending_approvals, run_agent, start_agent_run
from timestep.server import ServerSettings, create_app
from timestep.testing import error, function_call, text

pytestmark = pytest.mark.usefixtures("own_durable")

TOKEN = f"metrics-{uuid.uuid4().hex}"


@function_tool
def lookup(order_id: str) -> str:
    """Look an order up."""
    return f"order {order_id}: paid"


@function_tool(needs_approval=True)
def refund(order_id: str) -> str:
    """Refund an order."""
    return f"refunded {order_id}"


def _agent() -> Agent:
    return Agent(name="metrics-agent", instructions="Help.", tools=[lookup, refund])


async def _scrape() -> dict[str, dict[tuple, float]]:
    app = create_app(ServerSettings(api_token=TOKEN))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://metrics") as client:
        assert (await client.get("/metrics")).status_code == 401
        response = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            key = tuple(sorted(sample.labels.items()))
            samples.setdefault(sample.name, {})[key] = sample.value
    return samples


async def test_metrics_after_known_runs(fake_model):
    agent = _agent()
    for order in ("A1", "A2"):
        fake_model.add_turns(function_call("lookup", {"order_id": order}), text(f"{order} ok"))
        await run_agent(agent, f"look {order} up", None)
    fake_model.add_turns(error(400, message="bad request"))
    with pytest.raises(Exception, match="bad request"):
        await run_agent(agent, "fail", None)
    fake_model.add_turns(function_call("refund", {"order_id": "W1"}, call_id="call_w1"))
    handle = await start_agent_run(agent, "refund W1", None, wait_for_approvals=True)
    for _ in range(500):
        if await get_pending_approvals(handle.workflow_id):
            break
        await asyncio.sleep(0.02)
    await timestep.flush_records()

    m = await _scrape()
    assert m["timestep_runs"] == {
        (("status", "SUCCESS"),): 2.0,
        (("status", "ERROR"),): 1.0,
        (("status", "PENDING"),): 1.0,
    }
    assert m["timestep_pending_approvals"] == {(): 1.0}
    # Model steps: 2 per finished run, the failed call (a step that ended in its error) and
    # the waiting run's first; tool steps: one lookup per finished run.
    model, tool = (("kind", "model"),), (("kind", "tool"),)
    counts = m["timestep_step_duration_seconds_count"]
    assert counts[model] == 6.0 and counts[tool] == 2.0
    buckets = m["timestep_step_duration_seconds_bucket"]
    assert buckets[(*model, ("le", "+Inf"))] == 6.0
    model_buckets = sorted(
        (float(dict(k)["le"]), v) for k, v in buckets.items() if dict(k)["kind"] == "model"
    )
    assert [v for _, v in model_buckets] == sorted(v for _, v in model_buckets)  # cumulative
    assert m["timestep_step_duration_seconds_sum"][model] > 0
    # Tokens and cost by provider and model: the fake's usage, 4 recorded calls (a waiting
    # run's rows are written when it ends).
    (labels,) = m["timestep_model_requests_total"]
    provider, model_name = dict(labels)["provider"], dict(labels)["model"]
    assert provider == "openai" and model_name
    assert m["timestep_model_requests_total"][labels] == 4.0
    usage = await timestep.get_usage()
    tokens = m["timestep_tokens_total"]
    key = (("model", model_name), ("provider", provider))
    assert tokens[(*key, ("type", "input"))] == usage.input_tokens
    assert tokens[(*key, ("type", "output"))] == usage.output_tokens
    assert m["timestep_cost_usd_total"][labels] == pytest.approx(usage.cost_usd or 0.0)

    # After retention deletes the finished runs, tokens stay (summed per day), runs go.
    later = datetime.now(UTC) + timedelta(days=2)
    assert (await collect_garbage(policy="finished=1d", now=later)).runs == 2
    after = await _scrape()
    assert after["timestep_runs"] == {(("status", "ERROR"),): 1.0, (("status", "PENDING"),): 1.0}
    assert after["timestep_tokens_total"] == tokens
    assert after["timestep_step_duration_seconds_count"][model] == 2.0


async def test_limiter_waits_after_calls_queued_for_a_permit(fake_model):
    # A provider of its own, one call at a time: of three runs started together, the second
    # call waits out the first (0.2 s), the third both.
    prefix = f"metrics{uuid.uuid4().hex[:8]}"
    limit = timestep.limit_provider(prefix, concurrency=1)
    fake_model.set_default(text("slow answer", delay=0.2))
    agent = Agent(name="metrics-limited", instructions="Answer.", model=f"{prefix}/gpt-4.1")

    await asyncio.gather(*(run_agent(agent, f"q{i}", None) for i in range(3)))

    m = await _scrape()
    queue = (("queue", limit.queue_name),)
    assert m["timestep_limiter_wait_seconds_count"][queue] == 3.0
    assert m["timestep_limiter_wait_seconds_bucket"][(("le", "+Inf"), *queue)] == 3.0
    assert m["timestep_limiter_wait_seconds_sum"][queue] >= 0.5  # 0.2 + 0.4, less rounding
