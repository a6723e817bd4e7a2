"""Shared pieces of the benchmarks: the zero-latency model, databases, timing and statistics."""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from agents import ModelResponse, set_tracing_disabled
from agents.models.interface import Model, ModelProvider
from agents.usage import Usage
from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
    ResponseUsage,
)
from openai.types.responses.response_usage import InputTokensDetails, OutputTokensDetails
from rich.progress import Progress
from sqlalchemy.engine import make_url

from timestep.testing import temporary_postgres_database

os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")
os.environ.setdefault("TIMESTEP_PROBE_LOCAL_POSTGRES", "false")
set_tracing_disabled(True)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
PG_URL = os.environ.get("TIMESTEP_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

# Start times (perf_counter) of model calls, for the limiter benchmark; off unless a list.
MODEL_CALL_TIMES: list[float] | None = None


class ZeroLatencyModel(Model):
    """Calls each tool it is offered once, in order, one per turn, then answers "done".

    Stateless: the turn is read from the conversation (how many tool outputs it holds), so a
    replayed or recovered run gets the same answers. Call ids are ``call_0``, ``call_1``..."""

    async def get_response(
        self,
        system_instructions: Any,
        input: Any,
        model_settings: Any,
        tools: Any,
        *a: Any,
        **k: Any,
    ) -> ModelResponse:
        if MODEL_CALL_TIMES is not None:
            MODEL_CALL_TIMES.append(time.perf_counter())
        outputs = 0
        if not isinstance(input, str):
            outputs = sum(
                1
                for item in input
                if isinstance(item, dict) and item.get("type") == "function_call_output"
            )
        names = [t.name for t in tools or [] if hasattr(t, "name")]
        if outputs < len(names):
            item: Any = ResponseFunctionToolCall(
                type="function_call",
                call_id=f"call_{outputs}",
                name=names[outputs],
                arguments="{}",
                id=f"fc_{outputs}",
                status="completed",
            )
        else:
            item = ResponseOutputMessage(
                id="msg_final",
                type="message",
                role="assistant",
                status="completed",
                content=[ResponseOutputText(type="output_text", text="done", annotations=[])],
            )
        return ModelResponse(
            output=[item],
            usage=Usage(requests=1, input_tokens=10, output_tokens=5, total_tokens=15),
            response_id=None,
        )

    async def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        """``get_response``'s answer as one ``response.completed`` event (no deltas)."""
        answer = await self.get_response(*args, **kwargs)
        usage = ResponseUsage(
            input_tokens=answer.usage.input_tokens,
            output_tokens=answer.usage.output_tokens,
            total_tokens=answer.usage.total_tokens,
            input_tokens_details=InputTokensDetails(cached_tokens=0, cache_write_tokens=0),
            output_tokens_details=OutputTokensDetails(reasoning_tokens=0),
        )
        response = Response(
            id="resp_zero",
            created_at=0,
            model="zero",
            object="response",
            output=answer.output,
            tool_choice="auto",
            tools=[],
            parallel_tool_calls=False,
            usage=usage,
        )
        yield ResponseCompletedEvent(
            type="response.completed", sequence_number=0, response=response
        )


class ZeroLatencyProvider(ModelProvider):
    def get_model(self, model_name: str | None) -> Model:
        return ZeroLatencyModel()


# -- statistics -------------------------------------------------------------------------------


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(samples: list[float]) -> dict[str, float]:
    """p50 / p95 / mean of millisecond samples."""
    return {
        "p50_ms": statistics.median(samples),
        "p95_ms": percentile(samples, 0.95),
        "mean_ms": statistics.fmean(samples),
        "n": len(samples),
    }


async def measure_interleaved(
    fns: dict[str, Callable[[], Awaitable[Any]]], runs: int, progress: Progress, label: str
) -> dict[str, dict[str, float]]:
    """Call each of ``fns`` ``runs`` times, round-robin, after a warm-up of each; per-call ms
    figures by key. Interleaved, a machine that speeds up or slows down during the
    measurement (a shared VM does) shifts every contender alike, so their ratios hold."""
    for fn in fns.values():
        for _ in range(max(3, runs // 20)):
            await fn()
    samples: dict[str, list[float]] = {key: [] for key in fns}
    task = progress.add_task(label, total=runs * len(fns))
    for _ in range(runs):
        for key, fn in fns.items():
            started = time.perf_counter()
            await fn()
            samples[key].append((time.perf_counter() - started) * 1000)
            progress.advance(task)
    return {key: summary(values) for key, values in samples.items()}


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


# -- databases --------------------------------------------------------------------------------


@contextlib.contextmanager
def fresh_database(kind: str, tag: str = "bench") -> Iterator[str]:
    """A new, empty database of ``kind`` ("sqlite" or "postgres"), removed afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix=f"timestep-{tag}-") as tmp:
            yield f"sqlite:///{Path(tmp) / 'timestep.sqlite'}"
        return
    if kind != "postgres":
        raise ValueError(f"unknown database kind {kind!r}")
    with temporary_postgres_database(PG_URL, prefix=f"timestep_{tag}") as url:
        yield url


def sync_engine(url: str) -> sa.Engine:
    """A plain SQLAlchemy engine on a Timestep database, for reading DBOS's tables."""
    target = make_url(url)
    if target.get_backend_name() == "postgresql":
        target = target.set(drivername="postgresql+psycopg")
        return sa.create_engine(target, poolclass=sa.pool.NullPool)
    return sa.create_engine(target, poolclass=sa.pool.NullPool, connect_args={"timeout": 30})


def dbos_table(url: str, name: str) -> str:
    """DBOS's system table ``name``, qualified as it is on this database."""
    return name if url.startswith("sqlite") else f"dbos.{name}"


@contextlib.asynccontextmanager
async def launched(url: str, **config: Any) -> AsyncIterator[None]:
    """Timestep's DBOS configured and launched on ``url`` in this process, torn down after."""
    import timestep
    from timestep._core.runtime import reset_process

    reset_process(destroy=False)
    timestep.set_model_provider(ZeroLatencyProvider())
    timestep.configure_dbos(url, log_level="WARNING", **config)
    timestep.ensure_dbos_launched()
    try:
        yield
    finally:
        reset_process()


_FAKE_PROVIDER = """
import json, sys
from timestep.testing import FakeModelServer, text
words, chunk_delay, delay = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
with FakeModelServer() as fake:
    fake.set_default(text(words, chunk_delay=chunk_delay, delay=delay))
    print(fake.base_url, flush=True)
    for _ in sys.stdin:  # each line asks for the requests' arrival times
        print(json.dumps([r.received_at for r in fake.requests]), flush=True)
"""


@dataclass
class ProviderProcess:
    """The HTTP fake in a process of its own, and an ``OpenAIProvider`` on it."""

    provider: Any
    _process: subprocess.Popen[str]

    def request_times(self) -> list[float]:
        """When each request arrived at the fake (``time.monotonic()``, which every process
        on this machine shares), in arrival order."""
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write("\n")
        self._process.stdin.flush()
        return list(json.loads(self._process.stdout.readline()))


@contextlib.contextmanager
def provider_process(
    words: str, *, chunk_delay: float, delay: float = 0.0
) -> Iterator[ProviderProcess]:
    """The HTTP fake served by a process of its own, streaming ``words`` ``chunk_delay``
    apart after ``delay``, as a provider is another machine: in the measured process the fake
    would share the interpreter's lock with the run's checkpoint writes and send its chunks
    late, which no real provider does. It sends text delta ``i`` ``i * chunk_delay`` after
    the request's arrival (plus ``delay``), on a schedule of its own."""
    from agents import OpenAIProvider
    from openai import AsyncOpenAI

    fake = subprocess.Popen(
        [sys.executable, "-c", _FAKE_PROVIDER, words, str(chunk_delay), str(delay)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert fake.stdout is not None and fake.stdin is not None
    try:
        base_url = fake.stdout.readline().strip()
        client = AsyncOpenAI(base_url=base_url, api_key="bench-key")
        yield ProviderProcess(OpenAIProvider(openai_client=client, use_responses=True), fake)
    finally:
        fake.stdin.close()  # the fake exits when its input ends
        fake.wait(30)
