"""The web console: server-rendered pages for runs, approvals, schedules and usage, at ``/``.

Pages are Jinja2 templates shipped in the package (``console/templates``), with one small
script (``console/static/console.js``: live events over SSE, live refresh of tables) and one
stylesheet; nothing is fetched from elsewhere and nothing is built at install. Every route
reads and acts through the client layer (``timestep._client``), as the HTTP API does, and
requires the console's session (``_console_auth``); actions are plain form posts with a CSRF
token, answered by a redirect back to the page (post/redirect/get).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import parse_qs, quote, urlencode
from zoneinfo import ZoneInfo

from croniter import croniter
from dbos import WorkflowStatus
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, select_autoescape

import timestep
from timestep._client import inspection
from timestep._client.agents import registered_agents
from timestep._client.system import system
from timestep._client.usage import UsageSummary, usage_by, usage_of_runs
from timestep._core.protocol import SCHEDULED_RUN_WORKFLOW, request_of, time_of
from timestep.errors import RunNotFoundError, TimestepError
from timestep.runstate import to_typescript

from ._console_auth import (
    COOKIE,
    SESSION_SECONDS,
    ConsoleSession,
    NotSignedIn,
    check_post,
    console_key,
    console_session,
    new_session_cookie,
    token_matches,
)
from ._events import parse_last_event_id, sse_events
from ._models import PATH_ID_PATTERN, SCHEDULE_NAME_PATTERN
from ._settings import ServerSettings

__all__ = ["install_console"]

PAGE_SIZE = 50
STATUSES = (
    "PENDING",
    "ENQUEUED",
    "SUCCESS",
    "ERROR",
    "CANCELLED",
    "MAX_RECOVERY_ATTEMPTS_EXCEEDED",
)
FINISHED = ("SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED")

RunId = Annotated[str, Path(min_length=1, max_length=255, pattern=PATH_ID_PATTERN)]
CallId = Annotated[str, Path(min_length=1, max_length=255, pattern=PATH_ID_PATTERN)]
ScheduleName = Annotated[str, Path(pattern=SCHEDULE_NAME_PATTERN)]
Session = Annotated[ConsoleSession, Depends(console_session)]


def install_console(app: FastAPI, settings: ServerSettings) -> None:
    """Add the console's pages to ``app``: ``/`` (runs), ``/ui/...`` and its static files."""
    app.state.console_key = console_key(settings)
    env = Environment(
        loader=PackageLoader("timestep.server", "console/templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=_when, ms=_duration, money=_money, num=_num, pretty=_pretty, q=quote)

    def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("notice", request.query_params.get("notice"))
        context.setdefault("problem", request.query_params.get("problem"))
        html = env.get_template(name).render(request=request, auth=settings.auth, **context)
        return HTMLResponse(html, status_code=status_code, headers=dict(_NO_STORE))

    app.mount(
        "/ui/static",
        StaticFiles(packages=[("timestep.server", "console/static")]),
        name="console-static",
    )

    @app.exception_handler(NotSignedIn)
    async def _not_signed_in(request: Request, _exc: NotSignedIn) -> Response:
        if request.method == "GET" and "text/event-stream" not in request.headers.get("accept", ""):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/ui/signin?{urlencode({'next': target})}", 303)
        return Response("sign in first", status_code=401, media_type="text/plain")

    router = APIRouter(include_in_schema=False)
    _sign_in_routes(router, settings, render)
    _run_routes(router, settings, render)
    _approval_routes(router, render)
    _schedule_routes(router, render)

    @router.get("/ui/usage")
    async def usage_page(request: Request, session: Session) -> HTMLResponse:
        tables = {}
        for key in ("day", "agent", "model"):
            rows = await usage_by(key)
            tables[key] = _bars(rows)
        return render(request, "usage.html", session=session, tables=tables, page="usage")

    app.include_router(router)


_NO_STORE = (("Cache-Control", "no-store"),)


# -- forms and redirects ----------------------------------------------------------------------


async def _form(request: Request, session: ConsoleSession | None) -> dict[str, str]:
    """A urlencoded form's fields, after the CSRF and Origin checks."""
    body = (await request.body()).decode("utf-8", errors="replace")
    fields = {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}
    check_post(request, fields.get("csrf"), session.csrf if session is not None else None)
    return fields


def _back(path: str, **message: str) -> RedirectResponse:
    separator = "&" if "?" in path else "?"
    return RedirectResponse(path + (separator + urlencode(message) if message else ""), 303)


def _safe_next(target: str | None) -> str:
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


# -- sign-in ------------------------------------------------------------------------------------


def _sign_in_routes(
    router: APIRouter, settings: ServerSettings, render: Callable[..., HTMLResponse]
) -> None:
    @router.get("/ui/signin")
    async def sign_in_page(request: Request, next: str | None = None) -> Response:
        if not settings.auth:
            return RedirectResponse(_safe_next(next), 303)
        return render(request, "signin.html", next=_safe_next(next), session=None)

    @router.post("/ui/signin")
    async def sign_in(request: Request) -> Response:
        if not settings.auth:
            return RedirectResponse("/", 303)
        fields = await _form(request, None)
        target = _safe_next(fields.get("next"))
        if not token_matches(settings, fields.get("token", "")):
            return render(
                request,
                "signin.html",
                status_code=401,
                next=target,
                session=None,
                problem="That token is not this server's API token.",
            )
        response = RedirectResponse(target, 303)
        response.set_cookie(
            COOKIE,
            new_session_cookie(request.app.state.console_key),
            max_age=SESSION_SECONDS,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return response

    @router.post("/ui/signout")
    async def sign_out(request: Request, session: Session) -> Response:
        await _form(request, session)
        response = RedirectResponse("/ui/signin", 303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response


# -- runs -----------------------------------------------------------------------------------------


def _run_row(status: WorkflowStatus, usage: UsageSummary | None) -> dict[str, Any]:
    request = request_of(status)
    attributes = getattr(status, "attributes", None) or {}
    finished = status.status in FINISHED
    created = status.created_at
    end = status.updated_at if finished else int(time.time() * 1000)
    return {
        "id": status.workflow_id,
        "status": status.status,
        "agent": request.get("agent") or attributes.get("agent"),
        "session": request.get("session_id") or attributes.get("session_id"),
        "created": time_of(created),
        "duration_ms": (end - created) if created is not None and end is not None else None,
        "tokens": (usage.input_tokens + usage.output_tokens) if usage else None,
        "cost": usage.cost_usd if usage else None,
        "error": inspection.run_error(status),
    }


FILTERS = ("status", "agent", "session", "since", "until")
"""The runs table's filters, in the query string as in the form (kept across pages)."""


def _filters(**given: str | None) -> dict[str, str]:
    return {k: v for k in FILTERS if (v := given.get(k))}


def _moment(field: str, value: str | None, *, until: bool = False) -> datetime | None:
    """A time filter's bound: a date (``until`` a date: the end of that day) or a date and
    time (UTC unless it says otherwise); 422 for anything else."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise HTTPException(
            422, f"{field} must be a date or a date and time, got {value!r}"
        ) from None
    if until and len(value) == 10:  # a date alone: until that day's end
        parsed += timedelta(days=1)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


async def _runs_page(
    filters: dict[str, str], cursor: str | None = None, newer: str | None = None
) -> tuple[list[dict[str, Any]], inspection.RunsPage]:
    status = filters.get("status")
    if status and status not in STATUSES:
        raise HTTPException(422, f"unknown status {status!r}")
    since = _moment("since", filters.get("since"))
    until = _moment("until", filters.get("until"), until=True)
    if since is not None and until is not None and until <= since:
        raise HTTPException(422, "until must be later than since")
    try:
        page = await inspection.list_runs_page(
            status=status,
            agent=filters.get("agent"),
            session_id=filters.get("session"),
            since=since,
            until=until,
            cursor=cursor or None,
            newer=newer or None,
            limit=PAGE_SIZE,
        )
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc
    usage = await usage_of_runs([s.workflow_id for s in page.runs])
    return [_run_row(s, usage.get(s.workflow_id)) for s in page.runs], page


def _page_url(filters: dict[str, str], **cursor: str | None) -> str | None:
    """The runs table's page at ``cursor`` (``cursor`` or ``newer``), its filters kept."""
    given = {k: v for k, v in cursor.items() if v}
    return f"/?{urlencode({**filters, **given})}" if given else None


def _steps_view(
    steps: list[dict[str, Any]], status: WorkflowStatus, *, waiting: bool = False
) -> dict[str, Any]:
    """The timeline: each step's bar placed to scale between the run's start and its end."""
    start = status.created_at or 0
    end = status.updated_at if status.status in FINISHED else int(time.time() * 1000)
    times = [s["completed_at_ms"] for s in steps if s.get("completed_at_ms")]
    end = max([end or 0, *times]) or start
    span = max(end - start, 1)
    rows = []
    for s in steps:
        name: str = s["name"]
        kind = (
            "model"
            if name.startswith("model:")
            else "tool"
            if name.startswith("tool:")
            else "wait"
            if name in ("DBOS.recv", "DBOS.sleep")
            else "internal"
        )
        label = {"DBOS.recv": "approval wait", "DBOS.sleep": "timer"}.get(name, name)
        began, ended = s.get("started_at_ms"), s.get("completed_at_ms")
        duration = ended - began if began is not None and ended is not None else None
        rows.append(
            {
                **s,
                "kind": kind,
                "label": label,
                "duration_ms": duration,
                "left": 100 * ((began or start) - start) / span,
                "width": max(100 * (duration or 0) / span, 0.4),
            }
        )
    dequeued = getattr(status, "dequeued_at", None)
    if getattr(status, "queue_name", None) and dequeued and dequeued > start:
        # A queued run's wait for its turn, from its creation to its start.
        wait = dequeued - start
        rows.insert(
            0,
            {
                "id": 0,
                "name": f"queue:{status.queue_name}",
                "label": f"queued ({status.queue_name})",
                "kind": "wait",
                "outcome": "done",
                "duration_ms": wait,
                "error": None,
                "left": 0.0,
                "width": max(100 * wait / span, 0.4),
            },
        )
    if waiting:
        # The approval wait under way: DBOS records the step when the decision arrives.
        since = max([start, *times])
        rows.append(
            {
                "id": 0,
                "name": "DBOS.recv",
                "label": "approval wait (so far)",
                "kind": "wait",
                "outcome": "waiting",
                "duration_ms": end - since,
                "error": None,
                "left": 100 * (since - start) / span,
                "width": max(100 * (end - since) / span, 0.4),
            }
        )
    return {"steps": rows, "span_ms": end - start}


def _response_items(output: Any) -> list[dict[str, Any]]:
    """The output items of a model step's checkpoint: a streamed call's last event (JSON) or
    a plain call's ``ModelResponse``."""
    items_of = getattr(output, "output", None)
    if not isinstance(output, dict) and isinstance(items_of, list):
        dumped = [i.model_dump(mode="json") if hasattr(i, "model_dump") else i for i in items_of]
        return [i for i in dumped if isinstance(i, dict)]
    if isinstance(output, dict):
        for key in ("completed", "response"):
            if isinstance(output.get(key), dict):
                return _response_items(output[key])
        items = output.get("output")
        if isinstance(items, list):
            return [i for i in items if isinstance(i, dict)]
    return []


def _text_of(item: dict[str, Any]) -> str:
    content = item.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(c.get("text", "")) for c in content if isinstance(c, dict) and "text" in c
        )
    return ""


def _conversation(request: dict[str, Any], steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What was said: the input, then each model step's messages and tool calls, each tool's
    output and each approval decision, in step order."""
    entries: list[dict[str, Any]] = []
    given = request.get("input")
    if isinstance(given, str):
        entries.append({"role": "user", "kind": "message", "text": given})
    elif isinstance(given, list):
        for item in given:
            if isinstance(item, dict):
                entries.append(
                    {
                        "role": str(item.get("role", "input")),
                        "kind": "message",
                        "text": _text_of(item) or _pretty(item),
                    }
                )
    for step in steps:
        name, output = step["name"], step.get("output")
        if name.startswith("model:"):
            for item in _response_items(output):
                kind = item.get("type")
                if kind == "message":
                    entries.append({"role": "assistant", "kind": "message", "text": _text_of(item)})
                elif kind == "function_call":
                    entries.append(
                        {
                            "role": "assistant",
                            "kind": "tool call",
                            "name": item.get("name"),
                            "call_id": item.get("call_id"),
                            "text": item.get("arguments", ""),
                        }
                    )
                elif kind == "reasoning":
                    continue
                else:
                    entries.append({"role": "assistant", "kind": str(kind), "text": _pretty(item)})
        elif name.startswith("tool:") and step["outcome"] == "done":
            entries.append(
                {"role": "tool", "kind": "tool output", "name": name[5:], "text": _plain(output)}
            )
        elif name == "DBOS.recv" and isinstance(output, dict) and "call_id" in output:
            verdict = "approved" if output.get("approve") else "rejected"
            by = f" by {output['by']}" if output.get("by") else ""
            message = f": {output['message']}" if output.get("message") else ""
            entries.append(
                {
                    "role": "human",
                    "kind": "decision",
                    "call_id": output.get("call_id"),
                    "text": f"{verdict}{by}{message}",
                }
            )
    return entries


async def _run_view(workflow_id: str) -> dict[str, Any]:
    status = await inspection.require_run(workflow_id)
    request = request_of(status)
    steps = await inspection.list_run_steps(workflow_id, detail=True)
    usage = (await usage_of_runs([workflow_id])).get(workflow_id)
    output = status.output if status.status == "SUCCESS" and isinstance(status.output, dict) else {}
    pending = (
        await timestep.get_pending_approvals(workflow_id) if status.status == "PENDING" else []
    )
    has_state = status.status == "PENDING" and bool(pending) or bool(output.get("state"))
    return {
        "run": _run_row(status, usage),
        "usage": usage,
        "final_output": output.get("final_output"),
        "interrupted": bool(output.get("interrupted")),
        "timeline": _steps_view(steps, status, waiting=bool(pending)),
        "conversation": _conversation(request, steps),
        "pending": pending,
        "has_state": has_state,
        "finished": status.status in FINISHED,
        "can_cancel": status.status in ("PENDING", "ENQUEUED"),
        "can_resume": status.status in ("CANCELLED", "ERROR", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"),
        "max_step": max([s["id"] for s in steps], default=1),
    }


def _run_routes(
    router: APIRouter, settings: ServerSettings, render: Callable[..., HTMLResponse]
) -> None:
    @router.get("/")
    async def runs_page(
        request: Request,
        session: Session,
        status: str | None = None,
        agent: str | None = None,
        session_id: Annotated[str | None, Query(alias="session")] = None,
        since: str | None = None,
        until: str | None = None,
        cursor: str | None = None,
        newer: str | None = None,
    ) -> HTMLResponse:
        filters = _filters(status=status, agent=agent, session=session_id, since=since, until=until)
        rows, found = await _runs_page(filters, cursor, newer)
        return render(
            request,
            "runs.html",
            session=session,
            page="runs",
            rows=rows,
            filters=filters,
            statuses=STATUSES,
            agents=sorted(registered_agents()),
            next_url=_page_url(filters, cursor=found.next_cursor),
            newer_url=_page_url(filters, newer=found.newer_cursor),
            first_url=f"/?{urlencode(filters)}",
            first_page=found.first,
            rows_url=f"/ui/runs/rows?{urlencode(filters)}",
        )

    @router.get("/ui/runs/rows")
    async def runs_rows(
        request: Request,
        session: Session,
        status: str | None = None,
        agent: str | None = None,
        session_id: Annotated[str | None, Query(alias="session")] = None,
        since: str | None = None,
        until: str | None = None,
    ) -> HTMLResponse:
        """The first page's rows alone, for the live refresh of the table."""
        filters = _filters(status=status, agent=agent, session=session_id, since=since, until=until)
        rows, _ = await _runs_page(filters)
        return render(request, "_run_rows.html", session=session, rows=rows)

    @router.get("/ui/runs/{workflow_id}")
    async def run_page(request: Request, session: Session, workflow_id: RunId) -> HTMLResponse:
        try:
            view = await _run_view(workflow_id)
        except RunNotFoundError as exc:
            return render(request, "missing.html", status_code=404, session=session, what=str(exc))
        return render(request, "run.html", session=session, page="runs", **view)

    @router.get("/ui/runs/{workflow_id}/live")
    async def run_live(request: Request, session: Session, workflow_id: RunId) -> HTMLResponse:
        """The parts of the run page that change while it runs, for its live refresh."""
        view = await _run_view(workflow_id)
        return render(request, "_run_live.html", session=session, **view)

    @router.get("/ui/runs/{workflow_id}/events")
    async def run_events(request: Request, _session: Session, workflow_id: RunId) -> Response:
        """The run's events, as the API's stream: EventSource reconnects with Last-Event-ID
        and goes on after the last event it had."""
        try:
            after = parse_last_event_id(request.headers.get("last-event-id"))
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
        await inspection.require_run(workflow_id)
        start = (after[0], after[1] + 1) if after is not None else (0, 0)
        return StreamingResponse(
            sse_events(workflow_id, start, settings.heartbeat_sec),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @router.get("/ui/runs/{workflow_id}/state")
    async def run_state(_session: Session, workflow_id: RunId, format: str = "python") -> Response:
        status = await inspection.require_run(workflow_id)
        payload = await inspection.run_state_json(status)
        if payload is None:
            raise HTTPException(404, f"run {workflow_id!r} ({status.status}) has no RunState")
        if format == "typescript":
            payload = to_typescript(payload)
        elif format != "python":
            raise HTTPException(422, "format must be python or typescript")
        filename = f"{workflow_id}.{format}.runstate.json"
        return Response(
            payload,
            media_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    @router.post("/ui/runs/{workflow_id}/{action}")
    async def run_action(
        request: Request, session: Session, workflow_id: RunId, action: str
    ) -> Response:
        fields = await _form(request, session)
        page = f"/ui/runs/{quote(workflow_id)}"
        try:
            if action == "cancel":
                await inspection.cancel_run(workflow_id)
                return _back(page, notice="Cancelled: the run stops at its next step.")
            if action == "resume":
                await inspection.resume_run(workflow_id)
                return _back(page, notice="Resumed from its last finished step.")
            if action == "fork":
                start = int(fields.get("start_step") or 1)
                forked = await inspection.fork_run(workflow_id, max(start, 1))
                return _back(
                    f"/ui/runs/{quote(forked)}",
                    notice=f"Forked from {workflow_id} at step {start}.",
                )
        except (TimestepError, ValueError) as exc:
            return _back(page, problem=str(exc))
        raise HTTPException(404, f"no action {action!r}")


# -- approvals ----------------------------------------------------------------------------------


def _approval_routes(router: APIRouter, render: Callable[..., HTMLResponse]) -> None:
    @router.get("/ui/approvals")
    async def approvals_page(request: Request, session: Session) -> HTMLResponse:
        rows = await timestep.list_pending_approvals()
        for row in rows:
            row["arguments_pretty"] = _pretty_json_text(row.get("arguments"))
            status = await inspection.find_run(row["workflow_id"])
            steps = await inspection.list_run_steps(row["workflow_id"], detail=True)
            row["conversation"] = _conversation(request_of(status), steps)
        return render(request, "approvals.html", session=session, page="approvals", rows=rows)

    @router.post("/ui/approvals/{workflow_id}/{call_id}")
    async def decide(
        request: Request, session: Session, workflow_id: RunId, call_id: CallId
    ) -> Response:
        fields = await _form(request, session)
        back = _safe_next(fields.get("next")) if fields.get("next") else "/ui/approvals"
        approve = fields.get("decision") == "approve"
        if fields.get("decision") not in ("approve", "reject"):
            return _back(back, problem="decision must be approve or reject")
        message = (fields.get("message") or "").strip() or None
        try:
            status = await inspection.require_run(workflow_id)
            if status.status != "PENDING":
                raise timestep.ApprovalError(
                    f"run {workflow_id!r} is {status.status}, not waiting for approvals"
                )
            decision = timestep.ApprovalDecision(
                call_id, approve, False, None if approve else message
            )
            await timestep.decide(workflow_id, [decision], by="web-console")
        except TimestepError as exc:
            return _back(back, problem=str(exc))
        verdict = "Approved" if approve else "Rejected"
        return _back(
            back,
            notice=f"{verdict} {call_id} of run {workflow_id}: the run goes on.",
            run=workflow_id,
        )


def _pretty_json_text(text: str | None) -> str:
    if not text:
        return ""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


# -- schedules ----------------------------------------------------------------------------------


def _next_fires(cron: str, timezone: str | None, count: int = 3) -> list[datetime]:
    try:
        now = datetime.now(ZoneInfo(timezone)) if timezone else datetime.now(UTC)
        it = croniter(cron, now, second_at_beginning=True)
        return [it.get_next(datetime) for _ in range(count)]
    except Exception:
        return []


def _schedule_routes(router: APIRouter, render: Callable[..., HTMLResponse]) -> None:
    @router.get("/ui/schedules")
    async def schedules_page(request: Request, session: Session) -> HTMLResponse:
        schedules = await run_in_threadpool(timestep.list_schedules)
        views = []
        for info in schedules:
            fires = await system().list_workflows_async(
                name=SCHEDULED_RUN_WORKFLOW,
                schedule_name=info.name,
                limit=5,
                sort_desc=True,
                load_input=False,
                load_output=False,
            )
            views.append(
                {
                    "info": info,
                    "next": _next_fires(info.cron, info.timezone)
                    if info.status == "ACTIVE"
                    else [],
                    "fires": [
                        {"id": f.workflow_id, "status": f.status, "created": time_of(f.created_at)}
                        for f in fires
                    ],
                }
            )
        return render(request, "schedules.html", session=session, page="schedules", schedules=views)

    @router.post("/ui/schedules/{name}/{action}")
    async def schedule_action(
        request: Request, session: Session, name: ScheduleName, action: str
    ) -> Response:
        fields = await _form(request, session)
        try:
            if action == "pause":
                await run_in_threadpool(timestep.pause_schedule, name)
                return _back("/ui/schedules", notice=f"Paused {name}.")
            if action == "resume":
                await run_in_threadpool(timestep.resume_schedule, name)
                return _back("/ui/schedules", notice=f"Resumed {name}.")
            if action == "trigger":
                fired = await run_in_threadpool(timestep.trigger_schedule, name)
                return _back("/ui/schedules", notice=f"Triggered {name}: run {fired}.", run=fired)
            if action == "backfill":
                start = _moment("start", fields.get("start"))
                end = _moment("end", fields.get("end"))
                if start is None or end is None:
                    return _back("/ui/schedules", problem="backfill needs a start and an end")
                fired_ids = await run_in_threadpool(timestep.backfill_schedule, name, start, end)
                return _back("/ui/schedules", notice=f"Backfilled {name}: {len(fired_ids)} fires.")
        except (TimestepError, HTTPException) as exc:
            return _back("/ui/schedules", problem=str(getattr(exc, "detail", exc)))
        raise HTTPException(404, f"no action {action!r}")


# -- usage and formatting ---------------------------------------------------------------------


def _bars(rows: Iterable[tuple[str, UsageSummary]]) -> list[dict[str, Any]]:
    rows = list(rows)
    tokens = [u.input_tokens + u.output_tokens for _, u in rows]
    costs = [u.cost_usd or 0.0 for _, u in rows]
    top_tokens, top_cost = max(tokens, default=0) or 1, max(costs, default=0.0) or 1.0
    return [
        {
            "key": key,
            "usage": usage,
            "tokens": t,
            "tokens_pct": 100 * t / top_tokens,
            "cost_pct": 100 * c / top_cost,
        }
        for (key, usage), t, c in zip(rows, tokens, costs, strict=True)
    ]


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if value else "—"


def _duration(ms: float | None) -> str:
    if ms is None:
        return "—"
    if ms < 1000:
        return f"{ms:.0f} ms"
    seconds = ms / 1000
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes = seconds / 60
    return f"{minutes:.0f} min" if minutes < 120 else f"{minutes / 60:.1f} h"


def _money(value: float | None) -> str:
    return "—" if value is None else f"${value:.4f}"


def _num(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def _pretty(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _plain(value: Any) -> str:
    return value if isinstance(value, str) else _pretty(value)
