"""Request and response bodies of the HTTP API.

Requests forbid unknown fields, so a misspelt option is a 422 naming it rather than silently
ignored. The same models generate the published OpenAPI spec, which the tests check the
server's answers against.
"""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args

from croniter import croniter
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from timestep._core.protocol import PendingApproval

__all__ = [
    "Approval",
    "BackfillIn",
    "BudgetOut",
    "BackfillOut",
    "DecisionIn",
    "DecisionOut",
    "FieldProblem",
    "Health",
    "PATH_ID_PATTERN",
    "Problem",
    "Run",
    "RunCreate",
    "RunStatus",
    "SCHEDULE_NAME_PATTERN",
    "Schedule",
    "ScheduleCreate",
    "TriggerOut",
    "Usage",
    "UsageReport",
    "UsageTotals",
    "ValidationProblem",
    "WORKFLOW_ID_PATTERN",
]

WORKFLOW_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:+@=-]{0,254}$"
"""Ids a client may choose: they appear in URL paths, so no '/' and nothing to escape."""

PATH_ID_PATTERN = r"^[^\x00-\x1f\x7f]{1,255}$"
"""Ids the API looks up: any printable id (schedule fires have generated ids), no control
characters, which no database column can hold."""

SCHEDULE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"

RunStatus = Literal[
    "ENQUEUED",
    "DELAYED",
    "PENDING",
    "SUCCESS",
    "ERROR",
    "CANCELLED",
    "MAX_RECOVERY_ATTEMPTS_EXCEEDED",
]

_Request = ConfigDict(extra="forbid")
_Text = Annotated[str, Field(min_length=1, max_length=255, pattern=PATH_ID_PATTERN)]


class Problem(BaseModel):
    """Every 4xx/5xx answer: ``detail`` says what is wrong and, where it can, what to do."""

    detail: str


class DecisionConflict(Problem):
    """A 409 to a decision on a call that already has one: the first decision wins."""

    decision: Literal["approve", "reject"]
    """The decision that won."""
    always: bool = False
    message: str | None = None
    decided_by: str | None = None
    decided_at: str | None = None


class FieldProblem(BaseModel):
    loc: list[str | int]
    """Where: ``["body", "input"]``, ``["header", "Idempotency-Key"]``..."""
    msg: str
    type: str


class ValidationProblem(BaseModel):
    """A 422: ``detail`` sums the problems up in one line; ``errors`` lists them one by one."""

    detail: str
    errors: list[FieldProblem]


class RunCreate(BaseModel):
    """Start a durable run of a registered agent."""

    # The example is a whole request, so generated examples (schemathesis) start real runs.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"agent": "support-agent", "input": "Where is my order?"}]},
    )

    agent: str = Field(
        min_length=1,
        max_length=512,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="A served agent's name, or 'package.module:attr' to import it (only "
        "with TIMESTEP_API_ALLOW_AGENT_REFS, from TIMESTEP_API_AGENT_REF_PREFIXES).",
        examples=["support-agent"],
    )
    input: (
        Annotated[str, Field(min_length=1)] | Annotated[list[dict[str, Any]], Field(min_length=1)]
    ) = Field(description="A user message, or a list of Responses API input items.")
    session_id: _Text | None = Field(
        default=None, description="Conversation memory: runs with the same id share history."
    )
    workflow_id: str | None = Field(
        default=None,
        pattern=WORKFLOW_ID_PATTERN,
        description="Idempotency key: posting the same id again returns the same run.",
    )
    wait_for_approvals: bool = Field(
        default=True,
        description="Wait durably for POST /runs/{id}/approvals/{call_id} when a tool needs "
        "approval (false: the run ends with its interruptions).",
    )
    approval_timeout: float | None = Field(
        default=None, gt=0, allow_inf_nan=False, description="Seconds to wait for a decision."
    )
    on_approval_timeout: Literal["reject", "fail", "wait"] = "reject"
    max_turns: int | None = Field(default=None, ge=1, le=1000)
    stream: bool = Field(
        default=True, description="Publish the run's events for GET /runs/{id}/events."
    )


class Usage(BaseModel):
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0


class UsageTotals(BaseModel):
    """Recorded usage of finished runs' model calls (``timestep.get_usage``)."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float | None = None


class BudgetOut(BaseModel):
    """A budget and what its scope spent in its current period (``timestep.get_budgets``)."""

    scope: str
    per: Literal["run", "day", "month"]
    max_tokens: int | None = None
    max_cost_usd: float | None = None
    spent_tokens: int
    spent_cost_usd: float
    on_exceed: Literal["stop", "wait"] = "stop"


class UsageReport(BaseModel):
    """``GET /usage``: the usage matching the filters, and every budget with its spend."""

    usage: UsageTotals
    budgets: list[BudgetOut]


class Approval(BaseModel):
    """A pending tool call, across runs (``GET /approvals``): a row of Timestep's tool calls."""

    workflow_id: str
    call_id: str
    tool_name: str
    arguments: str | None = None
    agent_name: str | None = None
    session_id: str | None = None
    created_at: datetime | None = None

    @field_validator("created_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        # SQLite hands timestamps back without their zone; Timestep stores them in UTC.
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Run(BaseModel):
    """A run's status and, once it ended, its outcome."""

    workflow_id: str
    status: str = Field(description="One of " + ", ".join(get_args(RunStatus)) + ".")
    agent: str | None = None
    session_id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    final_output: Any = None
    interrupted: bool = Field(
        default=False,
        description="The run ended with tool calls awaiting approval (GET /runs/{id}/state).",
    )
    pending_approvals: list[PendingApproval] = Field(
        default_factory=list, description="The tool calls a waiting run needs a decision on."
    )
    usage: Usage | None = None
    error: str | None = None


class DecisionIn(BaseModel):
    """Approve or reject one pending tool call."""

    model_config = _Request

    decision: Literal["approve", "reject"]
    always: bool = Field(
        default=False, description="Apply the same decision to later calls of this tool."
    )
    message: str | None = Field(
        default=None, max_length=10_000, description="Rejections only: what the model is told."
    )
    by: str | None = Field(
        default=None, max_length=255, pattern=r"^[^\x00]*$", description="Who decided (recorded)."
    )

    @model_validator(mode="after")
    def _message_only_on_reject(self) -> DecisionIn:
        if self.message is not None and self.decision != "reject":
            raise ValueError("message is only for rejections (decision 'reject')")
        return self


class DecisionOut(BaseModel):
    workflow_id: str
    call_id: str
    decision: Literal["approve", "reject"]
    always: bool


class ScheduleCreate(BaseModel):
    """Run an agent at every time of a cron expression (six fields, seconds first)."""

    model_config = _Request

    name: str = Field(pattern=SCHEDULE_NAME_PATTERN)
    agent: str = Field(min_length=1, max_length=512, pattern=r"^[^\x00-\x1f\x7f]+$")
    input: (
        Annotated[str, Field(min_length=1)] | Annotated[list[dict[str, Any]], Field(min_length=1)]
    )
    cron: str = Field(examples=["0 0 8 * * *"], max_length=255)
    session: Literal["fresh", "shared"] = Field(
        default="fresh", description="A conversation per fire, or one shared by every fire."
    )
    session_id: _Text | None = Field(
        default=None, description="With session 'shared': continue this session id."
    )
    timezone: str | None = Field(default=None, examples=["Europe/Lisbon"], max_length=64)
    missed: Literal["skip", "backfill"] = "skip"
    max_turns: int | None = Field(default=None, ge=1, le=1000)

    @field_validator("cron")
    @classmethod
    def _check_cron(cls, value: str) -> str:
        try:
            valid = croniter.is_valid(value, second_at_beginning=True)
        except Exception:
            valid = False
        if not valid or len(value.split()) != 6:
            raise ValueError(
                f"invalid cron expression {value!r} (six fields, seconds first: '0 */5 * * * *')"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(
                f"unknown time zone {value!r} (an IANA name: 'Europe/Lisbon')"
            ) from None
        return value

    @model_validator(mode="after")
    def _session_id_only_when_shared(self) -> ScheduleCreate:
        if self.session_id is not None and self.session != "shared":
            raise ValueError("session_id is only for session 'shared'")
        return self


class Schedule(BaseModel):
    name: str
    cron: str
    status: str
    agent: str
    session: str
    timezone: str | None = None
    missed: str
    last_fired_at: str | None = None


class BackfillIn(BaseModel):
    """Fire every time of the schedule in (start, end) that has not fired yet."""

    model_config = _Request

    start: AwareDatetime
    end: AwareDatetime

    @model_validator(mode="after")
    def _ordered(self) -> BackfillIn:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class BackfillOut(BaseModel):
    workflow_ids: list[str]


class TriggerOut(BaseModel):
    workflow_id: str


class Health(BaseModel):
    status: Literal["ok"]
    database: Literal["postgres", "sqlite"]
