"""The agent-run workflow: the SDK's ``Runner`` inside ``@DBOS.workflow``.

Its argument is plain JSON-able data (``RunRequest``), so DBOS can recover it in a fresh
process. In the process that started the run, the workflow executes the caller's own objects
(agent, context, hooks, RunConfig, session: ``_core.live``); elsewhere it rebuilds them from
the request (``_run_objects``) and checks that the agent's definition is the one the run
started with. Either way the objects are made durable where they are (``timestep.steps``), so
every model call, tool call and session read or write is a step, and finished steps replay
from their checkpoints.

Streamed runs drive ``Runner.run_streamed``: the SDK's own streaming loop produces the events,
which go live to a caller in this process and into the run's DBOS stream for any other
(``steps._stream``). Other runs drive ``Runner.run``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

from agents import Agent, RunConfig, Runner, RunState
from agents.models.multi_provider import MultiProvider
from agents.result import RunResult, RunResultStreaming
from agents.run import DEFAULT_MAX_TURNS
from agents.usage import serialize_usage
from dbos import DBOS

from timestep._core.live import LiveRun, RunObjects
from timestep._core.portable import storable
from timestep._core.process import process_state
from timestep._core.protocol import AGENT_RUN_WORKFLOW, RunRequest, RunSummary
from timestep._core.sdk_forms import encode_items, encode_responses
from timestep._core.secrets import scrub
from timestep._core.tracing import RunTrace, tracing_enabled
from timestep.steps import (
    CurrentRun,
    DurableModelProvider,
    StreamPublisher,
    get_model_provider,
    make_agent_durable,
    make_guardrails_durable,
    make_session_durable,
    reset_current_run,
    set_current_run,
)

from ._approval_wait import wait_for_decisions
from ._provider_permit import run_with_permit
from ._run_objects import forked_at_ns, rebuild_forkable_run_objects
from ._run_records import record_run

__all__ = ["agent_run_workflow"]

AnyResult = RunResult | RunResultStreaming


@DBOS.workflow(name=AGENT_RUN_WORKFLOW)
async def agent_run_workflow(request: RunRequest) -> RunSummary:
    workflow_id = DBOS.workflow_id
    assert workflow_id is not None
    process = process_state()
    live = process.live_runs.get(workflow_id)
    objects = (
        live.objects
        if live is not None
        else await rebuild_forkable_run_objects(request, workflow_id)
    )
    agent = make_agent_durable(objects.agent)
    run = CurrentRun(
        workflow_id=workflow_id,
        agent_name=agent.name,
        session_id=request.get("session_id"),
        stream=bool(request.get("stream")),
        tags=tuple(request.get("tags") or ()),
        permits=run_with_permit,
        check_budgets=request.get("check_budgets", process.budgets_enforced),
    )
    if tracing_enabled():
        # A read, not a step: the status row never changes, so every execution reads the same.
        started_ns = await forked_at_ns(workflow_id) or request.get("started_ns")
        run.trace = RunTrace.of_run(workflow_id, agent.name, request.get("traceparent"), started_ns)
    token = set_current_run(run)
    try:
        run_input: Any = request.get("input") or []
        state_json = request.get("state")
        if state_json:
            run_input = await RunState.from_json(agent, json.loads(state_json))
        result = await _run(agent, run_input, request, objects, run, live)
        policy = request.get("approvals") or {}
        round_index = 0
        while result.interruptions and policy.get("wait"):
            if run.publisher is not None:  # readers elsewhere see the interruption first
                await run.publisher.write_tail(close=False)
            state = result.to_state()
            await wait_for_decisions(
                run,
                state,
                result.interruptions,
                policy,
                round_index,
                clear_published=request.get("clears_approvals", True),
            )
            result = await _run(agent, state, request, objects, run, live)
            round_index += 1
        if run.publisher is not None:
            await run.publisher.write_tail(close=True)
        await _finish_writes(run)
    except BaseException as exc:
        if run.trace is not None and isinstance(exc, Exception):
            run.trace.emit_root(_run_attributes(run, None), exc)
        await _finish_writes(run, quiet=True)
        if run.publisher is not None:
            if isinstance(exc, Exception):  # readers elsewhere see the end, and why
                await run.publisher.write_tail(
                    close=True, error={"class": type(exc).__name__, "message": scrub(str(exc))}
                )
            run.publisher.close_subscribers()
        if live is not None and not live.awaited:
            process.live_runs.pop(workflow_id, None)
        raise
    finally:
        reset_current_run(token)
    if run.publisher is not None:
        run.publisher.close_subscribers()
    records = record_run(run, result)
    interrupted = bool(result.interruptions)
    summary: RunSummary = {
        "final_output": storable(result.final_output),
        "last_agent": result.last_agent.name,
        "interrupted": interrupted,
        "state": result.to_state().to_string() if interrupted else None,
        "items": None if interrupted else encode_items(result.new_items, agent),
        "usage": serialize_usage(result.context_wrapper.usage),
        "records": records,
        "responses": [] if interrupted else encode_responses(result.raw_responses),
    }
    if run.trace is not None:
        run.trace.emit_root(_run_attributes(run, summary), None)
    if live is not None:
        if live.awaited:
            live.result = result
        else:
            process.live_runs.pop(workflow_id, None)
    return summary


async def _run(
    agent: Agent[Any],
    run_input: Any,
    request: RunRequest,
    objects: RunObjects,
    run: CurrentRun,
    live: LiveRun | None,
) -> AnyResult:
    session = make_session_durable(objects.session) if objects.session is not None else None
    options: dict[str, Any] = {
        "context": objects.context,
        "max_turns": _max_turns(request),
        "hooks": objects.hooks,
        "run_config": _durable_run_config(objects.run_config),
        "error_handlers": objects.error_handlers,
        "previous_response_id": request.get("previous_response_id"),
        "auto_previous_response_id": bool(request.get("auto_previous_response_id")),
        "conversation_id": request.get("conversation_id"),
        "session": session,
    }
    # An SDK exception reaches the caller here as raised (run_data and all); DBOS records it
    # as a secret-free record (timestep/_core/serializer.py), never a pickle of live objects.
    if not run.stream:
        return await Runner.run(agent, run_input, **options)
    streamed = Runner.run_streamed(agent, run_input, **options)
    if live is not None:
        live.streaming = streamed
    if run.publisher is None:
        run.publisher = StreamPublisher(
            starting_agent=agent,
            subscribers=live.subscribers if live is not None else [],
            tail_in_workflow=bool(request.get("tail_in_workflow")),
        )
    await run.publisher.consume(streamed)
    if not run.publisher.tail_in_workflow:  # earlier runs' layout: a tail step per round
        await run.publisher.write_tail(close=False)
    return streamed


def _run_attributes(run: CurrentRun, summary: RunSummary | None) -> dict[str, Any]:
    """The root span's attributes (GenAI conventions): the conversation, the outcome and the
    run's whole usage."""
    attributes: dict[str, Any] = {"gen_ai.conversation.id": run.session_id}
    if summary is None:
        return attributes | {"timestep.run.outcome": "error"}
    usage = summary["usage"] or {}
    return attributes | {
        "timestep.run.outcome": "interrupted" if summary["interrupted"] else "success",
        "timestep.run.last_agent": summary["last_agent"],
        "gen_ai.usage.input_tokens": usage.get("input_tokens"),
        "gen_ai.usage.output_tokens": usage.get("output_tokens"),
    }


async def _finish_writes(run: CurrentRun, *, quiet: bool = False) -> None:
    """Await the run's own row writes still in flight (``quiet``: on the way out of a failed
    run, whose own error is the one to raise)."""
    writes, run.writes = run.writes, []
    if writes:
        await asyncio.gather(*writes, return_exceptions=quiet)


def _durable_run_config(given: RunConfig | None) -> RunConfig:
    """The run's RunConfig with its model provider and guardrails made durable (the caller's
    RunConfig object is left as it was; its guardrails are made durable in place, transparent
    outside durable runs). A provider left at the SDK's default becomes the process's
    provider (``set_model_provider``), as a recovered run's would."""
    provider = get_model_provider()
    if given is not None and not _is_default_provider(given.model_provider):
        provider = given.model_provider
    durable = DurableModelProvider(provider, permits=run_with_permit)
    if given is not None:
        make_guardrails_durable([*(given.input_guardrails or ()), *(given.output_guardrails or ())])
    if given is None:
        return RunConfig(model_provider=durable)
    return dataclasses.replace(given, model_provider=durable)


def _is_default_provider(provider: Any) -> bool:
    return type(provider) is MultiProvider


def _max_turns(request: RunRequest) -> int | None:
    """``Runner.run``'s meaning: None is no limit. Runs recorded before every argument was
    recorded (no fingerprint) stored None for the default."""
    if "agent_fingerprint" not in request:
        return request.get("max_turns") or DEFAULT_MAX_TURNS
    return request.get("max_turns", DEFAULT_MAX_TURNS)
