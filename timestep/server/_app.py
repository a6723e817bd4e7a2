"""The FastAPI app: runs, their events, approvals, RunStates and schedules over HTTP.

The app launches DBOS in its lifespan, so the server is also a worker: it executes the runs it
starts and recovers its pending ones at startup. Everything it reads (status, events, pending
approvals) is in the database, so it also serves runs that other workers execute, and its
approvals reach them as DBOS messages.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from agents import Agent
from dbos import WorkflowStatus
from fastapi import (
    APIRouter,
    Depends,
    FastAPI,
    Header,
    HTTPException,
    Path,
    Query,
    Request,
    Response,
)
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.types import ASGIApp, Receive, Scope, Send

import timestep
from timestep._client import inspection as client_runs
from timestep._client.agents import registered_agents
from timestep._client.inspection import find_workflow, require_run, run_error, run_state_json
from timestep._client.metrics import read_metrics
from timestep._client.runs import check_input_size
from timestep._core.database import unreachable
from timestep._core.decisions import winning_decisions
from timestep._core.error_records import describe_error
from timestep._core.process import process_state
from timestep._core.protocol import AGENT_RUN_WORKFLOW, PendingApproval, request_of, time_of
from timestep._core.registry import import_ref
from timestep._core.runtime import (
    configure_dbos,
    current_database,
    ensure_dbos_launched,
    is_dbos_launched,
    reset_process,
    tables_engine,
)
from timestep.errors import (
    AgentNameConflictError,
    AgentRefNotAllowedError,
    ApprovalError,
    ConfigurationError,
    DecisionConflictError,
    InputTooLargeError,
    RunNotFoundError,
    RunNotResumableError,
    ScheduleError,
    StateNotFoundError,
    StateTooLargeError,
    TimestepError,
)
from timestep.runstate import to_typescript

from ._auth import require_token
from ._console import install_console
from ._deadline import RequestDeadline
from ._events import parse_last_event_id, sse_events
from ._metrics import render_metrics
from ._models import (
    PATH_ID_PATTERN,
    SCHEDULE_NAME_PATTERN,
    WORKFLOW_ID_PATTERN,
    Approval,
    BackfillIn,
    BackfillOut,
    BudgetOut,
    DecisionConflict,
    DecisionIn,
    DecisionOut,
    Health,
    Problem,
    Run,
    RunCreate,
    RunStatus,
    Schedule,
    ScheduleCreate,
    TriggerOut,
    Usage,
    UsageReport,
    UsageTotals,
    ValidationProblem,
)
from ._settings import MIN_TOKEN_LENGTH, ServerSettings

__all__ = ["create_app"]

logger = logging.getLogger("timestep.server")

WorkflowIdPath = Annotated[
    str, Path(min_length=1, max_length=255, pattern=PATH_ID_PATTERN, description="A run's id.")
]
CallIdPath = Annotated[str, Path(min_length=1, max_length=255, pattern=PATH_ID_PATTERN)]
ScheduleNamePath = Annotated[str, Path(pattern=SCHEDULE_NAME_PATTERN)]


def _problem(description: str) -> dict[str, Any]:
    return {"model": Problem, "description": description}


def _responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI descriptions of error answers a route may give."""
    described: dict[int, dict[str, Any]] = {
        400: _problem("The body cannot be parsed (it is not UTF-8 text)."),
        401: _problem("Missing or invalid bearer token."),
        403: _problem(
            "Auth is off and the client is not on the loopback interface, or the request "
            "names an agent by 'module:attr' that may not be imported (agent references off, "
            "or the module outside TIMESTEP_API_AGENT_REF_PREFIXES)."
        ),
        404: _problem("No such run."),
        409: _problem("The request conflicts with the run's current state."),
        413: _problem(
            "The run's input is over TIMESTEP_MAX_INPUT_BYTES (or the body over that plus "
            "64 KiB, refused before it is read); nothing was started or stored."
        ),
        422: {"model": ValidationProblem, "description": "The request is invalid; errors say how."},
        503: _problem("The database does not answer (within the connect or request timeout)."),
    }
    return {code: described[code] for code in codes}


class EventStreamResponse(StreamingResponse):
    media_type = "text/event-stream"


def create_app(
    settings: ServerSettings | None = None, *, database_url: str | None = None
) -> FastAPI:
    """The HTTP API as an ASGI app (run it with uvicorn, or ``timestep serve``).

    ``settings`` defaults to the ``TIMESTEP_API_*`` environment. Refuses to build an app that
    would require a token nobody configured: auth is off only when asked for explicitly.
    A token shorter than ``MIN_TOKEN_LENGTH`` characters is refused too, unless
    ``settings.allow_short_token``. ``database_url`` is passed to ``configure_dbos`` (ignored if DBOS is already configured).
    """
    settings = settings or ServerSettings()
    if settings.auth and not (settings.api_token and settings.api_token.get_secret_value()):
        raise ConfigurationError(
            "TIMESTEP_API_TOKEN is not set: the HTTP API requires a bearer token. Set it, or "
            "serve without auth on localhost only (timestep serve --no-auth)"
        )
    if settings.auth and settings.api_token is not None:
        length = len(settings.api_token.get_secret_value())
        if length < MIN_TOKEN_LENGTH and not settings.allow_short_token:
            raise ConfigurationError(
                f"TIMESTEP_API_TOKEN is too short ({length} characters, at least "
                f"{MIN_TOKEN_LENGTH} required; make one with: openssl rand -hex 32). For local "
                "development only: TIMESTEP_API_ALLOW_SHORT_TOKEN=true or "
                "timestep serve --allow-short-token"
            )

    if settings.allow_agent_refs:
        bad = [p for p in settings.ref_prefixes if not _MODULE_NAME.match(p)]
        if bad or not settings.ref_prefixes:
            raise ConfigurationError(
                "TIMESTEP_API_ALLOW_AGENT_REFS=true needs TIMESTEP_API_AGENT_REF_PREFIXES: "
                "comma-separated module names agents may be imported from"
                + (f" (not {', '.join(map(repr, bad))})" if bad else "")
            )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Whoever launches DBOS shuts it down: an app embedded in a process that launched
        # DBOS itself (a worker, a test) leaves it running when the server stops.
        launched_here = not is_dbos_launched()
        configure_dbos(database_url)
        ensure_dbos_launched()
        yield
        if launched_here:
            reset_process()

    app = FastAPI(
        title="Timestep",
        version=_version(),
        summary="Durable OpenAI Agents SDK runs on DBOS, over HTTP.",
        description=(
            "Every route but `/healthz` requires `Authorization: Bearer <TIMESTEP_API_TOKEN>`. "
            "Errors are JSON objects whose `detail` says what is wrong."
        ),
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.add_middleware(_BodyLimit)
    _install_error_handlers(app)
    app.add_middleware(RequestDeadline, seconds=settings.request_timeout_sec)

    protected = APIRouter(
        dependencies=[Depends(require_token)], responses=_responses(401, 403, 422, 503)
    )
    _add_run_routes(protected, settings)
    _add_approval_routes(protected)
    _add_schedule_routes(protected, settings)
    _add_usage_routes(protected)

    @protected.get(
        "/metrics",
        tags=["metrics"],
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
    )
    async def metrics() -> Response:
        """Prometheus metrics, cluster-wide from the database: runs by status, pending
        approvals, queue depths, step latencies by kind, tokens and cost by provider/model."""
        return Response(render_metrics(await read_metrics()), media_type=CONTENT_TYPE_LATEST)

    @protected.get("/openapi.json", include_in_schema=False)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    app.include_router(protected)
    install_console(app, settings)

    @app.get(
        "/healthz",
        response_model=Health,
        tags=["health"],
        responses=_responses(503),
    )
    async def healthz() -> Health:
        """Liveness and database reachability; the one route without auth."""
        database = current_database()
        try:
            engine = await tables_engine()
            async with engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
        except Exception as exc:
            raise HTTPException(503, str(unreachable(database.url, exc))) from exc
        return Health(status="ok", database="sqlite" if database.is_sqlite else "postgres")

    return app


def _version() -> str:
    try:
        return version("timestep")
    except PackageNotFoundError:
        return "0"


# -- errors ---------------------------------------------------------------------------------


_BODY_OVERHEAD = 64 * 1024
"""Room in a request body for what goes with a run's input (agent, ids, options)."""


class _BodyLimit:
    """Refuse (413) a request whose Content-Length says its body is over
    ``TIMESTEP_MAX_INPUT_BYTES`` plus ``_BODY_OVERHEAD``, before it is read; the input itself
    is measured again once parsed. Pure ASGI, so event streams pass through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            limit = process_state().settings.max_input_bytes + _BODY_OVERHEAD
            length = dict(scope["headers"]).get(b"content-length", b"")
            if length.isdigit() and int(length) > limit:
                response = JSONResponse(
                    {
                        "detail": f"the request body is {int(length)} bytes, over the limit "
                        f"of {limit} (TIMESTEP_MAX_INPUT_BYTES plus {_BODY_OVERHEAD})"
                    },
                    status_code=413,
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _invalid(loc: Sequence[str | int], msg: str) -> RequestValidationError:
    """A 422 with the same body as pydantic's own validation errors."""
    return RequestValidationError([{"loc": tuple(loc), "msg": msg, "type": "value_error"}])


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "loc": [p if isinstance(p, int) else str(p) for p in e.get("loc", ())],
                "msg": str(e.get("msg", "")),
                "type": str(e.get("type", "value_error")),
            }
            for e in exc.errors()
        ]
        summary = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
            if error["loc"]
            else str(error["msg"])
            for error in errors
        )
        return JSONResponse(
            {"detail": f"invalid request: {summary}", "errors": errors}, status_code=422
        )

    @app.exception_handler(TimestepError)
    async def _timestep_error(_request: Request, exc: TimestepError) -> JSONResponse:
        if isinstance(exc, DecisionConflictError):
            winner = exc.winner
            body = DecisionConflict(
                detail=str(exc),
                decision=exc.decision,
                always=bool(winner.get("always")),
                message=winner.get("message"),
                decided_by=winner.get("by"),
                decided_at=winner.get("at") or None,
            )
            return JSONResponse(body.model_dump(), status_code=409)
        if isinstance(exc, RunNotFoundError | StateNotFoundError):
            code = 404
        elif isinstance(exc, InputTooLargeError | StateTooLargeError):
            code = 413
        elif isinstance(exc, AgentRefNotAllowedError):
            code = 403
        elif isinstance(exc, ApprovalError | AgentNameConflictError | RunNotResumableError):
            code = 409
        elif isinstance(exc, ConfigurationError):
            code = 503
        else:
            code = 400
        return JSONResponse({"detail": str(exc)}, status_code=code)

    @app.exception_handler(sa.exc.OperationalError)
    @app.exception_handler(sa.exc.InterfaceError)
    @app.exception_handler(sa.exc.TimeoutError)
    async def _database_down(_request: Request, exc: Exception) -> JSONResponse:
        # A connection that failed or timed out (TIMESTEP_DB_CONNECT_TIMEOUT_SEC), or a pool
        # with no connection to give: the database, not the request, is the problem.
        detail = str(unreachable(current_database().url, exc))
        return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error in the HTTP API")
        return JSONResponse({"detail": f"internal error ({describe_error(exc)})"}, status_code=500)


# -- runs -----------------------------------------------------------------------------------


_MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


async def _resolve_agent(name: str, settings: ServerSettings, loc: Sequence[str]) -> Agent[Any]:
    """The agent a request names: registered here, else (when agent references are on)
    imported from ``module:attr`` under an allowed prefix. Nothing is imported before the
    module is known to be allowed, and an imported agent never replaces a registered one."""
    agent = process_state().agents.get(name)
    if agent is not None:
        return agent
    if ":" not in name:
        known = ", ".join(sorted(registered_agents())) or "none"
        raise _invalid(loc, f"unknown agent {name!r}: use a registered name ({known})")
    module_name, _, attr = name.partition(":")
    if not settings.allow_agent_refs:
        raise AgentRefNotAllowedError(
            f"agent references are off: {name!r} was not imported. Serve the agent with "
            "--agents, or set TIMESTEP_API_ALLOW_AGENT_REFS=true and "
            "TIMESTEP_API_AGENT_REF_PREFIXES"
        )
    if not _MODULE_NAME.match(module_name) or not _MODULE_NAME.match(attr):
        raise _invalid(loc, f"{name!r} is not a 'package.module:attr' reference")
    if not settings.ref_allowed(module_name):
        raise AgentRefNotAllowedError(
            f"module {module_name!r} is not under TIMESTEP_API_AGENT_REF_PREFIXES "
            f"({', '.join(settings.ref_prefixes)}): {name!r} was not imported"
        )
    registry = process_state().agents
    before = registry.entries()
    try:
        found = await run_in_threadpool(import_ref, name)
    except Exception as exc:
        raise _invalid(loc, f"cannot import agent {name!r}: {exc}") from exc
    finally:
        # Importing may register agents itself: none of them replaces a served one.
        replaced = registry.restore(before)
    if replaced:
        raise AgentNameConflictError(
            f"importing {module_name!r} registered agents named {', '.join(sorted(replaced))}, "
            "which are already served here; the served ones are kept"
        )
    if not isinstance(found, Agent):
        raise _invalid(loc, f"{name!r} is a {type(found).__name__}, not an agents.Agent")
    registry.register(found, ref=name, replace=False)
    return found


def _jsonable(value: Any) -> Any:
    try:
        return jsonable_encoder(value)
    except Exception:
        return repr(value)


async def _run_body(status: WorkflowStatus) -> Run:
    request = request_of(status)
    output = status.output if status.status == "SUCCESS" else None
    summary = output if isinstance(output, dict) else {}
    usage = summary.get("usage") if isinstance(summary.get("usage"), dict) else None
    pending: list[Any] = []
    if status.status == "PENDING":
        pending = await timestep.get_pending_approvals(status.workflow_id)
    return Run(
        workflow_id=status.workflow_id,
        status=status.status,
        agent=request.get("agent"),
        session_id=request.get("session_id"),
        created_at=time_of(status.created_at),
        updated_at=time_of(status.updated_at),
        final_output=_jsonable(summary.get("final_output")),
        interrupted=bool(summary.get("interrupted")),
        pending_approvals=pending,
        usage=Usage(**{k: int(usage.get(k) or 0) for k in Usage.model_fields}) if usage else None,
        error=run_error(status),
    )


def _add_run_routes(router: APIRouter, settings: ServerSettings) -> None:
    @router.post(
        "/runs",
        response_model=Run,
        status_code=201,
        tags=["runs"],
        responses={
            200: {"model": Run, "description": "A run with this workflow id already exists."},
            409: _problem(
                "The workflow id is used by another request, or an agent imported by "
                "'module:attr' has the name of an agent the server already serves."
            ),
            **_responses(413, 400),
        },
    )
    async def create_run(
        body: RunCreate,
        response: Response,
        idempotency_key: Annotated[
            str | None,
            Header(
                alias="Idempotency-Key",
                pattern=WORKFLOW_ID_PATTERN,
                description="The run's workflow id, when the body has none.",
            ),
        ] = None,
    ) -> Run:
        """Start a durable run (201), or return the run already started with the same
        workflow id or Idempotency-Key (200): retrying a request never starts a second run."""
        if body.workflow_id and idempotency_key and body.workflow_id != idempotency_key:
            raise _invalid(
                ["header", "Idempotency-Key"],
                f"Idempotency-Key {idempotency_key!r} differs from the body's workflow_id "
                f"{body.workflow_id!r}: send one, or the same value in both",
            )
        workflow_id = body.workflow_id or idempotency_key
        check_input_size(body.input)
        agent = await _resolve_agent(body.agent, settings, ["body", "agent"])
        if workflow_id is not None:
            existing = await find_workflow(workflow_id)
            if existing is not None:
                _check_same_request(existing, agent, body)
                response.status_code = 200
                response.headers["Location"] = f"/runs/{workflow_id}"
                return await _run_body(existing)
        handle = await timestep.start_agent_run(
            agent,
            body.input,
            timestep.Session(body.session_id) if body.session_id else None,
            workflow_id=workflow_id,
            max_turns=body.max_turns,
            stream=body.stream,
            wait_for_approvals=body.wait_for_approvals,
            approval_timeout=body.approval_timeout,
            on_approval_timeout=body.on_approval_timeout,
        )
        response.headers["Location"] = f"/runs/{handle.workflow_id}"
        return await _run_body(await require_run(handle.workflow_id))

    @router.get("/runs", response_model=list[Run], tags=["runs"])
    async def list_runs(
        status: Annotated[RunStatus | None, Query(description="Only runs in this status.")] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> list[Run]:
        """The newest runs first."""
        found = await client_runs.list_runs(status=status, limit=limit, load_output=True)
        return [await _run_body(s) for s in found]

    @router.get("/runs/{workflow_id}", response_model=Run, tags=["runs"], responses=_responses(404))
    async def get_run(workflow_id: WorkflowIdPath) -> Run:
        """A run's status; once it ended, its final output, usage or error."""
        return await _run_body(await require_run(workflow_id))

    @router.post(
        "/runs/{workflow_id}/resume",
        response_model=Run,
        status_code=202,
        tags=["runs"],
        responses=_responses(404, 409),
    )
    async def resume_run(workflow_id: WorkflowIdPath) -> Run:
        """Resume a cancelled run from its last finished step, or a run that failed on a
        transient provider error from its failed model call (409 says why another can't)."""
        await client_runs.resume_run(workflow_id)
        return await _run_body(await require_run(workflow_id))

    @router.get(
        "/runs/{workflow_id}/events",
        # Media type set per response: errors are JSON, the stream is text/event-stream.
        response_class=Response,
        tags=["runs"],
        responses={
            200: {
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
                "description": "Server-Sent Events: `id` is the entry's offset, `data` the "
                "event as JSON; a last `end` event carries the run's final status.",
            },
            **_responses(404),
        },
    )
    async def run_events(
        workflow_id: WorkflowIdPath,
        offset: Annotated[int, Query(ge=0, le=2**62, description="First event to send.")] = 0,
        last_event_id: Annotated[
            str | None,
            Header(
                alias="Last-Event-ID",
                description="Resume after this event id (sent by EventSource on reconnect).",
            ),
        ] = None,
    ) -> Response:
        """Follow a run's events until it ends. Reconnecting with Last-Event-ID resumes after
        that event, so a client never misses or repeats one."""
        try:
            after = parse_last_event_id(last_event_id)
        except ValueError as exc:
            raise _invalid(["header", "Last-Event-ID"], str(exc)) from exc
        await require_run(workflow_id)
        # Resume right after the client's last event (the rest of its entry, if any).
        start = (after[0], after[1] + 1) if after is not None else (offset, 0)
        return EventStreamResponse(
            sse_events(workflow_id, start, settings.heartbeat_sec),
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @router.get(
        "/runs/{workflow_id}/state",
        response_model=dict[str, Any],
        tags=["runs"],
        responses=_responses(404),
    )
    async def run_state(
        workflow_id: WorkflowIdPath,
        fmt: Annotated[
            Literal["python", "typescript"],
            Query(alias="format", description="The Python or the TypeScript SDK's format."),
        ] = "python",
    ) -> dict[str, Any]:
        """The RunState of an interrupted run (waiting for approvals, or ended with them), for
        the Python SDK or the TypeScript one (``@openai/agents``)."""
        status = await require_run(workflow_id)
        payload = await run_state_json(status)
        if payload is None:
            raise StateNotFoundError(
                f"run {workflow_id!r} ({status.status}) has no RunState: only an interrupted "
                "run (waiting for approvals, or ended with pending ones) has one"
            )
        state: dict[str, Any] = json.loads(
            to_typescript(payload) if fmt == "typescript" else payload
        )
        return state


def _check_same_request(existing: Any, agent: Agent[Any], body: RunCreate) -> None:
    """A reused workflow id must mean the same request, or the client would silently get the
    answer to another question."""
    if existing.name != AGENT_RUN_WORKFLOW:
        raise HTTPException(
            409, f"workflow id {existing.workflow_id!r} belongs to a scheduled fire, not a run"
        )
    request = request_of(existing)
    differences = [
        field
        for field, ours, theirs in (
            ("agent", agent.name, request.get("agent")),
            ("input", _jsonable(body.input), _jsonable(request.get("input"))),
            ("session_id", body.session_id, request.get("session_id")),
        )
        if ours != theirs
    ]
    if differences:
        raise HTTPException(
            409,
            f"workflow id {existing.workflow_id!r} is already used by a run with another "
            f"{', '.join(differences)}: reuse an id only to retry the same request",
        )


# -- usage ----------------------------------------------------------------------------------


def _add_usage_routes(router: APIRouter) -> None:
    @router.get("/usage", response_model=UsageReport, tags=["usage"])
    async def usage(
        workflow_id: Annotated[str | None, Query(max_length=255, pattern=PATH_ID_PATTERN)] = None,
        agent_name: Annotated[str | None, Query(max_length=255, pattern=PATH_ID_PATTERN)] = None,
        session_id: Annotated[str | None, Query(max_length=255, pattern=PATH_ID_PATTERN)] = None,
        tag: Annotated[str | None, Query(max_length=255, pattern=PATH_ID_PATTERN)] = None,
    ) -> UsageReport:
        """Tokens and cost of the finished runs' model calls matching every filter given, and
        every budget with what its scope spent so far in its period (runs in flight included)."""
        summary = await timestep.get_usage(
            workflow_id=workflow_id, agent_name=agent_name, session_id=session_id, tag=tag
        )
        budgets = await timestep.get_budgets()
        return UsageReport(
            usage=UsageTotals.model_validate(dataclasses.asdict(summary)),
            budgets=[BudgetOut.model_validate(dataclasses.asdict(b)) for b in budgets],
        )


# -- approvals ------------------------------------------------------------------------------


def _add_approval_routes(router: APIRouter) -> None:
    @router.get("/approvals", response_model=list[Approval], tags=["approvals"])
    async def list_approvals(
        session_id: Annotated[str | None, Query(max_length=255, pattern=PATH_ID_PATTERN)] = None,
    ) -> list[Approval]:
        """Every tool call waiting for a decision, across runs, newest first."""
        rows = await timestep.list_pending_approvals(session_id=session_id)
        return [Approval.model_validate(row) for row in rows]

    @router.get(
        "/runs/{workflow_id}/approvals",
        response_model=list[PendingApproval],
        tags=["approvals"],
        responses=_responses(404),
    )
    async def run_approvals(workflow_id: WorkflowIdPath) -> list[PendingApproval]:
        """The tool calls one run is waiting on (empty when it waits on none)."""
        status = await require_run(workflow_id)
        if status.status != "PENDING":
            return []
        pending = await timestep.get_pending_approvals(workflow_id)
        return pending

    @router.post(
        "/runs/{workflow_id}/approvals/{call_id}",
        response_model=DecisionOut,
        status_code=202,
        tags=["approvals"],
        responses={
            409: {
                "model": DecisionConflict | Problem,
                "description": "The call already has a decision: the first decision wins, and "
                "the body names it (`decision`, `decided_by`, `decided_at`). Or the run is not "
                "waiting on this call (then the body has `detail` only).",
            },
            **_responses(404, 400),
        },
    )
    async def decide(
        workflow_id: WorkflowIdPath, call_id: CallIdPath, body: DecisionIn
    ) -> DecisionOut:
        """Approve or reject a pending tool call. Accepted (202): the run, wherever it is
        executed, receives the decision durably and goes on. The first decision on a call
        wins: any later one (the same or another) is refused with 409, naming the winner."""
        status = await require_run(workflow_id)
        if status.status != "PENDING":
            decided = await winning_decisions(workflow_id, [call_id])
            if call_id in decided:
                raise DecisionConflictError(workflow_id, call_id, dict(decided[call_id]))
            raise ApprovalError(
                f"run {workflow_id!r} is {status.status}, not waiting for approvals"
            )
        decision = timestep.ApprovalDecision(
            call_id, body.decision == "approve", body.always, body.message
        )
        await timestep.decide(workflow_id, [decision], by=body.by or "http-api")
        return DecisionOut(
            workflow_id=workflow_id, call_id=call_id, decision=body.decision, always=body.always
        )


# -- schedules ------------------------------------------------------------------------------


def _schedule_body(info: Any) -> Schedule:
    return Schedule.model_validate(info, from_attributes=True)


def _existing_schedule(name: str) -> Any:
    try:
        return timestep.get_schedule(name)
    except ScheduleError:
        raise HTTPException(404, f"no schedule named {name!r}") from None


def _add_schedule_routes(router: APIRouter, settings: ServerSettings) -> None:
    not_found: dict[int | str, dict[str, Any]] = {404: _problem("No such schedule.")}

    @router.get("/schedules", response_model=list[Schedule], tags=["schedules"])
    def list_schedules() -> list[Schedule]:
        return [_schedule_body(s) for s in timestep.list_schedules()]

    @router.post(
        "/schedules",
        response_model=Schedule,
        status_code=201,
        tags=["schedules"],
        responses={
            409: _problem(
                "A schedule with this name exists, or an agent imported by 'module:attr' has "
                "the name of an agent the server already serves."
            ),
            **_responses(413, 400),
        },
    )
    async def create_schedule(body: ScheduleCreate, response: Response) -> Schedule:
        """Run an agent at every time of a cron expression (six fields, seconds first)."""
        check_input_size(body.input)
        agent = await _resolve_agent(body.agent, settings, ["body", "agent"])
        session: Any = timestep.Session(body.session_id) if body.session_id else body.session

        def create() -> Schedule:
            try:
                timestep.schedule_agent(
                    body.name,
                    agent,
                    body.input,
                    body.cron,
                    session=session,
                    timezone=body.timezone,
                    missed=body.missed,
                    max_turns=body.max_turns,
                )
            except ScheduleError as exc:
                if "already" in str(exc):
                    raise HTTPException(409, str(exc)) from exc
                raise _invalid(["body"], str(exc)) from exc
            return _schedule_body(timestep.get_schedule(body.name))

        result = await run_in_threadpool(create)
        response.headers["Location"] = f"/schedules/{body.name}"
        return result

    @router.get(
        "/schedules/{name}", response_model=Schedule, tags=["schedules"], responses=not_found
    )
    def get_schedule(name: ScheduleNamePath) -> Schedule:
        return _schedule_body(_existing_schedule(name))

    @router.delete("/schedules/{name}", status_code=204, tags=["schedules"], responses=not_found)
    def delete_schedule(name: ScheduleNamePath) -> Response:
        """Delete a schedule; runs it already fired are kept."""
        _existing_schedule(name)
        timestep.delete_schedule(name)
        return Response(status_code=204)

    @router.post(
        "/schedules/{name}/pause", response_model=Schedule, tags=["schedules"], responses=not_found
    )
    def pause_schedule(name: ScheduleNamePath) -> Schedule:
        _existing_schedule(name)
        timestep.pause_schedule(name)
        return _schedule_body(timestep.get_schedule(name))

    @router.post(
        "/schedules/{name}/resume", response_model=Schedule, tags=["schedules"], responses=not_found
    )
    def resume_schedule(name: ScheduleNamePath) -> Schedule:
        _existing_schedule(name)
        timestep.resume_schedule(name)
        return _schedule_body(timestep.get_schedule(name))

    @router.post(
        "/schedules/{name}/trigger",
        response_model=TriggerOut,
        status_code=202,
        tags=["schedules"],
        responses=not_found,
    )
    def trigger_schedule(name: ScheduleNamePath) -> TriggerOut:
        """Fire a schedule now; the fire's workflow id is a run id (GET /runs/{id})."""
        _existing_schedule(name)
        return TriggerOut(workflow_id=timestep.trigger_schedule(name))

    @router.post(
        "/schedules/{name}/backfill",
        response_model=BackfillOut,
        status_code=202,
        tags=["schedules"],
        responses={**not_found, **_responses(400)},
    )
    def backfill_schedule(name: ScheduleNamePath, body: BackfillIn) -> BackfillOut:
        """Fire every time in (start, end) that has not fired yet (times already run are
        skipped, so a backfill can be retried)."""
        _existing_schedule(name)
        return BackfillOut(workflow_ids=timestep.backfill_schedule(name, body.start, body.end))
