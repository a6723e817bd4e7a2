"""Token limits and spend budgets on the ledger of model calls: exact across worker processes,
estimate before the call and settlement after it, nothing reserved by a replay, and a budget
that stops a run before the call that would pass it."""

from __future__ import annotations

import asyncio
import functools
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from agents import Agent, ModelSettings, function_tool

import timestep
from timestep._client.inspection import resume_run
from timestep._core import ledger
from timestep._core.process import process_state
from timestep._core.runtime import reset_process, tables_engine
from timestep._core.tables import model_calls_table
from timestep.errors import BudgetExceededError
from timestep.testing import FakeModelServer, WorkerProcess, error, function_call, text

WORKER = Path(__file__).parent / "workers" / "token_worker.py"
USAGE = {"input_tokens": 20, "output_tokens": 180}  # 200 per call, at most its estimate


@pytest.fixture(autouse=True)
def _no_limits() -> Iterator[None]:
    yield
    process_state().limits.clear()


async def _rows(url: str, *, workflow_ids: set[str] | None = None, tag: str | None = None) -> list:
    t = model_calls_table
    query = sa.select(t)
    if workflow_ids is not None:
        query = query.where(t.c.workflow_id.in_(workflow_ids))
    if tag is not None:
        query = query.where(t.c.tags.contains(f",{tag},"))
    engine = await process_state().engines.get(url)
    async with engine.connect() as conn:
        return list((await conn.execute(query)).all())


def _run_workers(database_url: str, tmp_path: Path, prefix: str, runs: int) -> tuple:
    """Two worker processes, each starting ``runs`` plain and ``runs`` tagged one-call runs
    at once; the requests at the fake and the workers' ``(kind, outcome)`` results."""
    go = tmp_path / "go"
    outcomes: list[tuple[str, str]] = []
    with FakeModelServer() as fake:
        fake.set_default(text("ok", usage=USAGE))
        command = [sys.executable, str(WORKER), database_url, fake.base_url, prefix, str(runs)]
        command.append(str(go))
        with (
            WorkerProcess(command, env={"TIMESTEP_EXECUTOR_ID": f"{prefix}-1"}) as first,
            WorkerProcess(command, env={"TIMESTEP_EXECUTOR_ID": f"{prefix}-2"}) as second,
        ):
            for worker in (first, second):
                worker.start()
            for worker in (first, second):
                worker.wait_for_line("LAUNCHED", timeout=90)
            go.touch()
            for worker in (first, second):
                worker.wait_for_line("DONE", timeout=120)
                outcomes += [
                    (line.split()[1], line.split()[3])
                    for line in worker.lines()
                    if line.startswith("RESULT")
                ]
        return list(fake.requests), outcomes


async def test_two_workers_share_a_token_limit_and_a_tenants_daily_budget(
    database_url: str, tmp_path: Path
) -> None:
    """Two processes share ``tokens=1000, per_seconds=2`` and a tenant's daily budget of 1000
    tokens. Every call uses 200 tokens and reserves an estimate of about 240.

    - Token limit: no 2 s window at the fake holds more than 1000 tokens; each call reserved
      an estimate at least its real usage and settled to it.
    - Budget: the tenant's calls fit four times whatever the timing (three settled or in
      flight leave room for a fourth estimate, four do not); its other eight runs stop before
      calling the model, with ``BudgetExceededError``.
    """
    reset_process()  # only the workers call the model here
    prefix = f"tok{uuid.uuid4().hex[:8]}"
    scope = f"tag:tenant-{prefix}"
    await timestep.set_budget(scope, max_tokens=1000, per="day", database_url=database_url)
    try:
        requests, outcomes = _run_workers(database_url, tmp_path, prefix, 6)
        budget = {b.scope: b for b in await timestep.get_budgets(database_url=database_url)}
        rows = [row for row in await _rows(database_url) if row.limit_key == prefix]
    finally:
        await timestep.remove_budget(scope, database_url=database_url)
        reset_process()

    assert sorted(o for kind, o in outcomes if kind == "plain") == ["ok"] * 12
    tagged = sorted(o for kind, o in outcomes if kind == "tagged")
    assert tagged == ["BudgetExceededError"] * 8 + ["ok"] * 4
    assert len(requests) == 16
    askers = {r.json["input"][0]["content"].split("-")[0] for r in requests}
    assert len(askers) == 2, "both workers made calls"

    # Every turn carries USAGE: each request is answered with 200 tokens.
    per_call = USAGE["input_tokens"] + USAGE["output_tokens"]
    arrivals = sorted((r.received_at, per_call) for r in requests)
    windows = [sum(n for u, n in arrivals if t <= u < t + 2.0) for t, _ in arrivals]
    assert max(windows) <= 1000, windows
    assert max(windows) >= 600  # the limit is used, not just respected (even on a busy machine)
    assert arrivals[-1][0] - arrivals[0][0] >= 6.0  # 3200 tokens need four windows

    assert len(rows) == 16 and all(row.settled for row in rows)
    assert all(row.tokens == 200 <= row.estimate_tokens for row in rows)
    # The estimate: the request's bytes / 3 plus framing, and max_tokens (200) for the output.
    assert all(230 < row.estimate_tokens < 250 for row in rows)
    tenant = [row for row in rows if f",tenant-{prefix}," in row.tags]
    assert len(tenant) == 4
    assert budget[scope].spent_tokens == 800 and budget[scope].max_tokens == 1000


@pytest.mark.usefixtures("durable")
async def test_a_replayed_call_reserves_nothing(fake_model, database_url: str) -> None:
    prefix = f"rep{uuid.uuid4().hex[:8]}"
    timestep.limit_provider(prefix, tokens=5000, per_seconds=60.0)
    fake_model.set_default(text("once", usage=USAGE))
    agent = Agent(name="token-replay", instructions="Answer.", model=f"{prefix}/gpt-4.1")
    workflow_id = f"token-once-{uuid.uuid4().hex[:8]}"

    first = await timestep.run_agent_workflow(agent, "hi", workflow_id=workflow_id)
    again = await timestep.run_agent_workflow(agent, "hi", workflow_id=workflow_id)

    assert first.final_output == again.final_output == "once"
    assert len(fake_model.requests) == 1
    (row,) = await _rows(database_url, workflow_ids={workflow_id})
    assert row.settled and row.tokens == 200
    # No max_tokens: the output estimate is the limit's output_tokens (1024 by default).
    assert row.estimate_tokens > 1024


@pytest.mark.usefixtures("durable")
async def test_a_429_with_retry_after_holds_back_the_next_calls(fake_model, database_url) -> None:
    """A 429 that reaches the model step blocks the provider's admissions for its Retry-After,
    for every run and every worker (the block is a row of the shared ledger)."""
    prefix = f"ra{uuid.uuid4().hex[:8]}"
    timestep.limit_provider(prefix, tokens=100_000, per_seconds=60.0)
    # Three 429s: the OpenAI client's own two retries, then the error reaches the step.
    fake_model.add_turns(*[error(429, retry_after=0.3)] * 2, error(429, retry_after=3.0))
    fake_model.set_default(text("ok", usage=USAGE))
    agent = Agent(name="token-429", instructions="Answer.", model=f"{prefix}/gpt-4.1")

    with pytest.raises(Exception, match="429|rate"):
        await timestep.run_agent(agent, "first")
    blocked_at = fake_model.requests[-1].received_at
    result = await timestep.run_agent(agent, "second")

    assert result.final_output == "ok"
    assert fake_model.requests[-1].received_at - blocked_at >= 2.5


looked_up: list[str] = []


@function_tool
def look_up(order_id: str) -> str:
    """Look an order up."""
    looked_up.append(order_id)
    return f"order {order_id}: shipped"


BUDGETED = Agent(
    name="budgeted-clerk",
    instructions="Answer.",
    model="gpt-4.1",
    tools=[look_up],
    model_settings=ModelSettings(max_tokens=200),
)


async def test_a_budget_stops_a_run_before_the_call_that_would_pass_it(
    fake_model, database_url: str
) -> None:
    """The second model call would pass the run's budget: the run fails before it with
    BudgetExceededError, state kept; after a restart and a larger budget it resumes there."""
    from timestep import configure_dbos, ensure_dbos_launched

    if process_state().runtime is not None:
        reset_process(destroy=False)
    configure_dbos(database_url)
    timestep.register_agent(BUDGETED)
    ensure_dbos_launched()
    looked_up.clear()
    workflow_id = f"budget-{uuid.uuid4().hex[:8]}"
    scope = f"run:{workflow_id}"
    # The first call's estimate (about 310 tokens: the request, the tool, max_tokens) fits;
    # its 100 real tokens plus the second call's estimate do not.
    await timestep.set_budget(scope, max_tokens=400)
    small = {"input_tokens": 60, "output_tokens": 40}
    fake_model.add_turns(
        function_call("look_up", {"order_id": "7"}, usage=small),
        text("Order 7 has shipped.", usage=small),
    )
    try:
        with pytest.raises(BudgetExceededError, match=scope):
            await timestep.run_agent_workflow(
                BUDGETED, "where is order 7?", workflow_id=workflow_id
            )
        assert len(fake_model.requests) == 1 and looked_up == ["7"]
        assert (await timestep.get_run(workflow_id)).status == "ERROR"
        (status,) = [b for b in await timestep.get_budgets() if b.scope == scope]
        assert status.spent_tokens == 100 and status.max_tokens == 400

        reset_process()  # a restart: a fresh process state, DBOS launched again
        configure_dbos(database_url)
        timestep.set_model_provider(fake_model.provider())
        ensure_dbos_launched()
        assert process_state().budgets_enforced  # a budget in the database at launch
        await timestep.set_budget(scope, max_tokens=1000)
        await resume_run(workflow_id)
        result = await timestep.get_run_result(workflow_id)

        assert result.final_output == "Order 7 has shipped."
        assert len(fake_model.requests) == 2 and looked_up == ["7"]
        rows = await _rows(database_url, workflow_ids={workflow_id})
        assert sorted(row.tokens for row in rows) == [100, 100]
    finally:
        await timestep.remove_budget(scope)
        reset_process()


def test_spend_shows_in_get_usage_the_cli_and_the_api(
    durable: str, fake_model, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tag's recorded usage (``get_usage(tag=)``), and its budget's spend, from the Python
    API, ``timestep usage`` and ``GET /usage``."""
    import asyncio
    import json

    import httpx
    from test_server import served
    from typer.testing import CliRunner

    from timestep.cli import app
    from timestep.server import ServerSettings, create_app

    monkeypatch.setenv("TIMESTEP_DATABASE_URL", durable)
    tag = f"tenant-{uuid.uuid4().hex[:8]}"
    scope = f"tag:{tag}"
    token = f"usage-{uuid.uuid4().hex}"
    fake_model.set_default(text("ok", usage=USAGE))
    agent = Agent(name="spender", instructions="Answer.", model="gpt-4.1")

    async def scenario() -> tuple:
        await timestep.set_budget(scope, max_tokens=10_000, per="month")
        await timestep.run_agent(agent, "hi", tags=[tag])
        await timestep.run_agent(agent, "hi", tags=[tag, "other"])
        await timestep.run_agent(agent, "hi", tags=["other"])
        usage = await timestep.get_usage(tag=tag)
        async with (
            served(create_app(ServerSettings(api_token=token))) as server,
            httpx.AsyncClient(
                base_url=server.url(), headers={"Authorization": f"Bearer {token}"}
            ) as client,
        ):
            got = await client.get("/usage", params={"tag": tag})
        return usage, got

    try:
        usage, got = asyncio.run(scenario())
        runner = CliRunner()
        shown = runner.invoke(app, ["usage", "--tag", tag, "--json"])
        table = runner.invoke(app, ["usage", "--tag", tag])
    finally:
        asyncio.run(timestep.remove_budget(scope))

    assert (usage.requests, usage.input_tokens, usage.output_tokens) == (2, 40, 360)
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["usage"]["requests"] == 2 and body["usage"]["output_tokens"] == 360
    (budget,) = [b for b in body["budgets"] if b["scope"] == scope]
    assert budget["spent_tokens"] == 400 and budget["max_tokens"] == 10_000
    assert shown.exit_code == 0, shown.output
    report = json.loads(shown.output)
    assert report["usage"]["input_tokens"] == 40
    assert [b["spent_tokens"] for b in report["budgets"] if b["scope"] == scope] == [400]
    assert table.exit_code == 0 and scope in table.output and "400 / 10000" in table.output


@pytest.mark.usefixtures("durable")
async def test_a_budget_that_waits_holds_the_call_until_it_fits(fake_model) -> None:
    """``on_exceed="wait"``: the call that would pass the budget is not made and its run does
    not fail; once the budget is raised the call goes out (within the 5 s recheck)."""
    import asyncio

    tag = f"patient-{uuid.uuid4().hex[:8]}"
    scope = f"tag:{tag}"
    fake_model.set_default(text("ok", usage=USAGE))
    agent = Agent(name="patient", instructions="Answer.", model="gpt-4.1")
    await timestep.set_budget(scope, max_tokens=10, per="day", on_exceed="wait")
    try:
        handle = await timestep.start_agent_run(agent, "hi", tags=[tag])
        await asyncio.sleep(1.5)
        assert fake_model.requests == []
        assert (await timestep.get_run(handle.workflow_id)).status == "PENDING"

        await timestep.set_budget(scope, max_tokens=10_000, per="day", on_exceed="wait")
        result = await asyncio.wait_for(handle.result(), timeout=60)
    finally:
        await timestep.remove_budget(scope)

    assert result.final_output == "ok"
    assert len(fake_model.requests) == 1


def test_the_estimate_and_bad_settings() -> None:
    """The documented estimator: request bytes / 3 rounded up, 4 tokens per item and tool, and
    max_tokens (else the limit's output_tokens) for the output. Bad settings say why."""
    from timestep._core.ledger import estimate_call_tokens
    from timestep.errors import ConfigurationError

    items = [{"role": "user", "content": "x" * 100}]
    size = len("Answer.") + len(__import__("json").dumps(items))
    assert estimate_call_tokens("Answer.", items, ModelSettings(max_tokens=50)) == (
        -(-size // 3) + 4,
        50,
    )
    assert estimate_call_tokens(None, "hi", None, default_output_tokens=7) == (2 + 4, 7)

    with pytest.raises(ConfigurationError, match="per_seconds with tokens"):
        timestep.limit_provider("openai", tokens=1000)
    with pytest.raises(ConfigurationError, match="tokens must be positive"):
        timestep.limit_provider("openai", tokens=0, per_seconds=60)
    with pytest.raises(ConfigurationError, match="invalid budget scope"):
        asyncio_run(timestep.set_budget("tenant-a", max_tokens=1, database_url="sqlite://"))
    with pytest.raises(ConfigurationError, match="per must be"):
        asyncio_run(
            timestep.set_budget("tag:a", max_tokens=1, per="week", database_url="sqlite://")
        )
    with pytest.raises(ValueError, match="invalid run tag"):
        asyncio_run(timestep.run_agent(Agent(name="x"), "hi", tags=["a,b"]))


def asyncio_run(coro):
    import asyncio

    return asyncio.run(coro)


@function_tool(needs_approval=True)
def refund_order(order_id: str) -> str:
    """Refund an order (a human must approve)."""
    return f"refunded {order_id}"


LATE_BUDGETED = Agent(name="late-budgeted-clerk", instructions="Answer.", tools=[refund_order])


async def test_a_budget_set_elsewhere_applies_to_runs_started_after_it(
    fake_model, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker launched before any budget existed sees one another process set, for the runs
    it starts after (it looks every few seconds); a run already under way keeps the steps it
    started with (a budget check is a step), so any process can still replay it."""
    from dbos import DBOS

    from timestep import configure_dbos, ensure_dbos_launched
    from timestep._core import ledger, runtime

    if process_state().runtime is not None:
        reset_process(destroy=False)
    configure_dbos(database_url)
    ensure_dbos_launched()
    process = process_state()
    process.budgets_enforced = False  # as if no budget existed at launch
    monkeypatch.setattr(runtime, "BUDGETS_LOOK_EVERY_SEC", 0.2)
    scope = f"agent:{LATE_BUDGETED.name}"
    fake_model.add_turns(
        function_call("refund_order", {"order_id": "R1"}, call_id="call_r1", usage=USAGE),
        text("Refunded R1.", usage=USAGE),
    )
    try:
        under_way = await timestep.start_agent_run(
            LATE_BUDGETED, "refund R1", None, wait_for_approvals=True
        )
        for _ in range(500):
            if await timestep.get_pending_approvals(under_way.workflow_id):
                break
            await asyncio.sleep(0.02)
        # Another process sets a budget no call fits in (this one is not told).
        await ledger.upsert_budget(
            await process.engines.get(database_url),
            scope,
            max_cost_usd=None,
            max_tokens=1,
            per="day",
        )
        await asyncio.sleep(0.3)
        with pytest.raises(BudgetExceededError, match=scope):
            await timestep.run_agent(LATE_BUDGETED, "refund R2", None)
        assert len(fake_model.requests) == 1  # stopped before its model call
        assert process.budgets_enforced

        await timestep.approve(under_way.workflow_id, "call_r1")
        assert (await under_way.result()).final_output == "Refunded R1."
        steps = await DBOS.list_workflow_steps_async(under_way.workflow_id)
        assert not [s for s in steps if s["function_name"].startswith("timestep.ledger.")]
    finally:
        await timestep.remove_budget(scope)
        reset_process()


def _call(name: str, tokens: int, prefix: str) -> ledger.CallFacts:
    return ledger.CallFacts(
        call_id=f"{prefix}:{name}",
        workflow_id=f"{prefix}-{name}",
        agent_name="fifo",
        session_id=None,
        tags=(),
        model="gpt-4.1",
        estimate_tokens=tokens,
        estimate_cost_usd=None,
        limit_key=prefix,
        limit_tokens=100,
        per_seconds=60.0,
    )


@pytest.mark.usefixtures("durable")
async def test_waiting_calls_are_admitted_first_come_first_served() -> None:
    """The ledger itself, at chosen times: a small call that would fit does not overtake a
    large one waiting ahead of it; the room that frees covers both at their next looks; a
    place whose call stopped looking is given up."""
    prefix = f"fifo{uuid.uuid4().hex[:8]}"
    engine = await tables_engine()
    t0 = time.time()
    call = functools.partial(_call, prefix=prefix)
    assert await ledger.admit(engine, call("held", 90), now=t0) is None
    await ledger.settle(
        engine, f"{prefix}:held", tokens=90, cost_usd=None, ended_at=t0 + 1, per_seconds=60.0
    )

    large_at = await ledger.admit(engine, call("large", 50), now=t0 + 2)
    assert large_at == pytest.approx(t0 + 61)  # when the held call's tokens free
    # 90 + 10 fits the limit, but not with the large call ahead: the small one waits too.
    small_at = await ledger.admit(engine, call("small", 10), now=t0 + 3)
    assert small_at is not None and small_at >= large_at

    # The room freed covers both, whichever looks first.
    assert await ledger.admit(engine, call("small", 10), now=t0 + 61.5) is None
    assert await ledger.admit(engine, call("large", 50), now=t0 + 61.6) is None

    # A call that stops looking (its run cancelled) holds the line up only so long.
    assert await ledger.admit(engine, call("gone", 60), now=t0 + 62) is not None
    late = t0 + 62 + 60 + ledger.WAIT_ABANDONED_SECONDS + 1  # past its look and the grace
    assert await ledger.admit(engine, call("next", 30), now=late) is None
