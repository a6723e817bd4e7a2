"""The limiter follows what the provider says of its own limits, for every worker: a 429's
Retry-After, and ``x-ratelimit-remaining-*`` with ``x-ratelimit-reset-*``, read off the
responses at a real HTTP fake by two real worker processes sharing one database.

The assertions are on the fake's log (when each request arrived), never on how long our own
code took: no request may reach the fake inside a window the provider closed. That holds across
a SIGKILL too: a run waiting for the provider's word, its worker killed and started again,
waits out what is left of it and sends its call once."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from agents import Agent, ModelSettings
from dbos import DBOSClient

import timestep
from timestep import TimestepSerializer
from timestep._core.database import sync_engine_for
from timestep._core.process import process_state
from timestep._core.provider_feedback import parse_duration, read_rate_limit_headers
from timestep._core.runtime import reset_process
from timestep._core.tables import ledger_locks_table, provider_feedback_table
from timestep.testing import FakeModelServer, RecordedRequest, WorkerProcess, error, text

WORKER = Path(__file__).parent / "workers" / "feedback_worker.py"


@pytest.fixture(autouse=True)
def _no_limits() -> Iterator[None]:
    yield
    process_state().limits.clear()


def test_openai_header_formats() -> None:
    assert parse_duration("6m0s") == 360.0
    assert parse_duration("1s") == 1.0
    assert parse_duration("20ms") == pytest.approx(0.02)
    assert parse_duration("1h2m3.5s") == pytest.approx(3723.5)
    assert parse_duration("0.5") == 0.5
    assert parse_duration("soon") is None and parse_duration("5x") is None
    assert parse_duration("-1") is None and parse_duration(None) is None

    said = read_rate_limit_headers(
        200,
        {
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": "2s",
            "x-ratelimit-remaining-tokens": "1500",
            "x-ratelimit-reset-tokens": "6m0s",
        },
        now=100.0,
    )
    assert said is not None and said.blocked_until is None
    assert (said.remaining_requests, said.requests_reset_at) == (0, 102.0)
    assert (said.remaining_tokens, said.tokens_reset_at) == (1500, 460.0)
    assert read_rate_limit_headers(200, {"content-type": "application/json"}, 1.0) is None

    # A 429: retry-after-ms wins over Retry-After, which wins over the resets.
    blocked = read_rate_limit_headers(429, {"retry-after-ms": "1500", "retry-after": "9"}, 10.0)
    assert blocked is not None and blocked.blocked_until == 11.5
    dated = read_rate_limit_headers(429, {"retry-after": "Thu, 01 Jan 1970 00:00:30 GMT"}, 10.0)
    assert dated is not None and dated.blocked_until == 30.0
    exhausted = read_rate_limit_headers(
        429,
        {
            "x-ratelimit-remaining-requests": "5",
            "x-ratelimit-reset-requests": "1s",
            "x-ratelimit-remaining-tokens": "0",
            "x-ratelimit-reset-tokens": "20ms",
        },
        10.0,
    )
    assert exhausted is not None and exhausted.blocked_until == pytest.approx(10.02)
    capped = read_rate_limit_headers(429, {"retry-after": "86400"}, 0.0)
    assert capped is not None and capped.blocked_until == 600.0


class _Workers:
    """Two feedback workers on one database and one fake, started phase by phase."""

    def __init__(self, database_url: str, fake: FakeModelServer, go_dir: Path, prefix: str):
        self.go_dir = go_dir
        self.processes = {
            name: WorkerProcess(
                [
                    sys.executable,
                    str(WORKER),
                    database_url,
                    fake.base_url,
                    prefix,
                    str(go_dir),
                    name,
                ],
                env={"TIMESTEP_EXECUTOR_ID": f"{prefix}-{name}"},
            )
            for name in ("w1", "w2")
        }
        self.phases = dict.fromkeys(self.processes, 0)

    def __enter__(self) -> _Workers:
        for worker in self.processes.values():
            worker.start()
        for worker in self.processes.values():
            worker.wait_for_line("LAUNCHED", timeout=90)
        return self

    def __exit__(self, *exc: object) -> None:
        for worker in self.processes.values():
            worker.__exit__(None, None, None)

    def go(self, name: str, runs: int) -> int:
        self.phases[name] += 1
        target = self.go_dir / f"{name}-{self.phases[name]}"
        temporary = target.with_suffix(".tmp")
        temporary.write_text(str(runs))
        temporary.rename(target)  # the worker never reads half a file
        return self.phases[name]

    def outcomes(self, name: str, phase: int, timeout: float = 120) -> list[str]:
        return self.processes[name].wait_for_line(f"PHASE {phase} ", timeout=timeout).split()[2:]


def _by(requests: list[RecordedRequest], name: str) -> list[RecordedRequest]:
    return [r for r in requests if r.json["input"][0]["content"].startswith(f"{name}-")]


async def _scalar(database_url: str, query: sa.Select) -> object:
    engine = await process_state().engines.get(database_url)
    async with engine.connect() as conn:
        return await conn.scalar(query)


async def _wait_until(database_url: str, query: sa.Select, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not await _scalar(database_url, query):
        assert time.monotonic() < deadline, f"never true: {query}"
        await asyncio.sleep(0.02)


async def test_a_429_with_retry_after_holds_back_the_other_workers_calls(
    database_url: str, tmp_path: Path
) -> None:
    """Worker 1's call gets a 429 with Retry-After: 3. Worker 2's calls, started right after,
    reach the fake no sooner than 3 s after the 429, and so does worker 1's own retry (the
    OpenAI client's: the 429 was read off the response before the client retried)."""
    reset_process()  # only the workers call the model here
    prefix = f"fb{uuid.uuid4().hex[:8]}"
    with FakeModelServer() as fake:
        fake.add_turns(error(429, retry_after=3.0))
        fake.set_default(text("ok"))
        with _Workers(database_url, fake, tmp_path, prefix) as workers:
            first = workers.go("w1", 1)
            (throttled,) = fake.wait_for_requests(1, timeout=60)
            locks = ledger_locks_table
            await _wait_until(
                database_url,
                sa.select(locks.c.blocked_until > 0).where(locks.c.key == f"provider:{prefix}"),
            )
            second = workers.go("w2", 3)
            assert workers.outcomes("w2", second) == ["ok"] * 3
            assert workers.outcomes("w1", first) == ["ok"]
        requests = fake.requests

    assert len(requests) == 5, [r.json["input"][0]["content"] for r in requests]
    assert requests[0] == throttled
    later = requests[1:]
    assert len(_by(later, "w2")) == 3 and len(_by(later, "w1")) == 1
    # Nothing reached the provider inside the window its 429 closed.
    gaps = [r.received_at - throttled.received_at for r in later]
    assert min(gaps) >= 3.0 - 0.01, gaps


async def test_remaining_requests_zero_holds_both_workers_until_the_reset(
    database_url: str, tmp_path: Path
) -> None:
    """A 200 saying ``x-ratelimit-remaining-requests: 0`` and ``x-ratelimit-reset-requests:
    3s`` to worker 1: the next calls of both workers reach the fake after the reset, all of
    them, and the runs finish."""
    reset_process()
    prefix = f"fb{uuid.uuid4().hex[:8]}"
    headers = {
        "x-ratelimit-limit-requests": "60",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "3s",
        "x-ratelimit-remaining-tokens": "100000",
        "x-ratelimit-reset-tokens": "20ms",
    }
    with FakeModelServer() as fake:
        fake.add_turns(text("ok", headers=headers))
        fake.set_default(text("ok"))
        with _Workers(database_url, fake, tmp_path, prefix) as workers:
            assert workers.outcomes("w1", workers.go("w1", 1)) == ["ok"]
            phases = {"w1": workers.go("w1", 2), "w2": workers.go("w2", 2)}
            for name, phase in phases.items():
                assert workers.outcomes(name, phase) == ["ok"] * 2
        requests = fake.requests

    assert len(requests) == 5
    said, later = requests[0], requests[1:]
    assert len(_by(later, "w1")) == len(_by(later, "w2")) == 2
    gaps = [r.received_at - said.received_at for r in later]
    assert min(gaps) >= 3.0 - 0.01, gaps


@pytest.mark.usefixtures("durable")
async def test_remaining_tokens_admit_only_what_fits_until_the_reset(
    fake_model, database_url: str
) -> None:
    """``x-ratelimit-remaining-tokens: 300`` (reset 8s) after a call: of three calls of about
    120 tokens each (estimated, max_tokens 100, and real), the two that fit go at once, the
    third waits for the reset; a call to another model of the provider does not. In one
    process: the counting is the ledger's, the same for every worker."""
    prefix = f"fbt{uuid.uuid4().hex[:8]}"
    timestep.limit_provider(prefix)
    fake_model.add_turns(
        text(
            "ok",
            headers={"x-ratelimit-remaining-tokens": "300", "x-ratelimit-reset-tokens": "8s"},
        )
    )
    fake_model.set_default(text("ok", usage={"input_tokens": 20, "output_tokens": 100}))
    agent = Agent(
        name="feedback-tokens",
        instructions="Answer.",
        model=f"{prefix}/gpt-4.1",
        model_settings=ModelSettings(max_tokens=100),
    )

    # OpenAI's limits are per model: another model of the provider is not held back.
    other = agent.clone(name="feedback-tokens-other", model=f"{prefix}/gpt-4.1-mini")

    assert (await timestep.run_agent(agent, "first")).final_output == "ok"
    results = await asyncio.gather(
        *(timestep.run_agent(agent, f"next {n}") for n in range(3)),
        timestep.run_agent(other, "other model"),
    )

    assert [r.final_output for r in results] == ["ok"] * 4
    said, *later = fake_model.requests
    gaps = sorted(
        r.received_at - said.received_at for r in later if r.json["model"].endswith("gpt-4.1")
    )
    assert len(gaps) == 3
    assert gaps[1] < 8.0 <= gaps[2] + 0.01, gaps  # two fit in 300 tokens, the third did not
    (mini,) = [r for r in later if r.json["model"].endswith("gpt-4.1-mini")]
    assert mini.received_at - said.received_at < 8.0
    stored = await _scalar(
        database_url,
        sa.select(provider_feedback_table.c.remaining_tokens).where(
            provider_feedback_table.c.key == f"{prefix} {prefix}/gpt-4.1"
        ),
    )
    assert stored == 300


# -- a run waiting for the provider's word survives a SIGKILL of its worker ------------------

CRASH_WORKER = Path(__file__).parent / "workers" / "feedback_crash_worker.py"
RESET_SECONDS = 15.0
"""The provider's reset in the crash tests: longer than a worker's restart on a loaded machine
(the test checks that the restarted worker was up before it)."""


def _crash_worker(database_url: str, fake: FakeModelServer, state_dir: Path, prefix: str):
    # An executor id of its own, kept across the restart: the new incarnation recovers the
    # killed one's runs, and no other test's.
    return WorkerProcess(
        [sys.executable, str(CRASH_WORKER), database_url, fake.base_url, prefix, str(state_dir)],
        env={"TIMESTEP_EXECUTOR_ID": f"{prefix}-worker"},
    )


def _go(state_dir: Path, workflow_id: str, prompt: str) -> None:
    temporary = state_dir / f".tmp-{workflow_id}"
    temporary.write_text(prompt)
    temporary.rename(state_dir / f"run-{workflow_id}")  # the worker never reads half a file


def _result(worker: WorkerProcess, workflow_id: str, timeout: float = 120) -> str:
    return worker.wait_for_line(f"RESULT {workflow_id} ", timeout=timeout).split(" ", 2)[2]


def _steps(database_url: str, workflow_id: str) -> list[dict]:
    client = DBOSClient(system_database_url=database_url, serializer=TimestepSerializer())
    try:
        return list(client.list_workflow_steps(workflow_id))
    except Exception:  # not started yet
        return []
    finally:
        client.destroy()


def _admissions(steps: list[dict]) -> list[float | None]:
    """Each admission step's ``retry_at``, in order (``None``: admitted)."""
    return [
        s["output"]["retry_at"]
        for s in steps
        if s["function_name"] == "timestep.ledger.admit" and s.get("output") is not None
    ]


def _wait_until_waiting(database_url: str, workflow_id: str, timeout: float = 60) -> None:
    """Until the run's call sleeps durably for the provider's word: an admission told it when
    to try again, and the sleep after it is checkpointed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        steps = _steps(database_url, workflow_id)
        names = [s["function_name"] for s in steps]
        admissions = _admissions(steps)
        if admissions and admissions[0] is not None and "DBOS.sleep" in names:
            return
        time.sleep(0.05)
    raise AssertionError(f"{workflow_id} never waited: {_steps(database_url, workflow_id)}")


def _blocked_until(database_url: str, prefix: str) -> float:
    engine = sync_engine_for(database_url)
    try:
        with engine.connect() as conn:
            locks = ledger_locks_table
            value = conn.scalar(
                sa.select(locks.c.blocked_until).where(locks.c.key == f"provider:{prefix}")
            )
    finally:
        engine.dispose()
    return float(value or 0.0)


def _prompt(request: RecordedRequest) -> str:
    return request.json["input"][0]["content"]


@pytest.mark.parametrize("restart", ["before-the-reset", "after-the-reset"])
def test_a_run_waiting_for_the_reset_survives_a_sigkill_of_its_worker(
    database_url: str, tmp_path: Path, restart: str
) -> None:
    """A response says ``x-ratelimit-remaining-requests: 0`` until a reset 15 s ahead; the
    worker's next run waits for it, and is SIGKILLed waiting. The restarted worker recovers
    the run, which sends its call once, after the reset (the word is in the database, and the
    wait is durable: it waits out only what is left), and finishes. Restarted after the reset,
    the recovered run replays the wait it finished and goes on at once."""
    reset_process()  # only the worker calls the model, and recovers its runs
    prefix = f"fbk{uuid.uuid4().hex[:8]}"
    headers = {
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": f"{RESET_SECONDS:g}s",
        "x-ratelimit-remaining-tokens": "100000",
        "x-ratelimit-reset-tokens": "20ms",
    }
    first, waiting = f"{prefix}-first", f"{prefix}-waiting"
    with FakeModelServer() as fake:
        fake.add_turns(text("said", headers=headers))
        fake.set_default(text("ok"))
        with _crash_worker(database_url, fake, tmp_path, prefix) as worker:
            worker.start()
            worker.wait_for_line("LAUNCHED", timeout=90)
            _go(tmp_path, first, "first")
            assert _result(worker, first) == "said"
            (said,) = fake.requests
            _go(tmp_path, waiting, "waiting")
            _wait_until_waiting(database_url, waiting)
            worker.kill()
            worker.wait(timeout=30)
            assert len(fake.requests) == 1  # the waiting call sent nothing
            reset_at = said.received_at + RESET_SECONDS  # the fake's clock (monotonic)
            if restart == "after-the-reset":
                time.sleep(max(0.0, reset_at + 1.0 - time.monotonic()))
            worker.restart()
            worker.wait_for_line("LAUNCHED", timeout=90)
            launched = time.monotonic()
            assert _result(worker, waiting) == "ok"
        requests = fake.requests

    if restart == "before-the-reset":
        assert launched < reset_at, (
            f"the restarted worker was up only {launched - reset_at:.1f}s after the reset: "
            "nothing shows the recovered run waited (raise RESET_SECONDS on this machine)"
        )
    # No request between the word and its reset; one for the waiting call after it.
    assert [_prompt(r) for r in requests] == ["first", "waiting"]
    assert requests[1].received_at - said.received_at >= RESET_SECONDS - 0.01
    # The recovered run went on from its wait: the admissions that waited, then the one that
    # admitted the call, and the call's step once.
    steps = _steps(database_url, waiting)
    admissions = _admissions(steps)
    assert admissions[-1] is None and None not in admissions[:-1] and len(admissions) >= 2
    assert [s["function_name"] for s in steps].count(f"model:{prefix}/gpt-4.1") == 1


def test_runs_waiting_out_a_429s_retry_after_survive_a_sigkill_of_their_worker(
    database_url: str, tmp_path: Path
) -> None:
    """A call gets a 429 with ``Retry-After: 15``: the OpenAI client waits to send it again
    (inside the call's step), and a second run's call waits in its admission. SIGKILLed both
    waiting, the restarted worker recovers both: the first call's step runs again but waits
    for the stored back-off before it is sent, the second's admission wakes at the end of it;
    each is sent once after it, none before, and both runs finish."""
    reset_process()
    prefix = f"fbk{uuid.uuid4().hex[:8]}"
    throttled, waiting = f"{prefix}-throttled", f"{prefix}-waiting"
    with FakeModelServer() as fake:
        fake.add_turns(error(429, retry_after=RESET_SECONDS))
        fake.set_default(text("ok"))
        with _crash_worker(database_url, fake, tmp_path, prefix) as worker:
            worker.start()
            worker.wait_for_line("LAUNCHED", timeout=90)
            _go(tmp_path, throttled, "throttled")
            (said,) = fake.wait_for_requests(1, timeout=60)
            deadline = time.monotonic() + 60
            while not _blocked_until(database_url, prefix):
                assert time.monotonic() < deadline, "the 429 was never recorded"
                time.sleep(0.05)
            _go(tmp_path, waiting, "waiting")
            _wait_until_waiting(database_url, waiting)
            worker.kill()
            worker.wait(timeout=30)
            assert len(fake.requests) == 1  # the client's retry had not gone out yet
            worker.restart()
            worker.wait_for_line("LAUNCHED", timeout=90)
            launched = time.monotonic()
            assert _result(worker, throttled) == "ok"
            assert _result(worker, waiting) == "ok"
        requests = fake.requests

    assert launched < said.received_at + RESET_SECONDS, (
        "the restarted worker was up only after the back-off: nothing shows the recovered "
        "runs waited (raise RESET_SECONDS on this machine)"
    )
    assert _prompt(requests[0]) == "throttled"
    later = requests[1:]
    assert sorted(_prompt(r) for r in later) == ["throttled", "waiting"]
    gaps = [r.received_at - said.received_at for r in later]
    assert min(gaps) >= RESET_SECONDS - 0.01, gaps
