"""Model calls as DBOS steps.

``DurableModel`` wraps whatever ``Model`` the run's provider returns. Inside a workflow each
``get_response`` / ``stream_response`` is one checkpointed step: a replay returns the recorded
response and the provider is not asked again. Outside a workflow the wrapper is transparent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

from agents.exceptions import ModelBehaviorError
from agents.items import ModelResponse, TResponseStreamEvent
from agents.models.interface import Model, ModelProvider

# The SDK's own conversion, so streamed and unstreamed runs count usage identically.
from agents.models.openai_responses import _usage_from_response
from dbos import DBOS, StepOptions
from openai.types.responses import (
    ResponseCompletedEvent,
    ResponseFunctionToolCall,
    ResponseOutputItemDoneEvent,
)

from timestep._core.limits import ProviderLimit, provider_prefix
from timestep._core.process import process_state
from timestep._core.protocol import STREAM_KEY
from timestep.providers import MultiModelProvider

from ._current_run import current_run

__all__ = [
    "DurableModel",
    "DurableModelProvider",
    "MODEL_STEP_PREFIX",
    "PermitGate",
    "get_model_provider",
    "set_model_provider",
]

MODEL_STEP_PREFIX = "model:"


class PermitGate(Protocol):
    """Runs a model call as its step behind a limited provider's permits
    (``workflows._provider_permit.run_with_permit``: permits are workflows of their own)."""

    def __call__(
        self,
        limit: ProviderLimit,
        options: StepOptions,
        call: Callable[..., Awaitable[Any]],
        *args: Any,
        **kwargs: Any,
    ) -> Awaitable[Any]: ...


def set_model_provider(provider: ModelProvider | None) -> None:
    """The provider durable runs get their models from (default: ``MultiModelProvider()``).
    Set it at import time, like agents: a recovered run uses the process's provider."""
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

    async def _step(self, call: Any, *args: Any, **kwargs: Any) -> Any:
        """Run ``call`` as this model's step, behind its provider's queue if it has a limit."""
        limit = (
            process_state().limits.provider_limit(self.provider_prefix)
            if self.provider_prefix
            else None
        )
        if limit is None or self.permits is None:
            return await DBOS.run_step_async(self._step_options, call, *args, **kwargs)
        return await self.permits(limit, self._step_options, call, *args, **kwargs)

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        if DBOS.workflow_id is None:
            return await self.inner.get_response(*args, **kwargs)
        run = current_run()
        call = self._get_response_streaming_live if run and run.stream else self.inner.get_response
        response: ModelResponse = await self._step(call, *args, **kwargs)
        if run is not None:
            run.model_names.append(self.model_name)
            _reserve_tool_steps(run, response)
        return response

    async def stream_response(
        self, *args: Any, **kwargs: Any
    ) -> AsyncIterator[TResponseStreamEvent]:
        """Streaming through the SDK's own ``Runner.run_streamed`` inside a user's workflow:
        the whole event sequence is the step's checkpoint, replayed as recorded."""
        if DBOS.workflow_id is None:
            async for event in self.inner.stream_response(*args, **kwargs):
                yield event
            return
        events: list[TResponseStreamEvent] = await self._step(self._collect_stream, *args, **kwargs)
        run = current_run()
        if run is not None:
            run.model_names.append(self.model_name)
        for event in events:
            yield event

    async def _collect_stream(self, *args: Any, **kwargs: Any) -> list[TResponseStreamEvent]:
        return [event async for event in self.inner.stream_response(*args, **kwargs)]

    async def _get_response_streaming_live(self, *args: Any, **kwargs: Any) -> ModelResponse:
        """Stream from the provider, forwarding each event to the run's DBOS stream as it
        arrives, and return the assembled response as the step's checkpoint."""
        final: ModelResponse | None = None
        done_items: list[Any] = []
        async for event in self.inner.stream_response(*args, **kwargs):
            await DBOS.write_stream_async(STREAM_KEY, ("raw", event))
            if isinstance(event, ResponseOutputItemDoneEvent):
                done_items.append(event.item)
            elif isinstance(event, ResponseCompletedEvent):
                response = event.response
                output = list(response.output) or done_items
                final = ModelResponse(
                    output=output,
                    usage=_usage_from_response(response),
                    response_id=response.id,
                    request_id=getattr(response, "_request_id", None),
                )
        if final is None:
            raise ModelBehaviorError("Model did not produce a final response!")
        return final

    async def close(self) -> None:
        await self.inner.close()

    async def _cleanup_on_run_end(self, owner: object) -> None:
        await self.inner._cleanup_on_run_end(owner)

    def get_retry_advice(self, request: Any) -> Any:
        return self.inner.get_retry_advice(request)


def _reserve_tool_steps(run: Any, response: ModelResponse) -> None:
    call_ids = [
        item.call_id for item in response.output if isinstance(item, ResponseFunctionToolCall)
    ]
    if len(call_ids) < 2:
        return  # a single call needs no ordering; it simply takes the next step id
    run.reservations = {call_id: DBOS.reserve_step() for call_id in call_ids}


class DurableModelProvider(ModelProvider):
    """Wraps another provider so every model it returns is a ``DurableModel``; ``permits``
    enforces the limits of the providers that have one."""

    def __init__(self, inner: ModelProvider, *, permits: PermitGate | None = None) -> None:
        self.inner = inner
        self.permits = permits

    def get_model(self, model_name: str | None) -> Model:
        model = self.inner.get_model(model_name)
        if isinstance(model, DurableModel):
            return model
        return DurableModel(model, model_name, permits=self.permits)

    async def aclose(self) -> None:
        closer = getattr(self.inner, "aclose", None)
        if closer is not None:
            await closer()
