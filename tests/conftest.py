"""Shared fixtures: databases (SQLite and Postgres), a fresh DBOS per test, the fake model server.

Postgres comes from ``TIMESTEP_TEST_PG_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``);
each test run gets a fresh database on that server. Under ``CI=true`` an unreachable Postgres
fails the run instead of skipping its tests.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator

import pytest
from agents import set_tracing_disabled
from sqlalchemy.engine import make_url

os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")
os.environ["TIMESTEP_PROBE_LOCAL_POSTGRES"] = "false"
set_tracing_disabled(True)

PG_URL = os.environ.get("TIMESTEP_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh Postgres database for this test run, dropped at the end."""
    from timestep.testing import postgres_unreachable, temporary_postgres_database

    why = postgres_unreachable(PG_URL)
    if why is not None:
        message = f"Postgres at {make_url(PG_URL).render_as_string()} is unreachable: {why}"
        if IN_CI:
            pytest.fail(message + " (CI=true: Postgres tests must run)")
        pytest.skip(message)
    with temporary_postgres_database(PG_URL) as url:
        try:
            yield url
        finally:
            from timestep._core.runtime import reset_process

            with contextlib.suppress(Exception):  # the database goes away regardless
                reset_process()


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'timestep.sqlite'}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Every storage test runs on both databases."""
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture
def durable(database_url: str) -> Iterator[str]:
    """A fresh DBOS, configured and launched on ``database_url``; destroyed afterwards."""
    from timestep import configure_dbos, ensure_dbos_launched
    from timestep._core.process import process_state
    from timestep._core.runtime import reset_process

    if process_state().runtime is not None:  # a test before this one left DBOS configured
        reset_process(destroy=False)
    process_state().reload_settings()  # the environment as this test set it
    configure_dbos(database_url)
    ensure_dbos_launched()
    try:
        yield database_url
    finally:
        _cancel_unfinished_workflows()
        reset_process()


def _cancel_unfinished_workflows() -> None:
    """The databases outlive single tests: a run left waiting (an approval nobody gives, a
    queued run) would otherwise be recovered by every later launch and run among its tests,
    and a schedule left behind would fire into them. Schedules go first: a fire whose time
    came just before its schedule went is still started, so the scheduler is given one poll
    (a fraction of a second where a test set it so) to stop the schedule's thread before the
    unfinished runs are cancelled."""
    from dbos import DBOS

    from timestep._core.process import process_state
    from timestep._core.runtime import is_dbos_launched

    if not is_dbos_launched():
        return
    schedules = DBOS.list_schedules()
    for schedule in schedules:
        DBOS.delete_schedule(schedule["schedule_name"])
    poll = process_state().settings.scheduler_polling_interval_sec
    if schedules and poll <= 1:
        time.sleep(poll + 0.1)
    for workflow in DBOS.list_workflows(status=["PENDING", "ENQUEUED"]):
        DBOS.cancel_workflow(workflow.workflow_id)


@pytest.fixture
def fake_model() -> Iterator[object]:
    """The real HTTP fake of the OpenAI API, and Timestep's default provider pointed at it."""
    from timestep import set_model_provider
    from timestep.testing import FakeModelServer

    server = FakeModelServer()
    server.start()
    set_model_provider(server.provider())
    try:
        yield server
    finally:
        set_model_provider(None)
        server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def own_database(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A database of this test's own, on each database: for exact counts over everything
    stored (the session's shared databases hold other tests' runs)."""
    from timestep.testing import postgres_unreachable, temporary_postgres_database

    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'own.sqlite'}"
        return
    why = postgres_unreachable(PG_URL)
    if why is not None:
        if IN_CI:
            pytest.fail(f"Postgres is unreachable: {why} (CI=true: Postgres tests must run)")
        pytest.skip(f"Postgres is unreachable: {why}")
    with temporary_postgres_database(PG_URL, prefix="timestep_own") as url:
        try:
            yield url
        finally:
            from timestep._core.runtime import reset_process

            with contextlib.suppress(Exception):
                reset_process()


@pytest.fixture
def own_durable(own_database: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``durable`` on ``own_database`` (with no retention schedule)."""
    from timestep import configure_dbos, ensure_dbos_launched
    from timestep._core.process import process_state
    from timestep._core.runtime import reset_process

    monkeypatch.delenv("TIMESTEP_RETENTION", raising=False)
    if process_state().runtime is not None:
        reset_process(destroy=False)
    process_state().reload_settings()
    configure_dbos(own_database)
    ensure_dbos_launched()
    try:
        yield own_database
    finally:
        _cancel_unfinished_workflows()
        reset_process()
