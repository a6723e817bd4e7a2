"""``/metrics`` in Prometheus's text format (prometheus-client), from a ``MetricsSnapshot``."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from timestep._client.metrics import LATENCY_BUCKETS, MetricsSnapshot, StepLatency

__all__ = ["render_metrics"]

_TOKEN_KINDS = ("input", "output", "cached", "reasoning")


class _Snapshot(Collector):
    def __init__(self, snapshot: MetricsSnapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        s = self.snapshot
        runs = GaugeMetricFamily("timestep_runs", "Agent runs by DBOS status.", labels=["status"])
        for status, count in sorted(s.runs.items()):
            runs.add_metric([status], count)
        yield runs
        yield GaugeMetricFamily(
            "timestep_pending_approvals",
            "Tool calls waiting for a decision, across runs.",
            value=s.pending_approvals,
        )
        depth = GaugeMetricFamily(
            "timestep_queue_depth",
            "Workflows enqueued and not started, by queue.",
            labels=["queue"],
        )
        for queue, count in sorted(s.queue_depth.items()):
            depth.add_metric([queue], count)
        yield depth
        latency = HistogramMetricFamily(
            "timestep_step_duration_seconds",
            "Duration of finished durable steps, by kind (model calls, tool calls).",
            labels=["kind"],
        )
        for kind, step in sorted(s.steps.items()):
            _add_histogram(latency, kind, step)
        yield latency
        waits = HistogramMetricFamily(
            "timestep_limiter_wait_seconds",
            "How long model calls waited for a limited provider's permits, by permit queue.",
            labels=["queue"],
        )
        for queue, wait in sorted(s.limiter_waits.items()):
            _add_histogram(waits, queue, wait)
        yield waits
        tokens = CounterMetricFamily(
            "timestep_tokens", "Tokens used, by provider, model and kind.",
            labels=["provider", "model", "type"],
        )  # fmt: skip
        requests = CounterMetricFamily(
            "timestep_model_requests", "Model requests, by provider and model.",
            labels=["provider", "model"],
        )  # fmt: skip
        cost = CounterMetricFamily(
            "timestep_cost_usd", "Cost of model calls (priced ones), by provider and model.",
            labels=["provider", "model"],
        )  # fmt: skip
        for (provider, model), totals in sorted(s.usage.items()):
            for kind in _TOKEN_KINDS:
                tokens.add_metric([provider, model, kind], getattr(totals, f"{kind}_tokens"))
            requests.add_metric([provider, model], totals.requests)
            cost.add_metric([provider, model], totals.cost_usd)
        yield tokens
        yield requests
        yield cost


def _bound(value: float) -> str:
    return repr(float(value))


def render_metrics(snapshot: MetricsSnapshot) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(snapshot))
    return generate_latest(registry)


def _add_histogram(family: HistogramMetricFamily, label: str, latency: StepLatency) -> None:
    buckets = [(_bound(b), float(c)) for b, c in zip(LATENCY_BUCKETS, latency.buckets, strict=True)]
    family.add_metric(
        [label], [*buckets, ("+Inf", float(latency.count))], sum_value=latency.total_seconds
    )
