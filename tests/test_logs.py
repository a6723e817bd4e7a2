"""Opt-in JSON logs with the run's workflow id and step; the CLI keeps DBOS's INFO lines and
the demo's prompt out of the way when there is no terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

WORKERS = Path(__file__).parent / "workers"


def test_json_logs_carry_the_workflow_id_and_step(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'logs.sqlite'}"
    env = {
        **os.environ,
        "TIMESTEP_LOG_FORMAT": "json",
        "TIMESTEP_PROBE_LOCAL_POSTGRES": "false",
        "OPENAI_AGENTS_DISABLE_TRACING": "1",
    }
    done = subprocess.run(
        [sys.executable, str(WORKERS / "json_logs_worker.py"), url],
        env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    workflow_id = done.stdout.strip().splitlines()[-1]
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.strip()]
    assert lines, "no log lines"
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert any(line["logger"] == "dbos" for line in lines)  # DBOS's own lines are JSON too
    (tool_line,) = [line for line in lines if line["message"] == "looking up J1"]
    assert tool_line["workflow_id"] == workflow_id
    assert isinstance(tool_line["step_id"], int) and tool_line["step_id"] >= 1
    assert tool_line["level"] == "WARNING" and tool_line["logger"] == "timestep.test"


def test_demo_without_a_terminal_says_it_needs_one_or_yes() -> None:
    from timestep.cli import app

    result = CliRunner().invoke(app, ["demo"])  # CliRunner's stdin is no terminal
    assert result.exit_code == 2
    assert "run it in a terminal, or pass --yes" in result.stderr
    assert "aborted" not in result.output
