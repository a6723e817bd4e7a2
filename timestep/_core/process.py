"""Everything this process keeps between runs, on one object with one reset.

A Timestep process remembers, outside any single run (a run's own facts live in a context
variable, ``timestep.steps._current_run``):

============================  ==============================================================
``settings``                  the ``TIMESTEP_*`` settings, read on first use
``runtime``                   the DBOS configuration, and whether this process launched it
``engines``                   SQLAlchemy engines on Timestep's tables, per database
``agents``                    agents by name, for recovering runs (``timestep.register_agent``)
``limits``                    provider limits and declared DBOS queues (``limit_provider``)
``schedules``                 schedules declared before launch (``schedule_agent``)
``tool_options``              DBOS step options per tool name (``set_tool_options``)
``mcp_connect_policies``      connection retries per MCP server name (``declare_mcp_server``)
``model_provider``            the provider durable runs get models from (``set_model_provider``)
``prices``                    the price table usage is costed with (``set_price``)
``live_runs``                 the objects of the runs started here, and their live results
``agent_refs``                each agent's ``module:attr`` (dropped with the agent)
``recorder``                  the background writer of usage and tool-call rows
``dbos_client``               a ``DBOSClient`` when this process did not launch DBOS
``budgets_enforced``          whether runs started here check budgets (``set_budget``)
``budgets_looked_at``         when a run's start last looked for budgets set elsewhere
``workflow_functions``        Timestep's own workflows by name, registered at import (the
                              retention pass the launch schedules); kept across resets,
                              like DBOS's registry
============================  ==============================================================

``process_state()`` returns the one ``ProcessState``; ``timestep._core.runtime.reset_process()``
replaces it with a fresh one (destroying DBOS and closing engines first). Nothing else in
Timestep keeps module-level mutable state.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agents.models.interface import ModelProvider
from dbos import DBOSClient, DBOSConfig, StepOptions

from .database import Engines, ResolvedDatabase
from .limits import LimitRegistry
from .live import LiveRun
from .portable import TypeCodecs
from .prices import PriceTable
from .recorder import Recorder
from .registry import AgentRefs, AgentRegistry
from .settings import Settings, load_settings

__all__ = ["DBOSRuntime", "ProcessState", "get_settings", "process_state"]


@dataclass
class DBOSRuntime:
    """DBOS as this process configured it."""

    database: ResolvedDatabase
    config: DBOSConfig
    launched: bool = False


class ProcessState:
    """The process's registries, declarations and caches (see the module docstring)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.workflow_functions: dict[str, Callable[..., Any]] = {}
        self.clear_declarations()
        self.clear_runtime()

    def clear_declarations(self) -> None:
        """Forget what the application declared (agents, limits, schedules...)."""
        with self.lock:
            self.agents = AgentRegistry()
            self.limits = LimitRegistry()
            self.schedules: dict[str, dict[str, Any]] = {}
            self.tool_options: dict[str, StepOptions] = {}
            self.mcp_connect_policies: dict[str, StepOptions] = {}
            self.model_provider: ModelProvider | None = None
            self.prices = PriceTable()
            self.type_codecs = TypeCodecs()

    def clear_runtime(self) -> None:
        """Start the runtime afresh; the caller tore the old one down (``reset_process``)."""
        with self.lock:
            self._settings: Settings | None = None
            self.runtime: DBOSRuntime | None = None
            self.engines = Engines(lambda: self.settings.db_connect_timeout_sec)
            self.live_runs: dict[str, LiveRun] = {}
            self.agent_refs = AgentRefs()
            self.recorder = Recorder(self.engines.sync)
            self.dbos_client: DBOSClient | None = None
            # Check budgets before every durable model call (``set_budget`` here, a budget
            # in the database at launch, or TIMESTEP_BUDGETS / TIMESTEP_ENFORCE_BUDGETS).
            self.budgets_enforced = False
            # When a run's start last looked for budgets other processes set (monotonic).
            self.budgets_looked_at = 0.0

    @property
    def settings(self) -> Settings:
        """The settings, read from the environment (and ``dbos-config.yaml``) once."""
        settings = self._settings
        if settings is None:
            with self.lock:
                settings = self._settings = self._settings or load_settings()
        return settings

    def reload_settings(self) -> None:
        """Read the settings again on next use (after the environment changed: tests,
        embedding applications)."""
        with self.lock:
            self._settings = None

    @property
    def launched(self) -> bool:
        return self.runtime is not None and self.runtime.launched


_state = ProcessState()


def process_state() -> ProcessState:
    """This process's one ``ProcessState``."""
    return _state


def get_settings() -> Settings:
    """The process's settings (``process_state().settings``)."""
    return _state.settings


@atexit.register
def _flush_records_at_exit() -> None:
    recorder = _state.recorder
    if recorder.outstanding:
        recorder.flush(timeout=5.0)
