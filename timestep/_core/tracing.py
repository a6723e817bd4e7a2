"""OpenTelemetry traces of durable runs: one trace per run, across every process that runs it.

A run outlives processes (a worker is killed, another recovers the run days later), so its
spans cannot hang off one live span object: a span only reaches an exporter when it ends, and
a killed process ends nothing. Instead a run's trace is fixed by its workflow id:

- the root span, ``invoke_agent <agent>``, has a trace id and span id derived from the
  workflow id (or the caller's trace id, when the run was started inside a caller's span,
  whose context the run's request keeps as a W3C ``traceparent``);
- every step that executes (a model call, a tool call, an MCP call, a guardrail) makes a span
  that is a child of that root, in whichever process runs it, and ends it when the step ends;
  a replayed step executes nothing and makes no span, so a recovered run adds only the spans
  of what it really does;
- waits that are not steps (a call queued for its provider's permits, a run waiting for an
  approval) become spans when the step that follows them executes, and are dropped when that
  step replays (the process that ran it first emitted them);
- the process that finishes the run emits the root with the derived ids and the run's start
  time, so the spans every process emitted form one tree.

Attributes follow the OpenTelemetry GenAI semantic conventions (``gen_ai.*``) where one
exists, ``timestep.*`` otherwise. With no tracer provider set (OpenTelemetry's default)
nothing is made at all. The SDK's own tracing (``agents.tracing``) is separate and unchanged.
"""

from __future__ import annotations

import copy
import hashlib
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace as otel
from opentelemetry.trace import (
    NonRecordingSpan,
    Span,
    SpanContext,
    Status,
    StatusCode,
    TraceFlags,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from .secrets import scrub

__all__ = [
    "TRACER_NAME",
    "RunTrace",
    "caller_traceparent",
    "tracing_enabled",
]

TRACER_NAME = "timestep"

AttributeValue = str | bool | int | float
_DISABLED_PROVIDERS = (otel.ProxyTracerProvider, otel.NoOpTracerProvider)
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)


def tracing_enabled() -> bool:
    """Whether the process has a tracer provider (OpenTelemetry's default has none)."""
    return not isinstance(otel.get_tracer_provider(), _DISABLED_PROVIDERS)


def caller_traceparent() -> str | None:
    """The W3C ``traceparent`` of the span active where a run is started, if any: the run's
    trace continues the caller's."""
    if not otel.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier.get("traceparent")


@dataclass
class _Pending:
    name: str
    start_ns: int
    end_ns: int
    attributes: dict[str, AttributeValue]


@dataclass
class RunTrace:
    """One run's trace in this process: its root's ids and the spans waiting to be emitted."""

    workflow_id: str
    agent_name: str
    trace_id: int
    span_id: int
    parent: SpanContext | None
    started_ns: int
    pending: list[_Pending] = field(default_factory=list)

    @classmethod
    def of_run(
        cls,
        workflow_id: str,
        agent_name: str,
        traceparent: str | None = None,
        started_ns: int | None = None,
    ) -> RunTrace:
        """The run's trace: ids derived from ``workflow_id`` (the same in every process, and
        for every retry with the same workflow id), under the caller's span if it had one."""
        digest = hashlib.sha256(f"timestep.run:{workflow_id}".encode()).digest()
        parent = _parse_traceparent(traceparent)
        trace_id = parent.trace_id if parent is not None else _nonzero(digest[:16])
        return cls(
            workflow_id=workflow_id,
            agent_name=agent_name,
            trace_id=trace_id,
            span_id=_nonzero(digest[16:24]),
            parent=parent,
            started_ns=started_ns if started_ns is not None else time.time_ns(),
        )

    @property
    def root_context(self) -> SpanContext:
        flags = self.parent.trace_flags if self.parent is not None else _SAMPLED
        return SpanContext(self.trace_id, self.span_id, is_remote=True, trace_flags=flags)

    @contextmanager
    def span(self, name: str, attributes: Mapping[str, Any]) -> Iterator[Span]:
        """A child of the run's root around a step's execution (ended, with its error, when
        the block ends); first emits the waits that led to it."""
        self.flush_pending()
        tracer = otel.get_tracer(TRACER_NAME)
        context = otel.set_span_in_context(NonRecordingSpan(self.root_context))
        # Not the SDK's own exception event: its message and traceback would leave unscrubbed.
        with tracer.start_as_current_span(
            name,
            context=context,
            attributes=_clean(attributes),
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield span
            except BaseException as exc:
                _mark_failed(span, exc)
                raise

    def defer(self, name: str, start_ns: int, end_ns: int, attributes: Mapping[str, Any]) -> None:
        """A wait, emitted when the step after it executes (``drop_pending`` if it replays)."""
        self.pending.append(_Pending(name, start_ns, end_ns, _clean(attributes)))

    def drop_pending(self) -> None:
        self.pending.clear()

    def flush_pending(self) -> None:
        if not self.pending:
            return
        pending, self.pending = self.pending, []
        tracer = otel.get_tracer(TRACER_NAME)
        context = otel.set_span_in_context(NonRecordingSpan(self.root_context))
        for wait in pending:
            span = tracer.start_span(
                wait.name, context=context, attributes=wait.attributes, start_time=wait.start_ns
            )
            span.end(end_time=max(wait.end_ns, wait.start_ns))

    def emit_root(self, attributes: Mapping[str, Any], error: BaseException | None) -> None:
        """The run's root span, from its start until now, with the ids its children name."""
        self.flush_pending()
        tracer = otel.get_tracer(TRACER_NAME)
        if hasattr(tracer, "id_generator"):  # the OpenTelemetry SDK's tracer: fix the ids
            tracer = copy.copy(tracer)
            tracer.id_generator = _FixedIds(self.trace_id, self.span_id)
        context = otel.set_span_in_context(NonRecordingSpan(self.parent)) if self.parent else None
        span = tracer.start_span(
            f"invoke_agent {self.agent_name}",
            context=context,
            attributes={
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": self.agent_name,
                "timestep.workflow_id": self.workflow_id,
                **_clean(attributes),
            },
            start_time=self.started_ns,
        )
        if error is not None:
            _mark_failed(span, error)
        span.end()


class _FixedIds:
    """An SDK id generator that hands out one run's root ids (``emit_root``)."""

    def __init__(self, trace_id: int, span_id: int) -> None:
        self._trace_id, self._span_id = trace_id, span_id

    def generate_trace_id(self) -> int:
        return self._trace_id

    def generate_span_id(self) -> int:
        return self._span_id

    def is_trace_id_random(self) -> bool:
        return False


def _mark_failed(span: Span, error: BaseException) -> None:
    """The span's error: its class, and its message without secrets (spans leave the
    process for whatever backend the exporter sends them to)."""
    span.set_attribute("error.type", type(error).__qualname__)
    span.set_status(Status(StatusCode.ERROR, scrub(str(error))[:500]))


def _nonzero(raw: bytes) -> int:
    return int.from_bytes(raw, "big") or 1  # an all-zero id is invalid


def _parse_traceparent(traceparent: str | None) -> SpanContext | None:
    if not traceparent:
        return None
    context = TraceContextTextMapPropagator().extract({"traceparent": traceparent})
    span_context = otel.get_current_span(context).get_span_context()
    return span_context if span_context.is_valid else None


def _clean(attributes: Mapping[str, Any]) -> dict[str, AttributeValue]:
    """The attributes OpenTelemetry accepts (no None)."""
    return {
        key: value
        for key, value in attributes.items()
        if isinstance(value, str | bool | int | float)
    }
