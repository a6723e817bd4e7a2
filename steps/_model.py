"""Model calls as DBOS steps.

Inside a durable run each ``get_response`` / ``stream_response`` of a model is one
checkpointed step named ``model:<model name>``: a replay returns the recorded response and
the provider is not asked again. Two ways in, so the SDK always calls the user's own objects:

- models the run's provider routes by name come wrapped in a ``DurableModel``
  (``DurableModelProvider`` in the run's RunConfig);
- a ``Model`` instance set on an agent is made durable where it is
  (``make_model_durable``: its two methods, on the instance).

Outside a durable run, and inside another step (an agent used as a tool runs its sub-run in
its tool's step), both call straight through.

Streamed, a live step writes the call's raw events to the run's DBOS stream as they arrive
and hands them to the SDK at once (``_stream``); its checkpoint is the ``response.completed``
event, which is all the SDK needs to assemble the response when the call is replayed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Protocol

import openai
from agents.exceptions import ModelBehaviorError
from agents.items import ModelResponse, TResponseStreamEvent
from agents.models.interface import Model, ModelProvider
from dbos import DBOS, StepOptions
from openai.types.responses import (
    ResponseCompletedEvent,
    ResponseFunctionToolCall,
    ResponseOutputItemDoneEvent,
)

from timestep._core.limits import ProviderLimit, provider_prefix
from timestep._core.process import process_state
from timestep._core.sdk_forms import model_call_usage
from timestep.errors import ConfigurationError
from timestep.providers import MultiModelProvider, watch_rate_limits, watch_retries

from ._computer import make_computers_durable
from ._current_run import CurrentRun, durable_run
from ._stream import STREAM_FLUSH_SECONDS, ModelCallHost, StreamPublisher, write_stream_entries
from ._tracing import Traced

__all__ = [
    "DurableModel",
    "DurableModelProvider",
    "MODEL_STEP_PREFIX",
    "PermitGate",
    "get_model_provider",
    "make_model_durable",
    "reserve_local_calls",
    "set_model_provider",
]

MODEL_STEP_PREFIX = "model:"
# Local calls (beside function calls) whose single step can take a reserved id: the SDK runs
# each category of tool calls concurrently with the others.
_RESERVED_CALL_TYPES = frozenset({"local_shell_call", "shell_call", "apply_patch_call"})
_DURABLE_MARK = "__timestep_durable_model__"
# The OpenAI client's retry back-off (its INITIAL_RETRY_DELAY and MAX_RETRY_DELAY), for a
# stream cut short.
_CUT_RETRY_DELAY = 0.5
_CUT_RETRY_MAX_DELAY = 8.0
_DONE = object()


class PermitGate(Protocol):
    """Runs a model call as its step behind a limited provider's permits
    (``workflows._provider_permit.run_with_permit``: permits are workflows of their own)."""

    def __call__(
        self,
        limit: ProviderLimit | None,
        options: StepOptions,
        call: Callable[..., Awaitable[Any]],
        *args: Any,
        **kwargs: Any,
    ) -> Awaitable[Any]: ...


def set_model_provider(provider: ModelProvider | None) -> None:
    """The provider durable runs get their models from (default: ``MultiModelProvider()``).
    Set it at import time, like agents: a recovered run uses the process's provider.

    Args:
        provider: The provider, or None for the default.
    """
    process_state().model_provider = provider


def get_model_provider() -> ModelProvider:
    """The process's model provider (a ``MultiModelProvider`` unless one was set)."""
    process = process_state()
    with process.lock:
        if process.model_provider is None:
            process.model_provider = MultiModelProvider()
        return process.model_provider


class DurableModel(Model):
    """A ``Model`` whose calls are DBOS steps named ``model:<model name>``."""

    def __init__(
        self, inner: Model, model_name: str | None = None, *, permits: PermitGate | None = None
    ) -> None:
        self.inner = inner
        self.permits = permits
        self.model_name = model_name or getattr(inner, "model", None) or type(inner).__name__
        self._step_options: StepOptions = {"name": f"{MODEL_STEP_PREFIX}{self.model_name}"}
        # Only a model the provider routed by name has a provider prefix to rate-limit.
        self.provider_prefix = provider_prefix(model_name) if model_name is not None else None
        watch_retries(inner)  # the client's own retries show in the run's timeline

    def _gate(self) -> tuple[PermitGate | None, ProviderLimit | None]:
        """The permits the call goes through (``None``: a plain step) and its provider's limit:
        a provider with a limit, or any call while budgets are enforced."""
        process = process_state()
        limit = None
        if self.permits is not None and self.provider_prefix is not None:
            limit = process.limits.provider_limit(self.provider_prefix)
        if limit is not None:
            watch_rate_limits(self.inner)  # the limiter follows the provider's headers
            return self.permits, limit
        run = durable_run()
        if run is not None and run.check_budgets:
            return self.permits or run.permits, None
        return None, None

    async def _step(
        self, run: CurrentRun, call: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any
    ) -> Any:
        """Run ``call`` as this model's step, behind its provider's permits if it has a limit."""
        step = self._traced(run, call)
        gate, limit = self._gate()
        try:
            if gate is None:
                return await DBOS.run_step_async(self._step_options, step.body, *args, **kwargs)
            return await gate(limit, self._step_options, step.body, *args, **kwargs)
        finally:
            step.finish()

    def _traced(self, run: CurrentRun, call: Callable[..., Awaitable[Any]]) -> Traced[Any]:
        """``call`` in a ``chat <model>`` span (GenAI conventions) when the run is traced."""
        model = self.model_name
        provider = self.provider_prefix or "openai"
        request_model = model.split("/", 1)[1] if "/" in model else model

        def describe(result: Any) -> dict[str, Any]:
            usage = model_call_usage(result)
            if usage is None:
                return {}
            input_tokens, output_tokens, cached = usage
            cost = process_state().prices.cost_of(model, input_tokens, output_tokens, cached)
            return {
                "gen_ai.usage.input_tokens": input_tokens,
                "gen_ai.usage.output_tokens": output_tokens,
                "timestep.cost_usd": cost,
            }

        attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": request_model,
            "timestep.step.name": self._step_options["name"],
            "timestep.workflow_id": run.workflow_id,
        }
        return Traced(run, f"chat {request_model}", attributes, call, describe)

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        run = durable_run()
        if run is None:
            return await self.inner.get_response(*args, **kwargs)
        make_computers_durable(_tools_of(args, kwargs))
        response: ModelResponse = await self._step(run, self.inner.get_response, *args, **kwargs)
        run.model_names.append(self.model_name)
        reserve_local_calls(run, response.output)
        return response

    async def stream_response(
        self, *args: Any, **kwargs: Any
    ) -> AsyncIterator[TResponseStreamEvent]:
        run = durable_run()
        if run is None:
            async for event in self.inner.stream_response(*args, **kwargs):
                yield event
            return
        run.model_names.append(self.model_name)
        make_computers_durable(_tools_of(args, kwargs))
        if run.publisher is None:
            # A streamed SDK run inside a workflow that publishes nothing (a user's own
            # workflow): the whole event sequence is the step's checkpoint.
            events: list[TResponseStreamEvent] = await self._step(
                run, self._collect_stream, *args, **kwargs
            )
            for event in events:
                yield event
            return
        async for event in self._stream_published(run, run.publisher, args, kwargs):
            yield event

    async def _collect_stream(self, *args: Any, **kwargs: Any) -> list[TResponseStreamEvent]:
        events: list[TResponseStreamEvent] = []
        async for restarted, event in self._stream_retrying_cuts(args, kwargs):
            if restarted:
                events.clear()
            events.append(event)
        return events

    async def _stream_retrying_cuts(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> AsyncIterator[tuple[bool, TResponseStreamEvent]]:
        """The inner model's stream. A stream cut short after its first event (the connection
        dropped, a read timed out: ``APIConnectionError``) is asked for again, as the OpenAI
        client retries a failed unstreamed call: as often as its ``max_retries`` and after its
        back-off (it cannot retry a response already under way itself). ``True`` marks the
        first event of a new attempt: the events before it were the cut attempt's."""
        client = getattr(getattr(self.inner, "_model", self.inner), "_client", None)
        retries = getattr(client, "max_retries", None)
        retries = retries if isinstance(retries, int) else openai.DEFAULT_MAX_RETRIES
        attempt = 0
        while True:
            received = False
            try:
                async for event in self.inner.stream_response(*args, **kwargs):
                    yield attempt > 0 and not received, event
                    received = True
                return
            except openai.APIConnectionError:
                if not received or attempt >= retries:
                    raise  # failed before streaming: the client has retried it already
            attempt += 1
            await asyncio.sleep(min(_CUT_RETRY_DELAY * 2 ** (attempt - 1), _CUT_RETRY_MAX_DELAY))

    async def _stream_published(
        self,
        run: CurrentRun,
        publisher: StreamPublisher,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> AsyncIterator[TResponseStreamEvent]:
        """The call as a step that streams live (see the module docstring)."""
        loop = asyncio.get_running_loop()
        host = ModelCallHost(pending=loop.create_future())
        live: asyncio.Queue[Any] = asyncio.Queue()
        ran_live = False

        async def body(*call_args: Any, **call_kwargs: Any) -> dict[str, Any]:
            nonlocal ran_live
            ran_live = True
            try:
                return await self._stream_live(publisher, host, live, call_args, call_kwargs)
            finally:
                live.put_nowait(_DONE)

        traced_body = self._traced(run, body)
        gate, limit = self._gate()
        if gate is None:
            # The step id is fixed now, whatever other tasks do while the step runs.
            reservation = DBOS.reserve_step()
            step = asyncio.ensure_future(
                reservation.run_async(self._step_options, traced_body.body, *args, **kwargs)
            )
        else:
            step = asyncio.ensure_future(
                gate(limit, self._step_options, traced_body.body, *args, **kwargs)
            )
        # A step that ends without streaming (replayed, or failed early) ends the events too.
        step.add_done_callback(lambda _: live.put_nowait(_DONE))
        try:
            while (event := await live.get()) is not _DONE:
                yield event
            checkpoint: dict[str, Any] = await step  # raises the step's (recorded) error
            completed = ResponseCompletedEvent.model_validate(checkpoint["completed"])
            # Before the SDK sees the last event: it runs the response's tools right after.
            reserve_local_calls(run, completed.response.output)
            if not ran_live:  # replayed: the checkpoint is all the SDK needs
                completed.response._request_id = checkpoint.get("request_id")
                publisher.first_event_of_call(completed, None)
                yield completed
        finally:
            if not step.done():
                step.cancel()
            traced_body.finish()

    async def _stream_live(
        self,
        publisher: StreamPublisher,
        host: ModelCallHost,
        live: asyncio.Queue[Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> dict[str, Any]:
        writes: asyncio.Queue[Any] = asyncio.Queue()
        done_items: list[Any] = []
        completed: list[ResponseCompletedEvent] = []

        async def pump() -> None:  # provider -> the SDK at once, and -> the writer
            first = True
            try:
                async for restarted, event in self._stream_retrying_cuts(args, kwargs):
                    if restarted:  # the cut attempt's items are not the response's
                        done_items.clear()
                        completed.clear()
                    if first:
                        publisher.first_event_of_call(event, host)
                        first = False
                    live.put_nowait(event)
                    writes.put_nowait(event)
                    if isinstance(event, ResponseOutputItemDoneEvent):
                        done_items.append(event.item)
                    elif isinstance(event, ResponseCompletedEvent):
                        completed.append(event)
            finally:
                writes.put_nowait(_DONE)

        reader = asyncio.ensure_future(pump())  # the request goes out before any write
        loop = asyncio.get_running_loop()
        try:
            # The attempt's ``begin`` goes with its first entries: no write competes with the
            # request on its way out, and an attempt that wrote nothing needs no marker.
            first_batch = True
            ended = False
            next_write = 0.0
            while not ended:
                batch = [await writes.get()]
                # After the first write, events gather for STREAM_FLUSH_SECONDS: each write
                # is a transaction (and a notification) whatever it holds. The last one goes
                # at once: the step, and the SDK's next turn, wait for it.
                remaining = next_write - loop.time()
                if remaining > 0 and batch[-1] is not _DONE:
                    await asyncio.wait((reader,), timeout=remaining)  # or the stream's end
                while not writes.empty():  # a backlog goes out as one entry
                    batch.append(writes.get_nowait())
                next_write = loop.time() + STREAM_FLUSH_SECONDS
                if batch[-1] is _DONE:
                    ended = True
                    batch.pop()
                if not batch:
                    break
                entries: list[dict[str, Any]] = []
                if first_batch:  # what the SDK emitted before this call, in its order
                    entries.append({"t": "begin", "host": DBOS.step_id})
                    entries.extend(await host.pending)
                    first_batch = False
                data = [event.model_dump(mode="json", by_alias=True) for event in batch]
                entries.append(
                    {"t": "raw", "data": data[0]} if len(data) == 1 else {"t": "raws", "data": data}
                )
                await write_stream_entries(entries)
            await reader  # a provider error is the step's error
        finally:
            if not reader.done():
                reader.cancel()
        if not completed:
            raise ModelBehaviorError("Model did not produce a final response!")
        event = completed[-1]
        if not event.response.output and done_items:
            event.response.output = list(done_items)
        # ModelResponse.request_id comes from a private attribute that model_dump leaves out.
        return {
            "completed": event.model_dump(mode="json", by_alias=True),
            "request_id": getattr(event.response, "_request_id", None),
        }

    async def close(self) -> None:
        await self.inner.close()

    async def _cleanup_on_run_end(self, owner: object) -> None:
        await self.inner._cleanup_on_run_end(owner)

    def get_retry_advice(self, request: Any) -> Any:
        return self.inner.get_retry_advice(request)


class _ClassMethods(Model):
    """A model's own class methods, bound to it, for a ``DurableModel`` to call through after
    ``make_model_durable`` put the durable ones on the instance."""

    def __init__(self, model: Model) -> None:
        self._model = model
        self.model = getattr(model, "model", None)

    async def get_response(self, *args: Any, **kwargs: Any) -> Any:
        # A coroutine function: DBOS runs a plain function's step in a thread, and would try
        # to checkpoint the coroutine it returned.
        return await type(self._model).get_response(self._model, *args, **kwargs)

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        return type(self._model).stream_response(self._model, *args, **kwargs)

    async def close(self) -> None:
        await type(self._model).close(self._model)

    async def _cleanup_on_run_end(self, owner: object) -> None:
        await type(self._model)._cleanup_on_run_end(self._model, owner)

    def get_retry_advice(self, request: Any) -> Any:
        return type(self._model).get_retry_advice(self._model, request)


def make_model_durable(model: Model) -> Model:
    """Make ``model``'s calls steps in durable runs, on the instance itself (idempotent), so
    the agent keeps its own model object; everywhere else it behaves as before."""
    if getattr(model, _DURABLE_MARK, False) or isinstance(model, DurableModel):
        return model
    durable = DurableModel(_ClassMethods(model))
    try:
        model.get_response = durable.get_response  # type: ignore[method-assign]
        model.stream_response = durable.stream_response  # type: ignore[method-assign]
        setattr(model, _DURABLE_MARK, True)
    except (AttributeError, TypeError) as exc:
        raise ConfigurationError(
            f"the model {type(model).__name__} cannot be made durable in place ({exc}): give "
            "the agent a model name and route it with a provider (set_model_provider)"
        ) from exc
    return model


def _tools_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Sequence[Any]:
    """The ``tools`` argument of a ``Model.get_response`` / ``stream_response`` call."""
    tools = kwargs.get("tools", args[3] if len(args) > 3 else ())
    return tools or ()


def reserve_local_calls(run: CurrentRun, output: Sequence[Any]) -> None:
    """Reserve, in the model's output order, the step ids of a response's parallel calls."""
    calls = [
        (item.call_id, getattr(item, "type", None))
        for item in output
        if isinstance(item, ResponseFunctionToolCall)
        or getattr(item, "type", None) in _RESERVED_CALL_TYPES
    ]
    # Computer actions run beside the other calls, on fresh step ids after the reserved ones.
    beside = any(getattr(item, "type", None) == "computer_call" for item in output)
    if len(calls) + beside < 2:
        run.patch_calls = []
        return  # a single call needs no ordering; it simply takes the next step id
    run.reservations = {call_id: DBOS.reserve_step() for call_id, _ in calls}
    run.patch_calls = [call_id for call_id, kind in calls if kind == "apply_patch_call"]


class DurableModelProvider(ModelProvider):
    """Wraps another provider so every model it returns is a ``DurableModel``; ``permits``
    enforces the limits of the providers that have one."""

    def __init__(self, inner: ModelProvider, *, permits: PermitGate | None = None) -> None:
        self.inner = inner
        self.permits = permits

    def get_model(self, model_name: str | None) -> Model:
        model = self.inner.get_model(model_name)
        if isinstance(model, DurableModel) or getattr(model, _DURABLE_MARK, False):
            return model
        return DurableModel(model, model_name, permits=self.permits)

    async def aclose(self) -> None:
        closer = getattr(self.inner, "aclose", None)
        if closer is not None:
            await closer()
