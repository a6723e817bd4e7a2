"""Database connect timeouts (``TIMESTEP_DB_CONNECT_TIMEOUT_SEC``), against real sockets: a
Postgres address that accepts TCP and never answers fails start-up, the CLI and the HTTP API
within the timeout, with a typed error naming the address and never the password."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from netfaults import BlackHole, FaultProxy
from sqlalchemy.engine import make_url

import timestep
from timestep._core.database import (
    connect_timeout_url,
    ensure_postgres_database,
    sync_engine_for,
)
from timestep._core.process import process_state
from timestep._core.runtime import reset_process
from timestep._core.settings import Settings, load_settings
from timestep.errors import ConfigurationError, DatabaseUnreachableError
from timestep.testing import WorkerProcess, temporary_postgres_database

TIMESTEP = str(Path(sys.executable).parent / "timestep")
SECRET = "s3cret-pw"


@pytest.fixture
def hole():
    with BlackHole() as listener:
        yield listener


def _url(port: int) -> str:
    return f"postgresql://app:{SECRET}@127.0.0.1:{port}/appdb"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    for name in ("PG_CONNECTION_URI", "TIMESTEP_DATABASE_URL", "DBOS_SYSTEM_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    if process_state().runtime is not None:
        reset_process(destroy=process_state().launched)
    process_state().reload_settings()
    yield monkeypatch
    reset_process(destroy=False)
    process_state().reload_settings()


def test_the_setting_defaults_to_ten_seconds_and_is_validated(monkeypatch):
    monkeypatch.delenv("TIMESTEP_DB_CONNECT_TIMEOUT_SEC", raising=False)
    assert Settings().db_connect_timeout_sec == 10.0
    monkeypatch.setenv("TIMESTEP_DB_CONNECT_TIMEOUT_SEC", "0")
    with pytest.raises(ConfigurationError, match="db_connect_timeout_sec"):
        load_settings()


def test_engines_dbos_and_clients_get_the_timeout():
    url = "postgresql://u:p@db.example:5432/x"
    assert connect_timeout_url(url, 3.5).endswith("/x?connect_timeout=4")
    assert connect_timeout_url(url, 0.5).endswith("?connect_timeout=2")  # psycopg's minimum
    explicit = url + "?connect_timeout=30"
    assert connect_timeout_url(explicit, 3) == explicit  # the URL's own wins
    assert connect_timeout_url("sqlite:///x.sqlite", 3) == "sqlite:///x.sqlite"


def test_ensure_postgres_database_fails_within_the_timeout(hole: BlackHole):
    started = time.monotonic()
    with pytest.raises(DatabaseUnreachableError) as info:
        ensure_postgres_database(_url(hole.port), timeout=2)
    elapsed = time.monotonic() - started
    assert hole.accepted >= 1  # it did connect: the server just never answered
    assert 1.5 < elapsed < 8, elapsed
    message = str(info.value)
    assert f"127.0.0.1:{hole.port}" in message
    assert SECRET not in message and SECRET not in info.value.url
    assert "\n" not in message


def test_start_up_fails_within_the_timeout(clean_env, hole: BlackHole):
    clean_env.setenv("PG_CONNECTION_URI", _url(hole.port))
    clean_env.setenv("TIMESTEP_DB_CONNECT_TIMEOUT_SEC", "2")
    process_state().reload_settings()
    started = time.monotonic()
    with pytest.raises(DatabaseUnreachableError, match=f"127.0.0.1:{hole.port}") as info:
        timestep.configure_dbos()
    assert time.monotonic() - started < 8
    assert SECRET not in str(info.value)
    assert process_state().runtime is None  # nothing half-configured


@pytest.mark.parametrize("command", [["runs", "list"], ["worker", "json"]])
def test_cli_exits_1_with_one_line_within_the_timeout(hole: BlackHole, tmp_path, command):
    env = {
        **os.environ,
        "PG_CONNECTION_URI": _url(hole.port),
        "TIMESTEP_DB_CONNECT_TIMEOUT_SEC": "2",
    }
    started = time.monotonic()
    done = subprocess.run(
        [TIMESTEP, *command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert time.monotonic() - started < 20
    assert done.returncode == 1, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    # DBOS logs its own line before; Timestep's error is the last, one line, no traceback.
    assert lines[-1].startswith("error: cannot reach the database at 127.0.0.1:"), done.stderr
    assert f"127.0.0.1:{hole.port}" in lines[-1]
    assert "Traceback" not in done.stderr
    assert SECRET not in done.stdout + done.stderr


def test_sqlite_busy_timeout_follows_the_setting(tmp_path: Path):
    path = tmp_path / "busy.sqlite"
    engine = sync_engine_for(f"sqlite:///{path}", timeout=0.5)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        started = time.monotonic()
        with pytest.raises(Exception, match="locked"), engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        assert 0.4 < time.monotonic() - started < 5
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 500
        holder.close()
    finally:
        engine.dispose()


# -- the HTTP API during an outage ----------------------------------------------------------


async def test_http_api_answers_503_during_an_outage_then_recovers(postgres_url, tmp_path):
    """``timestep serve`` on Postgres behind a proxy; the proxy then drops every connection
    and black-holes new ones. Routes answer 503 with one line instead of hanging, and 200
    again once the database is back."""
    server_url = make_url(postgres_url)
    with (
        temporary_postgres_database(postgres_url, prefix="timestep_outage") as db_url,
        FaultProxy(server_url.host or "127.0.0.1", server_url.port or 5432) as proxy,
    ):
        via_proxy = make_url(db_url).set(host="127.0.0.1", port=proxy.port)
        env = {
            "PG_CONNECTION_URI": via_proxy.render_as_string(hide_password=False),
            "TIMESTEP_DB_CONNECT_TIMEOUT_SEC": "2",
            "TIMESTEP_API_REQUEST_TIMEOUT_SEC": "4",
        }
        command = [sys.executable, "-c", "from timestep.cli import main; main()", "serve"]
        command += ["--port", "0", "--no-auth"]
        with WorkerProcess(command, env=env, cwd=tmp_path) as server:
            server.start()
            line = await asyncio.to_thread(server.wait_for_line, "INFO:     Uvicorn running on", 90)
            url = re.search(r"http://127\.0\.0\.1:\d+", line).group(0)  # type: ignore[union-attr]
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                assert (await client.get("/runs")).status_code == 200
                assert (await client.get("/healthz")).status_code == 200

                proxy.outage()
                for path in ("/runs", "/runs/no-such-run", "/approvals", "/healthz"):
                    started = time.monotonic()
                    answer = await client.get(path)
                    elapsed = time.monotonic() - started
                    assert answer.status_code == 503, (path, answer.text)
                    assert elapsed < 10, (path, elapsed)
                    detail = answer.json()["detail"]
                    assert detail and "\n" not in detail, detail
                    assert "database" in detail, detail

                proxy.restore()
                deadline = time.monotonic() + 90
                while (await client.get("/runs")).status_code != 200:
                    assert time.monotonic() < deadline, "the API did not recover"
                    await asyncio.sleep(1)
                assert (await client.get("/healthz")).status_code == 200
            os.kill(server.pid, signal.SIGTERM)  # type: ignore[arg-type]
            code = await asyncio.to_thread(server.wait, 60)
            assert code in (0, -signal.SIGTERM), server.output()
