"""configure_dbos / ensure_dbos_launched, database resolution, settings validation."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import timestep
from timestep._core.database import resolve_database
from timestep._core.process import process_state
from timestep._core.runtime import current_database, reset_process
from timestep._core.settings import Settings
from timestep.errors import ConfigurationError, DatabaseUnreachableError


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    for name in ("PG_CONNECTION_URI", "TIMESTEP_DATABASE_URL", "DBOS_SYSTEM_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray dbos-config.yaml; SQLite lands here
    process_state().reload_settings()
    yield
    process_state().reload_settings()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_explicit_argument_wins(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PG_CONNECTION_URI", "postgresql://u@127.0.0.1:1/x")
    resolved = resolve_database("sqlite:///explicit.sqlite", Settings())
    assert (resolved.url, resolved.source) == ("sqlite:///explicit.sqlite", "argument")


def test_pg_connection_uri_is_used_when_reachable(monkeypatch, postgres_url: str):
    monkeypatch.setenv(
        "PG_CONNECTION_URI", postgres_url.replace("postgresql://", "postgresql+psycopg://")
    )
    resolved = resolve_database(None, Settings())
    assert resolved.source == "PG_CONNECTION_URI"
    assert resolved.url.startswith("postgresql://")  # normalised for DBOS


def test_unreachable_pg_connection_uri_is_an_error_not_a_fallback(monkeypatch):
    port = _free_port()
    monkeypatch.setenv("PG_CONNECTION_URI", f"postgresql://user:secret@127.0.0.1:{port}/db")
    with pytest.raises(DatabaseUnreachableError) as info:
        resolve_database(None, Settings())
    assert f"127.0.0.1:{port}" in str(info.value)
    assert "secret" not in str(info.value)


def test_dbos_setting_comes_next(monkeypatch):
    monkeypatch.setenv("DBOS_SYSTEM_DATABASE_URL", "sqlite:///from-dbos.sqlite")
    assert resolve_database(None, Settings()).source == "DBOS"


def test_dbos_config_yaml_with_env_reference(monkeypatch, tmp_path: Path):
    (tmp_path / "dbos-config.yaml").write_text("name: app\nsystem_database_url: ${MY_DB_URL}\n")
    monkeypatch.setenv("MY_DB_URL", "sqlite:///yaml.sqlite")
    resolved = resolve_database(None, Settings())
    assert (resolved.url, resolved.source) == ("sqlite:///yaml.sqlite", "DBOS")


def test_settings_from_dbos_config_env_section(monkeypatch, tmp_path: Path):
    (tmp_path / "dbos-config.yaml").write_text(
        "name: app\n"
        "env:\n"
        "  TIMESTEP_EXECUTOR_ID: worker-${WORKER_NUMBER}\n"
        "  TIMESTEP_QUEUE_POLLING_INTERVAL_SEC: 0.5\n"
        "  TIMESTEP_PROVIDER_LIMITS:\n"
        "    openai: {requests: 500, per_seconds: 60, concurrency: 16}\n"
    )
    monkeypatch.setenv("WORKER_NUMBER", "7")
    monkeypatch.setenv("TIMESTEP_QUEUE_POLLING_INTERVAL_SEC", "0.2")  # the environment wins
    settings = Settings()
    assert settings.executor_id == "worker-7"
    assert settings.queue_polling_interval_sec == 0.2
    assert settings.provider_limits == {
        "openai": {"requests": 500, "per_seconds": 60, "concurrency": 16}
    }


def test_provider_limits_from_dbos_config_reach_dbos(tmp_path: Path):
    """A worker configured only by dbos-config.yaml gets its provider's permit queues."""
    (tmp_path / "dbos-config.yaml").write_text(
        "name: app\n"
        "env:\n"
        "  TIMESTEP_PROBE_LOCAL_POSTGRES: false\n"
        "  TIMESTEP_PROVIDER_LIMITS:\n"
        "    ollama: {requests: 30, per_seconds: 60, concurrency: 2}\n"
    )
    script = (
        "import timestep\n"
        "from dbos import DBOS\n"
        "timestep.ensure_dbos_launched()\n"
        "print(DBOS.retrieve_queue('timestep.provider.ollama.rate').concurrency,"
        " DBOS.retrieve_queue('timestep.provider.ollama').concurrency)\n"
        "DBOS.destroy()\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["30", "2"]


def test_local_postgres_is_probed(monkeypatch, postgres_url: str):
    settings = Settings(local_postgres_url=postgres_url, probe_local_postgres=True)
    assert resolve_database(None, settings).source == "localhost"


def test_sqlite_when_nothing_answers(tmp_path: Path):
    settings = Settings(
        local_postgres_url=f"postgresql://postgres@127.0.0.1:{_free_port()}/x",
        probe_local_postgres=True,
        data_dir=tmp_path / "data",
    )
    resolved = resolve_database(None, settings)
    assert resolved.source == "sqlite"
    assert resolved.url == f"sqlite:///{tmp_path / 'data' / 'timestep.sqlite'}"


def test_invalid_url_names_the_setting():
    with pytest.raises(ConfigurationError, match="the database_url argument"):
        resolve_database("mysql://root@localhost/db", Settings())


def test_invalid_settings_say_which_and_why(monkeypatch):
    monkeypatch.setenv("TIMESTEP_APP_NAME", "Bad Name!")
    reset_process(destroy=False)
    with pytest.raises(ConfigurationError) as info:
        timestep.configure_dbos("sqlite:///x.sqlite")
    assert "app_name" in str(info.value)
    monkeypatch.setenv("TIMESTEP_APP_NAME", "ok")
    monkeypatch.setenv("PG_CONNECTION_URI", "not-a-url")
    process_state().reload_settings()
    with pytest.raises(ConfigurationError, match="PG_CONNECTION_URI"):
        timestep.configure_dbos()


def test_configure_is_idempotent_and_launch_works_inside_a_loop(database_url: str):
    reset_process(destroy=False)
    try:
        first = timestep.configure_dbos(database_url, application_version="v-test")
        second = timestep.configure_dbos("sqlite:///ignored.sqlite")
        assert first is second
        assert first["application_version"] == "v-test"
        # Launch on the default version: a launch registers its version in the shared test
        # database, and DBOS hands unversioned queued work (schedule fires) to the newest one.
        reset_process()
        timestep.configure_dbos(database_url)

        async def launch_twice() -> None:
            timestep.ensure_dbos_launched()
            timestep.ensure_dbos_launched()

        asyncio.run(launch_twice())
        assert current_database().url.split("://")[0] == database_url.split("://")[0]
        if database_url.startswith("sqlite"):
            assert first["notification_listener_polling_interval_sec"] <= 0.1
    finally:
        reset_process()


def test_subpackages_import_in_a_fresh_interpreter():
    code = (
        "import timestep, timestep.workflows, timestep.steps, timestep.providers, timestep.testing"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_public_api_names():
    for name in (
        "run_agent",
        "run_agent_workflow",
        "RunStateStore",
        "MultiModelProvider",
        "MultiModelProviderMap",
        "OllamaModelProvider",
        "web_search",
        "configure_dbos",
        "ensure_dbos_launched",
    ):
        assert name in timestep.__all__, name
        assert getattr(timestep, name) is not None
