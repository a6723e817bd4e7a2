"""SDK-shaped results of durable runs, in the process that ran them or in any other."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from agents import Agent, RunContextWrapper, RunState
from agents.items import (
    ItemHelpers,
    MessageOutputItem,
    ReasoningItem,
    RunItem,
    ToolApprovalItem,
    ToolCallItem,
    ToolCallOutputItem,
    TResponseInputItem,
)
from agents.result import RunResult
from agents.stream_events import StreamEvent
from agents.usage import Usage, deserialize_usage
from dbos import WorkflowHandleAsync
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseReasoningItem,
)

from timestep._core.protocol import RunSummary
from timestep._core.registry import agent_graph

from .streams import stream_run_events

__all__ = ["AgentRunResult", "Finish", "StreamingAgentRun"]


class AgentRunResult:
    """What ``run_agent`` returns: the SDK's ``RunResult`` surface plus the run's workflow id.

    In the process that ran the workflow it wraps the live ``RunResult``. Elsewhere (another
    process, or a finished run fetched again by workflow id) it is rebuilt from the workflow's
    output: an interrupted run from its RunState, a finished one from its new items and usage.
    """

    def __init__(
        self,
        workflow_id: str,
        *,
        live: RunResult | None = None,
        state: RunState[Any] | None = None,
        final_output: Any = None,
    ) -> None:
        self.workflow_id = workflow_id
        self._live = live
        self._state = state
        self._final_output = live.final_output if live is not None else final_output
        self._items: list[RunItem] = []
        self._usage = Usage()
        self._last_agent: Agent[Any] | None = None
        self._starting_agent: Agent[Any] | None = None
        self._original_input: str | list[Any] = []

    @classmethod
    def from_summary(
        cls,
        workflow_id: str,
        summary: RunSummary,
        agent: Agent[Any],
        original_input: str | list[Any] | None = None,
    ) -> AgentRunResult:
        """A finished run, from its workflow output (``RunSummary``) and, for ``to_state``,
        the input it started from."""
        result = cls(workflow_id, final_output=summary["final_output"])
        result._starting_agent = agent
        result._original_input = original_input or []
        agents = agent_graph(agent)
        result._last_agent = agents.get(summary["last_agent"], agent)
        result._items = [_run_item(raw, result._last_agent) for raw in summary["items"] or []]
        result._usage = deserialize_usage(summary["usage"])
        return result

    def __repr__(self) -> str:
        return (
            f"AgentRunResult(workflow_id={self.workflow_id!r}, final_output={self.final_output!r}, "
            f"interruptions={len(self.interruptions)})"
        )

    @property
    def final_output(self) -> Any:
        return self._final_output

    @property
    def interruptions(self) -> list[ToolApprovalItem]:
        if self._live is not None:
            return list(self._live.interruptions)
        if self._state is not None:
            return self._state.get_interruptions()
        return []

    @property
    def new_items(self) -> list[RunItem]:
        if self._live is not None:
            return list(self._live.new_items)
        if self._state is not None:
            return list(self._state._generated_items)
        return list(self._items)

    @property
    def usage(self) -> Usage:
        if self._live is not None:
            return self._live.context_wrapper.usage
        if self._state is not None and self._state._context is not None:
            return self._state._context.usage
        return self._usage

    @property
    def last_agent(self) -> Agent[Any]:
        if self._live is not None:
            return self._live.last_agent
        if self._state is not None and self._state._current_agent is not None:
            return self._state._current_agent
        assert self._last_agent is not None
        return self._last_agent

    def to_state(self) -> RunState[Any]:
        """The run as a ``RunState``: approve or reject its interruptions and pass it back to
        ``run_agent``, or save it with ``RunStateStore``."""
        if self._live is not None:
            return self._live.to_state()
        if self._state is not None:
            return self._state
        # A finished run keeps its items, output and usage, not its RunState (that would cost
        # every run a serialization): rebuild the state of a completed run from them.
        assert self._starting_agent is not None
        state: RunState[Any] = RunState(
            context=RunContextWrapper(context=None, usage=self._usage),
            original_input=self._original_input,
            starting_agent=self._starting_agent,
            max_turns=max(self._usage.requests, 1),
        )
        state._generated_items = list(self._items)
        state._current_agent = self.last_agent
        state._current_turn = self._usage.requests
        return state

    def to_input_list(self) -> list[TResponseInputItem]:
        if self._live is not None:
            return self._live.to_input_list()
        if self._state is not None:
            original = ItemHelpers.input_to_new_input_list(self._state._original_input)
            return original + [item.to_input_item() for item in self.new_items]
        original = ItemHelpers.input_to_new_input_list(self._original_input)
        return original + [item.to_input_item() for item in self._items]


def _run_item(raw: dict[str, Any], agent: Agent[Any]) -> RunItem:
    """The SDK run item an input item came from (as ``RunItem.to_input_item`` made it)."""
    kind = raw.get("type")
    if kind == "message" or (kind is None and raw.get("role") == "assistant"):
        return MessageOutputItem(
            agent=agent, raw_item=ResponseOutputMessage.model_validate({**raw, "type": "message"})
        )
    if kind == "function_call":
        return ToolCallItem(agent=agent, raw_item=ResponseFunctionToolCall.model_validate(raw))
    if kind == "function_call_output":
        return ToolCallOutputItem(agent=agent, raw_item=raw, output=raw.get("output"))
    if kind == "reasoning":
        return ReasoningItem(agent=agent, raw_item=ResponseReasoningItem.model_validate(raw))
    return ToolCallItem(agent=agent, raw_item=raw)


Finish = Callable[[WorkflowHandleAsync[RunSummary]], Awaitable["AgentRunResult"]]
"""Waits for a run's workflow to end and returns its result."""


class StreamingAgentRun:
    """What ``run_agent(..., stream=True)`` returns. ``stream_events()`` yields events live
    from the run's DBOS stream; the run itself stays durable and the result fields fill in
    once the stream ends."""

    def __init__(
        self,
        workflow_id: str,
        agent: Agent[Any],
        handle: WorkflowHandleAsync[RunSummary],
        finish: Finish,
    ) -> None:
        self.workflow_id = workflow_id
        self._agent = agent
        self._handle = handle
        self._finish = finish
        self._result: AgentRunResult | None = None
        self.is_complete = False

    async def stream_events(self) -> AsyncIterator[StreamEvent]:
        async for event in stream_run_events(self.workflow_id, self._agent):
            yield event
        await self.wait()

    async def wait(self) -> AgentRunResult:
        """Wait for the run to end (without reading its events) and return its result."""
        if self._result is None:
            self._result = await self._finish(self._handle)
            self.is_complete = True
        return self._result

    def _require(self) -> AgentRunResult:
        if self._result is None:
            raise RuntimeError(
                "the run is still streaming: consume stream_events() or await wait()"
            )
        return self._result

    @property
    def final_output(self) -> Any:
        return self._require().final_output

    @property
    def interruptions(self) -> list[ToolApprovalItem]:
        return self._require().interruptions

    @property
    def new_items(self) -> list[RunItem]:
        return self._require().new_items

    @property
    def usage(self) -> Usage:
        return self._require().usage

    def to_state(self) -> RunState[Any]:
        return self._require().to_state()
