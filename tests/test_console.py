"""The web console, driven in a real browser: Debian's Chromium, headless, through Playwright.

The server is the real app under uvicorn on the test's event loop (as in test_server.py), its
runs answered by the fake model server; the browser is a separate process that signs in,
reads the pages and presses their buttons. Each test saves a screenshot under
tests/artifacts/. Under CI=true a missing browser fails these tests instead of skipping them.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import socket
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from agents import Agent, function_tool

import timestep
from timestep._client.inspection import list_run_steps, list_runs_page
from timestep.server import ServerSettings, _console, create_app
from timestep.steps import TimestepSession
from timestep.testing import FakeModelServer, error, function_call, text

IN_CI = os.environ.get("CI", "").lower() == "true"
if IN_CI:  # CI must run these tests: a missing Playwright is an error there, not a skip
    import playwright.async_api as playwright_api
else:
    playwright_api = pytest.importorskip("playwright.async_api")
# Expectations retry until they hold: generous for a loaded machine, never waited out when met.
playwright_api.expect.set_options(timeout=30_000)

CHROMIUM = os.environ.get("TIMESTEP_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
DOCS = Path(__file__).parent.parent / "docs"
TOKEN = f"console-token-{uuid.uuid4().hex}"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

shipped: list[str] = []


@function_tool(needs_approval=True)
def ship(order_id: str, address: str) -> str:
    """Ship an order (a human must approve)."""
    shipped.append(order_id)
    return f"shipped {order_id} to {address}"


flaky_calls: list[str] = []


@function_tool
def restock(item: str) -> str:
    """Restock an item (the supplier's API fails twice, then answers)."""
    flaky_calls.append(item)
    if len(flaky_calls) < 3:
        raise ConnectionError("supplier unreachable")
    return f"restocked {item}"


WAREHOUSE = Agent(name="console-warehouse", instructions="Ship orders.", tools=[ship])
REPORTER = Agent(name="console-reporter", instructions="Report.")
STOCKIST = Agent(name="console-stockist", instructions="Restock.", tools=[restock])
timestep.register_agent(WAREHOUSE)
timestep.register_agent(REPORTER)
timestep.register_agent(STOCKIST)


class Console:
    def __init__(self, port: int, api: httpx.AsyncClient) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.api = api


@asynccontextmanager
async def _served(app: Any, host: str = "127.0.0.1") -> AsyncIterator[int]:
    config = uvicorn.Config(
        app, host=host, port=0, log_level="warning", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 60
    while not server.started:
        if task.done():
            task.result()
        assert time.monotonic() < deadline, "the server did not start within 60 s"
        await asyncio.sleep(0.01)
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def console(durable: str, fake_model: FakeModelServer) -> AsyncIterator[Console]:
    shipped.clear()
    app = create_app(ServerSettings(api_token=TOKEN, heartbeat_sec=1))
    async with (
        _served(app) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=AUTH, timeout=60) as api,
    ):
        yield Console(port, api)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if not Path(CHROMIUM).exists():
        message = f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"
        if IN_CI:
            pytest.fail(message + ": CI=true, the browser tests must run")
        pytest.skip(message)
    async with playwright_api.async_playwright() as p:
        launched = await p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def page(browser: Any, request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """A fresh browser context's page; its screenshot is saved when the test ends."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    tab = await context.new_page()
    try:
        yield tab
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^\w.-]+", "_", request.node.name)
        await tab.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        await context.close()


async def _sign_in(page: Any, console: Console, path: str = "/") -> None:
    await page.goto(console.url + path)
    await page.get_by_label("API token").fill(TOKEN)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(re.compile(re.escape(console.url + path) + r"$"))


async def _start(console: Console, agent: str, prompt: str, **extra: Any) -> str:
    created = await console.api.post(
        "/runs", json={"agent": agent, "input": prompt, "stream": True, **extra}
    )
    assert created.status_code == 201, created.text
    workflow_id: str = created.json()["workflow_id"]
    return workflow_id


async def _wait_pending(console: Console, workflow_id: str) -> None:
    deadline = time.monotonic() + 60
    while not (await console.api.get(f"/runs/{workflow_id}")).json()["pending_approvals"]:
        assert time.monotonic() < deadline, f"run {workflow_id} never waited for an approval"
        await asyncio.sleep(0.05)


async def _wait_finished(console: Console, workflow_id: str) -> None:
    deadline = time.monotonic() + 60
    while (await console.api.get(f"/runs/{workflow_id}")).json()["status"] in (
        "PENDING",
        "ENQUEUED",
    ):
        assert time.monotonic() < deadline, f"run {workflow_id} never finished"
        await asyncio.sleep(0.05)


def _docs_screenshot(name: str) -> str | None:
    """Where to refresh the README's screenshot, when asked (TIMESTEP_DOCS_SCREENSHOTS=1)."""
    if os.environ.get("TIMESTEP_DOCS_SCREENSHOTS") != "1":
        return None
    DOCS.mkdir(exist_ok=True)
    return str(DOCS / name)


# -- sign-in ------------------------------------------------------------------------------------


async def test_sign_in_with_the_token_and_nothing_without_it(console: Console, page: Any):
    expect = playwright_api.expect
    # No cookie: every page sends the browser to the sign-in page, remembering where it was.
    await page.goto(console.url + "/ui/approvals")
    assert page.url == console.url + "/ui/signin?next=%2Fui%2Fapprovals"
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    # A wrong token is refused.
    await page.get_by_label("API token").fill("not-the-token")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_contain_text("not this server's API token")
    assert await page.context.cookies() == []

    # The right one signs in, with an HttpOnly, SameSite=Strict cookie holding no token.
    await page.get_by_label("API token").fill(TOKEN)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(console.url + "/ui/approvals")
    await expect(page.get_by_role("heading", name="Approvals")).to_be_visible()
    [cookie] = await page.context.cookies()
    assert (cookie["httpOnly"], cookie["sameSite"]) == (True, "Strict")
    assert TOKEN not in cookie["value"]
    assert await page.evaluate("document.cookie") == ""  # out of reach of scripts

    # Pages, fragments and streams refuse requests without the cookie; posts without the
    # session's CSRF token, or from another site, are refused even with it.
    async with httpx.AsyncClient(base_url=console.url, timeout=30) as anonymous:
        for path in ("/", "/ui/runs/x", "/ui/schedules", "/ui/usage", "/ui/runs/rows"):
            response = await anonymous.get(path)
            assert response.status_code == 303, path
            assert response.headers["location"].startswith("/ui/signin?next=")
        assert (
            await anonymous.get("/ui/runs/x/events", headers={"Accept": "text/event-stream"})
        ).status_code == 401
        assert (await anonymous.post("/ui/schedules/s/pause")).status_code == 401
        assert (await anonymous.get("/ui/signin")).status_code == 200
    signed = {cookie["name"]: cookie["value"]}
    async with httpx.AsyncClient(base_url=console.url, cookies=signed, timeout=30) as holder:
        no_csrf = await holder.post("/ui/schedules/s/pause", data={})
        assert no_csrf.status_code == 403
        assert "CSRF token" in no_csrf.text
        forged = await holder.post(
            "/ui/signout", data={"csrf": "x"}, headers={"Origin": "https://evil.example"}
        )
        assert forged.status_code == 403
        assert "cross-site" in forged.text
    value = cookie["value"]
    altered = value[:-1] + ("0" if value[-1] != "0" else "1")
    async with httpx.AsyncClient(
        base_url=console.url, cookies={cookie["name"]: altered}, timeout=30
    ) as tampered:
        assert (await tampered.get("/")).status_code == 303

    # Signing out ends the session.
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(re.compile(r"/ui/signin$"))
    await page.goto(console.url + "/")
    assert "/ui/signin" in page.url


async def test_no_auth_serves_the_console_to_loopback_clients_only(durable: str):
    app = create_app(ServerSettings(auth=False, api_token=None))
    async with _served(app, host="0.0.0.0") as port, httpx.AsyncClient(timeout=30) as client:
        local = await client.get(f"http://127.0.0.1:{port}/")
        assert local.status_code == 200
        assert "<h1>Runs</h1>" in local.text and "auth off (loopback only)" in local.text
        # No sign-in, but forms still need the page's CSRF token.
        refused = await client.post(f"http://127.0.0.1:{port}/ui/schedules/s/pause", data={})
        assert refused.status_code == 403
        address = _non_loopback_address()
        if address is None:
            pytest.skip("this host has no non-loopback address to connect from")
        remote = await client.get(f"http://{address}:{port}/")
        assert remote.status_code == 403
        assert "only loopback clients" in remote.text


def _non_loopback_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks a route
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if ipaddress.ip_address(address).is_loopback else address


# -- runs and approvals ---------------------------------------------------------------------------


async def test_a_run_waits_for_approval_and_finishes_when_approved(
    console: Console, page: Any, fake_model: FakeModelServer
):
    expect = playwright_api.expect
    fake_model.add_turns(
        function_call("ship", {"order_id": "A1", "address": "1 Main St"}, call_id="call_ship_a1"),
        text("Shipped A1."),
    )
    await _sign_in(page, console)
    session_id = f"console-{uuid.uuid4().hex[:6]}"

    # The run appears in the open runs table by itself.
    workflow_id = await _start(console, "console-warehouse", "ship A1", session_id=session_id)
    row = page.locator(f'tr[data-run="{workflow_id}"]')
    await expect(row).to_be_visible()
    await expect(row).to_contain_text("console-warehouse")
    await expect(row).to_contain_text(session_id)
    await _wait_pending(console, workflow_id)
    await page.get_by_label("Agent").fill("console-warehouse")
    await page.get_by_role("button", name="Filter").click()
    await expect(row).to_contain_text("PENDING")

    # Its page: the events stream in, the model's tool call and what it waits for.
    await row.get_by_role("link", name=workflow_id).click()
    await page.wait_for_url(f"{console.url}/ui/runs/{workflow_id}")
    events = page.locator("#events li")
    await expect(events.filter(has_text="tool_called ship")).to_have_count(1)
    assert await events.count() > 3
    await expect(page.locator("#conversation")).to_contain_text('"order_id": "A1"')
    await expect(page.get_by_role("heading", name="Waiting for approval")).to_be_visible()
    await expect(page.locator("#timeline")).to_contain_text("model:")
    await expect(page.locator("#timeline")).to_contain_text("approval wait (so far)")
    assert shipped == []

    # The approvals page: the call with its arguments; approve it.
    await page.get_by_role("link", name="Approvals").click()
    card = page.locator('article[data-call="call_ship_a1"]')
    await expect(card).to_contain_text("1 Main St")
    await expect(card).to_contain_text("console-warehouse")
    await card.get_by_text("Conversation so far").click()
    await expect(card.locator(".conversation")).to_contain_text("ship A1")
    if target := _docs_screenshot("console-approvals.png"):
        await page.screenshot(path=target, full_page=True)
    await card.get_by_role("button", name="Approve").click()
    await expect(page.get_by_role("status")).to_contain_text("Approved call_ship_a1")
    await expect(card).to_have_count(0)  # the page reloads itself

    # The run goes on: its page shows it finish with the right output and timeline.
    await page.get_by_role("link", name="Open the run").click()
    await expect(page.locator("#run-status")).to_have_text("SUCCESS")
    await expect(page.locator("#final-output")).to_have_text("Shipped A1.")
    timeline = page.locator("#timeline")
    await expect(timeline).to_contain_text("tool:ship")
    await expect(timeline).to_contain_text("approval wait")
    await expect(page.locator("#conversation")).to_contain_text("shipped A1 to 1 Main St")
    await expect(page.locator("#conversation")).to_contain_text("approved by web-console")
    await expect(page.locator("#events-state")).to_contain_text("ended: SUCCESS")
    assert shipped == ["A1"]
    if target := _docs_screenshot("console-run.png"):
        await page.screenshot(path=target, full_page=True)


async def test_reject_with_a_message_reaches_the_model(
    console: Console, page: Any, fake_model: FakeModelServer
):
    expect = playwright_api.expect
    fake_model.add_turns(
        function_call("ship", {"order_id": "B2", "address": "Nowhere"}, call_id="call_ship_b2"),
        text("Not shipped."),
    )
    workflow_id = await _start(console, "console-warehouse", "ship B2")
    await _wait_pending(console, workflow_id)
    await _sign_in(page, console, f"/ui/runs/{workflow_id}")

    # Rejected from the run's own page, with a message for the model.
    await page.get_by_label("Message to the model").fill("That address does not exist.")
    await page.get_by_role("button", name="Reject ship call call_ship_b2").click()
    await expect(page.get_by_role("status")).to_contain_text("Rejected call_ship_b2")
    await expect(page.locator("#run-status")).to_have_text("SUCCESS")
    await expect(page.locator("#final-output")).to_have_text("Not shipped.")
    await expect(page.locator("#conversation")).to_contain_text(
        "rejected by web-console: That address does not exist."
    )
    assert shipped == []
    assert "That address does not exist." in str(fake_model.requests[-1].json["input"])

    # The page's event stream resumes after the last event a reconnecting browser had.
    [cookie] = await page.context.cookies()
    cookies = {cookie["name"]: cookie["value"]}
    async with httpx.AsyncClient(base_url=console.url, cookies=cookies, timeout=30) as held:
        full = (await held.get(f"/ui/runs/{workflow_id}/events")).text
        ids = re.findall(r"^id: (\S+)$", full, re.M)
        assert len(ids) > 3 and "event: end" in full
        rest = await held.get(f"/ui/runs/{workflow_id}/events", headers={"Last-Event-ID": ids[2]})
        assert re.findall(r"^id: (\S+)$", rest.text, re.M) == ids[3:]


async def test_cancel_resume_and_fork_from_the_run_page(
    console: Console, page: Any, fake_model: FakeModelServer
):
    """The run's buttons. Resumed and forked runs execute on DBOS's event loop, where the
    test's fake-model client (bound to the test's loop) cannot go: so both are taken up to
    the approval wait, which replays the model call from its checkpoint and makes none."""
    expect = playwright_api.expect
    fake_model.add_turns(
        function_call("ship", {"order_id": "C3", "address": "3 Side St"}, call_id="call_ship_c3")
    )
    # Not streamed: resuming a cancelled streamed run that waited for an approval fails its
    # replay (DBOSUnexpectedStepError, stream:tail against DBOS.setEvent), a bug of its own.
    workflow_id = await _start(console, "console-warehouse", "ship C3", stream=False)
    await _wait_pending(console, workflow_id)
    await _sign_in(page, console, f"/ui/runs/{workflow_id}")
    await page.get_by_role("button", name="Cancel").click()
    await expect(page.get_by_role("status")).to_contain_text("Cancelled")
    await expect(page.locator("#run-status")).to_have_text("CANCELLED")

    # Resumed, it waits for the same call again, its model step replayed.
    await page.get_by_role("button", name="Resume").click()
    await expect(page.get_by_role("status")).to_contain_text("Resumed")
    await expect(page.get_by_role("heading", name="Waiting for approval")).to_be_visible()
    await expect(page.locator("#run-status")).to_have_text("PENDING")

    # Forked after its model step: a new run, waiting on the same call.
    await page.get_by_label("from step").fill("2")
    await page.get_by_role("button", name="Fork").click()
    await expect(page.get_by_role("status")).to_contain_text(f"Forked from {workflow_id}")
    forked = page.url.split("?")[0].rsplit("/", 1)[-1]
    assert forked != workflow_id
    await expect(page.get_by_role("heading", name="Waiting for approval")).to_be_visible()
    await expect(page.locator("#conversation")).to_contain_text('"order_id": "C3"')
    assert len(fake_model.requests) == 1  # neither asked the model again
    assert shipped == []


async def test_a_failed_run_shows_its_error_and_the_runs_table_filters_by_status(
    console: Console, page: Any, fake_model: FakeModelServer
):
    expect = playwright_api.expect
    fake_model.add_turns(text("Fine."))
    ok = await _start(console, "console-reporter", "report")
    await _wait_finished(console, ok)
    fake_model.set_default(error(401, message="Incorrect API key provided: sk-console."))
    failing = await _start(console, "console-reporter", "report again")
    await _wait_finished(console, failing)
    await _sign_in(page, console, "/?status=ERROR")
    await expect(page.locator(f'tr[data-run="{failing}"]')).to_contain_text("ERROR")
    await expect(page.locator(f'tr[data-run="{ok}"]')).to_have_count(0)
    await page.locator(f'tr[data-run="{failing}"]').get_by_role("link").click()
    await expect(page.locator("#run-error")).to_contain_text("AuthenticationError: ")
    await expect(page.locator("#timeline")).to_contain_text("error")
    await expect(page.get_by_role("button", name="Fork")).to_be_visible()


async def test_the_timeline_shows_each_steps_retries(
    console: Console, page: Any, fake_model: FakeModelServer
):
    """A model call the OpenAI client sent again after a 429, and a tool DBOS ran three
    times: the timeline counts each step's retries (no other record of them exists)."""
    expect = playwright_api.expect
    flaky_calls.clear()
    timestep.set_tool_options(restock, max_attempts=3, interval_seconds=0.01)
    fake_model.add_turns(
        error(429, retry_after=0.01),
        function_call("restock", {"item": "bolts"}, call_id="call_restock"),
        text("Restocked."),
    )
    workflow_id = await _start(console, "console-stockist", "restock bolts")
    await _wait_finished(console, workflow_id)
    steps = await list_run_steps(workflow_id)
    retried = [(s["name"].split(":")[0], s["id"], s["retries"]) for s in steps if s["retries"]]
    model_step = next(s["id"] for s in steps if s["name"].startswith("model:"))
    tool_step = next(s["id"] for s in steps if s["name"] == "tool:restock")
    assert retried == [("model", model_step, 1), ("tool", tool_step, 2)]
    assert flaky_calls == ["bolts"] * 3

    await _sign_in(page, console, f"/ui/runs/{workflow_id}")
    await expect(page.locator("#final-output")).to_have_text("Restocked.")
    rows = page.locator("#timeline li")
    await expect(rows.filter(has_text="model:").first).to_contain_text("1 retry")
    await expect(rows.filter(has_text="tool:restock")).to_contain_text("2 retries")
    await expect(rows.filter(has_text="retr")).to_have_count(2)  # the second model call: none


# -- schedules ------------------------------------------------------------------------------------


async def test_pause_resume_and_trigger_a_schedule(
    console: Console, page: Any, fake_model: FakeModelServer
):
    expect = playwright_api.expect
    name = f"console-sched-{uuid.uuid4().hex[:6]}"
    timestep.schedule_agent(name, REPORTER, "daily report", "0 0 0 1 1 *")  # yearly
    try:
        await _sign_in(page, console, "/ui/schedules")
        card = page.locator(f'article[data-schedule="{name}"]')
        await expect(card).to_contain_text("ACTIVE")
        await expect(card).to_contain_text("Next fires:")
        await card.get_by_role("button", name=f"Pause {name}").click()
        await expect(page.get_by_role("status")).to_contain_text(f"Paused {name}")
        await expect(card.locator(".badge").first).to_have_text("PAUSED")
        await card.get_by_role("button", name=f"Resume {name}").click()
        await expect(card.locator(".badge").first).to_have_text("ACTIVE")

        fake_model.add_turns(text("Report: all good."))
        await card.get_by_role("button", name=f"Trigger {name}").click()
        await expect(page.get_by_role("status")).to_contain_text(f"Triggered {name}")
        await page.get_by_role("link", name="Open the run").click()
        await expect(page.locator("#run-status")).to_have_text("SUCCESS")
        await expect(page.locator("#final-output")).to_have_text("Report: all good.")

        await page.get_by_role("link", name="Usage").click()
        await expect(page.locator("#usage-agent")).to_contain_text("console-reporter")
    finally:
        timestep.delete_schedule(name)


# -- paging ----------------------------------------------------------------------------------------


async def test_runs_pages_by_keyset_without_gaps_or_repeats(
    durable: str, fake_model: FakeModelServer
):
    """Pages of two cover every run once, newest first, however many share a millisecond."""
    fake_model.add_turns(*[text(f"r{i}") for i in range(5)])
    agent_runs = [await timestep.start_agent_run(REPORTER, f"r{i}") for i in range(5)]
    for handle in agent_runs:
        await handle.result()
    mine = {h.workflow_id for h in agent_runs}
    seen: list[str] = []
    cursor = None
    while True:
        page = await list_runs_page(agent="console-reporter", cursor=cursor, limit=2)
        seen += [s.workflow_id for s in page.runs]
        assert len(page.runs) <= 2
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert mine <= set(seen) and len(seen) == len(set(seen))
    created = [
        s.created_at for s in (await list_runs_page(agent="console-reporter", limit=100)).runs
    ]
    assert created == sorted(created, reverse=True)
    with pytest.raises(ValueError, match="invalid runs cursor"):
        await list_runs_page(cursor="yesterday")


async def _runs_of_a_session(fake_model: FakeModelServer, count: int) -> tuple[str, list[str]]:
    """``count`` finished runs of a session of their own, oldest first, each in its own ms."""
    session_id = f"pages-{uuid.uuid4().hex[:8]}"
    fake_model.add_turns(*[text(f"r{i}") for i in range(count)])
    ids = []
    for i in range(count):
        handle = await timestep.start_agent_run(
            REPORTER, f"r{i}", session=TimestepSession(session_id)
        )
        await handle.result()
        ids.append(handle.workflow_id)
    return session_id, ids


async def test_runs_page_back_to_newer_pages_and_bound_by_until(
    durable: str, fake_model: FakeModelServer
):
    """Newer pages walk the same keyset back (no offset): walking back from the last page
    lists every run once and ends on the first page; ``until`` bounds the creation time from
    above (excluded). Runs created in the same millisecond (the same second on a SQLite older
    than 3.42) may fall on either side of a page's edge going back, as DBOS orders by
    creation time alone; with distinct times the pages back are the pages forward."""
    session_id, ids = await _runs_of_a_session(fake_model, 5)
    forward: list[list[str]] = []
    page = await list_runs_page(session_id=session_id, limit=2)
    first = [s.workflow_id for s in page.runs]
    assert page.first and page.newer_cursor is None
    while True:
        forward.append([s.workflow_id for s in page.runs])
        if page.next_cursor is None:
            break
        page = await list_runs_page(session_id=session_id, cursor=page.next_cursor, limit=2)
        assert not page.first and page.newer_cursor is not None
    assert sorted(sum(forward, [])) == sorted(ids) and [len(f) for f in forward] == [2, 2, 1]

    backward: list[list[str]] = []
    back = page
    while not back.first:
        assert back.newer_cursor is not None
        back = await list_runs_page(session_id=session_id, newer=back.newer_cursor, limit=2)
        backward.append([s.workflow_id for s in back.runs])
        if not back.first:  # each page back reads on to the one it came from
            assert back.next_cursor is not None
    assert backward[-1] == first  # back at the newest runs: the first page itself
    between = sum(backward[:-1], [])
    assert len(between) == len(set(between)) == 2
    assert set(between).isdisjoint(forward[-1])
    assert set(between) | set(first) | set(forward[-1]) == set(ids)
    created = {
        s.workflow_id: s.created_at for s in (await list_runs_page(session_id=session_id)).runs
    }
    if len(set(created.values())) == len(ids):
        assert backward == [forward[1], forward[0]]
        again = await list_runs_page(session_id=session_id, newer=page.newer_cursor, limit=2)
        older = await list_runs_page(session_id=session_id, cursor=again.next_cursor, limit=2)
        assert [s.workflow_id for s in older.runs] == forward[-1]

    statuses = {s.workflow_id: s for s in (await list_runs_page(session_id=session_id)).runs}
    third = statuses[ids[2]].created_at
    assert third is not None
    until = datetime.fromtimestamp(third / 1000, UTC)
    older = await list_runs_page(session_id=session_id, until=until)
    assert {s.workflow_id for s in older.runs} == {
        i for i in ids if (statuses[i].created_at or 0) < third
    }
    assert ids[2] not in {s.workflow_id for s in older.runs}
    window = await list_runs_page(session_id=session_id, since=until, until=until)
    assert window.runs == []
    with pytest.raises(ValueError, match="not both"):
        await list_runs_page(cursor=page.newer_cursor, newer=page.newer_cursor)


async def test_runs_table_pages_both_ways_with_its_filters(
    console: Console, page: Any, fake_model: FakeModelServer, monkeypatch: pytest.MonkeyPatch
):
    expect = playwright_api.expect
    monkeypatch.setattr(_console, "PAGE_SIZE", 2)
    session_id, ids = await _runs_of_a_session(fake_model, 5)
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    await _sign_in(page, console, f"/?session={session_id}")
    await page.get_by_label("Until").fill(tomorrow)
    await page.get_by_role("button", name="Filter").click()
    rows = page.locator("#run-rows tr[data-run]")

    async def shown(count: int) -> list[str]:
        await expect(rows).to_have_count(count)
        return [str(await r.get_attribute("data-run")) for r in await rows.all()]

    # Runs of one second tie on SQLite (older than 3.42), in no set order: pages are compared
    # as sets where a tie could reorder them.
    first = await shown(2)
    assert f"until={tomorrow}" in page.url and f"session={session_id}" in page.url
    await expect(page.get_by_role("link", name="Newer runs")).to_have_count(0)
    await page.get_by_role("link", name="Older runs").click()
    second = await shown(2)
    await page.get_by_role("link", name="Older runs").click()
    last = await shown(1)
    assert sorted(first + second + last) == sorted(ids)
    assert f"until={tomorrow}" in page.url and f"session={session_id}" in page.url
    await expect(page.get_by_role("link", name="Older runs")).to_have_count(0)
    await page.get_by_role("link", name="Newer runs").click()
    between = await shown(2)
    assert "newer=" in page.url and f"until={tomorrow}" in page.url
    assert set(between).isdisjoint(last)
    await page.get_by_role("link", name="Newer runs").click()
    assert await shown(2) == first  # the newest runs: the first page again
    await expect(page.get_by_role("link", name="Newest runs")).to_have_count(0)
    await expect(page.get_by_role("link", name="Newer runs")).to_have_count(0)

    # Until a day before since, or not a date: refused with what is wrong.
    [cookie] = await page.context.cookies()
    cookies = {cookie["name"]: cookie["value"]}
    async with httpx.AsyncClient(base_url=console.url, cookies=cookies, timeout=30) as held:
        bad = await held.get("/", params={"until": "soon"})
        assert bad.status_code == 422
        assert "until must be a date or a date and time, got 'soon'" in bad.text
        bad = await held.get("/", params={"since": "2026-02-02", "until": "2026-02-01"})
        assert bad.status_code == 422 and "until must be later than since" in bad.text
        whole_day = await held.get("/", params={"session": session_id, "until": tomorrow})
        assert whole_day.status_code == 200 and ids[-1] in whole_day.text


# -- accessibility --------------------------------------------------------------------------------

AXE = Path(__file__).parent / "js" / "node_modules" / "axe-core" / "axe.min.js"


async def _axe_problems(page: Any) -> list[str]:
    """axe-core's serious and critical violations of the page (WCAG 2 A and AA, and best
    practices), one line each: the rule, its help and the elements it found."""
    if not AXE.exists():
        message = f"no {AXE} (npm ci --prefix tests/js)"
        if IN_CI:
            pytest.fail(message + ": CI=true, the accessibility check must run")
        pytest.skip(message)
    await page.add_script_tag(path=str(AXE))
    result = await page.evaluate(
        """() => axe.run(document, {
            runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21aa', 'best-practice']},
        })"""
    )
    assert result["passes"], "axe-core checked nothing"
    return [
        f"{v['id']} ({v['impact']}): {v['help']}: "
        + ", ".join(" ".join(n["target"]) for n in v["nodes"])
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


async def test_every_page_passes_axe_without_serious_violations(
    console: Console, page: Any, fake_model: FakeModelServer
):
    """axe-core (from tests/js, injected into the page: no network) on each page with
    something on it: the sign-in page, runs, a run waiting for approval, approvals,
    schedules and usage."""
    expect = playwright_api.expect
    fake_model.add_turns(
        function_call("ship", {"order_id": "X9", "address": "9 Axe St"}, call_id="call_ship_x9")
    )
    workflow_id = await _start(console, "console-warehouse", "ship X9")
    await _wait_pending(console, workflow_id)
    name = f"console-axe-{uuid.uuid4().hex[:6]}"
    timestep.schedule_agent(name, REPORTER, "daily report", "0 0 0 1 1 *")
    try:
        found: dict[str, list[str]] = {}
        await page.goto(console.url + "/ui/signin")
        await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        found["/ui/signin"] = await _axe_problems(page)
        await _sign_in(page, console)
        for path, ready in (
            ("/", page.locator(f'tr[data-run="{workflow_id}"]')),
            (f"/ui/runs/{workflow_id}", page.get_by_role("heading", name="Waiting for approval")),
            ("/ui/approvals", page.locator('article[data-call="call_ship_x9"]')),
            ("/ui/schedules", page.locator(f'article[data-schedule="{name}"]')),
            ("/ui/usage", page.locator("#usage-agent")),
        ):
            await page.goto(console.url + path)
            await expect(ready).to_be_visible()
            found[path] = await _axe_problems(page)
        assert {path: problems for path, problems in found.items() if problems} == {}

        # The check sees what it is there for: an input without a label is a critical one.
        await page.evaluate(
            "document.querySelector('main').append(document.createElement('input'))"
        )
        assert any(p.startswith("label (critical)") for p in await _axe_problems(page))
    finally:
        timestep.delete_schedule(name)
