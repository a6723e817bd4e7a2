"""A worker for the traced parity test: every scenario of tests/parity_scenarios.py through
plain ``Runner`` and through Timestep, in a process with an OpenTelemetry tracer provider
(a process sets one once, so this is a process of its own), each compared as
tests/test_runner_parity.py compares them; prints one ``RESULT`` line per scenario.

usage: traced_parity_worker.py DATABASE_URL FOLDER
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: tests.*

from agents import set_tracing_disabled
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import timestep
from tests import parity_scenarios as sc
from tests.test_runner_parity import _durable, _error_attributes, _plain
from timestep._core.runtime import reset_process

DATABASE_URL, FOLDER = sys.argv[1:3]
set_tracing_disabled(True)  # the SDK's own tracing would post to OpenAI
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)


def _verdict(plain: object, durable: object, plain_outcome: dict, durable_outcome: dict) -> str:
    if durable_outcome != plain_outcome:
        return (
            f"outcomes differ: {json.dumps([plain_outcome, durable_outcome], default=str)[:2000]}"
        )
    if isinstance(plain, Exception):
        if (type(durable), str(durable)) != (type(plain), str(plain)):
            return f"errors differ: {plain!r} / {durable!r}"
        if _error_attributes(durable) != _error_attributes(plain):  # type: ignore[arg-type]
            return "error attributes differ"
    elif isinstance(durable, Exception):
        return f"durable raised {durable!r}"
    return ""


async def main() -> None:
    timestep.configure_dbos(DATABASE_URL)
    timestep.ensure_dbos_launched()
    for scenario in sc.SCENARIOS:
        folders = Path(FOLDER) / scenario.name
        for side in ("plain", "durable"):
            (folders / side).mkdir(parents=True)
        sc.SEEN_CONTEXTS.clear()
        _, plain, plain_outcome = await _plain(scenario, folders)
        exporter.clear()
        _, durable, durable_outcome = await _durable(scenario, folders)
        spans = exporter.get_finished_spans()
        record = {
            "scenario": scenario.name,
            "difference": _verdict(plain, durable, plain_outcome, durable_outcome),
            "roots": sum(1 for s in spans if s.name.startswith("invoke_agent ")),
            "spans": len(spans),
        }
        print("RESULT " + json.dumps(record), flush=True)
    reset_process()


asyncio.run(main())
