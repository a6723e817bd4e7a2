"""(10) Streaming latency: when the first and the last text delta reach a reader.

The model is the real HTTP fake streaming 30 words 50 ms apart, served by a process of its
own, as a provider is: in this process it would share the interpreter's lock with the run's
checkpoint writes, and its chunks would leave late, which no real provider's do. Contenders, taking turns run
by run: plain ``Runner.run_streamed``; ``run_agent(stream=True)`` read in the caller's process;
and a durable run read both there and from another process (``stream_run_events`` following
the run's stream by workflow id). Each figure is milliseconds from the call to the delta's
arrival; the extra over the plain SDK is what durability costs a reader. The in-process figure
is measured twice: alone, and while the other process follows the same run (its polling shares
the machine's two cores and the database with the run).

That extra has two parts, measured apart with the fake's own clock (``time.monotonic()``, which
the processes share): the time until the request reaches the provider (the durable run's start
and its step's checkpoint read come first), and each delta's lag, from when the provider sent it
(delta ``i`` leaves ``i * GAP_SECONDS`` after the request arrived) to its arrival at the reader.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import time
from typing import Any

from agents import Agent, RunConfig, Runner
from agents.stream_events import RawResponsesStreamEvent
from openai.types.responses import ResponseTextDeltaEvent
from rich.progress import Progress

import timestep

from ._common import ROOT, new_id, provider_process, summary

WORDS = 30
GAP_SECONDS = 0.05
_READER = """
import asyncio, json, sys, time
import timestep
from agents import Agent
from agents.stream_events import RawResponsesStreamEvent
url, workflow_id = sys.argv[1:3]
timestep.configure_dbos(url, log_level="WARNING")
async def main():
    arrivals = []
    print("READY", flush=True)
    while True:  # follow the run as soon as it exists
        try:
            await timestep.get_run(workflow_id)
            break
        except timestep.RunNotFoundError:
            await asyncio.sleep(0.005)
    async for event in timestep.stream_run_events(workflow_id, Agent(name="streamer")):
        if isinstance(event, RawResponsesStreamEvent) and event.data.type == "response.output_text.delta":
            arrivals.append(time.monotonic())
    print(json.dumps(arrivals))
asyncio.run(main())
"""


def _delta_times(events: list[tuple[float, Any]]) -> list[float]:
    return [
        at
        for at, event in events
        if isinstance(event, RawResponsesStreamEvent)
        and isinstance(event.data, ResponseTextDeltaEvent)
    ]


async def _plain(agent: Agent[Any], config: RunConfig) -> tuple[float, list[float]]:
    start = time.monotonic()
    result = Runner.run_streamed(agent, "stream", run_config=config)
    return start, _delta_times([(time.monotonic(), e) async for e in result.stream_events()])


async def _durable(
    agent: Agent[Any], config: RunConfig, url: str, remote: bool
) -> tuple[float, list[float], list[float] | None]:
    workflow_id = new_id("stream")
    reader = None
    if remote:
        reader = subprocess.Popen(
            [sys.executable, "-c", _READER, url, workflow_id],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=ROOT,
        )
        assert reader.stdout is not None
        ready = await asyncio.to_thread(reader.stdout.readline)  # up before the run starts
        assert ready.strip() == "READY", ready
    start = time.monotonic()
    run = await timestep.run_agent(
        agent, "stream", stream=True, run_config=config, workflow_id=workflow_id
    )
    local = _delta_times([(time.monotonic(), e) async for e in run.stream_events()])
    other = None
    if reader is not None:
        out, _ = await asyncio.to_thread(reader.communicate, timeout=120)
        other = list(json.loads(out.strip().splitlines()[-1]))
    return start, local, other


class _Figures:
    """Each contender's samples: from the call to the first and the last delta, to the
    request's arrival at the provider, and the deltas' lags behind the provider's sending."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = {}

    def add(self, key: str, start: float, arrived: float, deltas: list[float]) -> None:
        assert len(deltas) == WORDS, len(deltas)
        lags = [(at - arrived - i * GAP_SECONDS) * 1000 for i, at in enumerate(deltas)]
        for name, value in (
            ("first", (deltas[0] - start) * 1000),
            ("last", (deltas[-1] - start) * 1000),
            ("request", (arrived - start) * 1000),
            ("lag", statistics.median(lags)),
            ("lag_max", max(lags)),
        ):
            self.samples.setdefault(f"{key}_{name}", []).append(value)


async def run(kind: str, url: str, rounds: int, progress: Progress) -> dict[str, Any]:
    task = progress.add_task(f"{kind}: streaming latency", total=rounds)
    agent = Agent(name="streamer", instructions="Stream.")
    words = " ".join(f"w{i}" for i in range(WORDS))
    figures = _Figures()
    with provider_process(words, chunk_delay=GAP_SECONDS) as fake:
        config = RunConfig(model_provider=fake.provider)
        await _plain(agent, config)  # warm up both paths
        await _durable(agent, config, url, remote=False)
        for _ in range(rounds):
            start, deltas = await _plain(agent, config)
            figures.add("plain", start, fake.request_times()[-1], deltas)
            start, deltas, _ = await _durable(agent, config, url, remote=False)
            figures.add("durable", start, fake.request_times()[-1], deltas)
            start, deltas, other = await _durable(agent, config, url, remote=True)
            arrived = fake.request_times()[-1]
            figures.add("shared", start, arrived, deltas)
            if other is not None:
                figures.add("other", start, arrived, other)
            progress.advance(task)
    out: dict[str, Any] = {key: summary(values) for key, values in figures.samples.items()}
    for prefix, key in (("", "durable"), ("shared_", "shared"), ("other_", "other")):
        for name in ("first", "last", "request", "lag"):
            out[f"{prefix}extra_{name}_ms_p50"] = (
                out[f"{key}_{name}"]["p50_ms"] - out[f"plain_{name}"]["p50_ms"]
            )
    return out
