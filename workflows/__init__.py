"""Every ``@DBOS.workflow`` of Timestep, registered with DBOS at import (before launch): the
agent run, a schedule's fire, and a limited provider's permit. Waiting for approvals is part
of the agent run."""

from ._agent_run import agent_run_workflow
from ._provider_permit import provider_permit, run_with_permit
from ._retention import retention_pass
from ._scheduled import scheduled_agent_run

__all__ = [
    "agent_run_workflow",
    "provider_permit",
    "retention_pass",
    "run_with_permit",
    "scheduled_agent_run",
]
