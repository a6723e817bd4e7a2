"""Timestep's benchmarks, in one command::

    python -m benchmarks [--quick] [--long] [--databases sqlite,postgres] [--parts ...]

(1)-(4) durable overhead against the plain SDK, bare DBOS and DBOSRunner; (5) approval
latency; (6) throughput; (7) recovery after SIGKILL; (8) the queue limiter's rate; (9)
memory over many runs; (10) streaming latency, in process and from another; (11) the token
limiter at saturation and the ledger check's cost per model call; (12) the web console's runs
listing at 100,000 runs; (13) the cost of a retention pass per 10,000 deleted runs; (16) runs
per second from one worker process to two on one Postgres, Timestep and bare DBOS; a
pyinstrument profile of Timestep's hot path; and with ``--long`` the
200-run chaos soak. Asked for by name only: (17) table sizes over 100,000 runs (cloned from
real ones) under retention, ``--parts retention-steady``.
Writes ``benchmarks/results/latest.md`` and ``latest.json``; every ratio comes from one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import time
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from timestep.testing import postgres_unreachable

from . import (
    _approvals,
    _chaos,
    _deployment,
    _limiter,
    _memory,
    _overhead,
    _paging,
    _profile,
    _recovery,
    _retention,
    _retention_steady,
    _scaling,
    _streaming,
    _throughput,
    _tokens,
)
from ._common import PG_URL, RESULTS, fresh_database, launched
from ._report import markdown

PARTS = (
    "overhead",
    "approvals",
    "throughput",
    "limiter",
    "tokens",
    "profile",
    "memory",
    "waiting",
    "realistic",
    "streaming",
    "paging",
    "retention",
    "retention-steady",
    "recovery",
    "scaling",
    "chaos",
)
# Not run unless asked for: minutes per database each.
OPT_IN = ("retention-steady", "chaos")
# Each in a database of its own: recovery's and scaling's worker processes; retention's passes
# delete every ended run in the database, and assert they deleted their own runs only.
ALONE = ("recovery", "scaling", "retention", *OPT_IN)
IN_PROCESS = tuple(part for part in PARTS if part not in ALONE)


async def _in_process(kind: str, url: str, args: argparse.Namespace, progress: Progress) -> dict:
    out: dict[str, Any] = {}
    async with launched(url):
        if "overhead" in args.parts:
            out["overhead"] = await _overhead.run(kind, args.runs, progress)
        if "approvals" in args.parts:
            out["approvals"] = await _approvals.run(kind, args.approval_runs, progress)
        if "throughput" in args.parts:
            out["throughput"] = await _throughput.run(kind, args.quick, progress)
        if "profile" in args.parts:
            out["profile"] = await _profile.run(kind, args.runs, progress)
        if "streaming" in args.parts:
            out["streaming"] = await _streaming.run(kind, url, args.stream_rounds, progress)
        if "waiting" in args.parts:
            out["waiting"] = await _deployment.waiting(kind, args.waiting_runs, progress)
        if "realistic" in args.parts:
            out["realistic"] = await _deployment.realistic(kind, args.quick, progress)
        if "memory" in args.parts:
            out["memory"] = await _memory.run(kind, args.memory_runs, progress)
        if "tokens" in args.parts:  # it leaves provider limits behind, on prefixes of its own
            out["tokens"] = await _tokens.run(kind, args.quick, progress)
        if "paging" in args.parts:  # after the others: it leaves 100,000 runs behind
            out["paging"] = await _paging.run(kind, url, args.paging_runs, progress)
        if "limiter" in args.parts:  # last: it leaves a provider limit behind
            out["limiter"] = await _limiter.run(kind, args.quick, progress)
    return out


def _database(kind: str, args: argparse.Namespace, progress: Progress) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if any(p in args.parts for p in IN_PROCESS):
        with fresh_database(kind) as url:
            out.update(asyncio.run(_in_process(kind, url, args, progress)))
    if "retention" in args.parts:
        with fresh_database(kind, "retention") as url:
            out["retention"] = asyncio.run(_retention.run(kind, url, args.retention_runs, progress))
    if "retention-steady" in args.parts:
        with fresh_database(kind, "steady") as url:
            out["retention_steady"] = asyncio.run(
                _retention_steady.run(
                    kind, url, args.steady_runs, args.steady_days, args.steady_sources, progress
                )
            )
    if "recovery" in args.parts:
        with fresh_database(kind, "recovery") as url:
            out["recovery"] = _recovery.run(kind, url, args.recovery_runs, progress)
    if "scaling" in args.parts and kind == "postgres":  # SQLite: one writer lock, see _scaling
        with fresh_database(kind, "scaling") as url:
            out["scaling"] = _scaling.run(
                kind, url, args.scaling_runs, args.scaling_repeats, progress
            )
    if "chaos" in args.parts:
        with fresh_database(kind, "chaos") as url:
            report = _chaos.run_soak(
                url,
                runs=args.chaos_runs,
                max_seconds=args.chaos_seconds,
                progress=progress,
                label=f"{kind}: chaos soak",
            )
            out["chaos"] = report.summary()
            out["chaos"]["violations"] = report.violations()
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs: a smoke test")
    parser.add_argument("--long", action="store_true", help="also the 200-run chaos soak")
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--parts", default=None, help=f"comma-separated subset of {PARTS}")
    parser.add_argument("--runs", type=int, default=None, help="runs per contender, (1)-(4)")
    parser.add_argument("--output", default="latest", help="results file stem")
    parser.add_argument(
        "--memory-runs", type=int, default=None, help="runs per memory workload (9)"
    )
    parser.add_argument(
        "--retention-runs", type=int, default=None, help="runs one gc pass deletes (13)"
    )
    parser.add_argument(
        "--steady-runs", type=int, default=None, help="runs over the simulated days (17)"
    )
    args = parser.parse_args(argv)
    args.parts = set((args.parts or ",".join(p for p in PARTS if p not in OPT_IN)).split(","))
    if args.long:
        args.parts.add("chaos")
    unknown = args.parts - set(PARTS)
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    args.runs = args.runs or (60 if args.quick else 300)
    args.approval_runs = 20 if args.quick else 100
    args.waiting_runs = 200 if args.quick else 1000
    args.recovery_runs = 200 if args.quick else 1000
    args.scaling_runs = 64 if args.quick else 256
    args.scaling_repeats = 2 if args.quick else 3
    args.chaos_runs = 40 if args.quick else 200
    args.memory_runs = args.memory_runs or (2000 if args.quick else 20000)
    args.stream_rounds = 3 if args.quick else 15
    args.paging_runs = 10_000 if args.quick else 100_000
    args.retention_runs = args.retention_runs or (500 if args.quick else 10_000)
    args.chaos_seconds = 120 if args.quick else 600
    args.steady_runs = args.steady_runs or (10_000 if args.quick else 100_000)
    args.steady_days = 50 if args.quick else 100
    args.steady_sources = 100 if args.quick else 300

    console = Console(stderr=True)
    databases = [d for d in args.databases.split(",") if d]
    if "postgres" in databases and (why := postgres_unreachable(PG_URL)) is not None:
        console.print(f"[yellow]Postgres unavailable, skipped: {why}")
        databases.remove("postgres")
    report: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m benchmarks", *(sys.argv[1:] if argv is None else argv)]),
        "quick": args.quick,
        "python": sys.version.split()[0],
        "machine": f"{platform.system()} {platform.machine()}",
        "runs": args.runs,
        "databases": {},
    }
    started = time.perf_counter()
    columns = (
        TextColumn("{task.description:<42}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        for kind in databases:
            report["databases"][kind] = _database(kind, args, progress)
    report["seconds"] = time.perf_counter() - started
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.output}.json").write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(report)
    (RESULTS / f"{args.output}.md").write_text(text)
    print(text)
    failed = [
        kind
        for kind, figures in report["databases"].items()
        if figures.get("chaos", {}).get("violations")
    ]
    if failed:
        raise SystemExit(f"chaos soak invariants violated on: {', '.join(failed)}")


if __name__ == "__main__":
    main()
