"""``latest.md``: the benchmark report as markdown tables."""

from __future__ import annotations

from typing import Any

_LABELS = {
    "plain_runner": "(1) plain `Runner`, no durability",
    "bare_dbos": "(2) bare DBOS workflow, 5 no-op steps",
    "bare_dbos_checkpoints": "(2c) the same, checkpointing (3)'s data",
    "direct_wiring": "(2d) direct wiring: `Runner.run` in a workflow, calls as steps",
    "timestep": "(3) Timestep `run_agent_workflow`",
    "dbos_openai_agents": "(4) dbos-openai-agents `DBOSRunner`",
    "dbos_openai_agents_step_tools": "(4d) `DBOSRunner`, tools as `@DBOS.step()`",
}


_THROUGHPUT_LABELS = {
    "plain_runner": "(1) plain `Runner`",
    "bare_dbos": "(2) bare DBOS, 5 steps",
    "direct_wiring": "(2d) direct wiring",
    "timestep_again": "(3) Timestep, again",
}


def _throughput_row(db: str, level: str, label: str, t: dict[str, Any]) -> str:
    return (
        f"| {db} | {level} | {label} | {_f(t['runs_per_s'], 1)} | "
        f"{_f(t.get('cpu_ms_per_run', 'n/a'), 1)} | {_f(t['p50_ms'])} | {_f(t['p95_ms'])} | "
        f"{t['runs']} |"
    )


def _section(title: str, intro: str, header: str, align: str, rows: list[str]) -> list[str]:
    """A report section: its heading, what it measures and its table; nothing without rows."""
    return [title, "", intro, "", header, align, *rows, ""] if rows else []


def _f(value: Any, digits: int = 2) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else str(value)


# The streaming part's readers: (label, key of its samples, prefix of its extras over plain).
_STREAM_READERS = (
    ("plain Runner.run_streamed", "plain", None),
    ("Timestep, same process", "durable", ""),
    ("Timestep, same process, another following", "shared", "shared_"),
    ("Timestep, another process", "other", "other_"),
)


def markdown(report: dict[str, Any]) -> str:
    dbs = list(report["databases"])
    lines = [
        "# Timestep benchmarks",
        "",
        f"`{report['command']}` on {report['date']}, Python {report['python']}, "
        f"{report['machine']}; {report['seconds']:.0f} s in all. Zero-latency in-process model "
        "and no-op tools, so every figure is the frameworks' own cost; all ratios come from "
        "this one run.",
        "",
    ]
    overhead = {db: f["overhead"] for db, f in report["databases"].items() if "overhead" in f}
    if overhead:
        runs = report["runs"]
        lines += [
            f"## (1)-(4) Durable overhead: 3-turn agent (2 tool calls), {runs} runs each, "
            "interleaved",
            "",
            "| contender | " + " | ".join(f"{db} p50 ms | {db} p95 ms" for db in overhead) + " |",
            "| --- | " + " | ".join("---: | ---:" for _ in overhead) + " |",
        ]
        for key, label in _LABELS.items():
            cells = []
            for figures in overhead.values():
                c = figures["contenders"].get(key)
                cells += [_f(c["p50_ms"]), _f(c["p95_ms"])] if c else ["n/a", "n/a"]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines += ["", "| ratio | " + " | ".join(f"{db} p50 | {db} p95" for db in overhead) + " |"]
        lines.append("| --- | " + " | ".join("---: | ---:" for _ in overhead) + " |")
        names = [
            ("timestep_over_bare_dbos", "(3)/(2)"),
            ("timestep_over_direct_wiring", "(3)/(2d): target <= 1.0"),
            ("timestep_over_dbos_openai_agents", "(3)/(4)"),
            ("timestep_over_dbos_openai_agents_step_tools", "(3)/(4d): target <= 1.1"),
            ("timestep_over_floor", "(3)/((1)+(2)): target <= 1.0"),
            ("timestep_over_floor_with_checkpoints", "(3)/((1)+(2c))"),
            ("timestep_per_step_overhead_ms", "Timestep ms per step over (1)"),
            ("bare_dbos_per_step_ms", "bare DBOS ms per step"),
        ]
        for key, label in names:
            cells = []
            for figures in overhead.values():
                r = figures["ratios"]
                cells += [_f(r.get(f"{key}_p50", "n/a"), 3), _f(r.get(f"{key}_p95", "n/a"), 3)]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")

    rows = []
    for db in dbs:
        a = report["databases"][db].get("approvals")
        if a:
            t, e = a["decision_to_tool"], a["decision_to_result"]
            rows.append(
                f"| {db} | {_f(t['p50_ms'])} | {_f(t['p95_ms'])} | {_f(e['p50_ms'])} | "
                f"{_f(e['p95_ms'])} | {t['n']} |"
            )
    lines += _section(
        "## (5) Approval: `approve()` called -> approved tool starts in the resumed run",
        "Targets (issue 26): p50 under 40 ms on Postgres, under 100 ms on SQLite.",
        "| database | to tool p50 ms | to tool p95 ms | to result p50 ms | to result p95 ms | n |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        rows,
    )

    rows = []
    for db in dbs:
        for level, t in report["databases"][db].get("throughput", {}).items():
            if level.startswith("others_"):
                for name, o in t.items():
                    label = _THROUGHPUT_LABELS.get(name, name)
                    rows.append(_throughput_row(db, level.removeprefix("others_"), label, o))
            else:
                rows.append(_throughput_row(db, level, "(3) Timestep", t))
    lines += _section(
        "## (6) Throughput: runs per second with N runs in flight (one process)",
        "Target: Timestep at 32 in flight on Postgres >= 45 runs/s. CPU ms per run counts "
        "every thread of the process (the GIL lets about one core's worth run Python).",
        "| database | in flight | runs of | runs/s | CPU ms per run | run p50 ms | "
        "run p95 ms | runs |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
        rows,
    )

    rows = []
    for db in dbs:
        w = report["databases"][db].get("waiting")
        if w:
            rows.append(
                f"| {db} | {w['runs']} | {_f(w['rss_baseline_kb'] / 1024, 1)} | "
                f"{_f(w['rss_waiting_kb'] / 1024, 1)} | {_f(w['kb_per_waiting_run'], 1)} | "
                f"{w['tasks_baseline']} | {w['tasks_waiting']} | "
                f"{_f(w['tasks_per_waiting_run'], 2)} | {_f(w['approve_all_to_all_finished_s'])} |"
            )
    lines += _section(
        "## (14) Memory per run in flight: runs waiting for an approval in one worker",
        "Target: under 100 KB per waiting run beyond the process's baseline (RSS measured "
        "after a garbage collection, before the runs start and once all wait).",
        "| database | runs waiting | baseline RSS MB | RSS waiting MB | KB per waiting run | "
        "asyncio tasks before | tasks waiting | tasks per run | approve all -> all "
        "finished s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        rows,
    )

    rows = []
    for db in dbs:
        r = report["databases"][db].get("realistic")
        if r:
            for level, f in r["levels"].items():
                rows.append(
                    f"| {db} | {level} | {_f(f['p50_ms'])} | {_f(f['p95_ms'])} | "
                    f"{_f(f['p95_over_model'], 3)} | {_f(r['model_ms'])} | "
                    f"{r['sustained_in_flight']} |"
                )
    lines += _section(
        "## (15) A realistic model: 300 ms to answer, 20 streamed deltas 10 ms apart",
        "Streamed Timestep runs (one model call) in waves of N at once; the model's own "
        "time is a plain `Runner.run_streamed` of the same call, alone. Sustained: the "
        "most in flight with p95 within 10 % of it (every level up to it too).",
        "| database | in flight | run p50 ms | run p95 ms | p95 / model | model ms | "
        "sustained in flight |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        rows,
    )

    rows = []
    for db in dbs:
        r = report["databases"][db].get("recovery")
        if not r:
            continue
        for label, figures, ratio, floor in (
            (
                "Timestep",
                r,
                r.get("timestep_over_bare_dbos"),
                r.get("timestep_over_bare_dbos_plus_plain"),
            ),
            ("bare DBOS, same 3 steps", r.get("bare_dbos"), None, None),
        ):
            if figures:
                rows.append(
                    f"| {db} | {label} | {figures['runs']} | "
                    f"{_f(figures['restart_to_all_finished_s'])} | "
                    f"{_f(figures['process_start_to_launched_s'])} | "
                    f"{_f(figures['launched_to_all_finished_s'])} | "
                    f"{_f(ratio) if ratio else ''} | {_f(floor) if floor else ''} |"
                )
        plain = r.get("plain_runner")
        if plain:
            rows.append(
                f"| {db} | plain `Runner`, the same runs at once, no database | {plain['runs']} "
                f"|  |  | {_f(plain['wall_s'])} |  |  |"
            )
    lines += _section(
        "## (7) Recovery: N runs in flight, SIGKILL, restart; time until all finished",
        "Target: 1,000 runs in under 30 s, and at most 1.1x bare DBOS. Bare DBOS recovers the "
        "same work (three steps per run, the second in flight at the kill): its time is "
        "DBOS's own cost here. A recovered run is also the SDK's run again: plain `Runner` "
        "running the same runs at once is the SDK's own cost, and bare DBOS plus it the floor.",
        "| database | runs of | runs | restart -> all finished s | of which process start "
        "+ launch s | launched -> all finished s | over bare DBOS | launched -> finished "
        "over bare DBOS + plain |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        rows,
    )

    rows, notes = [], []
    for db in dbs:
        sc = report["databases"][db].get("scaling")
        if not sc:
            continue
        for key, label in (("timestep", "Timestep"), ("bare", "bare DBOS, same 5 steps")):
            for workers in ("1", "2"):
                f = sc[key][workers]
                cells = [
                    db,
                    label,
                    workers,
                    _f(f["runs_per_s"], 1),
                    _f(sc[key]["ratio"], 3) if workers == "2" else "",
                    _f(f["worker_cpu_ms_per_run"], 1),
                    _f(f["database_cpu_ms_per_run"], 1),
                    _f(f["driver_cpu_ms_per_run"], 1),
                    f"{_f(100 * f['machine_busy'], 0)} %",
                    _f(f.get("other_cores", "n/a")),
                    _f(f["enqueue_s"]),
                    str(f["rounds"]),
                ]
                rows.append("| " + " | ".join(cells) + " |")
        notes.append(
            f"{db}: Timestep's ratio over bare DBOS's "
            f"**{_f(sc['timestep_ratio_over_bare_ratio'], 3)}** (target >= 1.0); "
            f"{sc['runs']} runs a round, {sc['in_flight_per_worker']} in flight per worker, "
            f"{sc['cores']} cores."
        )
    lines += _section(
        "## (16) Scaling out: runs per second with 1 and 2 worker processes on one Postgres",
        "Target: Timestep's 2 workers / 1 at least bare DBOS's. Each worker runs up to N at "
        "once from a DBOS queue (Timestep's through `start_agent_run(..., queue=)`); the "
        "driver enqueues every run and otherwise only polls a count every 0.1 s. A round runs "
        "from its first enqueue to its last run's end; fresh workers each round, warmed up "
        "before the clock; rounds interleaved (T1, B1, T2, B2), medians. CPU ms per run: the "
        "workers (every thread), this database's Postgres backends, the driver. Machine busy: "
        "every core's busy share during the round, and of it the cores' worth anything else "
        "used (other tenants, Postgres's own processes): the database and the driver share "
        "the cores with the workers. Postgres only: workers on one SQLite file would measure "
        "its writer lock.",
        "| database | runs of | workers | runs/s | 2 workers / 1 | CPU ms per run: workers | "
        "database | driver | machine busy | of which others, cores | enqueue s | rounds |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        rows,
    )
    if notes:
        lines += [*notes, ""]

    rows = []
    for db in dbs:
        for name, lim in report["databases"][db].get("limiter", {}).items():
            rows.append(
                f"| {db} | {name} | {lim['limit']} per {lim['period_s']} s | "
                f"{_f(lim['configured_per_s'], 1)} | {_f(lim['achieved_per_s'], 2)} | "
                f"{_f(lim['error_pct'], 1)} % | {lim.get('busiest_window', '')} | "
                f"{_f(lim.get('achieved_over_span_per_s'), 2)} | {lim['starts']} |"
            )
    lines += _section(
        "## (8) Queue limiter: achieved start rate against the configured one",
        "Target: within 5 %. With the call times t sorted, achieved = limit / median of "
        "(t[i + limit] - t[i]), the time the limiter took to admit limit more calls; the "
        "busiest window is the most calls in any window of the period (at most the limit). "
        "Over the run = (calls - limit) / (last call - first call), which also counts the "
        "runs' way to their first call.",
        "| database | limiter | configured | per s | achieved per s | error | busiest window "
        "| over the run per s | calls |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        rows,
    )

    rows, cost_rows = [], []
    for db in dbs:
        tok = report["databases"][db].get("tokens")
        if not tok:
            continue
        sat = tok["saturation"]
        rows.append(
            f"| {db} | {sat['limit_tokens']} per {_f(sat['window_s'], 0)} s | "
            f"{sat['max_window_tokens']} | {'yes' if sat['exceeded'] else 'no'} | "
            f"{_f(100 * (sat['achieved_fraction'] or 0), 1)} % | "
            f"{_f(100 * (sat['min_fraction'] or 0), 1)} % | {sat['calls']} | "
            f"{_f(sat['span_s'], 1)} | {_f(sat.get('demand_calls_per_s'), 1)} |"
        )
        for name, fig in tok["check cost"].items():
            cost_rows.append(
                f"| {db} | {name} | {_f(fig['p50_ms'], 2)} | {_f(fig['p95_ms'], 2)} | "
                f"{_f(fig['check_ms_p50'], 2)} |"
            )
    if rows:
        lines += [
            "## (11) Token limiter at saturation, and the ledger check per model call",
            "",
            "Target: at least 90 % of the configured tokens per window, never more. Every "
            "window starting at a call (after the first window, which holds the opening "
            "burst) and ending before the last call: its tokens over the limit, mean and min. "
            "The limit is half the demand (what the loops sustain unlimited, measured first), "
            "at most 10 calls of 15 tokens per second.",
            "",
            "| database | limit | max window tokens | exceeded | achieved (mean) | min | calls "
            "| span s | demand calls/s |",
            "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
            *rows,
            "",
            "One-call runs, interleaved; the check's cost is the p50 over the unlimited run.",
            "",
            "| database | provider | p50 ms per run | p95 ms | check ms (p50) |",
            "| --- | --- | ---: | ---: | ---: |",
            *cost_rows,
            "",
        ]

    for db in dbs:
        p = report["databases"][db].get("profile")
        if not p:
            continue
        lines += [
            f"## Profile of (3) on {db} (pyinstrument, {p['runs']} runs)",
            "",
            f"Profiled: {_f(p['profiled_ms_per_run'])} ms per run wall, "
            f"{_f(p['cpu_ms_per_run'])} ms CPU (the profiler slows it down). Inclusive ms per "
            "run of Timestep's functions and the main library frames (an `asyncio/threads.py:"
            "to_thread` frame is a DBOS database write waited on in its thread pool):",
            "",
            "| function | ms per run |",
            "| --- | ---: |",
        ]
        lines += [f"| `{k}` | {_f(v)} |" for k, v in list(p["inclusive_ms_per_run"].items())[:18]]
        lines += ["", "Top self time (CPU on the event loop thread):", ""]
        lines += ["| function | ms per run |", "| --- | ---: |"]
        lines += [f"| `{k}` | {_f(v)} |" for k, v in list(p["top_self_ms_per_run"].items())[:10]]
        ablations = p.get("ablations")
        if ablations:
            lines += [
                "",
                "Ablations (unprofiled p50 of (3), one cost switched off in process):",
                "",
            ]
            lines += ["| variant | p50 ms |", "| --- | ---: |"]
            lines += [f"| {k.removesuffix('_p50_ms')} | {_f(v)} |" for k, v in ablations.items()]
        lines.append("")

    rows = []
    for db in dbs:
        c = report["databases"][db].get("chaos")
        if c:
            verdict = "; ".join(c["violations"]) or "every invariant held"
            rows.append(
                f"| {db} | {c['runs']} | {c['workers']} | {c['kills']} | {c['finished']} | "
                f"{c['seconds']} | {c['model_retries_of_unfinished_steps']} | "
                f"{c['tool_reruns_of_unfinished_steps']} | {verdict} |"
            )
    if rows:
        lines += [
            "## Chaos soak",
            "",
            "| database | runs | workers | kills | finished | s | model retries* | "
            "tool reruns* | invariants |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
            *rows,
            "",
            "\\* of steps a kill interrupted before their checkpoint (allowed: not finished).",
            "",
        ]
    streaming = {db: f["streaming"] for db, f in report["databases"].items() if "streaming" in f}
    if streaming:
        lines += [
            "## (10) Streaming: ms from the call to the first and the last of 30 text deltas "
            "(50 ms apart), interleaved",
            "",
            "| database | reader | first p50 | first p95 | last p50 | last p95 | "
            "extra first p50 | extra last p50 |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for db, st in streaming.items():
            for reader, key, extra in _STREAM_READERS:
                if f"{key}_first" not in st:  # results from before the shared contender
                    continue
                first, last = st[f"{key}_first"], st[f"{key}_last"]
                extras = (
                    [_f(st[f"{extra}extra_first_ms_p50"]), _f(st[f"{extra}extra_last_ms_p50"])]
                    if extra is not None
                    else ["", ""]
                )
                lines.append(
                    f"| {db} | {reader} | {_f(first['p50_ms'])} | {_f(first['p95_ms'])} | "
                    f"{_f(last['p50_ms'])} | {_f(last['p95_ms'])} | " + " | ".join(extras) + " |"
                )
        lines.append("")
        split = {db: st for db, st in streaming.items() if "plain_lag" in st}
        if split:
            lines += [
                "Where the extra goes, by the provider's clock: ms from the call until the "
                "request reaches the provider, and each delta's lag from the provider's sending "
                "to the reader (p50 over rounds of each round's median delta; the worst delta "
                "of a round, p50 over rounds).",
                "",
                "| database | reader | request p50 | delta lag p50 | worst delta p50 | "
                "extra request p50 | extra lag p50 |",
                "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
            ]
            for db, st in split.items():
                for reader, key, extra in _STREAM_READERS:
                    if f"{key}_lag" not in st:
                        continue
                    extras = (
                        [
                            _f(st[f"{extra}extra_request_ms_p50"]),
                            _f(st[f"{extra}extra_lag_ms_p50"]),
                        ]
                        if extra is not None
                        else ["", ""]
                    )
                    lines.append(
                        f"| {db} | {reader} | {_f(st[f'{key}_request']['p50_ms'])} | "
                        f"{_f(st[f'{key}_lag']['p50_ms'])} | "
                        f"{_f(st[f'{key}_lag_max']['p50_ms'])} | " + " | ".join(extras) + " |"
                    )
            lines.append("")
    memory = {db: f["memory"] for db, f in report["databases"].items() if "memory" in f}
    if memory:
        lines += [
            "## (9) Memory over many runs in one process (target: under 5 MB per 10,000 runs)",
            "",
            "| database | workload | runs | RSS start MB | RSS end MB | growth MB / 10k runs | "
            "agents alive at the end |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for db, workloads in memory.items():
            for label, m in workloads.items():
                lines.append(
                    f"| {db} | {label} | {m['runs']} | {m['rss_start_mb']} | {m['rss_end_mb']} | "
                    f"{m['growth_mb_per_10k_runs']} | {m['agents_alive']} |"
                )
        lines.append("")
    paging = {db: f["paging"] for db, f in report["databases"].items() if "paging" in f}
    if paging:
        lines += [
            "## (12) The console's runs listing (50 a page, with their usage): deep pages cost "
            "what the first does",
            "",
            "| database | runs | listing | first page ms | 20th page ms | page 90% deep ms |",
            "| --- | ---: | --- | ---: | ---: | ---: |",
        ]
        for db, p in paging.items():
            for label in ("all runs", "one agent", "status SUCCESS"):
                m = p[label]
                lines.append(
                    f"| {db} | {p['runs']:,} | {label} | {m['first_page_ms']} | "
                    f"{m['page_20_ms']} | {m['page_90pct_deep_ms']} |"
                )
    retention = {db: f["retention"] for db, f in report["databases"].items() if "retention" in f}
    if retention:
        lines += [
            "## (13) Retention: one gc pass over ended runs",
            "",
            "| database | runs deleted | pass s | s / 10k runs | rows freed | MB freed | "
            "operation_outputs before → after | idle pass s |",
            "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
        ]
        for db, r in retention.items():
            steps = (
                f"{r['rows_before']['operation_outputs']} → {r['rows_after']['operation_outputs']}"
            )
            lines.append(
                f"| {db} | {r['runs']} | {r['gc_seconds']} | {r['gc_seconds_per_10k_runs']} | "
                f"{r['rows_freed']} | {r['bytes_freed'] / 2**20:.1f} | {steps} | "
                f"{r['idle_pass_seconds']} |"
            )
        lines.append("")
    lines += _steady(report)
    return "\n".join(lines)


def _steady(report: dict[str, Any]) -> list[str]:
    """(17): the passes' cost, each table's size when the policy starts deleting and at the
    end, and the database's size over the simulated days."""
    steady = {
        db: f["retention_steady"]
        for db, f in report["databases"].items()
        if "retention_steady" in f
    }
    if not steady:
        return []
    first = next(iter(steady.values()))
    lines = [
        f"## (17) Retention at steady state: {first['runs']:,} runs over {first['days']} "
        f"simulated days, `{first['policy']}`",
        "",
        f"The runs are copies, made in SQL, of {first['sources']} real ones (tool calls, "
        "streams, approvals, step retries, token-limited model calls, sessions): every row "
        "they wrote, under new ids, its times shifted to its place in its day. After each day "
        "one gc pass at the day's end (on Postgres then a VACUUM, not timed); each pass "
        "deleted exactly the runs that turned 30 days old (asserted).",
        "",
        "| database | runs | per day | runs deleted | gc s / 10k deleted runs | pass s, median "
        "| slowest | idle pass s | copying s | real runs s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for db, r in steady.items():
        lines.append(
            f"| {db} | {r['runs']:,} | {r['runs_per_day']:,} | {r['runs_deleted']:,} | "
            f"{r['gc_seconds_per_10k_runs']} | {r.get('gc_pass_seconds_median', '')} | "
            f"{r['gc_pass_seconds_max']} | "
            f"{r['idle_pass_seconds_mean']} | {r['copy_seconds']} | {r['sources_seconds']} |"
        )
    lines += [
        "",
        "Each table on the first day the policy deletes (30 days' runs) and at the end "
        "(bytes with indexes; SQLite: its pages):",
        "",
        "| database | table | rows, day 31 | rows, end | MB, day 31 | MB, end | rows added a "
        "day since |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    growing: dict[str, set[str]] = {}
    for db, r in steady.items():
        start = next(s for s in r["samples"] if s["day"] == 31)
        end = r["samples"][-1]
        for table, size in end["tables"].items():
            was = start["tables"][table]
            if not (size["rows"] or was["rows"]):
                continue
            per_day = (size["rows"] - was["rows"]) / max(1, end["day"] - start["day"])
            if per_day >= 1:
                growing.setdefault(table, set()).add(db)
            lines.append(
                f"| {db} | {table} | {was['rows']:,} | {size['rows']:,} | "
                f"{was['bytes'] / 2**20:.2f} | {size['bytes'] / 2**20:.2f} | {per_day:+.1f} |"
            )
    if growing:
        lines += [
            "",
            "Not bounded (a row or more added a day after day 31): "
            + ", ".join(f"`{t}` ({', '.join(sorted(dbs))})" for t, dbs in growing.items())
            + ". `timestep_usage_daily` grows by design: a row per day, agent and model.",
        ]
    lines += [
        "",
        "| database | day | runs made | runs kept | rows (these tables) | database MB |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for db, r in steady.items():
        for sample in r["samples"]:
            tables = sample["tables"]
            lines.append(
                f"| {db} | {sample['day']} | {sample['runs_made']:,} | "
                f"{tables['workflow_status']['rows']:,} | "
                f"{sum(t['rows'] for t in tables.values()):,} | "
                f"{sample['database_bytes'] / 2**20:.1f} |"
            )
    return [*lines, ""]
