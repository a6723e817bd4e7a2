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
"""

from __future__ import annotations

import asyncio
import json
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
            arrivals.append(time.time())
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


async def _plain(agent: Agent[Any], config: RunConfig) -> tuple[float, float]:
    start = time.time()
    result = Runner.run_streamed(agent, "stream", run_config=config)
    times = _delta_times([(time.time(), e) async for e in result.stream_events()])
    return (times[0] - start) * 1000, (times[-1] - start) * 1000


async def _durable(
    agent: Agent[Any], config: RunConfig, url: str, remote: bool
) -> tuple[tuple[float, float], tuple[float, float] | None]:
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
    start = time.time()
    run = await timestep.run_agent(
        agent, "stream", stream=True, run_config=config, workflow_id=workflow_id
    )
    times = _delta_times([(time.time(), e) async for e in run.stream_events()])
    local = ((times[0] - start) * 1000, (times[-1] - start) * 1000)
    other = None
    if reader is not None:
        out, _ = await asyncio.to_thread(reader.communicate, timeout=120)
        remote_times = json.loads(out.strip().splitlines()[-1])
        other = ((remote_times[0] - start) * 1000, (remote_times[-1] - start) * 1000)
    return local, other


async def run(kind: str, url: str, rounds: int, progress: Progress) -> dict[str, Any]:
    task = progress.add_task(f"{kind}: streaming latency", total=rounds)
    agent = Agent(name="streamer", instructions="Stream.")
    words = " ".join(f"w{i}" for i in range(WORDS))
    figures: dict[str, list[float]] = {
        key: []
        for key in (
            "plain_first",
            "plain_last",
            "durable_first",
            "durable_last",
            "shared_first",
            "shared_last",
            "other_first",
            "other_last",
        )
    }
    with provider_process(words, chunk_delay=GAP_SECONDS) as provider:
        config = RunConfig(model_provider=provider)
        await _plain(agent, config)  # warm up both paths
        await _durable(agent, config, url, remote=False)
        for _ in range(rounds):
            first, last = await _plain(agent, config)
            figures["plain_first"].append(first)
            figures["plain_last"].append(last)
            (first, last), _ = await _durable(agent, config, url, remote=False)
            figures["durable_first"].append(first)
            figures["durable_last"].append(last)
            (first, last), other = await _durable(agent, config, url, remote=True)
            figures["shared_first"].append(first)
            figures["shared_last"].append(last)
            if other is not None:
                figures["other_first"].append(other[0])
                figures["other_last"].append(other[1])
            progress.advance(task)
    out = {key: summary(values) for key, values in figures.items()}
    out["extra_first_ms_p50"] = out["durable_first"]["p50_ms"] - out["plain_first"]["p50_ms"]
    out["extra_last_ms_p50"] = out["durable_last"]["p50_ms"] - out["plain_last"]["p50_ms"]
    out["shared_extra_first_ms_p50"] = out["shared_first"]["p50_ms"] - out["plain_first"]["p50_ms"]
    out["shared_extra_last_ms_p50"] = out["shared_last"]["p50_ms"] - out["plain_last"]["p50_ms"]
    out["other_extra_first_ms_p50"] = out["other_first"]["p50_ms"] - out["plain_first"]["p50_ms"]
    out["other_extra_last_ms_p50"] = out["other_last"]["p50_ms"] - out["plain_last"]["p50_ms"]
    return out
