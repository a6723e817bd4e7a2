"""Opt-in JSON log lines (``TIMESTEP_LOG_FORMAT=json``), with the run's workflow id and step.

One JSON object per line on stderr, for Timestep's, DBOS's, the SDK's and any other logger
that reaches the root logger::

    {"time": "2026-12-02T01:59:00.120+00:00", "level": "INFO", "logger": "dbos",
     "message": "...", "workflow_id": "run-3f...", "step_id": 2}

``workflow_id`` and ``step_id`` are DBOS's for the code that logged (absent outside a run;
``step_id`` only inside a step). Secrets are scrubbed first, as in text logs.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from dbos import DBOS

__all__ = ["JsonFormatter", "install_log_format"]

_JSON_HANDLER = "timestep-json"
_DBOS_CONSOLE_HANDLER = "__dbos_console_log_handler__"  # the name DBOS gives its own


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        workflow_id = DBOS.workflow_id
        if workflow_id:
            line["workflow_id"] = workflow_id
            step_id = DBOS.step_id
            if step_id is not None:
                line["step_id"] = step_id
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def install_log_format(log_format: str) -> None:
    """With ``json``, every handler of the root and ``dbos`` loggers writes JSON lines (the
    root gets a stderr handler if it has none). Idempotent; ``text`` changes nothing."""
    if log_format != "json":
        return
    formatter = JsonFormatter()
    root = logging.getLogger()
    if not root.handlers:
        to_stderr = logging.StreamHandler()
        to_stderr.name = _JSON_HANDLER
        root.addHandler(to_stderr)
    dbos_logger = logging.getLogger("dbos")
    if not dbos_logger.handlers:
        # DBOS's console handler, made first (DBOS adds its own only when there is none), so
        # even the line DBOS logs while it initialises is JSON.
        console = logging.StreamHandler()
        console.name = _DBOS_CONSOLE_HANDLER
        dbos_logger.addHandler(console)
        dbos_logger.propagate = False
    for logger in (root, dbos_logger):
        for handler in logger.handlers:
            handler.setFormatter(formatter)
