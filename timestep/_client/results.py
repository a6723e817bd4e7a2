"""SDK-shaped results of durable runs, in the process that ran them or in any other.

``AgentRunResult`` is the SDK's ``RunResult`` with the run's ``workflow_id``: every attribute
and method of the SDK result is there, delegated to an SDK result object. In the process that
ran the workflow that object is the live ``RunResult`` itself; elsewhere (another process, or
a finished run fetched again by its workflow id) it is a ``RunResult`` rebuilt from the
workflow's recorded output, with the run's items in the SDK's own form (kinds, agents and
outputs as they were), or, for a run that ended waiting for approvals, from its RunState.

``StreamingAgentRun`` is what ``run_agent(..., stream=True)`` returns: ``stream_events()``
yields the SDK's own stream events live, and the ``RunResultStreaming`` API (current agent,
current turn, ``cancel``) reads the live run while it lasts, then the finished result.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Literal, TypeVar

from agents import Agent, RunContextWrapper, RunState
from agents.items import ModelResponse, RunItem, ToolApprovalItem, TResponseInputItem
from agents.result import RunResult, RunResultStreaming
from agents.stream_events import StreamEvent
from agents.usage import Usage
from dbos import WorkflowHandleAsync

from timestep._core.live import LiveRun
from timestep._core.protocol import RunSummary

from .streams import stream_run_events

__all__ = ["AgentRunResult", "Finish", "StreamingAgentRun"]

T = TypeVar("T")


class AgentRunResult:
    """What ``run_agent`` returns: the SDK's ``RunResult`` surface plus the run's workflow id.

    Any attribute the SDK's result has is read from it (``sdk_result``); ``usage`` is
    ``context_wrapper.usage``. Timestep builds it; it is not meant to be constructed.

    Args:
        workflow_id: The run's workflow id.
        result: The SDK result it delegates to.
        state: The run's ``RunState`` when it ended waiting for approvals (a rebuilt result
            has none of its own).

    Attributes:
        workflow_id: The run's DBOS workflow id.
    """

    def __init__(
        self,
        workflow_id: str,
        result: RunResult | RunResultStreaming,
        *,
        state: RunState[Any] | None = None,
    ) -> None:
        self.workflow_id = workflow_id
        self._result = result
        self._state = state

    @property
    def sdk_result(self) -> RunResult | RunResultStreaming:
        """The SDK's own result object (live in the running process, rebuilt elsewhere)."""
        return self._result

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_result", "_state"):
            raise AttributeError(name)
        return getattr(self._result, name)

    def __repr__(self) -> str:
        return (
            f"AgentRunResult(workflow_id={self.workflow_id!r}, final_output={self.final_output!r}, "
            f"interruptions={len(self.interruptions)})"
        )

    def __str__(self) -> str:
        return str(self._result)

    @property
    def input(self) -> str | list[TResponseInputItem]:
        """The input the run started with."""
        return self._result.input

    @property
    def final_output(self) -> Any:
        """The last agent's final output (None while interrupted)."""
        return self._result.final_output

    @property
    def new_items(self) -> list[RunItem]:
        """The items the run produced (messages, tool calls and outputs...)."""
        return self._result.new_items

    @property
    def raw_responses(self) -> list[ModelResponse]:
        """The model responses, one per model call."""
        return self._result.raw_responses

    @property
    def interruptions(self) -> list[ToolApprovalItem]:
        """The tool calls waiting for approval (empty unless the run was interrupted)."""
        return self._result.interruptions

    @property
    def context_wrapper(self) -> RunContextWrapper[Any]:
        """The run's context wrapper (its context, usage and approvals)."""
        return self._result.context_wrapper

    @property
    def usage(self) -> Usage:
        """The run's token usage, summed over its model calls."""
        return self._result.context_wrapper.usage

    @property
    def last_agent(self) -> Agent[Any]:
        """The agent that ran last (after any handoffs)."""
        return self._result.last_agent

    @property
    def last_response_id(self) -> str | None:
        """The id of the last model response, if the provider gives ids."""
        return self._result.last_response_id

    @property
    def max_turns(self) -> int | None:
        """The run's turn limit."""
        return self._result.max_turns

    def final_output_as(self, cls: type[T], raise_if_incorrect_type: bool = False) -> T:
        """The final output, typed as ``cls``, as ``RunResult.final_output_as``.

        Args:
            cls: The type the final output is expected to have.
            raise_if_incorrect_type: Raise ``TypeError`` if it does not have it.

        Returns:
            The final output.
        """
        return self._result.final_output_as(cls, raise_if_incorrect_type)

    def to_input_list(self, *args: Any, **kwargs: Any) -> list[TResponseInputItem]:
        """The input and the new items as one input list, for the next turn.

        Args:
            *args: Passed to the SDK's ``RunResult.to_input_list``.
            **kwargs: Passed to the SDK's ``RunResult.to_input_list``.

        Returns:
            The input items.
        """
        return self._result.to_input_list(*args, **kwargs)

    def to_state(self) -> RunState[Any]:
        """The run as a ``RunState``: approve or reject its interruptions and pass it back to
        ``run_agent``, or save it with ``RunStateStore``.

        Returns:
            The run's state.
        """
        return self._state if self._state is not None else self._result.to_state()

    def release_agents(self, *, release_new_items: bool = True) -> None:
        """Drop the SDK result's references to agents, as ``RunResult.release_agents``.

        Args:
            release_new_items: Release the new items' agents too.
        """
        self._result.release_agents(release_new_items=release_new_items)


Finish = Callable[[WorkflowHandleAsync[RunSummary]], Awaitable[AgentRunResult]]
"""Waits for a run's workflow to end and returns its result."""


class StreamingAgentRun:
    """What ``run_agent(..., stream=True)`` returns: the run's events live, then its result.

    The ``RunResultStreaming`` surface reads the live run while it lasts, then the result;
    other attributes come from the result once the run ended. Timestep builds it; it is not
    meant to be constructed.

    Args:
        workflow_id: The run's workflow id.
        agent: The run's agent, to rebuild events read from the durable stream.
        handle: The run's DBOS workflow handle.
        finish: Waits for the workflow and returns its result.
        live: The run's live entry when it runs in this process.
        cancel: Cancels the durable run, for ``cancel()`` when it runs elsewhere.

    Attributes:
        workflow_id: The run's DBOS workflow id.
    """

    def __init__(
        self,
        workflow_id: str,
        agent: Agent[Any],
        handle: WorkflowHandleAsync[RunSummary],
        finish: Finish,
        live: LiveRun | None = None,
        cancel: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.workflow_id = workflow_id
        self._agent = agent
        self._handle = handle
        self._finish = finish
        self._live = live
        self._queue = live.subscribers[0] if live is not None and live.subscribers else None
        self._cancel_run = cancel
        self._result: AgentRunResult | None = None

    async def stream_events(self) -> AsyncIterator[StreamEvent]:
        """The run's events as the SDK streams them, then the result is ready.

        In the process running the run they come straight from the SDK's streaming loop;
        elsewhere (the run already finished, or runs in another worker) from the run's
        durable stream.

        Yields:
            The SDK's stream events, in order.

        Raises:
            Exception: The run's error, once its events are read.
        """
        if self._queue is not None:
            finished = asyncio.ensure_future(self._wait_quietly())
            got_any = False
            try:
                while True:
                    getter = asyncio.ensure_future(self._queue.get())
                    await asyncio.wait({getter, finished}, return_when=asyncio.FIRST_COMPLETED)
                    if getter.done():
                        event = getter.result()
                        if event is None:
                            break
                        got_any = True
                        yield event
                        continue
                    getter.cancel()
                    if self._queue.empty():  # the run did not execute here
                        break
            finally:
                if not finished.done():
                    await asyncio.shield(finished)
            if got_any:
                await self.wait()
                return
        async for event in stream_run_events(self.workflow_id, self._agent):
            yield event
        await self.wait()

    async def _wait_quietly(self) -> None:
        try:
            await self.wait()
        except BaseException:  # the caller's wait() raises it again
            return

    async def wait(self) -> AgentRunResult:
        """Wait for the run to end (without reading its events) and return its result.

        Returns:
            The run's result.
        """
        if self._result is None:
            self._result = await self._finish(self._handle)
        return self._result

    @property
    def is_complete(self) -> bool:
        """Whether the result is here (``stream_events()`` or ``wait()`` finished)."""
        return self._result is not None

    def _streaming(self) -> RunResultStreaming | None:
        return self._live.streaming if self._live is not None else None

    def _require(self) -> AgentRunResult:
        if self._result is None:
            raise RuntimeError(
                "the run is still streaming: consume stream_events() or await wait()"
            )
        return self._result

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if self._result is not None:
            return getattr(self._result, name)
        streaming = self._streaming()
        if streaming is not None:
            return getattr(streaming, name)
        return getattr(self._require(), name)

    @property
    def current_agent(self) -> Agent[Any]:
        """The agent running now; after the run, the last agent."""
        streaming = self._streaming()
        if streaming is not None:
            return streaming.current_agent
        return self._require().last_agent

    @property
    def current_turn(self) -> int:
        """The turn running now; after the run, the number of model calls."""
        streaming = self._streaming()
        if streaming is not None:
            return streaming.current_turn
        return self._require().usage.requests

    @property
    def final_output(self) -> Any:
        """The final output; ``RuntimeError`` while the run still streams."""
        return self._require().final_output

    @property
    def interruptions(self) -> list[ToolApprovalItem]:
        """The tool calls waiting for approval; ``RuntimeError`` while the run still streams."""
        return self._require().interruptions

    @property
    def new_items(self) -> list[RunItem]:
        """The items the run produced; ``RuntimeError`` while the run still streams."""
        return self._require().new_items

    @property
    def usage(self) -> Usage:
        """The run's token usage; ``RuntimeError`` while the run still streams."""
        return self._require().usage

    @property
    def last_agent(self) -> Agent[Any]:
        """The agent that ran last; ``RuntimeError`` while the run still streams."""
        return self._require().last_agent

    def to_state(self) -> RunState[Any]:
        """The run as a ``RunState``, as ``AgentRunResult.to_state``.

        Returns:
            The run's state.

        Raises:
            RuntimeError: The run is still streaming.
        """
        return self._require().to_state()

    def to_input_list(self, *args: Any, **kwargs: Any) -> list[TResponseInputItem]:
        """The input and the new items as one input list, for the next turn.

        Args:
            *args: Passed to the SDK's ``RunResult.to_input_list``.
            **kwargs: Passed to the SDK's ``RunResult.to_input_list``.

        Returns:
            The input items.

        Raises:
            RuntimeError: The run is still streaming.
        """
        return self._require().to_input_list(*args, **kwargs)

    def cancel(self, mode: Literal["immediate", "after_turn"] = "immediate") -> None:
        """Stop the run, as ``RunResultStreaming.cancel`` does: the SDK's loop here, or the
        durable run wherever it executes.

        Args:
            mode: ``"immediate"``, or ``"after_turn"`` to let the current turn finish (the
                SDK's loop only: a run in another process is cancelled at once).
        """
        streaming = self._streaming()
        if streaming is not None:
            streaming.cancel(mode)
        elif self._cancel_run is not None:
            asyncio.ensure_future(self._cancel_run())
