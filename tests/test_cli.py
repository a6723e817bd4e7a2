"""The ``timestep`` command, as a real subprocess (the installed console script) and in-process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from timestep.cli import app
from timestep.testing import FakeModelServer, function_call, text

TIMESTEP = str(Path(sys.executable).parent / "timestep")
WORKERS = Path(__file__).parent / "workers"


def _cli(*args: str, cwd: Path, env: dict[str, str], timeout: float = 120):
    return subprocess.run(
        [TIMESTEP, *args],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def cli_env(database_url: str):
    with FakeModelServer() as fake:
        yield (
            fake,
            {
                "TIMESTEP_DATABASE_URL": database_url,
                "OPENAI_BASE_URL": fake.base_url,
                "OPENAI_API_KEY": "sk-cli-test",
                "OPENAI_AGENTS_DISABLE_TRACING": "1",
                "PYTHONPATH": str(WORKERS),
            },
        )


def test_demo_runs_offline_end_to_end(tmp_path: Path) -> None:
    done = _cli("demo", "--yes", cwd=tmp_path, env={"OPENAI_API_KEY": ""}, timeout=240)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "scripted OpenAI-compatible fake" in done.stdout
    assert "worker killed with SIGKILL" in done.stdout
    assert "Recovered run finished" in done.stdout
    assert "get_weather ran 1 time(s)" in done.stdout
    assert (tmp_path / ".timestep" / "demo.sqlite").exists()


def test_run_is_durable_idempotent_and_inspectable(cli_env, tmp_path: Path) -> None:
    fake, env = cli_env
    fake.add_turns(function_call("add", {"a": 2, "b": 3}), text("2 + 3 = 5"))
    args = ("run", "cli_agents:calculator", "what is 2+3?", "--workflow-id", "cli-run-1")

    first = _cli(*args, "--json", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    result = json.loads(first.stdout)
    assert (result["workflow_id"], result["final_output"]) == ("cli-run-1", "2 + 3 = 5")
    assert result["usage"]["requests"] == 2

    again = _cli(*args, "--json", cwd=tmp_path, env=env)
    assert json.loads(again.stdout)["final_output"] == "2 + 3 = 5"
    assert len(fake.requests) == 2  # the same workflow id called the model no more

    shown = _cli("runs", "show", "cli-run-1", "--json", cwd=tmp_path, env=env)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["status"] == "SUCCESS"
    listed = _cli("runs", "list", "--json", cwd=tmp_path, env=env)
    assert "cli-run-1" in {run["workflow_id"] for run in json.loads(listed.stdout)}


def test_an_interrupted_run_exits_3_with_its_pending_call(cli_env, tmp_path: Path) -> None:
    fake, env = cli_env
    fake.add_turns(function_call("delete_file", {"path": "/tmp/x"}, call_id="call_del"))

    done = _cli("run", "cli_agents:guarded", "delete /tmp/x", "--json", cwd=tmp_path, env=env)

    assert done.returncode == 3, done.stderr
    assert json.loads(done.stdout)["interruptions"] == [
        {"call_id": "call_del", "tool": "delete_file"}
    ]


def test_errors_are_one_line_without_traceback(cli_env, tmp_path: Path) -> None:
    _, env = cli_env
    done = _cli("run", "no_such_module:agent", "hi", cwd=tmp_path, env=env)

    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "no_such_module" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_in_process_commands(durable: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMESTEP_DATABASE_URL", durable)
    runner = CliRunner()

    listed = runner.invoke(app, ["approvals", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert isinstance(json.loads(listed.output), list)

    missing = runner.invoke(app, ["runs", "show", "no-such-run"])
    assert missing.exit_code != 0


def test_schedule_commands(durable: str, fake_model: FakeModelServer) -> None:
    from agents import Agent

    import timestep

    fake_model.set_default(text("reported"))  # for the backfilled fires
    name = f"cli-schedule-{uuid.uuid4().hex[:8]}"
    # Every second of January 1st only: it does not fire while the test runs.
    timestep.schedule_agent(name, Agent(name="cli-scheduled"), "report", "* * * 1 1 *")
    runner = CliRunner()

    def status() -> str:
        listed = runner.invoke(app, ["schedules", "list", "--json"])
        assert listed.exit_code == 0, listed.output
        return {row["name"]: row for row in json.loads(listed.output)}[name]["status"]

    assert status() == "ACTIVE"
    assert runner.invoke(app, ["schedules", "pause", name]).exit_code == 0
    assert status() == "PAUSED"
    assert runner.invoke(app, ["schedules", "resume", name]).exit_code == 0
    assert status() == "ACTIVE"
    backfill = ["schedules", "backfill", name, "2026-01-01T00:00:00+00:00"]
    filled = runner.invoke(app, [*backfill, "2026-01-01T00:00:03+00:00"])
    assert filled.exit_code == 0, filled.output
    assert "backfilled 2 fire(s)" in filled.output
    assert runner.invoke(app, ["schedules", "delete", name]).exit_code == 0
    assert runner.invoke(app, ["schedules", "pause", name]).exit_code != 0


# -- state import: bad files are typed, one-line errors and nothing is written -------------------

FIXTURES = Path(__file__).parent / "fixtures" / "runstate"


def _state_rows(database_url: str, session_id: str) -> int:
    import sqlalchemy as sa

    from timestep._core.database import Engines
    from timestep._core.tables import run_states_table

    engines = Engines()  # migrates first: the tables may not exist yet
    try:
        with engines.sync(database_url).connect() as conn:
            query = sa.select(sa.func.count()).where(run_states_table.c.session_id == session_id)
            return int(conn.execute(query).scalar_one())
    finally:
        engines.dispose()


def _bad_states() -> dict[str, bytes]:
    typescript = json.loads((FIXTURES / "typescript_interrupted.json").read_text())
    typescript["generatedItems"][1]["type"] = "tool_search_v2_item"
    python = (FIXTURES / "python_interrupted.json").read_bytes()
    return {
        "truncated": python[: len(python) // 2],
        "not-utf8": b'{"$schemaVersion": "1.21", "current_turn": "\xff\xfe"}',
        "deep": b"[" * 100_000 + b"]" * 100_000,
        "unknown-item": json.dumps(typescript).encode(),
    }


@pytest.mark.parametrize("case", list(_bad_states()))
def test_state_import_of_a_bad_file_is_one_line_exit_1_nothing_written(
    database_url: str, tmp_path: Path, case: str
) -> None:
    path = tmp_path / f"{case}.json"
    path.write_bytes(_bad_states()[case])
    session = f"import-{case}-{uuid.uuid4().hex[:6]}"
    env = {"TIMESTEP_DATABASE_URL": database_url, "PYTHONPATH": str(Path(__file__).parent)}
    done = _cli(
        "state",
        "import",
        str(path),
        "--session",
        session,
        "--agent",
        "interop:OPS",
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    expected = {
        "truncated": "is not valid JSON",
        "not-utf8": "is not UTF-8 text",
        "deep": "nested too deeply",
        "unknown-item": "unknown type 'tool_search_v2_item'",
    }[case]
    assert expected in lines[0], lines[0]
    assert _state_rows(database_url, session) == 0


def test_state_import_of_a_good_typescript_file_is_stored(database_url: str, tmp_path: Path):
    session = f"import-ok-{uuid.uuid4().hex[:6]}"
    env = {"TIMESTEP_DATABASE_URL": database_url, "PYTHONPATH": str(Path(__file__).parent)}
    done = _cli(
        "state",
        "import",
        str(FIXTURES / "typescript_interrupted.json"),
        "--session",
        session,
        "--agent",
        "interop:OPS",
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "stored as state_" in done.stdout
    assert _state_rows(database_url, session) == 1


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_inspecting_a_database_nothing_has_run_on_says_so(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Before any run, `runs list` names the database and what to do, as a one-line error."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'never' / 'timestep.sqlite'}"
    else:  # a database on the test server that nothing created
        server = make_url(request.getfixturevalue("postgres_url"))
        url = server.set(database=f"never_{uuid.uuid4().hex[:8]}").render_as_string(False)
    done = _cli("runs", "list", cwd=tmp_path, env={"TIMESTEP_DATABASE_URL": url})
    assert done.returncode == 1, done.stdout + done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: no Timestep database at ") and "nothing has run on it" in last
    assert "Traceback" not in done.stderr
    if kind == "sqlite":
        assert not (tmp_path / "never").exists()  # inspecting created nothing
