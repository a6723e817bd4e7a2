"""Timestep's typed errors. Agent errors themselves stay the SDK's (``agents.exceptions``)."""

from __future__ import annotations

from typing import Any, Literal

__all__ = [
    "AgentDefinitionChangedError",
    "AgentNameConflictError",
    "AgentNotRegisteredError",
    "AgentRefNotAllowedError",
    "ApprovalError",
    "ApprovalTimeoutError",
    "BudgetExceededError",
    "ConfigurationError",
    "DatabaseUnreachableError",
    "DecisionConflictError",
    "InputTooLargeError",
    "MCPServerUnavailableError",
    "MalformedStateError",
    "RecordedError",
    "RecoveryError",
    "RunNotFoundError",
    "RunNotResumableError",
    "ScheduleError",
    "StateAgentMismatchError",
    "StateError",
    "StateNotFoundError",
    "StateTooLargeError",
    "TimestepError",
    "UnsupportedSchemaVersionError",
]


class TimestepError(Exception):
    """Base class of every error Timestep raises itself."""


class ConfigurationError(TimestepError):
    """A setting is missing or invalid; the message names the setting and why."""


class DatabaseUnreachableError(ConfigurationError):
    """The database the user asked for does not answer. Never silently replaced by SQLite."""

    def __init__(self, url: str, host: str | None, port: int | None, reason: str) -> None:
        self.url = url
        self.host = host
        self.port = port
        self.reason = reason
        where = f"{host}:{port}" if host else url
        super().__init__(f"cannot reach the database at {where}: {reason}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.url, self.host, self.port, self.reason))


class DatabaseNotInitializedError(ConfigurationError):
    """The database answers but nothing has run on it yet: no worker or run has created
    Timestep's tables there (a client, the CLI or the HTTP API never creates them)."""

    def __init__(self, url: str) -> None:
        self.url = url
        super().__init__(
            f"no Timestep database at {url} yet: nothing has run on it. Start a run or a "
            "worker there first, or point PG_CONNECTION_URI (or TIMESTEP_DATABASE_URL) at the "
            "database your workers use"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.url,))


class AgentNotRegisteredError(TimestepError):
    """A workflow names an agent this process cannot find or import."""

    def __init__(self, name: str, known: list[str], ref: str | None = None) -> None:
        self.name = name
        self.known = list(known)
        self.ref = ref
        hint = f" and importing {ref!r} failed" if ref else ""
        listed = ", ".join(sorted(known)) or "none"
        super().__init__(
            f"agent {name!r} is not registered in this process{hint}; "
            f"registered agents: {listed}. Import the module that defines it (or call "
            "timestep.register_agent) before launching DBOS."
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # DBOS pickles a workflow's error; keep the constructor's arguments so it unpickles.
        return (type(self), (self.name, self.known, self.ref))


class AgentRefNotAllowedError(TimestepError):
    """An HTTP request named an agent by ``module:attr`` that the server may not import:
    agent references are off (``TIMESTEP_API_ALLOW_AGENT_REFS``), or the module is outside
    ``TIMESTEP_API_AGENT_REF_PREFIXES``. Nothing was imported."""


class AgentNameConflictError(TimestepError):
    """An agent imported by reference has the name of an agent the server already serves;
    the served one is kept."""


class RecoveryError(TimestepError):
    """A run recovered in this process needs something the process cannot rebuild (an agent,
    a context, hooks, a session...). The message says what, and what to register."""

    def __init__(self, what: str, why: str) -> None:
        self.what = what
        self.why = why
        super().__init__(f"cannot recover the run's {what}: {why}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.what, self.why))


class AgentDefinitionChangedError(RecoveryError):
    """The agent a run is recovered with is not the definition it started with; ``changes``
    says what differs. Register the agent with ``on_definition_change="continue"`` to go on
    with the new definition."""

    def __init__(self, agent_name: str, changes: list[str]) -> None:
        self.agent_name = agent_name
        self.changes = list(changes)
        RecoveryError.__init__(
            self,
            f"agent {agent_name!r}",
            "its definition changed since the run started: "
            + "; ".join(changes)
            + ' (register it with on_definition_change="continue" to go on with the new one)',
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.agent_name, self.changes))


class MCPServerUnavailableError(TimestepError):
    """A durable run could not connect one of its MCP servers, after retrying with backoff
    (``declare_mcp_server`` sets how); ``server_name`` names it."""

    def __init__(self, server_name: str, attempts: int, reason: str) -> None:
        self.server_name = server_name
        self.attempts = attempts
        self.reason = reason
        super().__init__(
            f"MCP server {server_name!r} is unavailable after {attempts} attempt(s): {reason}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.server_name, self.attempts, self.reason))


class RecordedError(TimestepError):
    """An error recorded by a class this process cannot rebuild (not loaded here, or not an
    exception): its class name and message, as recorded."""

    def __init__(self, error_class: str, message: str) -> None:
        super().__init__(f"{error_class}: {message}")
        self.error_class = error_class
        self.error_message = message


class RunNotResumableError(TimestepError):
    """Resuming this run would fail the same way (a permanent provider error, or a failure of
    the agent loop itself, not of a step); the message says why and what to do instead."""


class RunNotFoundError(TimestepError):
    """No run has the given workflow id."""


class StateError(TimestepError):
    """Base class of RunState loading and saving errors."""


class MalformedStateError(StateError):
    """The payload is not a RunState: bad JSON, truncated, or missing required fields."""


class StateAgentMismatchError(StateError):
    """The state was saved for another agent than the one given."""


class UnsupportedSchemaVersionError(StateError):
    """The state's ``$schemaVersion`` is not one this version of Timestep can read."""


class StateTooLargeError(StateError):
    """The payload exceeds the configured ``max_state_bytes``."""


class InputTooLargeError(TimestepError):
    """A run's input exceeds ``TIMESTEP_MAX_INPUT_BYTES`` (as JSON); nothing was started."""


class StateNotFoundError(StateError):
    """No stored state matches the request."""


class ApprovalError(TimestepError):
    """An approval decision could not be applied (unknown run or call id)."""


class DecisionConflictError(ApprovalError):
    """A tool call already has a decision: the first one wins and any later one (the same or
    another) is refused. ``winner`` is the decision that won: ``approve``, ``always``,
    ``message``, ``by``, ``at``."""

    def __init__(self, workflow_id: str, call_id: str, winner: dict[str, Any]) -> None:
        self.workflow_id = workflow_id
        self.call_id = call_id
        self.winner = dict(winner)
        verb = "approved" if winner.get("approve") else "rejected"
        by = f" by {winner['by']}" if winner.get("by") else ""
        at = f" at {winner['at']}" if winner.get("at") else ""
        super().__init__(
            f"call {call_id!r} of run {workflow_id!r} was already {verb}{by}{at}; "
            "the first decision wins"
        )

    @property
    def decision(self) -> Literal["approve", "reject"]:
        """``"approve"`` or ``"reject"``: what the winning decision was."""
        return "approve" if self.winner.get("approve") else "reject"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.workflow_id, self.call_id, self.winner))


class ApprovalTimeoutError(ApprovalError):
    """A run waited longer than its approval timeout and its policy is ``fail``."""


class ScheduleError(TimestepError):
    """A schedule is invalid (bad cron, duplicate name) or does not exist."""


class BudgetExceededError(TimestepError):
    """A model call would pass a budget (``set_budget``): the run stopped before calling the
    model. Its state is kept; ``resume_run`` checks again once the budget allows."""

    def __init__(
        self, scope: str, per: str, measure: str, spent: float, limit: float, estimate: int
    ) -> None:
        self.scope = scope
        self.per = per
        self.measure = measure
        self.spent = spent
        self.limit = limit
        self.estimate = estimate
        super().__init__(
            f"budget {scope!r} (per {per}) would be exceeded: {measure} spent {spent:g} of "
            f"{limit:g}, and the next model call is estimated at {estimate} tokens"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            type(self),
            (self.scope, self.per, self.measure, self.spent, self.limit, self.estimate),
        )
